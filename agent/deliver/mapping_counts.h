/* Decisions per mapping, for /metrics' rtr_agent_mapping_decisions_total
 * {mapping="..."}: which site rule fires how often is the first question
 * after a change to the mappings. Mapping names are the operator's text
 * and change with a reload, so they cannot be rows of stats.h; this is a
 * fixed table filled as names come. One writer (the delivery thread,
 * which sees every decision); readers on other threads (the status
 * endpoint) see each name once it is complete and a count a moment old,
 * never a torn one. A name stays once seen (a Prometheus counter must not
 * vanish); past MAPPING_COUNTS_MAX names the rest count as one
 * MAPPING_COUNTS_OTHER row. No allocation after mapping_counts_new. */
#ifndef RTR_MAPPING_COUNTS_H
#define RTR_MAPPING_COUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

/* Far more mappings than one configuration holds: the shipped set has a
 * few dozen. */
#define MAPPING_COUNTS_MAX 256

/* The label value that counts names past MAPPING_COUNTS_MAX; parentheses
 * cannot start a name the shipped sets use. */
#define MAPPING_COUNTS_OTHER "(other)"

struct mapping_counts;

/* Returns 0 and *out (free with mapping_counts_free), or ERR_NOMEM. */
int mapping_counts_new(struct mapping_counts **out);

void mapping_counts_free(struct mapping_counts *mc);

/* Counts one decision of mapping (writer thread only). */
void mapping_counts_add(struct mapping_counts *mc, struct str mapping);

/* Calls fn for each name seen so far, in the order first seen, then for
 * MAPPING_COUNTS_OTHER when names were past the table (any thread). */
void mapping_counts_each(const struct mapping_counts *mc,
                         void (*fn)(void *arg, const char *name, uint64_t n), void *arg);

#endif
