/* Decisions per mapping: names in an array filled in order (published by
 * a release store of the count, so a reader never sees a half-copied
 * name), found by the writer through an open-addressed index of twice as
 * many slots. */
#include "mapping_counts.h"

#include <stdlib.h>
#include <string.h>

#include "decide/mapping.h"
#include "errors.h"

#define MAPPING_COUNTS_SLOTS (2 * MAPPING_COUNTS_MAX) /* a power of two */

struct mapping_count {
    char name[MAPPING_MAX_NAME + 1];
    uint64_t n; /* __atomic: one writer */
};

struct mapping_counts {
    struct mapping_count rows[MAPPING_COUNTS_MAX];
    size_t used;                         /* __atomic: rows published */
    uint16_t slot[MAPPING_COUNTS_SLOTS]; /* row + 1, 0 = empty; the writer's */
    uint64_t other;                      /* __atomic: decisions of names past the table */
};

int mapping_counts_new(struct mapping_counts **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : ERR_NOMEM;
}

void mapping_counts_free(struct mapping_counts *mc)
{
    free(mc);
}

static void mapping_counts_bump(uint64_t *n)
{
    __atomic_store_n(n, __atomic_load_n(n, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* FNV-1a: names are short and the table small. */
static size_t mapping_counts_hash(struct str name)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < name.len; i++)
        h = (h ^ (unsigned char)name.p[i]) * 16777619u;
    return h;
}

void mapping_counts_add(struct mapping_counts *mc, struct str mapping)
{
    size_t i = mapping_counts_hash(mapping) & (MAPPING_COUNTS_SLOTS - 1);
    struct mapping_count *row;

    if (mapping.len > MAPPING_MAX_NAME) { /* decision_encode drops such a decision */
        mapping_counts_bump(&mc->other);
        return;
    }
    for (; mc->slot[i] != 0; i = (i + 1) & (MAPPING_COUNTS_SLOTS - 1)) {
        row = &mc->rows[mc->slot[i] - 1];
        if (strlen(row->name) == mapping.len && memcmp(row->name, mapping.p, mapping.len) == 0) {
            mapping_counts_bump(&row->n);
            return;
        }
    }
    if (mc->used == MAPPING_COUNTS_MAX) {
        mapping_counts_bump(&mc->other);
        return;
    }
    row = &mc->rows[mc->used];
    memcpy(row->name, mapping.p, mapping.len);
    row->name[mapping.len] = '\0';
    row->n = 1;
    mc->slot[i] = (uint16_t)(mc->used + 1);
    __atomic_store_n(&mc->used, mc->used + 1, __ATOMIC_RELEASE);
}

void mapping_counts_each(const struct mapping_counts *mc,
                         void (*fn)(void *arg, const char *name, uint64_t n), void *arg)
{
    size_t used = __atomic_load_n(&mc->used, __ATOMIC_ACQUIRE);
    uint64_t other = __atomic_load_n(&mc->other, __ATOMIC_RELAXED);

    for (size_t i = 0; i < used; i++)
        fn(arg, mc->rows[i].name, __atomic_load_n(&mc->rows[i].n, __ATOMIC_RELAXED));
    if (other > 0)
        fn(arg, MAPPING_COUNTS_OTHER, other);
}
