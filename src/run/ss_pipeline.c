/*
 * ss_pipeline.c - parsing and validation of the pipeline file with
 * libyaml's document API (see ss_pipeline.h).
 */
#include "run/ss_pipeline.h"
#include "core/ss_bundle.h"
#include "core/ss_util.h"
#include "lua/ss_lua.h"
#include "lua/ss_stage.h"
#include "wire/ss_partition.h"
#include "securestreams.h"
#include "wire/ss_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_FILE_SIZE (1u << 20)

/* Parsing context: the document and where errors go. */
typedef struct pctx {
    const char *path;
    yaml_document_t *doc;
    ss_pipeline *p;
    char *err;
    size_t errlen;
    const char *what; /* "stage 'map': " prefix, or "" */
} pctx;

static int line_of(const yaml_node_t *n)
{
    return n ? (int)n->start_mark.line + 1 : 1;
}

/* Writes "path:line: <what><message>" into err; returns SS_EINVAL. */
static int fail(pctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(pctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    if (!c->errlen)
        return SS_EINVAL;
    int k = snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line_of(n),
                     c->what);
    if (k >= 0 && (size_t)k < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return SS_EINVAL;
}

static yaml_node_t *node(pctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE &&
           n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* A non-empty string value without NUL bytes, copied into *dst. */
static int get_string(pctx *c, const char *key, yaml_node_t *v, char **dst)
{
    if (v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0 ||
        strlen(scalar(v)) != v->data.scalar.length)
        return fail(c, v, "%s must be a non-empty string", key);
    char *s = strdup(scalar(v));
    if (!s)
        return SS_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

/* A plain decimal integer in [min, max]. */
static int get_int(pctx *c, const char *key, yaml_node_t *v, int min,
                   int max, int *dst)
{
    uint64_t x;
    if (!is_plain(v) ||
        ss_parse_u64(scalar(v), (uint64_t)min, (uint64_t)max, 0, &x))
        return fail(c, v, "%s must be a number from %d to %d", key, min, max);
    *dst = (int)x;
    return 0;
}

static int get_bool(pctx *c, const char *key, yaml_node_t *v, int *dst)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    if (is_plain(v)) {
        for (size_t i = 0; i < 3; i++) {
            if (strcasecmp(scalar(v), yes[i]) == 0) {
                *dst = 1;
                return 0;
            }
            if (strcasecmp(scalar(v), no[i]) == 0) {
                *dst = 0;
                return 0;
            }
        }
    }
    return fail(c, v, "%s must be true or false", key);
}

/* A string that is one of the NULL-terminated choices. */
static int get_choice(pctx *c, const char *key, yaml_node_t *v,
                      const char *const *choices, const char *list,
                      char **dst)
{
    if (v->type == YAML_SCALAR_NODE)
        for (size_t i = 0; choices[i]; i++)
            if (strcmp(scalar(v), choices[i]) == 0)
                return get_string(c, key, v, dst);
    return fail(c, v, "%s must be one of %s", key, list);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SS_PIPELINE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
              ch == '.'))
            return 0;
    }
    return 1;
}

static int get_name(pctx *c, const char *key, yaml_node_t *v, char **dst)
{
    if (v->type != YAML_SCALAR_NODE || !valid_name(scalar(v)))
        return fail(c, v,
                    "%s must be 1 to %d letters, digits, '_', '-' or '.'",
                    key, SS_PIPELINE_NAME_MAX);
    return get_string(c, key, v, dst);
}

/* Joins dir and a path from the file; absolute paths are kept. */
static char *resolve(const char *dir, const char *rel)
{
    if (rel[0] == '/' || strcmp(dir, ".") == 0)
        return strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, rel);
    return s;
}

