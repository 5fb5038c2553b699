/*
 * ss_bundle.h - a stage script together with the local Lua modules it
 * requires and the data files it reads: what an enclave loads, and so
 * what its measurement covers.
 *
 * A worker process finds `require 'helpers'` through the file system; an
 * enclave cannot (no io, no open(2) once locked down), and what it loads
 * must be measured so that the key service can vouch for it. So the
 * modules travel with the script: ss_bundle_load reads the script, finds
 * every `require` of a string literal in it (`require 'x'`, `require "x"`,
 * `require('x')`, `require("x")`), and for each name that is a file
 * `<script folder>/<name with . as />.lua` reads it too, and the modules
 * those require, and so on. Names that are no such file (the built-in rx,
 * zmq-rx, csv, ... or a module the script never reaches) are left to the
 * Lua state. The scan is textual: a require inside a comment or a string
 * bundles that file as well, which costs nothing but its bytes; a module
 * name computed at run time is not found (in an enclave: "module not
 * found").
 *
 * Data files travel the same way: for each `files.read` or `files.lines`
 * (the built-in `files` module, docs/LUA.md) of a string literal in the
 * script or a bundled module, the file `<script folder>/<literal>` is
 * read into the bundle (a relative path: parts of letters, digits, '_',
 * '-', '.' separated by '/', none starting with '.'; anything else is
 * an error naming the file that wrote it). It must exist (or the load
 * fails naming it and who named it) and hold at most 16 MiB; at most 64
 * files, and 64 MiB for the script, modules and files together. So a
 * lookup table reaches an enclave, which has no io, and is part of its
 * measurement.
 *
 * A bundle can also travel as one file (ss_bundle_serialize): when the
 * enclave may not reach the script's folder (separate uids), whoever
 * may opens the script, bundles it and hands the enclave that file;
 * ss_bundle_load recognises it by its first bytes ("\0SSBUNDLE2\n": a
 * Lua text script never starts with a NUL byte) and reads the script,
 * modules and files from it instead of from the folder: the magic, then
 * u64le(len) script, u64le(count) and the modules, u64le(count) and the
 * files, each as u64le(len(name)) name u64le(len(bytes)) bytes.
 *
 * The measured form (ss_bundle_measured) is the script's bytes alone when
 * no module and no data file was found, so a script without them
 * measures as before;
 * otherwise the script, then "\0sstream-modules-v1\0", then for each
 * module sorted by name: u64le(len(name)) name u64le(len(src)) src.
 * With data files, the modules' part is there even without modules, and
 * then "\0sstream-files-v1\0" and each file sorted by name the same way.
 * The owner (key service manifest) and the enclave compute it with the
 * same function, from the same files.
 */
#ifndef SS_BUNDLE_H
#define SS_BUNDLE_H

#include "core/ss_buf.h"

#include <stddef.h>

#define SS_BUNDLE_MAX_MODULES 64
#define SS_BUNDLE_MAX_FILES 64
#define SS_BUNDLE_MAX_FILE_BYTES (16u << 20) /* one data file */
#define SS_BUNDLE_MAX_BYTES (64u << 20) /* script, modules and files */

typedef struct ss_bundle ss_bundle;

/* Reads script_path and the local modules it requires (above). Returns 0
 * and *out (caller destroys), or SS_ENOTFOUND / SS_EIO / SS_ETOOBIG /
 * SS_ENOMEM / SS_EINVAL with a reason naming the file in err. */
int ss_bundle_load(const char *script_path, ss_bundle **out, char *err,
                   size_t errlen);

/* Builds a bundle from a script already in memory (no modules). */
int ss_bundle_from_text(const char *src, size_t len, ss_bundle **out);

/* Frees b and sets *b to NULL; safe on NULL. */
void ss_bundle_destroy(ss_bundle **b);

/* The script's text (NUL-terminated, owned by b) and its length. */
const char *ss_bundle_script(const ss_bundle *b, size_t *len);

/* Number of modules, and module i: its require name ("util.strings"),
 * text (NUL-terminated) and length, all owned by b. Modules are sorted by
 * name. */
size_t ss_bundle_nmodules(const ss_bundle *b);
void ss_bundle_module(const ss_bundle *b, size_t i, const char **name,
                      const char **src, size_t *len);

/* Number of data files, and file i: its name as the script wrote it
 * ("carriers.csv", "tables/codes.csv"), its bytes (NUL-terminated) and
 * length, all owned by b. Files are sorted by name. */
size_t ss_bundle_nfiles(const ss_bundle *b);
void ss_bundle_file(const ss_bundle *b, size_t i, const char **name,
                    const char **data, size_t *len);

/* Appends b as one file (above) to out. Returns 0 or SS_ENOMEM. */
int ss_bundle_serialize(const ss_bundle *b, ss_buf *out);

/* Appends the measured form of b (above) to out. Returns 0 or
 * SS_ENOMEM. */
int ss_bundle_measured(const ss_bundle *b, ss_buf *out);

/* Appends the measured form of a chain (docs/PIPELINE.md, Chaining): the
 * stages b[0..n) that run in one enclave, stage k named stages[k]. For
 * n == 1 it is ss_bundle_measured(b[0]) (an unchained stage measures as
 * before); otherwise b[0]'s measured form, then "\0sstream-chain-v1\0",
 * then for each k >= 1: u64le(len(stages[k])) stages[k] u64le(len(m))
 * m, m the measured form of b[k]. So the names and order of the chained
 * stages are measured with their scripts. Returns 0, SS_EINVAL (n == 0)
 * or SS_ENOMEM. */
int ss_bundle_measured_chain(const ss_bundle *const *b,
                             const char *const *stages, size_t n,
                             ss_buf *out);

/* Loads the bundle of script_path and writes its serialized form into a
 * sealed memory file (memfd: no more writes, no size change), positioned
 * at its start, close-on-exec: what an enclave of another uid reads as
 * its script (ss_spawner.h). Returns the fd (caller closes), or a
 * negative SS_E* code with the reason in err. */
int ss_bundle_memfd(const char *script_path, char *err, size_t errlen);

#endif
