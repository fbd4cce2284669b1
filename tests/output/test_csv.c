/* SPDX-License-Identifier: MIT */
/* core/output/csv.c: CSV and TSV fields, headers and rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

static char text[8192];

static const char *field(weft__format_t f, const char *s, size_t len)
{
    weft__buf_t b = {0};
    assert_int_equal(weft__csv_text(&b, f, s, len), 0);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.data ? b.data : "");
    weft__buf_free(&b);
    return text;
}
#define CSV(lit) field(WEFT__FORMAT_CSV, lit, sizeof lit - 1)
#define TSV(lit) field(WEFT__FORMAT_TSV, lit, sizeof lit - 1)

static void csv_quoting(void **state)
{
    (void)state;
    assert_string_equal(CSV("plain"), "plain");
    assert_string_equal(CSV(""), "");
    assert_string_equal(CSV("a,b"), "\"a,b\"");
    assert_string_equal(CSV("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_string_equal(CSV("\""), "\"\"\"\"");
    assert_string_equal(CSV("two\nlines"), "\"two\nlines\"");
    assert_string_equal(CSV("cr\r"), "\"cr\r\"");
    assert_string_equal(CSV("crlf\r\n"), "\"crlf\r\n\"");
    /* Blanks, tabs, semicolons and apostrophes need no quotes. */
    assert_string_equal(CSV(" lead\ttab; 'x' "), " lead\ttab; 'x' ");
    /* UTF-8 kept; invalid bytes and NUL become U+FFFD, one per byte. */
    assert_string_equal(CSV("\xc3\xa9\xf0\x9f\x98\x80"), "\xc3\xa9\xf0\x9f\x98\x80");
    assert_string_equal(CSV("a\xff" "b"), "a\xef\xbf\xbd" "b");
    assert_string_equal(CSV("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(CSV("\xed\xa0\x80"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(CSV("n\0l"), "n\xef\xbf\xbdl");
    assert_string_equal(CSV("q\"\xff"), "\"q\"\"\xef\xbf\xbd\"");
}

static void tsv_escapes(void **state)
{
    (void)state;
    assert_string_equal(TSV("plain"), "plain");
    assert_string_equal(TSV("a\tb"), "a\\tb");
    assert_string_equal(TSV("a\nb\rc"), "a\\nb\\rc");
    assert_string_equal(TSV("back\\slash"), "back\\\\slash");
    /* No quoting in TSV: quotes and commas are plain characters. */
    assert_string_equal(TSV("\"a,b\""), "\"a,b\"");
    assert_string_equal(TSV("\xff\0"), "\xef\xbf\xbd\xef\xbf\xbd");
}

static void csv_headers(void **state)
{
    (void)state;
    weft__buf_t b = {0};
    assert_int_equal(weft__csv_header(&b, WEFT__FORMAT_CSV, NULL, 0), 0);
    assert_int_equal(b.len, strlen("index,input,ok,error,value\n"));
    assert_memory_equal(b.data, "index,input,ok,error,value\n", b.len);
    b.len = 0;
    char *cols[] = {"x", "a,b", "tab\there"};
    assert_int_equal(weft__csv_header(&b, WEFT__FORMAT_CSV, cols, 3), 0);
    const char *want = "index,input,ok,error,x,\"a,b\",tab\there\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    b.len = 0;
    assert_int_equal(weft__csv_header(&b, WEFT__FORMAT_TSV, cols, 3), 0);
    want = "index\tinput\tok\terror\tx\ta,b\ttab\\there\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    weft__buf_free(&b);
}

/* A row as text (NUL-terminated in `text`), or the error in `text`. */
static int row(weft__format_t f, char **cols, size_t n, const weft_item_t *item,
               const weft_result_t *res, const char *failure)
{
    weft__buf_t b = {0};
    char why[256] = "";
    assert_int_equal(weft__buf_append(&b, "P", 1), 0); /* a prefix that must survive */
    size_t bound = weft__csv_row_bound(item, res, failure, n);
    int rc = weft__csv_row(&b, f, cols, n, item, res, failure, why, sizeof why);
    assert_true(b.len >= 1 && b.data[0] == 'P');
    if (rc == 0) {
        assert_true(b.len - 1 <= bound);
        snprintf(text, sizeof text, "%.*s", (int)b.len - 1, b.data + 1);
    } else {
        assert_int_equal(b.len, 1); /* nothing appended */
        snprintf(text, sizeof text, "%s", why);
    }
    weft__buf_free(&b);
    return rc;
}

static const weft_item_t range7 = {.index = 2, .number = 7};

static void rows_scalar_values(void **state)
{
    (void)state;
    weft_result_t r = {0};
    const weft__format_t C = WEFT__FORMAT_CSV;
    assert_int_equal(row(C, NULL, 0, &range7, &r, NULL), 0);
    assert_string_equal(text, "2,7,true,,"); /* no value: an empty cell */
    weft_result_int(&r, INT64_MIN);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,-9223372036854775808");
    weft_result_float(&r, 0.1);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,0.1");
    weft_result_float(&r, NAN);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,");
    weft_result_float(&r, -INFINITY);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,");
    weft_result_bool(&r, false);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,false");
    weft_result_string(&r, "a \"b\", c", 8);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,\"a \"\"b\"\", c\"");
    weft_result_string(&r, "x\xfe", 2);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,x\xef\xbf\xbd");

    /* JSON values: a string decoded, null empty, the rest as JSON text. */
    weft_result_json(&r, " \"line\\nbreak \\\"q\\\" \\u00e9 \\ud83d\\ude00 \\udc00 \\u0000\" ",
                     strlen(" \"line\\nbreak \\\"q\\\" \\u00e9 \\ud83d\\ude00 \\udc00 \\u0000\" "));
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,\"line\nbreak \"\"q\"\" \xc3\xa9 \xf0\x9f\x98\x80 "
                              "\xef\xbf\xbd \xef\xbf\xbd\"");
    weft_result_json(&r, "null", 4);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,");
    weft_result_json(&r, "12.50", 5);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,12.50"); /* kept to the letter */
    weft_result_json(&r, "{ \"a\": [1, \"x\"] }", 17);
    row(C, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,\"{\"\"a\"\":[1,\"\"x\"\"]}\"");
    row(WEFT__FORMAT_TSV, NULL, 0, &range7, &r, NULL);
    assert_string_equal(text, "2\t7\ttrue\t\t{\"a\":[1,\"x\"]}");

    /* Bad values fail the item with the encoder's reason. */
    weft_result_json(&r, "{\"a\":", 5);
    assert_int_equal(row(C, NULL, 0, &range7, &r, NULL), -EINVAL);
    assert_non_null(strstr(text, "invalid JSON value at byte"));
    weft_result_json(&r, NULL, 0);
    assert_int_equal(row(C, NULL, 0, &range7, &r, NULL), -EINVAL);
    assert_non_null(strstr(text, "bad result"));
}