/* A script path: a string naming an existing regular file. */
static int get_script(pctx *c, const char *key, yaml_node_t *v, char **dst)
{
    char *rel = NULL;
    int rc = get_string(c, key, v, &rel);
    if (rc)
        return rc;
    char *path = resolve(c->p->dir, rel);
    if (!path) {
        free(rel);
        return SS_ENOMEM;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        rc = fail(c, v, "%s '%s' not found", key, rel);
    else if (!S_ISREG(st.st_mode))
        rc = fail(c, v, "%s '%s' is not a regular file", key, rel);
    free(rel);
    if (rc) {
        free(path);
        return rc;
    }
    free(*dst);
    *dst = path;
    return 0;
}

/* Checks that n is a mapping with string keys, no duplicates, and only
 * keys from the NULL-terminated allowed list. */
static int check_keys(pctx *c, const char *what, yaml_node_t *n,
                      const char *const *allowed)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, "%s must be a mapping (key: value lines)", what);
    yaml_node_pair_t *b = n->data.mapping.pairs.start;
    yaml_node_pair_t *e = n->data.mapping.pairs.top;
    for (yaml_node_pair_t *i = b; i < e; i++) {
        yaml_node_t *k = node(c, i->key);
        if (!k || k->type != YAML_SCALAR_NODE)
            return fail(c, k, "keys of %s must be strings", what);
        int ok = 0;
        for (size_t a = 0; allowed[a]; a++)
            if (strcmp(scalar(k), allowed[a]) == 0)
                ok = 1;
        if (!ok) {
            char list[256] = "";
            size_t len = 0;
            for (size_t a = 0; allowed[a] && len < sizeof list; a++)
                len += (size_t)snprintf(list + len, sizeof list - len,
                                        "%s%s", a ? ", " : "", allowed[a]);
            return fail(c, k, "unknown key '%s' in %s (expected %s)",
                        scalar(k), what, list);
        }
        for (yaml_node_pair_t *j = b; j < i; j++) {
            yaml_node_t *k2 = node(c, j->key);
            if (k2 && strcmp(scalar(k2), scalar(k)) == 0)
                return fail(c, k, "duplicate key '%s' in %s", scalar(k),
                            what);
        }
    }
    return 0;
}

/* The value of key in mapping n, or NULL; *kn gets the key node. */
static yaml_node_t *lookup(pctx *c, yaml_node_t *n, const char *key,
                          yaml_node_t **kn)
{
    for (yaml_node_pair_t *i = n->data.mapping.pairs.start;
         i < n->data.mapping.pairs.top; i++) {
        yaml_node_t *k = node(c, i->key);
        if (k && strcmp(scalar(k), key) == 0) {
            if (kn)
                *kn = k;
            return node(c, i->value);
        }
    }
    return NULL;
}

static int parse_source(pctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"file",   "parts",     "format",
                                       "header", "follow",    "linger_ms",
                                       "rate",   NULL};
    static const char *const formats[] = {"lines", "csv", "jsonl", "sealed",
                                          NULL};
    ss_pipeline *p = c->p;
    int rc = check_keys(c, "source", n, keys);
    if (rc)
        return rc;
    p->source.line = line_of(n);
    yaml_node_t *v;
    if ((v = lookup(c, n, "file", NULL))) {
        char *rel = NULL;
        if ((rc = get_string(c, "file", v, &rel)))
            return rc;
        p->source.file = resolve(p->dir, rel);
        free(rel);
        if (!p->source.file)
            return SS_ENOMEM;
        p->source.line = line_of(v);
    }
    if ((v = lookup(c, n, "parts", NULL)) &&
        (rc = get_int(c, "parts", v, 1, SS_PIPELINE_MAX_PARTS,
                      &p->source.parts)))
        return rc;
    if ((v = lookup(c, n, "format", NULL)) &&
        (rc = get_choice(c, "format", v, formats,
                         "lines, csv, jsonl or sealed", &p->source.format)))
        return rc;
    if ((v = lookup(c, n, "header", NULL)) &&
        (rc = get_bool(c, "header", v, &p->source.header)))
        return rc;
    if (v && p->source.header && !strcmp(p->source.format, "sealed"))
        return fail(c, v, "header: a sealed file's header line cannot be "
                    "skipped without the data key (leave header off: the "
                    "stages see it)");
    if ((v = lookup(c, n, "follow", NULL)) &&
        (rc = get_bool(c, "follow", v, &p->source.follow)))
        return rc;
    if (v && p->source.follow && !strcmp(p->source.format, "sealed"))
        return fail(c, v, "follow: a sealed file is complete (sstream "
                    "encrypt wrote it): it cannot be followed");
    if ((v = lookup(c, n, "linger_ms", NULL)) &&
        (rc = get_int(c, "linger_ms", v, 0, 3600000, &p->source.linger_ms)))
        return rc;
    if ((v = lookup(c, n, "rate", NULL)) &&
        (!is_plain(v) || ss_parse_rate(scalar(v), &p->source.rate)))
        return fail(c, v, "rate must be a number of rows per second from 0 "
                    "to 1000000000, such as 50000, 50k or 2M (k: 1000, M: "
                    "1000000; 0: as fast as the pipeline takes them), not "
                    "'%.40s'", v->type == YAML_SCALAR_NODE ? scalar(v) : "");
    return 0;
}

