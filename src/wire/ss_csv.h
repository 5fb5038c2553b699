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

/* Appends s[0..n) to b as one field: quoted (with '"' doubled) when it
 * holds sep, '"', '\r' or '\n', as is otherwise. No separator is
 * written. Returns 0 or SS_ENOMEM (b->len restored). */
int ss_csv_put_field(ss_buf *b, const char *s, size_t n, char sep);

#endif
