/*
 * tests/trainer/test_utf8.c: policy_utf8_valid_copy, the UTF-8 repair applied to decoded completions
 * before they are printed as JSON: valid text is unchanged (ASCII, 2/3/4-byte characters, U+10FFFF);
 * a character cut short (one U+FFFD for its valid prefix), a stray continuation byte, overlong forms,
 * surrogates, code points above U+10FFFF and bytes 0xC0/0xC1/0xF5-0xFF (one U+FFFD per byte) — the
 * expected strings are what Python's bytes.decode("utf-8", errors="replace") returns.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/testing.h"
#include "trainer/policy.h"

#define R "\xEF\xBF\xBD"

static void check(const char *in, const char *want) {
    char *got = policy_utf8_valid_copy(in);
    CHECK_MSG(got && !strcmp(got, want), "input of %zu bytes: got '%s', want '%s'", strlen(in), got ? got : "(null)", want);
    free(got);
}

int main(void) {
    check("", "");
    check("def strategy(board):\n    return \"W\"", "def strategy(board):\n    return \"W\"");
    check("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF");
    check("ab\xE2\x82", "ab" R);                /* a 3-byte character cut after 2 bytes: one U+FFFD */
    check("\xF0\x9F\x98x", R "x");              /* a 4-byte character cut after 3 bytes */
    check("\x80x", R "x");                      /* stray continuation byte */
    check("\xC0\xAF", R R);                     /* overlong '/' */
    check("\xE0\x80\xAF", R R R);               /* overlong, 3 bytes */
    check("\xED\xA0\x80", R R R);               /* surrogate U+D800 */
    check("\xF4\x90\x80\x80", R R R R);         /* above U+10FFFF */
    check("\xF5\xFF", R R);
    check("ok\xC3", "ok" R);
    return TEST_DONE();
}