static int parse_stage(pctx *c, yaml_node_t *n, size_t idx, char *what,
                       size_t whatlen)
{
    static const char *const keys[] = {"name",         "script",
                                       "workers",      "partition_by",
                                       "broadcast",    "chain",
                                       NULL};
    ss_stage_conf *s = &c->p->stages[idx];
    s->workers = 1;
    s->chain = -1;
    s->line = line_of(n);
    snprintf(what, whatlen, "stage %zu: ", idx + 1);
    c->what = what;
    yaml_node_t *v = NULL;
    if (n->type == YAML_MAPPING_NODE &&
        (v = lookup(c, n, "name", NULL)) && v->type == YAML_SCALAR_NODE &&
        valid_name(scalar(v)))
        snprintf(what, whatlen, "stage '%s': ", scalar(v));
    int rc = check_keys(c, "a stage", n, keys);
    if (rc)
        return rc;
    if (!v)
        return fail(c, n, "name is missing");
    if ((rc = get_name(c, "name", v, &s->name)))
        return rc;
    if (strcmp(s->name, "router") == 0)
        return fail(c, v, "name 'router' is reserved");
    for (size_t j = 0; j < idx; j++)
        if (strcmp(c->p->stages[j].name, s->name) == 0)
            return fail(c, v, "name already used by the stage at line %d",
                        c->p->stages[j].line);
    if ((v = lookup(c, n, "workers", NULL)) &&
        (rc = get_int(c, "workers", v, 1, SS_PIPELINE_MAX_WORKERS,
                      &s->workers)))
        return rc;
    yaml_node_t *pv = lookup(c, n, "partition_by", NULL);
    yaml_node_t *bv = lookup(c, n, "broadcast", NULL);
    if (pv) {
        if ((rc = get_string(c, "partition_by", pv, &s->partition_by)))
            return rc;
        if (!ss_partition_field_ok(s->partition_by))
            return fail(c, pv, "partition_by must be a field name of 1 to "
                        "%d of A-Z a-z 0-9 _ - .", SS_PARTITION_FIELD_MAX);
    }
    if (bv && (rc = get_bool(c, "broadcast", bv, &s->broadcast)))
        return rc;
    if (s->partition_by && s->broadcast)
        return fail(c, bv, "a stage is either partitioned (partition_by) or "
                    "broadcast, not both");
    if ((s->partition_by || s->broadcast) && idx == 0)
        return fail(c, pv ? pv : bv, "the first stage cannot be %s: the "
                    "source does not cut its batches (put a stage before "
                    "it, e.g. the map that reads the fields)",
                    s->partition_by ? "partitioned" : "broadcast");
    if ((s->partition_by || s->broadcast) && idx > 0 &&
        (c->p->stages[idx - 1].partition_by ||
         c->p->stages[idx - 1].broadcast))
        return fail(c, pv ? pv : bv, "two partitioned or broadcast stages "
                    "cannot follow each other (the stage before, '%s', "
                    "gets batches already cut)", c->p->stages[idx - 1].name);
    if ((v = lookup(c, n, "chain", NULL)) &&
        (rc = get_bool(c, "chain", v, &s->chain)))
        return rc;
    if (!(v = lookup(c, n, "script", NULL)))
        return fail(c, n, "script is missing");
    return get_script(c, "script", v, &s->script);
}

