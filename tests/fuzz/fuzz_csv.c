/*
 * fuzz_csv.c - libFuzzer target for the CSV reader (src/wire/ss_csv.c)
 * that sources and the csv module use on input lines. On any bytes:
 * ss_csv_count and ss_csv_split agree (same result, same number of
 * fields), the cursor walks the same fields (and skipping lands on
 * them), no field lies outside the
 * line (ASan), and a line that splits, written back field by field with
 * ss_csv_put_field, splits again into the same fields.
 * Built by `make fuzz` (build-fuzz/fuzz_csv); run by tests/fuzz/run.sh.
 */
#include "core/ss_buf.h"
#include "securestreams.h"
#include "wire/ss_csv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKIP_FIELDS 64

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_csv: invariant broken: %s\n", what);
        abort();
    }
}

typedef struct fields {
    ss_buf all; /* fields written back as one CSV line */
    size_t n;
    ss_buf flat; /* field bytes, each followed by a NUL-free length mark */
} fields;

static int on_field(const char *f, size_t len, int index, void *arg)
{
    (void)index;
    fields *fs = arg;
    if (fs->n && ss_buf_append(&fs->all, ",", 1))
        return -1;
    if (ss_csv_put_field(&fs->all, f, len, ',') ||
        ss_buf_append(&fs->flat, f, len) ||
        ss_buf_append(&fs->flat, "\x01", 1))
        return -1;
    fs->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    char err[256], err2[256];
    ss_buf scratch = SS_BUF_INIT;
    fields a = {SS_BUF_INIT, 0, SS_BUF_INIT}, b = {SS_BUF_INIT, 0, SS_BUF_INIT};
    int count = ss_csv_count(line, size, err, sizeof err);
    int rc = ss_csv_split(line, size, on_field, &a, &scratch, err2,
                          sizeof err2);
    check((count < 0) == (rc < 0), "count and split agree on errors");
    if (count >= 0) {
        check(count == rc && (size_t)count == a.n,
              "count and split agree on fields");
        ss_csv_cursor c;
        ss_csv_cursor_init(&c, line, size, ',');
        const char *f;
        size_t len, dq, k = 0;
        const char *at[SKIP_FIELDS];
        while (k <= a.n && ss_csv_cursor_next(&c, &f, &len, &dq) == 1) {
            check(f >= line && f + len <= line + size, "field in the line");
            if (k < SKIP_FIELDS)
                at[k] = f;
            k++;
        }
        check(k == a.n, "the cursor walks as many fields");
        /* skipping j then k fields lands where walking does (the skip
         * reads 16 and 8 bytes at a time) */
        size_t nat = a.n < SKIP_FIELDS ? a.n : SKIP_FIELDS;
        for (size_t j = 0; j <= nat; j += 1 + j / 4)
            for (size_t m = 0; j + m <= nat; m++) {
                ss_csv_cursor_init(&c, line, size, ',');
                size_t got = ss_csv_cursor_skip(&c, j);
                got += ss_csv_cursor_skip(&c, m);
                int more = ss_csv_cursor_next(&c, &f, &len, &dq);
                if (j + m < a.n)
                    check(got == j + m && more && (j + m >= nat ||
                                                   f == at[j + m]),
                          "skip lands on the field walking finds");
                else
                    check(got == a.n && !more, "skip past the end counts");
            }
        int rc2 = ss_csv_split(a.all.data ? a.all.data : "", a.all.len,
                               on_field, &b, &scratch, err2, sizeof err2);
        check(rc2 == rc, "what split, written back, splits alike");
        check(b.n == a.n && b.flat.len == a.flat.len &&
                  (a.flat.len == 0 ||
                   memcmp(a.flat.data, b.flat.data, a.flat.len) == 0),
              "into the same fields");
    }
    ss_buf_release(&scratch);
    ss_buf_release(&a.all);
    ss_buf_release(&a.flat);
    ss_buf_release(&b.all);
    ss_buf_release(&b.flat);
    return 0;
}
