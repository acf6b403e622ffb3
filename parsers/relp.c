/* RELP frame codec. The contract is in relp.h; where we are stricter than
 * librelp, and why, is in parsers/README.md ("RELP"). */
#include "relp.h"

#include <string.h>

#include "errors.h"

static const struct {
    struct str name;
    enum relp_command cmd;
} relp_commands[] = {
    {STR_LIT("syslog"), RELP_SYSLOG}, /* most frequent first */
    {STR_LIT("rsp"), RELP_RSP},       {STR_LIT("open"), RELP_OPEN},
    {STR_LIT("close"), RELP_CLOSE},   {STR_LIT("serverclose"), RELP_SERVERCLOSE},
};

static int relp_is_alpha(char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static enum relp_command relp_command_of(struct str name)
{
    for (size_t i = 0; i < sizeof(relp_commands) / sizeof(relp_commands[0]); i++)
        if (str_eq(name, relp_commands[i].name))
            return relp_commands[i].cmd;
    return RELP_UNKNOWN;
}

/* A TXNR or DATALEN at buf[*pos..len): 1 to 9 digits, no leading zero
 * ("0" alone is a number). Returns 0 with *value and *pos on the byte after
 * the digits; ERR_AGAIN when buf ends inside what may still be a number;
 * ERR_INVALID as soon as a byte rules a number out. */
static int relp_parse_number(const char *buf, size_t len, size_t *pos, uint64_t *value)
{
    size_t start = *pos, i = start;
    uint64_t v = 0;

    for (; i < len && str_is_digit(buf[i]); i++) {
        if (i - start == RELP_NUMBER_MAX_DIGITS || (i > start && buf[start] == '0'))
            return ERR_INVALID;
        v = v * 10 + (uint64_t)(buf[i] - '0');
    }
    if (i == len)
        return ERR_AGAIN;
    if (i == start)
        return ERR_INVALID;
    *pos = i;
    *value = v;
    return 0;
}

/* The byte at buf[*pos] must be c; *pos moves past it. */
static int relp_expect(const char *buf, size_t len, size_t *pos, char c)
{
    if (*pos == len)
        return ERR_AGAIN;
    if (buf[*pos] != c)
        return ERR_INVALID;
    (*pos)++;
    return 0;
}

int relp_frame_parse(const char *buf, size_t len, size_t max_data, struct relp_frame *f,
                     size_t *used)
{
    size_t pos = 0, cmd_start;
    uint64_t txnr, datalen;
    struct str command;
    int rc;

    *used = 0;
    if ((rc = relp_parse_number(buf, len, &pos, &txnr)) != 0 ||
        (rc = relp_expect(buf, len, &pos, ' ')) != 0)
        return rc;

    cmd_start = pos;
    for (; pos < len && relp_is_alpha(buf[pos]); pos++)
        if (pos - cmd_start == RELP_COMMAND_MAX)
            return ERR_INVALID;
    if (pos < len && pos == cmd_start)
        return ERR_INVALID;
    if ((rc = relp_expect(buf, len, &pos, ' ')) != 0)
        return rc;
    command = str_make(buf + cmd_start, pos - 1 - cmd_start);

    if ((rc = relp_parse_number(buf, len, &pos, &datalen)) != 0)
        return rc;
    /* librelp writes no SP before an empty DATA and rejects one it receives. */
    if (datalen == 0) {
        if ((rc = relp_expect(buf, len, &pos, '\n')) != 0)
            return rc;
    } else {
        if ((rc = relp_expect(buf, len, &pos, ' ')) != 0)
            return rc;
        if (datalen > max_data)
            return ERR_TOOBIG;
        if (len - pos <= datalen)
            return ERR_AGAIN;
        if (buf[pos + datalen] != '\n')
            return ERR_INVALID;
        pos += datalen + 1;
    }

    f->txnr = txnr;
    f->cmd = relp_command_of(command);
    f->command = command;
    f->data = str_make(buf + pos - 1 - datalen, datalen);
    *used = pos;
    return 0;
}

/* The next LF-ended line (or the rest) of *rest, which it leaves after the LF. */
static struct str relp_next_line(struct str *rest)
{
    const char *lf = memchr(rest->p, '\n', rest->len);
    size_t n = lf != NULL ? (size_t)(lf - rest->p) : rest->len;
    struct str line = str_make(rest->p, n);

    *rest = lf != NULL ? str_make(lf + 1, rest->len - n - 1) : str_make(rest->p + n, 0);
    return line;
}

/* Whether the comma-separated list values holds want. */
static int relp_list_has(struct str values, struct str want)
{
    while (values.len > 0) {
        const char *comma = memchr(values.p, ',', values.len);
        size_t n = comma != NULL ? (size_t)(comma - values.p) : values.len;

        if (str_eq(str_make(values.p, n), want))
            return 1;
        values = comma != NULL ? str_make(comma + 1, values.len - n - 1) : str_make(values.p, 0);
    }
    return 0;
}

/* relp_version's value: digits only, at least one (librelp's own test). */
static int relp_parse_version(struct str value, int *version)
{
    int v = 0;

    if (value.len == 0)
        return ERR_INVALID;
    for (size_t i = 0; i < value.len; i++) {
        if (!str_is_digit(value.p[i]))
            return ERR_INVALID;
        v = v >= (int)RELP_TXNR_MAX / 10 ? (int)RELP_TXNR_MAX : v * 10 + (value.p[i] - '0');
    }
    *version = v;
    return 0;
}

int relp_offers_parse(struct str data, struct relp_offers *out)
{
    struct str rest = data.p != NULL ? data : STR_LIT("");

    *out = (struct relp_offers){.version = -1, .software = STR_ABSENT};
    while (rest.len > 0) {
        struct str line = relp_next_line(&rest);
        const char *eq = memchr(line.p, '=', line.len);
        struct str name, value;

        if (eq == NULL) /* a name without values: nothing we use */
            continue;
        name = str_make(line.p, (size_t)(eq - line.p));
        value = str_make(eq + 1, line.len - name.len - 1);
        if (str_eq(name, STR_LIT("relp_version"))) {
            if (relp_parse_version(value, &out->version) != 0)
                return ERR_INVALID;
        } else if (str_eq(name, STR_LIT("commands"))) {
            out->has_syslog = relp_list_has(value, STR_LIT("syslog"));
        } else if (str_eq(name, STR_LIT("relp_software"))) {
            out->software = value;
        }
    }
    return 0;
}

/* Appends n bytes at *at when they fit in cap; *at goes past cap otherwise,
 * so one check at the end covers every append. */
static void relp_put(char *buf, size_t cap, size_t *at, const char *p, size_t n)
{
    if (n > 0 && *at <= cap && cap - *at >= n)
        memcpy(buf + *at, p, n);
    *at += n;
}

/* Decimal digits of v (v <= 999999999) into out[0..9), returned count. */
static size_t relp_format_number(char out[RELP_NUMBER_MAX_DIGITS], uint64_t v)
{
    char tmp[RELP_NUMBER_MAX_DIGITS];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* The response frame whose EXTRA is the concatenation of parts[0..n). */
static size_t relp_rsp_write(char *buf, size_t cap, uint64_t txnr, int code, const char *text,
                             const struct str *parts, size_t n)
{
    char num[RELP_NUMBER_MAX_DIGITS], status[4];
    size_t text_len = strlen(text), extra_len = 0, datalen, at = 0, i;

    for (i = 0; i < n; i++)
        extra_len += parts[i].len;
    datalen = 4 + text_len + (extra_len > 0 ? 1 + extra_len : 0);
    if (txnr > RELP_TXNR_MAX || code < 100 || code > 999 || text_len > RELP_RSP_TEXT_MAX ||
        memchr(text, '\n', text_len) != NULL || datalen > RELP_DATALEN_MAX)
        return 0;
    relp_put(buf, cap, &at, num, relp_format_number(num, txnr));
    relp_put(buf, cap, &at, " rsp ", 5);
    relp_put(buf, cap, &at, num, relp_format_number(num, datalen));
    relp_put(buf, cap, &at, " ", 1);
    status[0] = (char)('0' + code / 100);
    status[1] = (char)('0' + code / 10 % 10);
    status[2] = (char)('0' + code % 10);
    status[3] = ' ';
    relp_put(buf, cap, &at, status, 4);
    relp_put(buf, cap, &at, text, text_len);
    if (extra_len > 0)
        relp_put(buf, cap, &at, "\n", 1);
    for (i = 0; i < n; i++)
        relp_put(buf, cap, &at, parts[i].p, parts[i].len);
    relp_put(buf, cap, &at, "\n", 1);
    return at <= cap ? at : 0;
}

size_t relp_rsp_format(char *buf, size_t cap, uint64_t txnr, int code, const char *text,
                       struct str extra)
{
    return relp_rsp_write(buf, cap, txnr, code, text, &extra, 1);
}

size_t relp_open_rsp_format(char *buf, size_t cap, uint64_t txnr, struct str software)
{
    const struct str offers[] = {
        STR_LIT("relp_version=0\nrelp_software="),
        software,
        STR_LIT("\ncommands=syslog"),
    };

    if (software.len > 0 && memchr(software.p, '\n', software.len) != NULL)
        return 0;
    return relp_rsp_write(buf, cap, txnr, 200, "OK", offers, 3);
}

size_t relp_serverclose_format(char *buf, size_t cap)
{
    static const char hint[] = "0 serverclose 0\n";

    if (cap < sizeof(hint) - 1)
        return 0;
    memcpy(buf, hint, sizeof(hint) - 1);
    return sizeof(hint) - 1;
}
