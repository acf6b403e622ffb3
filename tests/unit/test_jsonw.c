#include <limits.h>

#include "core/jsonw.h"
#include "errors.h"
#include "unit.h"

static struct str jsonw_text(const struct jsonw *w)
{
    return str_make(w->buf, w->len);
}

static void test_nesting_and_commas(void)
{
    struct jsonw w;
    jsonw_init(&w, 0);
    jsonw_object_begin(&w);
    jsonw_key(&w, "a");
    jsonw_int(&w, -3);
    jsonw_key(&w, "b");
    jsonw_object_begin(&w);
    jsonw_object_end(&w);
    jsonw_key(&w, "c");
    jsonw_array_begin(&w);
    jsonw_str(&w, STR_LIT("x"));
    jsonw_null(&w);
    jsonw_bool(&w, 1);
    jsonw_object_begin(&w);
    jsonw_key(&w, "d");
    jsonw_str(&w, STR_ABSENT);
    jsonw_object_end(&w);
    jsonw_array_end(&w);
    jsonw_key(&w, "e");
    jsonw_cstr(&w, "");
    jsonw_object_end(&w);
    jsonw_newline(&w);
    CHECK_STR("nested document", jsonw_text(&w),
              "{\"a\":-3,\"b\":{},\"c\":[\"x\",null,true,{\"d\":null}],\"e\":\"\"}\n");
    CHECK_INT(w.err, 0);

    /* A second line after reset starts clean: no stray comma. */
    jsonw_reset(&w);
    jsonw_object_begin(&w);
    jsonw_key_str(&w, str_make("k\"\n", 3));
    jsonw_str(&w, str_make("v\x01\xff", 3));
    jsonw_object_end(&w);
    CHECK_STR("keys and values escaped", jsonw_text(&w), "{\"k\\\"\\n\":\"v\\u0001\\u00ff\"}");
    jsonw_free(&w);
}

static void test_cap(void)
{
    struct jsonw w;
    char big[300];
    memset(big, 'x', sizeof(big));
    jsonw_init(&w, 256);
    jsonw_object_begin(&w);
    jsonw_key(&w, "k");
    jsonw_str(&w, str_make(big, sizeof(big)));
    jsonw_object_end(&w);
    CHECK_INT(w.err, ERR_TOOBIG);
    CHECK(w.len <= 256);
    jsonw_free(&w);
}

/* Integers are formatted by hand: the extremes and zero, as printf would. */
static void test_int(void)
{
    static const long long values[] = {0, 7, -7, 10, -10, 1234567890, LLONG_MAX, LLONG_MIN};
    struct jsonw w;
    char want[32];

    jsonw_init(&w, 0);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        jsonw_reset(&w);
        jsonw_int(&w, values[i]);
        snprintf(want, sizeof(want), "%lld", values[i]);
        CHECK_STR(want, jsonw_text(&w), want);
    }
    jsonw_reset(&w);
    jsonw_array_begin(&w);
    jsonw_int(&w, -1);
    jsonw_int(&w, 0);
    jsonw_array_end(&w);
    CHECK_STR("separated", jsonw_text(&w), "[-1,0]");
    jsonw_free(&w);
}

/* A plain key is written as jsonw_key writes it, separators included. */
static void test_key_plain(void)
{
    struct jsonw w, want;

    jsonw_init(&w, 0);
    jsonw_init(&want, 0);
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "device_version");
    jsonw_int(&w, 1);
    jsonw_key_plain(&w, STR_LIT("a-b.c_d e"));
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "");
    jsonw_null(&w);
    jsonw_object_end(&w);
    jsonw_object_end(&w);
    jsonw_object_begin(&want);
    jsonw_key(&want, "device_version");
    jsonw_int(&want, 1);
    jsonw_key(&want, "a-b.c_d e");
    jsonw_object_begin(&want);
    jsonw_key(&want, "");
    jsonw_null(&want);
    jsonw_object_end(&want);
    jsonw_object_end(&want);
    CHECK_STR("plain keys", jsonw_text(&w), "{\"device_version\":1,\"a-b.c_d e\":{\"\":null}}");
    CHECK(w.len == want.len && memcmp(w.buf, want.buf, w.len) == 0);
    CHECK_INT(w.err, 0);
    jsonw_free(&w);
    jsonw_free(&want);
}

/* Lines appended one after another (the tap batch); one that does not fit
 * is rewound away whole, and the next line starts clean, without a comma. */
static void test_rewind_lines(void)
{
    struct jsonw w;
    size_t line_start;

    jsonw_init(&w, 64);
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "a");
    jsonw_int(&w, 1);
    jsonw_object_end(&w);
    jsonw_newline(&w);
    line_start = w.len;
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "big");
    jsonw_str(&w, STR_LIT("0123456789012345678901234567890123456789012345678901234567890"));
    CHECK_INT(w.err, ERR_TOOBIG);
    jsonw_rewind(&w, line_start);
    CHECK_INT(w.err, 0);
    jsonw_object_begin(&w);
    jsonw_key_literal(&w, "b");
    jsonw_array_begin(&w);
    jsonw_int(&w, 2);
    jsonw_array_end(&w);
    jsonw_object_end(&w);
    jsonw_newline(&w);
    CHECK_STR("second line after a dropped one", jsonw_text(&w), "{\"a\":1}\n{\"b\":[2]}\n");
    jsonw_free(&w);
}

int main(void)
{
    test_nesting_and_commas();
    test_cap();
    test_int();
    test_key_plain();
    test_rewind_lines();
    return unit_report("test_jsonw");
}