static void rows_inputs_and_failures(void **state)
{
    (void)state;
    weft_result_t r = {0};
    /* A text item: its text, quoted as needed; invalid UTF-8 replaced. */
    weft_item_t line = {.index = 0, .number = 0, .text = "a,\"b\"\xff", .text_len = 6};
    weft_result_int(&r, 1);
    row(WEFT__FORMAT_CSV, NULL, 0, &line, &r, NULL);
    assert_string_equal(text, "0,\"a,\"\"b\"\"\xef\xbf\xbd\",true,,1");
    row(WEFT__FORMAT_TSV, NULL, 0, &line, &r, NULL);
    assert_string_equal(text, "0\ta,\"b\"\xef\xbf\xbd\ttrue\t\t1");
    /* A failure: false, its message, empty value cells (one per column). */
    assert_int_equal(row(WEFT__FORMAT_CSV, NULL, 0, &range7, &r, "bad, \"very\"\nbad"), 0);
    assert_string_equal(text, "2,7,false,\"bad, \"\"very\"\"\nbad\",");
    char *cols[] = {"a", "b", "c"};
    row(WEFT__FORMAT_CSV, cols, 3, &range7, &r, "no");
    assert_string_equal(text, "2,7,false,no,,,");
    row(WEFT__FORMAT_TSV, cols, 3, &range7, &r, "tab\there");
    assert_string_equal(text, "2\t7\tfalse\ttab\\there\t\t\t");
}

