/* PCRE2 the nginx ngx_regex.c way (regex.h): compile and JIT once, match
 * with one reused match data block, JIT stack and limited match context per
 * thread. Before PCRE2 runs, a literal every match must contain is looked for
 * in the subject: most messages are not the ones a rule wants, and a failed
 * memchr (or memmem, for a long literal) is far cheaper than a failed match. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "errors.h"
#include "regex.h"

#define REGEX_JIT_STACK_START (32 * 1024)
#define REGEX_JIT_STACK_MAX   (1024 * 1024)
#define REGEX_HEAP_LIMIT_KIB  (20 * 1024) /* interpreter backtracking memory */

struct regex {
    pcre2_code *code;
    const char *pattern; /* NUL-terminated copy, in the same block */
    struct str literal;  /* unescaped, in the same block; len 0 = none */
};

struct regex_env {
    pcre2_match_data *md;
    pcre2_jit_stack *jit_stack; /* NULL when PCRE2 was built without JIT */
    pcre2_match_context *mctx;
    uint32_t pairs;  /* ovector pairs the last regex_match set; 0 after a miss */
    char error[128]; /* PCRE2's message for the last ERR_INVALID */
};

static void regex_err(char *err, size_t err_cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a compile error into err (which may be NULL). */
static void regex_err(char *err, size_t err_cap, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

/* ---- the required literal ------------------------------------------------
 *
 * A conservative reading of the pattern text: it must never name a literal
 * that some match lacks (the rule would silently stop firing), and may miss
 * one. Only the top level (group depth 0) of a pattern without top-level
 * alternation is used: there every plain character is matched once, in
 * order, unless a quantifier that allows zero repeats follows it. Anything
 * this scan does not understand ends the current run. */

struct regex_scan {
    char *out;   /* best run at out[0..best), the current one after it */
    size_t best; /* length of the best run */
    size_t run;  /* length of the current run, at out + best */
    size_t last; /* bytes of the run's last character when the previous token was
                    that character (a quantifier may follow it), else 0 */
    int depth;
};

static size_t regex_utf8_len(const char *p, size_t avail)
{
    unsigned char c = (unsigned char)*p;
    size_t n = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

    return n < avail ? n : avail;
}

static void regex_scan_char(struct regex_scan *s, const char *p, size_t n)
{
    if (s->depth != 0) {
        s->last = 0;
        return;
    }
    memcpy(s->out + s->best + s->run, p, n); /* the unescaped text never outgrows the pattern */
    s->run += n;
    s->last = n;
}

static void regex_scan_end_run(struct regex_scan *s)
{
    if (s->run > s->best) {
        memmove(s->out, s->out + s->best, s->run);
        s->best = s->run;
    }
    s->run = 0;
    s->last = 0;
}

/* A quantifier that allows zero repeats: the character before it may be absent. */
static void regex_scan_optional(struct regex_scan *s)
{
    s->run -= s->last;
    regex_scan_end_run(s);
}

static int regex_is_alnum(char c)
{
    return str_is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Characters whose meaning the scan must never skip over. */
static int regex_is_structural(char c)
{
    return c == '|' || c == '(' || c == ')' || c == '[' || c == ']' || c == '\\';
}

/* Skips the argument of the letter or digit escape \<e> whose argument starts
 * at p[i] (\x41, \x{41}, \p{Lu}, \pL, \k<name>, \g{-1}, \cX, \12, ...). Only
 * non-structural characters are skipped, so an unknown shape costs a shorter
 * literal, never a wrong one. Returns the index after the argument. */
static size_t regex_scan_escape_arg(const char *p, size_t len, size_t i, char e)
{
    if (str_is_digit(e)) {
        while (i < len && str_is_digit(p[i]))
            i++;
        return i;
    }
    if (e == 'c')
        return i < len ? i + 1 : i;
    if (!strchr("xopPNgk", e))
        return i;
    if (i < len && (p[i] == '{' || p[i] == '<' || p[i] == '\'')) {
        char close = p[i] == '{' ? '}' : p[i] == '<' ? '>' : '\'';
        size_t j = i + 1;
        while (j < len && p[j] != close && !regex_is_structural(p[j]))
            j++;
        return j < len && p[j] == close ? j + 1 : j;
    }
    while (i < len && (regex_is_alnum(p[i]) || p[i] == '+' || p[i] == '-'))
        i++;
    return i;
}

/* Index after the character class that starts at p[i] ('['), following
 * PCRE2: a ']' first is literal, \Q..\E and escapes hide ']', and [:name:]
 * is a POSIX class only when ":]" comes before any ']'. */
static size_t regex_scan_class(const char *p, size_t len, size_t i)
{
    size_t j = i + 1;

    if (j < len && p[j] == '^')
        j++;
    if (j < len && p[j] == ']')
        j++;
    while (j < len && p[j] != ']') {
        if (p[j] == '\\' && j + 1 < len && p[j + 1] == 'Q') {
            for (j += 2; j < len && !(p[j] == '\\' && j + 1 < len && p[j + 1] == 'E'); j++)
                ;
            j += 2;
        } else if (p[j] == '\\') {
            j += 2;
        } else if (p[j] == '[' && j + 1 < len && strchr(":.=", p[j + 1])) {
            size_t k = j + 2;
            while (k + 1 < len && !(p[k] == p[j + 1] && p[k + 1] == ']') && p[k] != ']')
                k++;
            j = k + 1 < len && p[k] == p[j + 1] && p[k + 1] == ']' ? k + 2 : j + 1;
        } else {
            j++;
        }
    }
    return j + 1;
}

/* After "(?": an inline option setting ("(?i)", "(?x:", "(?-s)", "(?^)") or a
 * callout ("(?C1)"). Any letter but P (named groups) and R (recursion) counts,
 * so option letters added by later PCRE2 versions are covered too. */
static int regex_scan_is_option(char c)
{
    return c == '^' || c == '-' || (regex_is_alnum(c) && !str_is_digit(c) && c != 'P' && c != 'R');
}

/* Writes the required literal of pattern p[0..len) to out (room for len
 * bytes) and returns its length, 0 for none. */
static size_t regex_literal_scan(const char *p, size_t len, char *out)
{
    struct regex_scan s = {.out = out};
    size_t i = 0, n;

    while (i < len) {
        char c = p[i];
        if (c == '\\' && i + 1 < len) {
            char e = p[i + 1];
            if (e == 'Q') { /* quoted: every character up to \E is literal */
                for (i += 2; i < len && !(p[i] == '\\' && i + 1 < len && p[i + 1] == 'E'); i += n) {
                    n = regex_utf8_len(p + i, len - i);
                    regex_scan_char(&s, p + i, n);
                }
                i += 2;
            } else if (e == 'E') { /* \E without \Q is ignored */
                i += 2;
            } else if (!regex_is_alnum(e)) { /* escaped punctuation is literal */
                n = regex_utf8_len(p + i + 1, len - i - 1);
                regex_scan_char(&s, p + i + 1, n);
                i += 1 + n;
            } else {
                regex_scan_end_run(&s);
                i = regex_scan_escape_arg(p, len, i + 2, e);
            }
            continue;
        }
        switch (c) {
        case '(':
            if (i + 1 < len && p[i + 1] == '*') /* verbs: (*ACCEPT) ends a match early */
                return 0;
            if (i + 2 < len && p[i + 1] == '?' && p[i + 2] == '#') { /* a comment: ignored */
                while (i < len && p[i] != ')')
                    i++;
                i++;
                continue;
            }
            if (i + 2 < len && p[i + 1] == '?' && regex_scan_is_option(p[i + 2]))
                return 0;
            regex_scan_end_run(&s);
            s.depth++;
            i++;
            break;
        case ')':
            regex_scan_end_run(&s);
            s.depth--;
            i++;
            break;
        case '|':
            if (s.depth == 0)
                return 0;
            i++;
            break;
        case '?':
        case '*':
            regex_scan_optional(&s);
            i++;
            break;
        case '{': /* {n,m}: n may be 0; a '{' that is no quantifier just ends the run */
            regex_scan_optional(&s);
            for (i++; i < len && (str_is_digit(p[i]) || p[i] == ',' || p[i] == ' '); i++)
                ;
            if (i < len && p[i] == '}')
                i++;
            break;
        case '[':
            regex_scan_end_run(&s);
            i = regex_scan_class(p, len, i);
            break;
        case '+': /* the character stays (one or more), what follows may not be next to it */
        case '.':
        case '^':
        case '$':
        case ']':
        case '}':
            regex_scan_end_run(&s);
            i++;
            break;
        default:
            n = regex_utf8_len(p + i, len - i);
            regex_scan_char(&s, p + i, n);
            i += n;
            break;
        }
    }
    regex_scan_end_run(&s);
    return s.best;
}

/* ---- compiling --------------------------------------------------------- */

/* Rejects more than REGEX_MAX_DUP_NAMES groups with one name. The name table
 * is sorted by name: groups sharing a name are adjacent entries. */
static int regex_check_names(const pcre2_code *code, char *err, size_t err_cap)
{
    uint32_t count, size, i, same = 1;
    PCRE2_SPTR table;

    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &table);
    for (i = 1; i < count; i++) {
        const char *prev = (const char *)table + (i - 1) * size + 2;
        same = strcmp(prev, (const char *)table + i * size + 2) == 0 ? same + 1 : 1;
        if (same > REGEX_MAX_DUP_NAMES) {
            regex_err(err, err_cap, "more than %d groups named '%s'", REGEX_MAX_DUP_NAMES, prev);
            return ERR_INVALID;
        }
    }
    return 0;
}

int regex_compile(const char *pattern, unsigned flags, struct regex **out, char *err,
                  size_t err_cap)
{
    /* \C could stop a match inside a UTF-8 character and hand out a slice that
     * splits one; no mapping needs it. */
    uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DUPNAMES |
                       PCRE2_NEVER_BACKSLASH_C | ((flags & REGEX_CASELESS) ? PCRE2_CASELESS : 0);
    size_t len = strlen(pattern);
    uint32_t groups, have_jit = 0;
    PCRE2_SIZE offset;
    struct regex *re = NULL;
    pcre2_code *code;
    int rc = ERR_INVALID, errcode;

    *out = NULL;
    code = pcre2_compile((PCRE2_SPTR)pattern, len, options, &errcode, &offset, NULL);
    if (code == NULL) {
        char msg[120];
        pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof(msg));
        regex_err(err, err_cap, "%s at offset %zu", msg, (size_t)offset);
        return errcode == PCRE2_ERROR_HEAP_FAILED ? ERR_NOMEM : ERR_INVALID;
    }
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (groups > REGEX_MAX_GROUPS) {
        regex_err(err, err_cap, "too many capture groups: %u (at most %d)", (unsigned)groups,
                  REGEX_MAX_GROUPS);
        goto out;
    }
    if (regex_check_names(code, err, err_cap) != 0)
        goto out;
    /* Without JIT (not built in, or no executable memory under a hardened
     * kernel policy) the interpreter runs the same code, only slower. */
    pcre2_config(PCRE2_CONFIG_JIT, &have_jit);
    if (have_jit && !(flags & REGEX_NO_JIT))
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);

    /* One block: the struct, the pattern, the literal (never longer than it). */
    re = malloc(sizeof(*re) + 2 * (len + 1));
    if (re == NULL) {
        rc = ERR_NOMEM;
        goto out;
    }
    char *copy = (char *)(re + 1), *literal = copy + len + 1;
    memcpy(copy, pattern, len + 1);
    re->pattern = copy;
    re->literal =
        str_make(literal, (flags & REGEX_CASELESS) ? 0 : regex_literal_scan(copy, len, literal));
    re->code = code;
    code = NULL; /* transferred */
    *out = re;
    rc = 0;
out:
    pcre2_code_free(code);
    return rc;
}

