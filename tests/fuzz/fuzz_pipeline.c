/*
 * fuzz_pipeline.c - libFuzzer target for the pipeline file reader
 * (src/run/ss_pipeline.c, YAML via libyaml). On any text: either a
 * pipeline (which then passes ss_pipeline_check or fails it with a
 * reason) or an error with a one-line reason; never a crash, a leak
 * (LeakSanitizer) or a read past the text.
 * Built by `make fuzz` (build-fuzz/fuzz_pipeline); run by tests/fuzz/run.sh.
 */
#include "run/ss_pipeline.h"
#include "securestreams.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_pipeline: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ss_pipeline *p = NULL;
    char err[512] = "";
    int rc = ss_pipeline_parse("/fuzz/pipeline.yml", (const char *)data, size,
                               &p, err, sizeof err);
    if (rc) {
        check(p == NULL, "no pipeline on failure");
        check(err[0] != 0, "a reason for every refusal");
        check(strchr(err, '\n') == NULL, "the reason is one line");
        return 0;
    }
    check(p != NULL, "a pipeline on success");
    err[0] = 0;
    if (ss_pipeline_check(p, err, sizeof err))
        check(err[0] != 0, "a reason when the check fails");
    ss_pipeline_destroy(&p);
    check(p == NULL, "destroy clears the pointer");
    return 0;
}