static void rows_columns(void **state)
{
    (void)state;
    char *cols[] = {"a", "b c", "\xc3\xa9"};
    weft_result_t r = {0};
    const weft__format_t C = WEFT__FORMAT_CSV;
    const char *obj = "{\"\\u00e9\": {\"n\": 1}, \"a\": \"x,y\", \"b c\": 2.5}";
    weft_result_json(&r, obj, strlen(obj));
    assert_int_equal(row(C, cols, 3, &range7, &r, NULL), 0);
    assert_string_equal(text, "2,7,true,,\"x,y\",2.5,\"{\"\"n\"\":1}\"");
    /* Missing keys are empty cells; null too; {} is all empty. */
    weft_result_json(&r, "{\"b c\":null}", 12);
    row(C, cols, 3, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,,,");
    weft_result_json(&r, "{}", 2);
    row(C, cols, 3, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,,,");
    r = (weft_result_t){0}; /* no value: empty cells */
    row(C, cols, 3, &range7, &r, NULL);
    assert_string_equal(text, "2,7,true,,,,");
    /* Keys with escapes match their decoded names; tricky strings inside
     * values do not confuse the split. */
    const char *tricky = "{\"b\\u0020c\":\"},{\\\"a\\\":1\",\"a\":[\"]\",{\"x\":\"}\"}]}";
    weft_result_json(&r, tricky, strlen(tricky));
    assert_int_equal(row(C, cols, 3, &range7, &r, NULL), 0);
    assert_string_equal(text, "2,7,true,,\"[\"\"]\"\",{\"\"x\"\":\"\"}\"\"}]\",\"},{\"\"a\"\":1\",");

    /* Not an object, a key not listed, a key twice: the item fails. */
    weft_result_int(&r, 3);
    assert_int_equal(row(C, cols, 3, &range7, &r, NULL), -EINVAL);
    assert_string_equal(text, "columns = is set, so the value must be a JSON object (it is an "
                              "integer)");
    weft_result_json(&r, "[1]", 3);
    assert_int_equal(row(C, cols, 3, &range7, &r, NULL), -EINVAL);
    assert_non_null(strstr(text, "(it is a list)"));
    weft_result_json(&r, "{\"a\":1,\"zz\\n\":2}", 16);
    assert_int_equal(row(C, cols, 3, &range7, &r, NULL), -EINVAL);
    assert_string_equal(text, "the value has the key \"zz\\n\", which columns = does not list");
    weft_result_json(&r, "{\"a\":1,\"a\":2}", 13);
    assert_int_equal(row(C, cols, 3, &range7, &r, NULL), -EINVAL);
    assert_string_equal(text, "the value has the key \"a\" twice");
}

/* The bound holds, and once it is reserved the buffer does not move, for
 * values of every shape and worst-case bytes. */
static void rows_stay_in_bound(void **state)
{
    (void)state;
    srand(7);
    static const char *const pieces[] = {"\"", ",", "\\n", "\\u0000", "\\ud800", "\\\\",
                                         "\\t", "\xc3\xa9", "\\\"", "x", "\\ud83d\\ude00"};
    char *cols[] = {"k0", "k1", "k2", "k3"};
    for (int round = 0; round < 2000; round++) {
        char json[2048], str[512];
        size_t n = 0;
        for (int k = rand() % 40; k > 0; k--) {
            const char *p = pieces[1 + rand() % 10];
            n += (size_t)snprintf(str + n, sizeof str - n, "%s", p);
        }
        str[n] = '\0';
        int len;
        bool obj = round & 1;
        if (obj)
            len = snprintf(json, sizeof json, "{\"k%d\":\"%s\",\"k%d\":[\"%s\",{}]}", rand() % 2,
                           str, 2 + rand() % 2, str);
        else
            len = snprintf(json, sizeof json, "\"%s\"", str);
        weft_result_t r = {0};
        weft_result_json(&r, json, (size_t)len);
        char raw[64];
        for (size_t k = 0; k < sizeof raw; k++)
            raw[k] = (char)(rand() % 256);
        weft_item_t item = {.index = 5, .number = 5, .text = raw, .text_len = sizeof raw};
        weft__format_t f = round % 4 < 2 ? WEFT__FORMAT_CSV : WEFT__FORMAT_TSV;
        size_t nc = obj ? 4 : 0;
        size_t bound = weft__csv_row_bound(&item, &r, NULL, nc);
        weft__buf_t b = {0};
        assert_int_equal(weft__buf_reserve(&b, bound), 0);
        char *was = b.data;
        char why[256];
        int rc = weft__csv_row(&b, f, obj ? cols : NULL, nc, &item, &r, NULL, why, sizeof why);
        if (rc)
            fail_msg("round %d: %s (%s)", round, why, json);
        assert_true(b.data == was);
        assert_true(b.len <= bound);
        weft__buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_quoting),
        cmocka_unit_test(tsv_escapes),
        cmocka_unit_test(csv_headers),
        cmocka_unit_test(rows_scalar_values),
        cmocka_unit_test(rows_inputs_and_failures),
        cmocka_unit_test(rows_columns),
        cmocka_unit_test(rows_stay_in_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
