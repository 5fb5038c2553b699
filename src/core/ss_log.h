/*
 * ss_log.h - leveled logging for every component.
 *
 * The level comes from LOG_LEVEL (trace, debug, info, warn, error, fatal;
 * default info) and the sampling rate of per-event debug messages from
 * LOG_RATE (default 100), as in the seed's section 8.3.6. The macros test
 * the level before formatting, so a disabled message costs one compare.
 * Messages go to stderr as "sstream <component>: <level>: <text>".
 * Never log key material, and never log payloads above debug level.
 */
#ifndef SS_LOG_H
#define SS_LOG_H

#include <stdarg.h>

typedef enum ss_log_level {
    SS_LOG_TRACE = 0,
    SS_LOG_DEBUG,
    SS_LOG_INFO,
    SS_LOG_WARN,
    SS_LOG_ERROR,
    SS_LOG_FATAL,
    SS_LOG_OFF
} ss_log_level;

extern int ss_log_level_current;
extern unsigned ss_log_rate;

/* Reads LOG_LEVEL and LOG_RATE and sets the component name (copied) shown
 * in every line. Unknown levels fall back to info with a warning. */
void ss_log_init(const char *component);

/* Changes the component name (copied). */
void ss_log_set_component(const char *component);

/* Parses a level name; returns the level or -1 if unknown. */
int ss_log_parse_level(const char *name);

/* Formats and writes one line at level, unconditionally. Use the macros. */
void ss_log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ss_log_vwrite(int level, const char *fmt, va_list ap);

#define ss_log_enabled(lvl) ((lvl) >= ss_log_level_current)
#define SS_LOG(lvl, ...)                                                     \
    do {                                                                     \
        if (ss_log_enabled(lvl))                                             \
            ss_log_write((lvl), __VA_ARGS__);                                \
    } while (0)
#define ss_trace(...) SS_LOG(SS_LOG_TRACE, __VA_ARGS__)
#define ss_debug(...) SS_LOG(SS_LOG_DEBUG, __VA_ARGS__)
#define ss_info(...) SS_LOG(SS_LOG_INFO, __VA_ARGS__)
#define ss_warn(...) SS_LOG(SS_LOG_WARN, __VA_ARGS__)
#define ss_error(...) SS_LOG(SS_LOG_ERROR, __VA_ARGS__)
#define ss_fatal(...) SS_LOG(SS_LOG_FATAL, __VA_ARGS__)
/* Debug message emitted once every LOG_RATE calls at this site (the
 * seed's per-event debug logging). n is the event counter. */
#define ss_debug_rate(n, ...)                                                \
    do {                                                                     \
        if (ss_log_enabled(SS_LOG_DEBUG) &&                                  \
            (ss_log_rate <= 1 || (n) % ss_log_rate == 0))                    \
            ss_log_write(SS_LOG_DEBUG, __VA_ARGS__);                         \
    } while (0)

#endif
