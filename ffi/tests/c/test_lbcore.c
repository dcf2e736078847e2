/* C tests of the lbcore C ABI. Built by `.ci/test` (job "ffi") with
 *   gcc -std=c11 -Wall -Wextra -Werror -I ffi/include -DLBCORE_EXPECTED_VERSION='"x.y.z"' \
 *       ffi/tests/c/test_lbcore.c target/release/liblbcore_ffi.a <native-static-libs>
 * run under valgrind, and also compiled as C++ (g++ -x c++) to check the header there.
 * Prints "lbcore_c_tests: N passed, M failed" and exits non-zero on any failure. */
#include "lbcore.h"

#include <stdio.h>
#include <string.h>

#ifndef LBCORE_EXPECTED_VERSION
#error "define LBCORE_EXPECTED_VERSION to the Cargo package version, e.g. -DLBCORE_EXPECTED_VERSION='\"0.1.0\"'"
#endif

static int passed;
static int failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            passed++;                                                                \
        } else {                                                                     \
            failed++;                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

static void test_version(void) {
    const char *v = lbcore_version();
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK(strcmp(v, LBCORE_EXPECTED_VERSION) == 0);
        /* Stable across calls: a static string, not a fresh allocation. */
        CHECK(lbcore_version() == v);
    }
}

int main(void) {
    test_version();
    printf("lbcore_c_tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
