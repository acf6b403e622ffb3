/* PCRE2 done the way nginx's ngx_regex.c does it: compiled and JIT-compiled
 * at load time; matched with an explicit subject length, a reused match
 * data block, a JIT stack and a match context carrying match and depth
 * limits, one set per thread. Patterns are UTF-8 with PCRE2_MATCH_INVALID_UTF:
 * a subject with invalid UTF-8 never errors, it just matches less.
 *
 * A compiled regex is immutable and shared by every thread; a regex_env is
 * one thread's. Matching never allocates. */
#ifndef RTR_REGEX_H
#define RTR_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "str.h"

/* Capture groups one regex may have (more is a compile error): the match
 * data block of every env is sized for this many. */
#define REGEX_MAX_GROUPS 64

/* Groups that may share one name (PCRE2_DUPNAMES, "(?<user>..)|(?<user>..)"). */
#define REGEX_MAX_DUP_NAMES 8

enum {
    REGEX_CASELESS = 1u << 0,
    /* Run the interpreter only: for MemoryDenyWriteExecute=yes, and for
     * valgrind, which cannot follow JIT code that reads whole words past the
     * subject's end (harmless, inside the page; memcheck reports it). */
    REGEX_NO_JIT = 1u << 1,
};

struct regex;
struct regex_env;

/* Compiles (UTF, invalid-UTF tolerant, DUPNAMES, JIT when available).
 * Returns 0 and *out (free with regex_free), or ERR_INVALID with a message
 * in err (e.g. "missing closing parenthesis at offset 7"), or ERR_NOMEM. */
int regex_compile(const char *pattern, unsigned flags, struct regex **out, char *err,
                  size_t err_cap);

void regex_free(struct regex *re); /* NULL is fine */

const char *regex_pattern(const struct regex *re);

/* Nonzero when re runs as JIT code (asked for, built in and allowed by the
 * kernel's policy on executable memory). */
int regex_is_jit(const struct regex *re);

/* A literal every match must contain, worked out conservatively from the
 * pattern (the longest run of plain characters outside groups, classes and
 * alternations; none for caseless or extended patterns); empty when there is
 * none. regex_match looks for it with memmem-like speed before running
 * PCRE2. */
struct str regex_literal(const struct regex *re);

/* Nonzero when the pattern has a group called name. */
int regex_has_group(const struct regex *re, const char *name);

/* One thread's match state. match_limit and depth_limit go into its match
 * context (pcre2_set_match_limit / pcre2_set_depth_limit; also a heap limit,
 * so the interpreter's backtracking memory is bounded). Returns 0 and *out
 * (free with regex_env_free), or ERR_NOMEM. */
int regex_env_new(uint32_t match_limit, uint32_t depth_limit, struct regex_env **out);
void regex_env_free(struct regex_env *env); /* NULL is fine */

enum regex_result {
    REGEX_NO_MATCH = 0,
    REGEX_MATCH = 1,
    REGEX_LITERAL_MISS = 2, /* no match: the required literal is not in subject */
};

/* Matches re against subject. Returns REGEX_MATCH, REGEX_NO_MATCH,
 * REGEX_LITERAL_MISS, or ERR_LIMIT (the match, depth or heap limit, or the
 * JIT stack, ran out: the caller treats it as no match and counts it), or
 * ERR_INVALID (any other PCRE2 error). After REGEX_MATCH, captures are read
 * with regex_group until the next regex_match on env. */
int regex_match(const struct regex *re, struct regex_env *env, struct str subject);

/* The text the named group captured in the last match on env (with
 * duplicate names: the first group of that name that took part); absent
 * when it did not take part or re has no such group. A slice of subject. */
struct str regex_group(const struct regex *re, const struct regex_env *env, struct str subject,
                       const char *name);

/* PCRE2's message for a regex_match error code that is not ours, for logs. */
const char *regex_env_last_error(const struct regex_env *env);

#endif
