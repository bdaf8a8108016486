/* metrics — declarations shared by the files of the module only. */
#ifndef GATE_METRICS_INT_H
#define GATE_METRICS_INT_H

#include <pthread.h>

#include "metrics/metrics.h"

/* One counter block: the values of one label key in one shard. Written by
 * the shard's worker only (relaxed load + store), read by scrapers. */
struct met_series {
    const struct met_key *key; /* borrowed from the registry */
    _Atomic uint64_t v[MET_N_SLOTS];
};

/* A shard's open-addressing table (linear probing, never more than 3/4
 * full). Replaced whole when it grows; slots hold owned series. */
struct met__table {
    size_t mask; /* capacity - 1, capacity a power of two */
    size_t used;
    struct met_series *slots[];
};

struct met_shard {
    pthread_mutex_t lock; /* held by the worker to change the table, by scrapers to read it */
    _Atomic(struct met__table *) table; /* owned; replaced under lock (release) */
    struct met_registry *reg;           /* borrowed: the owner */
    struct met_series *no_route;        /* worker only: cache of the "no route" series */
    char _pad[64];                      /* keeps shards of two workers off one cache line */
};

struct met_registry {
    pthread_mutex_t lock;   /* guards keys, n_keys, cap_keys */
    struct met_key **keys;  /* owned array of owned keys, by id */
    size_t n_keys, cap_keys;
    unsigned n_shards;
    struct met_shard **shards; /* owned array of owned shards, by worker id */
};

/* The interned key of a label set (created on first use). Takes reg->lock. */
const struct met_key *met__intern(struct met_registry *reg, const struct met_labels *l);

#endif
