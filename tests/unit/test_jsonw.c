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
    CHECK_STR("keys and values escaped", jsonw_text(&w),
              "{\"k\\\"\\n\":\"v\\u0001\\u00ff\"}");
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

int main(void)
{
    test_nesting_and_commas();
    test_cap();
    return unit_report("test_jsonw");
}