void regex_free(struct regex *re)
{
    if (re == NULL)
        return;
    pcre2_code_free(re->code);
    free(re);
}

const char *regex_pattern(const struct regex *re)
{
    return re->pattern;
}

int regex_is_jit(const struct regex *re)
{
    size_t jit_size = 0;

    pcre2_pattern_info(re->code, PCRE2_INFO_JITSIZE, &jit_size);
    return jit_size > 0;
}

struct str regex_literal(const struct regex *re)
{
    return re->literal;
}

/* Range of name-table entries for name; returns the entry size, or a
 * negative PCRE2 error when re has no group of that name. */
static int regex_name_entries(const struct regex *re, const char *name, PCRE2_SPTR *first,
                              PCRE2_SPTR *last)
{
    return pcre2_substring_nametable_scan(re->code, (PCRE2_SPTR)name, first, last);
}

int regex_has_group(const struct regex *re, const char *name)
{
    PCRE2_SPTR first, last;

    return regex_name_entries(re, name, &first, &last) > 0;
}

/* ---- matching ---------------------------------------------------------- */

int regex_env_new(uint32_t match_limit, uint32_t depth_limit, struct regex_env **out)
{
    struct regex_env *env = calloc(1, sizeof(*env));
    uint32_t have_jit = 0;
    int rc = ERR_NOMEM;

    *out = NULL;
    if (env == NULL)
        return ERR_NOMEM;
    env->md = pcre2_match_data_create(REGEX_MAX_GROUPS + 1, NULL);
    env->mctx = pcre2_match_context_create(NULL);
    if (env->md == NULL || env->mctx == NULL)
        goto out;
    pcre2_set_match_limit(env->mctx, match_limit);
    pcre2_set_depth_limit(env->mctx, depth_limit);
    pcre2_set_heap_limit(env->mctx, REGEX_HEAP_LIMIT_KIB);
    pcre2_config(PCRE2_CONFIG_JIT, &have_jit);
    if (have_jit) {
        env->jit_stack = pcre2_jit_stack_create(REGEX_JIT_STACK_START, REGEX_JIT_STACK_MAX, NULL);
        if (env->jit_stack == NULL)
            goto out;
        pcre2_jit_stack_assign(env->mctx, NULL, env->jit_stack);
    }
    *out = env;
    env = NULL; /* transferred */
    rc = 0;
out:
    regex_env_free(env);
    return rc;
}

