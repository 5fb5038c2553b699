/*
 * ss_log.c - leveled logging (see ss_log.h).
 */
#include "core/ss_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ss_log_level_current = SS_LOG_INFO;
unsigned ss_log_rate = 100;
static char component_name[64] = "sstream";

static const char *const level_names[] = {"trace", "debug", "info",
                                          "warn",  "error", "fatal", "off"};

/* Returns the level whose name is name, or -1. */
int ss_log_parse_level(const char *name)
{
    for (int i = 0; i <= SS_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* Copies component into the fixed name buffer, truncating if needed. */
void ss_log_set_component(const char *component)
{
    snprintf(component_name, sizeof component_name, "%s",
             component ? component : "sstream");
}

/* See ss_log.h. */
void ss_log_init(const char *component)
{
    ss_log_set_component(component);
    const char *lv = getenv("LOG_LEVEL");
    if (lv && *lv) {
        int l = ss_log_parse_level(lv);
        if (l < 0)
            ss_log_write(SS_LOG_WARN,
                         "unknown LOG_LEVEL '%s', using info", lv);
        else
            ss_log_level_current = l;
    }
    const char *rt = getenv("LOG_RATE");
    if (rt && *rt) {
        char *end;
        errno = 0;
        unsigned long r = strtoul(rt, &end, 10);
        if (errno || *end || r == 0 || r > 1000000000UL)
            ss_log_write(SS_LOG_WARN, "bad LOG_RATE '%s', using 100", rt);
        else
            ss_log_rate = (unsigned)r;
    }
}

/* See ss_log.h. */
void ss_log_vwrite(int level, const char *fmt, va_list ap)
{
    char line[2048];
    int en = errno; /* formatting must not change errno for the caller */
    if (level < 0 || level > SS_LOG_FATAL)
        level = SS_LOG_ERROR;
    int n = snprintf(line, sizeof line, "sstream %s: %s: ", component_name,
                     level_names[level]);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    fprintf(stderr, "%s\n", line);
    errno = en;
}

/* See ss_log.h. */
void ss_log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ss_log_vwrite(level, fmt, ap);
    va_end(ap);
}