static int parse_stages(pctx *c, yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, n, "stages must be a list of 1 to %d stages",
                    SS_PIPELINE_MAX_STAGES);
    yaml_node_item_t *b = n->data.sequence.items.start;
    size_t count = (size_t)(n->data.sequence.items.top - b);
    if (count < 1 || count > SS_PIPELINE_MAX_STAGES)
        return fail(c, n, "stages must be a list of 1 to %d stages (has %zu)",
                    SS_PIPELINE_MAX_STAGES, count);
    c->p->stages = calloc(count, sizeof *c->p->stages);
    if (!c->p->stages)
        return SS_ENOMEM;
    c->p->nstages = count;
    char what[SS_PIPELINE_NAME_MAX + 16];
    for (size_t i = 0; i < count; i++) {
        int rc = parse_stage(c, node(c, b[i]), i, what, sizeof what);
        if (rc)
            return rc;
    }
    c->what = "";
    return 0;
}

static int parse_sink(pctx *c, yaml_node_t *n)
{
    static const char *const keys[] = {"script", "output", NULL};
    int rc = check_keys(c, "sink", n, keys);
    if (rc)
        return rc;
    c->p->sink.line = line_of(n);
    c->what = "sink: ";
    yaml_node_t *v = lookup(c, n, "output", NULL);
    if (v && (rc = get_string(c, "output", v, &c->p->sink.output)))
        return rc;
    if (!(v = lookup(c, n, "script", NULL)))
        return fail(c, n, "script is missing");
    if ((rc = get_script(c, "script", v, &c->p->sink.script)))
        return rc;
    c->what = "";
    return 0;
}

static int parse_root(pctx *c, yaml_node_t *root)
{
    static const char *const keys[] = {"name", "security", "batch_size",
                                       "max_instructions",
                                       "max_reject_ratio", "lua", "source",
                                       "stages", "sink", "chain",
                                       "checkpoint_ms", "links", NULL};
    static const char *const links[] = {"curve", "sealed", NULL};
    static const char *const engines[] = {"5.4", "luajit", NULL};
    static const char *const modes[] = {"plain", "encrypted", "enclave",
                                        NULL};
    ss_pipeline *p = c->p;
    int rc = check_keys(c, "the pipeline", root, keys);
    if (rc)
        return rc;
    yaml_node_t *v;
    if ((v = lookup(c, root, "name", NULL)) &&
        (rc = get_name(c, "name", v, &p->name)))
        return rc;
    if ((v = lookup(c, root, "security", NULL)) &&
        (rc = get_choice(c, "security", v, modes,
                         "plain, encrypted or enclave", &p->security)))
        return rc;
    if ((v = lookup(c, root, "links", NULL)) &&
        (rc = get_choice(c, "links", v, links, "curve or sealed",
                         &p->links)))
        return rc;
    if ((v = lookup(c, root, "lua", NULL))) {
        if ((rc = get_choice(c, "lua", v, engines, "5.4 or luajit",
                             &p->lua)))
            return rc;
        if (strcmp(p->lua, ss_lua_engine()) != 0)
            return fail(c, v,
                        "lua: %s: this pipeline's scripts need %s, but this "
                        "binary runs %s; use %s (built with `make%s`)",
                        p->lua,
                        strcmp(p->lua, "luajit") == 0 ? "LuaJIT" : "Lua 5.4",
                        ss_lua_engine_name(),
                        strcmp(p->lua, "luajit") == 0 ? "bin/sstream-luajit"
                                                      : "bin/sstream",
                        strcmp(p->lua, "luajit") == 0 ? " LUA=luajit" : "");
    }
    if ((v = lookup(c, root, "batch_size", NULL))) {
        if (!is_plain(v) || ss_parse_u64(scalar(v), 1, SS_BATCH_MAX_SIZE, 1,
                                         &p->batch_size))
            return fail(c, v, "batch_size must be a size from 1 to 64M "
                              "(such as 65536 or 64K)");
    }
    if ((v = lookup(c, root, "max_instructions", NULL))) {
        if (!is_plain(v) ||
            ss_parse_u64(scalar(v), SS_STAGE_MIN_MAX_INSTRUCTIONS,
                         SS_STAGE_MAX_MAX_INSTRUCTIONS, 0,
                         &p->max_instructions))
            return fail(c, v, "max_instructions must be a number from "
                              "10000 to 1000000000000 (Lua instructions "
                              "per event)");
    }
    if ((v = lookup(c, root, "chain", NULL)) &&
        (rc = get_bool(c, "chain", v, &p->chain)))
        return rc;
    if ((v = lookup(c, root, "max_reject_ratio", NULL))) {
        char *end = NULL;
        const char *t = is_plain(v) ? scalar(v) : "";
        double r = strtod(t, &end);
        if (end && *end == '%' && end[1] == '\0') {
            r /= 100;
            end++;
        }
        if (!*t || !end || *end || !(r >= 0 && r <= 1))
            return fail(c, v, "max_reject_ratio must be a share of the rows "
                              "in from 0 to 1 (such as 0.05 or 5%%)");
        p->max_reject_ratio = r;
    }
    if ((v = lookup(c, root, "checkpoint_ms", NULL))) {
        int ms = 0;
        if ((rc = get_int(c, "checkpoint_ms", v, 0, 86400000, &ms)))
            return rc;
        p->checkpoint_ms = (unsigned)ms;
    }
    if ((v = lookup(c, root, "source", NULL)) && (rc = parse_source(c, v)))
        return rc;
    if (!(v = lookup(c, root, "stages", NULL)))
        return fail(c, root, "stages is missing");
    if ((rc = parse_stages(c, v)))
        return rc;
    if (!(v = lookup(c, root, "sink", NULL)))
        return fail(c, root, "sink is missing");
    return parse_sink(c, v);
}

