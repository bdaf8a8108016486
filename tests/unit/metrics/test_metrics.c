/*
 * Unit tests for src/metrics/: counting into a shard, histogram buckets, sum
 * and count, summing one label set across shards, interned keys, label and
 * HELP escaping in the exposition, stage series, and writers on their own
 * shards against a scraper on another thread (run it under TSan: make tsan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics.h"

static struct met_labels labels(const char *api, const char *stage, const char *res,
                                const char *method)
{
    struct met_labels l = {api, stage, res, method, route_label_hash(api, stage, res, method)};
    return l;
}

static const struct met_sample *find_sample(const struct met_snapshot *snap, const char *res)
{
    for (size_t i = 0; i < snap->n; i++)
        if (strcmp(snap->samples[i].key->resource, res) == 0)
            return &snap->samples[i];
    fail_msg("no sample for resource %s", res);
    return NULL;
}

static char *expose(struct met_registry *reg, const struct met_stage_view *st, size_t n)
{
    struct met_snapshot snap;
    met_snapshot_take(reg, &snap);
    struct buf out;
    buf_init(&out);
    met_expose(&snap, st, n, &out);
    met_snapshot_free(&snap);
    size_t len;
    return buf_steal(&out, &len);
}

static void assert_has(const char *text, const char *want)
{
    if (!strstr(text, want))
        fail_msg("missing %s in:\n%s", want, text);
}

/* ================= counting ================= */

static void test_counting(void **state)
{
    struct met_registry *reg = met_registry_new(2);
    struct met_shard *s = met_registry_shard(reg, 0);
    assert_null(met_registry_shard(reg, 2));
    struct met_labels l = labels("shop", "prod", "/pets/{id}", "GET");
    struct met_series *a = met_series_get(s, &l);
    assert_ptr_equal(met_series_get(s, &l), a); /* one series per label set */
    met_request_done(s, a, 200, 0);
    met_request_done(s, a, 404, 0);
    met_request_done(s, a, 403, 0);
    met_request_done(s, a, 502, 0);
    met_request_done(s, a, 304, 0);
    met_request_done(s, a, 999, 0); /* out of range: 5xx */
    met_hit(s, a);
    met_hit(s, a);
    met_miss(s, a);
    met_invalidation(s, a, MET_INV_WRITE);
    met_invalidation(s, a, MET_INV_MAX_AGE);
    met_invalidation(s, a, MET_INV_MAX_AGE);
    /* NULL series: "no route", all labels empty. */
    met_request_done(s, NULL, 404, 0);

    struct met_snapshot snap;
    met_snapshot_take(reg, &snap);
    assert_int_equal(snap.n, 2);
    const struct met_sample *x = find_sample(&snap, "/pets/{id}");
    assert_int_equal(x->v[MET_SLOT_REQUESTS], 6);
    assert_int_equal(x->v[MET_SLOT_CLASS + MET_CLASS_2XX], 1);
    assert_int_equal(x->v[MET_SLOT_CLASS + MET_CLASS_3XX], 1);
    assert_int_equal(x->v[MET_SLOT_CLASS + MET_CLASS_4XX], 2);
    assert_int_equal(x->v[MET_SLOT_CLASS + MET_CLASS_5XX], 2);
    assert_int_equal(x->v[MET_SLOT_HITS], 2);
    assert_int_equal(x->v[MET_SLOT_MISSES], 1);
    assert_int_equal(x->v[MET_SLOT_INV + MET_INV_WRITE], 1);
    assert_int_equal(x->v[MET_SLOT_INV + MET_INV_MAX_AGE], 2);
    const struct met_sample *none = find_sample(&snap, "");
    assert_string_equal(none->key->api, "");
    assert_int_equal(none->v[MET_SLOT_REQUESTS], 1);
    assert_int_equal(none->v[MET_SLOT_CLASS + MET_CLASS_4XX], 1);
    met_snapshot_free(&snap);

    /* A NULL shard (no registry) ignores everything. */
    assert_null(met_series_get(NULL, &l));
    met_request_done(NULL, NULL, 200, 0);
    met_hit(NULL, NULL);
    met_registry_free(&reg);
    assert_null(reg);
    met_registry_free(&reg);
}