void regex_env_free(struct regex_env *env)
{
    if (env == NULL)
        return;
    pcre2_match_data_free(env->md);
    pcre2_match_context_free(env->mctx);
    pcre2_jit_stack_free(env->jit_stack);
    free(env);
}

/* Literals longer than this are looked for with memmem. */
#define REGEX_MEMMEM_MIN 9

/* Whether needle occurs in hay. A short needle (the usual "user=") is found
 * fastest with memchr for its first byte, then memcmp; that is O(len(hay) *
 * len(needle)) on a hay full of near misses, bounded by the short needle.
 * A longer one goes to glibc's memmem, linear (two-way) whatever the hay. */
static int regex_contains(struct str hay, struct str needle)
{
    const char *p = hay.p, *end;

    if (hay.len < needle.len)
        return 0;
    if (needle.len >= REGEX_MEMMEM_MIN)
        return memmem(hay.p, hay.len, needle.p, needle.len) != NULL;
    end = hay.p + hay.len - needle.len + 1; /* last possible start, plus one */
    while ((p = memchr(p, needle.p[0], (size_t)(end - p))) != NULL) {
        if (memcmp(p, needle.p, needle.len) == 0)
            return 1;
        p++;
    }
    return 0;
}

int regex_match(const struct regex *re, struct regex_env *env, struct str subject)
{
    int rc;

    env->pairs = 0;
    if (subject.p == NULL) /* an absent field matches as empty text */
        subject = STR_LIT("");
    if (re->literal.len > 0 && !regex_contains(subject, re->literal))
        return REGEX_LITERAL_MISS;
    rc = pcre2_match(re->code, (PCRE2_SPTR)subject.p, subject.len, 0, 0, env->md, env->mctx);
    if (rc >= 0) {
        /* 0: the ovector was too small, which the group cap rules out; every
         * pair it has is still valid. */
        env->pairs = rc > 0 ? (uint32_t)rc : REGEX_MAX_GROUPS + 1;
        return REGEX_MATCH;
    }
    switch (rc) {
    case PCRE2_ERROR_NOMATCH:
        return REGEX_NO_MATCH;
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        return ERR_LIMIT;
    default:
        pcre2_get_error_message(rc, (PCRE2_UCHAR *)env->error, sizeof(env->error));
        return ERR_INVALID;
    }
}

struct str regex_group(const struct regex *re, const struct regex_env *env, struct str subject,
                       const char *name)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(env->md);
    PCRE2_SPTR first, last;
    int size = regex_name_entries(re, name, &first, &last);

    if (size <= 0)
        return STR_ABSENT;
    for (PCRE2_SPTR e = first; e <= last; e += size) {
        uint32_t g = (uint32_t)e[0] << 8 | e[1];
        if (g >= env->pairs || ov[2 * g] == PCRE2_UNSET)
            continue;
        /* the bound check guards against a caller passing another subject */
        if (ov[2 * g + 1] > subject.len || ov[2 * g] > ov[2 * g + 1])
            return STR_ABSENT;
        return str_make(subject.p + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    }
    return STR_ABSENT;
}

const char *regex_env_last_error(const struct regex_env *env)
{
    return env->error;
}
