/*
 * metrics/metrics_list.h — every metric of GET /metrics, listed once
 * (STYLE §8). The names are public interface (product.md §7): never rename
 * one, add a new one instead. Included by metrics.h; the X-macros generate the
 * metric enum, names, types, help text and the CloudWatch name each mirrors.
 *
 * MET_METRICS(X): X(id, name, type, scope, cloudwatch, help)
 *   type   MET_COUNTER | MET_GAUGE | MET_HISTOGRAM
 *   scope  MET_ROUTE: labels api, stage, resource, method (from the shards)
 *          MET_STAGE: labels api, stage (from the stage caches)
 * gatecache_responses_total adds the label class, and
 * gatecache_cache_invalidations_total the label reason.
 */
#ifndef GATE_METRICS_LIST_H
#define GATE_METRICS_LIST_H

#define MET_METRICS(X)                                                                             \
    X(REQUESTS, "gatecache_requests_total", MET_COUNTER, MET_ROUTE, "Count",                       \
      "Requests answered, by the route they matched (empty labels: no route).")                    \
    X(RESPONSES, "gatecache_responses_total", MET_COUNTER, MET_ROUTE, "4XXError, 5XXError",        \
      "Answers by status class (2xx, 3xx, 4xx, 5xx).")                                             \
    X(HITS, "gatecache_cache_hits_total", MET_COUNTER, MET_ROUTE, "CacheHitCount",                 \
      "Requests answered from the stage cache.")                                                   \
    X(MISSES, "gatecache_cache_misses_total", MET_COUNTER, MET_ROUTE, "CacheMissCount",            \
      "Cacheable requests answered by the integration (MISS, EXPIRED, REFRESH).")                  \
    X(REQUEST_DURATION, "gatecache_request_duration_seconds", MET_HISTOGRAM, MET_ROUTE, "Latency", \
      "Seconds from the first byte of the request head to the last byte of the answer queued.")    \
    X(INTEGRATION_DURATION, "gatecache_integration_duration_seconds", MET_HISTOGRAM, MET_ROUTE,    \
      "IntegrationLatency", "Seconds from the start of the integration call to its end.")          \
    X(CACHE_ENTRIES, "gatecache_cache_entries", MET_GAUGE, MET_STAGE, "-",                         \
      "Entries of the current generation held by the stage cache.")                                \
    X(CACHE_BYTES, "gatecache_cache_bytes", MET_GAUGE, MET_STAGE, "-",                             \
      "Bytes of the current generation held by the stage cache.")                                  \
    X(CACHE_CAPACITY, "gatecache_cache_capacity_bytes", MET_GAUGE, MET_STAGE, "-",                 \
      "Capacity of the stage cache (cache_cluster_size) in bytes.")                                \
    X(CACHE_EVICTIONS, "gatecache_cache_evictions_total", MET_COUNTER, MET_STAGE, "-",             \
      "Entries evicted to keep the stage cache within its capacity.")                              \
    X(CACHE_INVALIDATIONS, "gatecache_cache_invalidations_total", MET_COUNTER, MET_STAGE, "-",     \
      "Invalidations of the stage cache by reason: flush, path, tag (admin API), max_age "         \
      "(authorised Cache-Control: max-age=0), write (write-triggered).")

/* Reasons of gatecache_cache_invalidations_total: X(id, label value). The
 * admin API counts FLUSH, PATH and TAG (admin/), the data plane the rest. */
#define MET_INV_REASONS(X)                                                                         \
    X(FLUSH, "flush")                                                                              \
    X(PATH, "path")                                                                                \
    X(TAG, "tag")                                                                                  \
    X(MAX_AGE, "max_age")                                                                          \
    X(WRITE, "write")

/* Status classes of gatecache_responses_total: X(id, label value). */
#define MET_CLASSES(X)                                                                             \
    X(2XX, "2xx")                                                                                  \
    X(3XX, "3xx")                                                                                  \
    X(4XX, "4xx")                                                                                  \
    X(5XX, "5xx")

/* Histogram upper bounds: X(nanoseconds, le label). Ascending; +Inf is
 * implicit. From half a millisecond (a hit) to 30 s (the longest
 * integration timeout API Gateway allows is 29 s). */
#define MET_BUCKETS(X)                                                                             \
    X(500000ull, "0.0005")                                                                         \
    X(1000000ull, "0.001")                                                                         \
    X(2500000ull, "0.0025")                                                                        \
    X(5000000ull, "0.005")                                                                         \
    X(10000000ull, "0.01")                                                                         \
    X(25000000ull, "0.025")                                                                        \
    X(50000000ull, "0.05")                                                                         \
    X(100000000ull, "0.1")                                                                         \
    X(250000000ull, "0.25")                                                                        \
    X(500000000ull, "0.5")                                                                         \
    X(1000000000ull, "1")                                                                          \
    X(2500000000ull, "2.5")                                                                        \
    X(5000000000ull, "5")                                                                          \
    X(10000000000ull, "10")                                                                        \
    X(30000000000ull, "30")

#endif