/* Many label sets: the table grows, every series keeps its counts. */
static void test_grow(void **state)
{
    struct met_registry *reg = met_registry_new(1);
    struct met_shard *s = met_registry_shard(reg, 0);
    struct met_series *first[200];
    char res[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(res[i], sizeof(res[i]), "/r/%d", i);
        struct met_labels l = labels("a", "s", res[i], "GET");
        first[i] = met_series_get(s, &l);
        for (int k = 0; k <= i % 5; k++)
            met_hit(s, first[i]);
    }
    for (int i = 0; i < 200; i++) {
        struct met_labels l = labels("a", "s", res[i], "GET");
        assert_ptr_equal(met_series_get(s, &l), first[i]); /* series never move */
    }
    struct met_snapshot snap;
    met_snapshot_take(reg, &snap);
    assert_int_equal(snap.n, 200);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(snap.samples[i].key->id, i); /* key order = first use */
        assert_int_equal(snap.samples[i].v[MET_SLOT_HITS], (uint64_t)(i % 5 + 1));
    }
    met_snapshot_free(&snap);
    met_registry_free(&reg);
}

/* Label sets that differ only in where one string ends are different keys. */
static void test_hash_separates(void **state)
{
    assert_int_not_equal(route_label_hash("ab", "c", "", ""), route_label_hash("a", "bc", "", ""));
    assert_int_equal(route_label_hash("a", "b", "c", "d"), route_label_hash("a", "b", "c", "d"));
    struct met_registry *reg = met_registry_new(1);
    struct met_shard *s = met_registry_shard(reg, 0);
    /* Same hash, different strings (forged): still two series. */
    struct met_labels l1 = {"a", "b", "c", "GET", 42}, l2 = {"a", "b", "c", "PUT", 42};
    assert_ptr_not_equal(met_series_get(s, &l1), met_series_get(s, &l2));
    met_registry_free(&reg);
}

/* ================= histograms ================= */

static void test_histogram(void **state)
{
    struct met_registry *reg = met_registry_new(1);
    struct met_shard *s = met_registry_shard(reg, 0);
    struct met_labels l = labels("shop", "prod", "/x", "GET");
    struct met_series *a = met_series_get(s, &l);
    met_observe(s, a, MET_HIST_REQUEST, 100000);        /* 0.0001 s: first bucket */
    met_observe(s, a, MET_HIST_REQUEST, 500000);        /* exactly 0.0005: le is inclusive */
    met_observe(s, a, MET_HIST_REQUEST, 500001);        /* just above: 0.001 */
    met_observe(s, a, MET_HIST_REQUEST, 2000000000ull); /* 2 s: 2.5 */
    met_observe(s, a, MET_HIST_REQUEST, 31000000000ull); /* 31 s: +Inf only */
    met_observe(s, a, MET_HIST_INTEGRATION, 7000000);   /* 0.007 s: 0.01 */

    char *text = expose(reg, NULL, 0);
    const char *lb = "gatecache_request_duration_seconds_bucket{api=\"shop\",stage=\"prod\","
                     "resource=\"/x\",method=\"GET\",le=";
    static const char *const want[][2] = {
        {"\"0.0005\"} ", "2\n"}, {"\"0.001\"} ", "3\n"}, {"\"0.5\"} ", "3\n"},
        {"\"1\"} ", "3\n"},      {"\"2.5\"} ", "4\n"},   {"\"30\"} ", "4\n"},
        {"\"+Inf\"} ", "5\n"},
    };
    for (size_t i = 0; i < GATE_ARRAY_LEN(want); i++) {
        char line[256];
        snprintf(line, sizeof(line), "%s%s%s", lb, want[i][0], want[i][1]);
        assert_has(text, line);
    }
    assert_has(text, "gatecache_request_duration_seconds_sum{api=\"shop\",stage=\"prod\","
                     "resource=\"/x\",method=\"GET\"} 33.001100001\n");
    assert_has(text, "gatecache_request_duration_seconds_count{api=\"shop\",stage=\"prod\","
                     "resource=\"/x\",method=\"GET\"} 5\n");
    assert_has(text, "gatecache_integration_duration_seconds_bucket{api=\"shop\",stage=\"prod\","
                     "resource=\"/x\",method=\"GET\",le=\"0.005\"} 0\n");
    assert_has(text, "gatecache_integration_duration_seconds_bucket{api=\"shop\",stage=\"prod\","
                     "resource=\"/x\",method=\"GET\",le=\"0.01\"} 1\n");
    assert_has(text, "gatecache_integration_duration_seconds_sum{api=\"shop\",stage=\"prod\","
                     "resource=\"/x\",method=\"GET\"} 0.007000000\n");
    assert_has(text, "# TYPE gatecache_request_duration_seconds histogram\n");
    free(text);

    /* met_request_done observes a real, small duration. */
    met_request_done(s, a, 200, met_now_ns());
    struct met_snapshot snap;
    met_snapshot_take(reg, &snap);
    uint64_t n = 0;
    for (size_t b = 0; b <= MET_N_BUCKETS; b++)
        n += snap.samples[0].v[MET_SLOT_REQ_DUR + b];
    assert_int_equal(n, 6);
    met_snapshot_free(&snap);
    met_registry_free(&reg);
}