/* Fills dir and the default name from path. */
static int set_path(ss_pipeline *p, const char *path)
{
    p->path = strdup(path);
    const char *slash = strrchr(path, '/');
    if (!slash)
        p->dir = strdup(".");
    else if (slash == path)
        p->dir = strdup("/");
    else
        p->dir = strndup(path, (size_t)(slash - path));
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char name[SS_PIPELINE_NAME_MAX + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k < SS_PIPELINE_NAME_MAX; i++) {
        char ch = base[i];
        name[k++] = valid_name((char[]){ch, 0}) ? ch : '_';
    }
    name[k] = '\0';
    p->name = strdup(k ? name : "pipeline");
    p->security = strdup("plain");
    p->links = strdup("curve");
    p->source.format = strdup("lines");
    if (!p->path || !p->dir || !p->name || !p->security || !p->links ||
        !p->source.format)
        return SS_ENOMEM;
    return 0;
}

/* See ss_pipeline.h. */
int ss_pipeline_parse(const char *path, const char *text, size_t len,
                      ss_pipeline **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    ss_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return SS_ENOMEM;
    p->batch_size = SS_BATCH_DEFAULT_SIZE;
    p->max_reject_ratio = -1;
    p->source.parts = 1;
    p->source.linger_ms = -1;
    int rc = set_path(p, path);
    if (rc) {
        ss_pipeline_destroy(&p);
        return rc;
    }

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        ss_pipeline_destroy(&p);
        return SS_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        /* libyaml's word for a tab is "character that cannot start any
         * token": say what it is, since a tab looks like spaces. */
        size_t at = parser.problem_mark.index;
        int tab = at < len && text[at] == '\t';
        ss_errf(err, errlen, "%s:%zu: yaml: %s%s%s%s", path,
                parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "invalid document",
                parser.context ? " " : "",
                parser.context ? parser.context : "",
                tab ? " (a tab: YAML indents with spaces only)" : "");
        rc = parser.error == YAML_MEMORY_ERROR ? SS_ENOMEM : SS_EINVAL;
        yaml_parser_delete(&parser);
        ss_pipeline_destroy(&p);
        return rc;
    }
    pctx c = {path, &doc, p, err, errlen, ""};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        rc = fail(&c, NULL, "the file is empty");
    else
        rc = parse_root(&c, root);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc) {
        if (rc == SS_ENOMEM)
            ss_errf(err, errlen, "%s: out of memory", path);
        ss_pipeline_destroy(&p);
        return rc;
    }
    *out = p;
    return 0;
}

