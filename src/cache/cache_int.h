/*
 * cache_int — declarations shared by the files of src/cache/ only.
 *
 * The refcount word of an entry carries the SIEVE visited bit in bit 31 so the
 * bit costs no byte of its own; the count lives in bits 0..30. The visited bit
 * is only changed under the entry's shard lock, the count from any thread.
 */
#ifndef GATE_CACHE_INT_H
#define GATE_CACHE_INT_H

#include "cache/cache.h"

#define CACHE__VISITED 0x80000000u
#define CACHE__REFS_MASK 0x7fffffffu

/* Bytes before the first payload byte: the struct up to its key[] member. */
#define CACHE__ENTRY_HEADER offsetof(struct cache_entry, key)

#endif