/* ================= shards ================= */

static void test_sum_across_shards(void **state)
{
    struct met_registry *reg = met_registry_new(4);
    struct met_labels l = labels("shop", "prod", "/pets", "ANY");
    for (unsigned i = 0; i < 4; i++) {
        struct met_shard *s = met_registry_shard(reg, i);
        struct met_series *ser = met_series_get(s, &l);
        for (unsigned k = 0; k <= i; k++)
            met_miss(s, ser);
        met_observe(s, ser, MET_HIST_INTEGRATION, 1000000000ull * (i + 1));
    }
    struct met_snapshot snap;
    met_snapshot_take(reg, &snap);
    assert_int_equal(snap.n, 1); /* one key, interned once */
    assert_int_equal(snap.samples[0].v[MET_SLOT_MISSES], 1 + 2 + 3 + 4);
    assert_int_equal(snap.samples[0].v[MET_SLOT_INT_DUR + MET_N_BUCKETS + 1], 10000000000ull);
    met_snapshot_free(&snap);
    met_registry_free(&reg);
}

/* ================= exposition ================= */

static void test_escaping_and_stages(void **state)
{
    struct met_registry *reg = met_registry_new(1);
    struct met_shard *s = met_registry_shard(reg, 0);
    struct met_labels l = labels("a\"b", "st\\age", "/x\ny", "GET");
    struct met_series *a = met_series_get(s, &l);
    met_request_done(s, a, 201, 0);
    met_invalidation(s, a, MET_INV_WRITE);
    struct met_stage_view st[2] = {
        {.api = "a\"b", .stage = "st\\age", .entries = 3, .bytes = 300, .capacity = 1024,
         .evictions = 1, .inv = {[MET_INV_FLUSH] = 2, [MET_INV_TAG] = 5}},
        {.api = "other", .stage = "dev", .capacity = 7},
    };
    char *text = expose(reg, st, 2);
    assert_has(text, "gatecache_requests_total{api=\"a\\\"b\",stage=\"st\\\\age\","
                     "resource=\"/x\\ny\",method=\"GET\"} 1\n");
    assert_has(text, "gatecache_responses_total{api=\"a\\\"b\",stage=\"st\\\\age\","
                     "resource=\"/x\\ny\",method=\"GET\",class=\"2xx\"} 1\n");
    assert_has(text, "gatecache_responses_total{api=\"a\\\"b\",stage=\"st\\\\age\","
                     "resource=\"/x\\ny\",method=\"GET\",class=\"5xx\"} 0\n");
    assert_has(text, "gatecache_cache_entries{api=\"a\\\"b\",stage=\"st\\\\age\"} 3\n");
    assert_has(text, "gatecache_cache_capacity_bytes{api=\"other\",stage=\"dev\"} 7\n");
    assert_has(text, "gatecache_cache_evictions_total{api=\"a\\\"b\",stage=\"st\\\\age\"} 1\n");
    const char *inv = "gatecache_cache_invalidations_total{api=\"a\\\"b\",stage=\"st\\\\age\",";
    char line[256];
    static const char *const reasons[][2] = {
        {"flush", "2"}, {"path", "0"}, {"tag", "5"}, {"max_age", "0"}, {"write", "1"}};
    for (size_t i = 0; i < GATE_ARRAY_LEN(reasons); i++) {
        snprintf(line, sizeof(line), "%sreason=\"%s\"} %s\n", inv, reasons[i][0], reasons[i][1]);
        assert_has(text, line);
    }
    assert_has(text, "gatecache_cache_invalidations_total{api=\"other\",stage=\"dev\","
                     "reason=\"write\"} 0\n");
    /* One HELP and one TYPE per metric, in list order. */
    size_t n_help = 0, n_type = 0;
    for (const char *p = text; (p = strstr(p, "# HELP ")) != NULL; p++)
        n_help++;
    for (const char *p = text; (p = strstr(p, "# TYPE ")) != NULL; p++)
        n_type++;
    assert_int_equal(n_help, MET__COUNT);
    assert_int_equal(n_type, MET__COUNT);
    assert_true(strstr(text, "# TYPE gatecache_requests_total counter\n") <
                strstr(text, "# TYPE gatecache_cache_invalidations_total counter\n"));
    /* No raw newline inside a line: every line starts with '#' or a name. */
    for (const char *p = text; *p; p = strchr(p, '\n') + 1)
        assert_true(*p == '#' || strncmp(p, "gatecache_", 10) == 0);
    free(text);

    /* Empty registry (no workers yet): metadata and stage series only. */
    text = expose(NULL, st + 1, 1);
    assert_has(text, "# TYPE gatecache_cache_hits_total counter\n");
    assert_null(strstr(text, "gatecache_cache_hits_total{"));
    assert_has(text, "gatecache_cache_capacity_bytes{api=\"other\",stage=\"dev\"} 7\n");
    free(text);
    met_registry_free(&reg);
}