/* See ss_pipeline.h. */
int ss_pipeline_load(const char *path, ss_pipeline **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        ss_errf(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT ? SS_ENOTFOUND : SS_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ss_errf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return SS_EIO;
    }
    if (st.st_size > MAX_FILE_SIZE) {
        ss_errf(err, errlen, "%s: larger than 1 MiB, not a pipeline file",
                path);
        close(fd);
        return SS_ETOOBIG;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *text = malloc(n + 1);
    if (!text) {
        close(fd);
        return SS_ENOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, text + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        ss_errf(err, errlen, "%s: read failed", path);
        free(text);
        return SS_EIO;
    }
    text[n] = '\0';
    int rc = ss_pipeline_parse(path, text, n, out, err, errlen);
    free(text);
    return rc;
}

/* See ss_pipeline.h. */
int ss_pipeline_links_sealed(const ss_pipeline *p)
{
    return p->links && strcmp(p->links, "sealed") == 0;
}

/* See ss_pipeline.h. */
int ss_pipeline_security_valid(const char *s)
{
    return s && (strcmp(s, "plain") == 0 || strcmp(s, "encrypted") == 0 ||
                 strcmp(s, "enclave") == 0);
}

static int replace(char **dst, const char *src)
{
    char *s = strdup(src);
    if (!s)
        return SS_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

/* See ss_pipeline.h. */
int ss_pipeline_apply(ss_pipeline *p, const ss_pipeline_overrides *o,
                      char *err, size_t errlen)
{
    if (!o)
        return 0;
    const char *data = o->data && *o->data       ? o->data
                       : o->env_data && *o->env_data ? o->env_data
                                                  : NULL;
    if (data && replace(&p->source.file, data))
        return SS_ENOMEM;
    if (o->workers) {
        if (o->workers < 1 || o->workers > SS_PIPELINE_MAX_WORKERS) {
            ss_errf(err, errlen, "--workers must be a number from 1 to %d",
                    SS_PIPELINE_MAX_WORKERS);
            return SS_EINVAL;
        }
        for (size_t i = 0; i < p->nstages; i++)
            p->stages[i].workers = o->workers;
    }
    if (o->security) {
        if (!ss_pipeline_security_valid(o->security)) {
            ss_errf(err, errlen,
                    "--security must be plain, encrypted or enclave");
            return SS_EINVAL;
        }
        if (replace(&p->security, o->security))
            return SS_ENOMEM;
    }
    if (o->rate)
        p->source.rate = o->rate < 0 ? 0 : (uint64_t)o->rate;
    if (o->links) {
        if (strcmp(o->links, "curve") && strcmp(o->links, "sealed")) {
            ss_errf(err, errlen, "--links must be curve or sealed");
            return SS_EINVAL;
        }
        if (replace(&p->links, o->links))
            return SS_ENOMEM;
    }
    if (o->checkpoint_ms)
        p->checkpoint_ms = o->checkpoint_ms < 0 ? 0 : (unsigned)o->checkpoint_ms;
    if (o->max_instructions)
        p->max_instructions = o->max_instructions;
    if (o->batch_size) {
        if (o->batch_size > SS_BATCH_MAX_SIZE) {
            ss_errf(err, errlen, "--batch-size must be from 1 to 64M");
            return SS_EINVAL;
        }
        p->batch_size = o->batch_size;
    }
    return 0;
}

/* Checks one script; the reason names the component. */
static int check_script(const char *who, const char *path, char *err,
                        size_t errlen)
{
    char why[512];
    why[0] = '\0';
    int rc = ss_lua_check_file(path, why, sizeof why);
    if (!rc) {
        /* the modules and data files it names must be there too: said
         * now, before any component starts, not by each worker */
        ss_bundle *b = NULL;
        rc = ss_bundle_load(path, &b, why, sizeof why);
        ss_bundle_destroy(&b);
    }
    if (rc) {
        ss_errf(err, errlen, "%s: %s", who,
                why[0] ? why : ss_strerror(rc));
        return rc;
    }
    return 0;
}

/* See ss_pipeline.h. */
int ss_pipeline_check(const ss_pipeline *p, char *err, size_t errlen)
{
    char who[SS_PIPELINE_NAME_MAX + 16];
    for (size_t i = 0; i < p->nstages; i++) {
        snprintf(who, sizeof who, "stage '%s'", p->stages[i].name);
        int rc = check_script(who, p->stages[i].script, err, errlen);
        if (rc)
            return rc;
    }
    int rc = check_script("sink", p->sink.script, err, errlen);
    if (rc)
        return rc;
    if (p->source.format && !strcmp(p->source.format, "sealed") &&
        p->security && !strcmp(p->security, "plain")) {
        ss_errf(err, errlen, "%s: source format sealed: sealed input needs "
                "security encrypted or enclave (only the pipeline's keys "
                "open it): set security in the file, or give --security",
                p->path);
        return SS_EINVAL;
    }
    if (ss_pipeline_links_sealed(p) && !strcmp(p->security, "plain")) {
        ss_errf(err, errlen, "%s: links: sealed needs security encrypted or "
                "enclave: it drops CurveZMQ from the data links and leaves "
                "their protection to the batches' sealing, which plain mode "
                "does not have (set security, or links: curve)", p->path);
        return SS_EINVAL;
    }
    if (ss_pipeline_links_sealed(p) && p->checkpoint_ms) {
        ss_errf(err, errlen, "%s: links: sealed does not go with "
                "checkpoints (checkpoint_ms %u): checkpoint barriers travel "
                "on the data links unsealed, and without CurveZMQ nothing "
                "authenticates them there (use links: curve, or no "
                "checkpoints)", p->path, p->checkpoint_ms);
        return SS_EINVAL;
    }
    if (!p->source.file) {
        ss_errf(err, errlen, "%s: no data file: give source.file, "
                             "DATA_FILE or --data", p->path);
        return SS_EINVAL;
    }
    struct stat st;
    if (stat(p->source.file, &st) != 0) {
        int e = errno;
        if (e == ENOENT && p->source.follow)
            return 0; /* the source waits for it to appear (tail -F) */
        ss_errf(err, errlen, "data file '%s': %s", p->source.file,
                strerror(e));
        return e == ENOENT ? SS_ENOTFOUND : SS_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        ss_errf(err, errlen, "data file '%s': not a regular file",
                p->source.file);
        return SS_EINVAL;
    }
    if (access(p->source.file, R_OK) != 0) {
        ss_errf(err, errlen, "data file '%s': %s", p->source.file,
                strerror(errno));
        return SS_EIO;
    }
    return 0;
}

/* See ss_pipeline.h. */
int ss_pipeline_chained(const ss_pipeline *p, size_t s)
{
    if (s == 0 || s >= p->nstages)
        return 0;
    const ss_stage_conf *a = &p->stages[s - 1], *b = &p->stages[s];
    if (b->partition_by || b->broadcast) /* its router deals by key */
        return 0;
    int ca = a->chain >= 0 ? a->chain : p->chain;
    int cb = b->chain >= 0 ? b->chain : p->chain;
    return ca && cb && a->workers == b->workers;
}

/* See ss_pipeline.h. */
int ss_pipeline_total_workers(const ss_pipeline *p)
{
    int n = 0;
    for (size_t i = 0; i < p->nstages; i++)
        n += p->stages[i].workers;
    return n;
}

/* See ss_pipeline.h. */
void ss_pipeline_destroy(ss_pipeline **pp)
{
    if (!pp || !*pp)
        return;
    ss_pipeline *p = *pp;
    free(p->path);
    free(p->dir);
    free(p->name);
    free(p->security);
    free(p->links);
    free(p->lua);
    free(p->source.file);
    free(p->source.format);
    for (size_t i = 0; i < p->nstages; i++) {
        free(p->stages[i].name);
        free(p->stages[i].script);
        free(p->stages[i].partition_by);
    }
    free(p->stages);
    free(p->sink.script);
    free(p->sink.output);
    free(p);
    *pp = NULL;
}
