/*
 * ss_csv.h - RFC 4180 CSV, one line at a time.
 *
 * A line is split on the separator (',' unless told otherwise). A field
 * that starts with '"' is quoted: it runs to the next '"' that is not
 * doubled, "" stands for one '"', and the closing quote must be followed
 * by the separator or the end of the line. A '"' anywhere else (inside an
 * unquoted field, or after spaces that start a field) is an error, as in
 * RFC 4180; spaces are never trimmed. One trailing '\r' is dropped. The
 * empty line is one empty field; "a," is two fields, the second empty.
 *
 * Sources cut their input at '\n', so a quoted field cannot hold a line
 * break: a record spanning lines shows up as an unterminated quote on its
 * first line (this module never sees the rest).
 *
 * Errors name a 1-based byte column of the line.
 */
#ifndef SS_CSV_H
#define SS_CSV_H

#include "core/ss_buf.h"

#include <stddef.h>

/* Called once per field, in order: field points to len bytes (not
 * NUL-terminated) valid only during the call; index is 0-based. Returns
 * 0 to go on; anything else stops the split, which returns that value. */
typedef int (*ss_csv_field_fn)(const char *field, size_t len, int index,
                               void *arg);

/*
 * Splits line[0..n) (no trailing '\n'; a trailing '\r' is dropped) into
 * fields, calling cb(field, len, index, arg) for each with the quotes
 * removed and "" unescaped. Unescaped fields point into line; a quoted
 * field containing "" is assembled in scratch (caller-owned, reset and
 * grown here, reusable across calls). Returns the number of fields, or
 * SS_ECSV with a reason and column in err ("unterminated quote starting
 * at column 12", "character after closing quote at column 7", "quote
 * inside unquoted field at column 3"), SS_ENOMEM, or cb's non-zero
 * return. On error, cb may have been called for the fields before.
 */
int ss_csv_split(const char *line, size_t n, ss_csv_field_fn cb, void *arg,
                 ss_buf *scratch, char *err, size_t errlen);

/* ss_csv_split with another separator (any byte but '"', '\r', '\n'). */
int ss_csv_split_sep(const char *line, size_t n, char sep,
                     ss_csv_field_fn cb, void *arg, ss_buf *scratch,
                     char *err, size_t errlen);

/* Counts the fields of line[0..n) with the same validation and errors as
 * ss_csv_split, without copying anything. */
int ss_csv_count(const char *line, size_t n, char *err, size_t errlen);
int ss_csv_count_sep(const char *line, size_t n, char sep, char *err,
                     size_t errlen);

/*
 * Walking a line field by field, for lazy rows: a cursor returns one
 * field per call without copying anything. It is meant for lines that
 * ss_csv_count_sep accepted (csv.parse checks them first); on any other
 * line it still never reads outside line[0..n): an unterminated quoted
 * field runs to the end of the line, bytes after a closing quote are
 * skipped up to the next separator, and a quote that does not start a
 * field is data.
 */
typedef struct ss_csv_cursor {
    const char *s;
    size_t n;   /* without the trailing '\r' */
    size_t pos; /* where the next field starts */
    char sep;
    int done;   /* the last field has been returned */
} ss_csv_cursor;

/* Points c at the first field of line[0..n) (one trailing '\r' dropped). */
void ss_csv_cursor_init(ss_csv_cursor *c, const char *line, size_t n,
                        char sep);

/* Returns 1 and the next field, or 0 when every field has been returned.
 * f and len give the field's bytes inside the line, quotes removed; dq
 * is how many doubled quotes ("") they still hold, so the field's text
 * is len - dq bytes long (ss_csv_unescape writes it). */
int ss_csv_cursor_next(ss_csv_cursor *c, const char **f, size_t *len,
                       size_t *dq);

/* Skips up to k fields; returns how many were skipped (< k: the line
 * ran out). */
size_t ss_csv_cursor_skip(ss_csv_cursor *c, size_t k);

/* Writes the text of a field returned by ss_csv_cursor_next ("" -> ")
 * to dst (room for len - dq bytes); returns the bytes written. */
size_t ss_csv_unescape(char *dst, const char *f, size_t len);

/* Appends s[0..n) to b as one field: quoted (with '"' doubled) when it
 * holds sep, '"', '\r' or '\n', as is otherwise. No separator is
 * written. Returns 0 or SS_ENOMEM (b->len restored). */
int ss_csv_put_field(ss_buf *b, const char *s, size_t n, char sep);

#endif