static void test_info_table(void **state)
{
    for (int i = 0; i < MET__COUNT; i++) {
        const char *n = met_info[i].name;
        assert_true(strncmp(n, "gatecache_", 10) == 0);
        bool total = strlen(n) > 6 && strcmp(n + strlen(n) - 6, "_total") == 0;
        /* Prometheus naming: counters and only counters end in _total. */
        assert_int_equal(total, met_info[i].type == MET_COUNTER);
        assert_non_null(met_info[i].help);
        assert_non_null(met_info[i].cloudwatch);
    }
    assert_string_equal(met_info[MET_HITS].cloudwatch, "CacheHitCount");
    assert_string_equal(met_inv_reason_names[MET_INV_MAX_AGE], "max_age");
}

/* ================= writers vs scraper ================= */

#define WRITERS 4
#define ROUNDS 20000

struct writer_arg {
    struct met_registry *reg;
    unsigned id;
};

static void *writer(void *p)
{
    struct writer_arg *wa = p;
    struct met_shard *s = met_registry_shard(wa->reg, wa->id);
    char res[32];
    for (unsigned i = 0; i < ROUNDS; i++) {
        /* New label sets keep arriving: inserts and grows race the scraper. */
        snprintf(res, sizeof(res), "/r/%u", i % 300);
        struct met_labels l = labels("api", "prod", res, "GET");
        struct met_series *ser = met_series_get(s, &l);
        met_request_done(s, ser, 200 + (int)(i % 4) * 100, 0);
        met_observe(s, ser, MET_HIST_INTEGRATION, i);
    }
    return NULL;
}

static void *scraper(void *p)
{
    struct met_registry *reg = p;
    uint64_t last = 0;
    for (int i = 0; i < 200; i++) {
        struct met_snapshot snap;
        met_snapshot_take(reg, &snap);
        uint64_t total = 0;
        for (size_t k = 0; k < snap.n; k++) {
            const struct met_sample *x = &snap.samples[k];
            total += x->v[MET_SLOT_REQUESTS];
            uint64_t hist = 0;
            for (size_t b = 0; b <= MET_N_BUCKETS; b++)
                hist += x->v[MET_SLOT_INT_DUR + b];
            GATE_ASSERT(hist <= (uint64_t)WRITERS * ROUNDS);
        }
        /* Counters only go up between scrapes. */
        GATE_ASSERT(total >= last);
        last = total;
        met_snapshot_free(&snap);
    }
    return NULL;
}

static void test_writers_vs_scraper(void **state)
{
    struct met_registry *reg = met_registry_new(WRITERS);
    pthread_t w[WRITERS], sc;
    struct writer_arg args[WRITERS];
    pthread_create(&sc, NULL, scraper, reg);
    for (unsigned i = 0; i < WRITERS; i++) {
        args[i] = (struct writer_arg){reg, i};
        pthread_create(&w[i], NULL, writer, &args[i]);
    }
    for (unsigned i = 0; i < WRITERS; i++)
        pthread_join(w[i], NULL);
    pthread_join(sc, NULL);

    struct met_snapshot snap;
    met_snapshot_take(reg, &snap);
    assert_int_equal(snap.n, 300);
    uint64_t req = 0, cls[MET_CLASS__COUNT] = {0}, n_int = 0;
    for (size_t k = 0; k < snap.n; k++) {
        req += snap.samples[k].v[MET_SLOT_REQUESTS];
        for (size_t c = 0; c < MET_CLASS__COUNT; c++)
            cls[c] += snap.samples[k].v[MET_SLOT_CLASS + c];
        for (size_t b = 0; b <= MET_N_BUCKETS; b++)
            n_int += snap.samples[k].v[MET_SLOT_INT_DUR + b];
    }
    assert_int_equal(req, WRITERS * ROUNDS); /* exact: no lost increments */
    for (size_t c = 0; c < MET_CLASS__COUNT; c++)
        assert_int_equal(cls[c], WRITERS * ROUNDS / 4);
    assert_int_equal(n_int, WRITERS * ROUNDS);
    met_snapshot_free(&snap);
    met_registry_free(&reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_hash_separates),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_sum_across_shards),
        cmocka_unit_test(test_escaping_and_stages),
        cmocka_unit_test(test_info_table),
        cmocka_unit_test(test_writers_vs_scraper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
