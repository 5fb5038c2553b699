/*
 * ss_sealfile.h - the file format of a sealed stream (pre-encrypted
 * datasets, `sstream encrypt` / `sstream decrypt`).
 *
 * A sealed file is a sequence of records, each a 4-byte little-endian
 * length followed by one wire message (ss_batch.h) of that length:
 *
 *   data records   kind DATA, flags ENCRYPTED | LAST_PART (+ LINES for a
 *                  dataset), stream = the stream id given at encryption
 *                  (default: random with the top bit clear, the file's
 *                  id), seq = 0, 1, 2 ... (the batch number),
 *                  part 0, count = events, first_row = row number of
 *                  event 0; aux 0 except on the last data record:
 *                  SS_AUX_END | 1 (the end of the one source stream, what
 *                  the sink's integrity check expects; an empty input
 *                  gives one empty data record carrying it).
 *                  The plaintext payload is `count` MessagePack values;
 *                  with LINES, one str per input line, without its '\n'
 *                  (ss_mp_put_str / ss_mp_get_str, wire/ss_msgpack.h).
 *   trailer        the last record: kind EOS, flags ENCRYPTED | FINAL,
 *                  seq = number of data records, first_row = total
 *                  events, count 0, aux bit 0 (SS_SEALFILE_NEWLINE) set
 *                  if the original ended with '\n'; sealed empty payload.
 *
 * Every record is sealed with ss_aead_seal, so its header is authenticated
 * but readable: a source that does not hold the data key (enclave mode)
 * can forward the data records as they are (`sstream source --format
 * sealed`) and learn the batch count from the trailer's seq; whoever
 * holds the key verifies the trailer, which detects reordering, dropped
 * or appended batches and truncation.
 */
#ifndef SS_SEALFILE_H
#define SS_SEALFILE_H

#include "core/ss_buf.h"
#include "wire/ss_batch.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SS_SEALFILE_NEWLINE 1u /* trailer aux: input ended with '\n' */

/* Largest record length accepted by the reader. */
#define SS_SEALFILE_MAX_RECORD (SS_HDR_SIZE + SS_BATCH_MAX_SIZE)

/* Reads the next record into msg (reset first) and decodes its clear
 * header into h (not authenticated yet). Returns 1 for a record, 0 at a
 * clean end of file, SS_EIO on a read error, or SS_EPROTO with a static
 * reason in *why (truncated record, bad length, bad header). */
int ss_sealfile_read(FILE *f, ss_buf *msg, ss_hdr *h, const char **why);

/* Writes one record (length + msg). Returns 0 or SS_EIO. */
int ss_sealfile_write(FILE *f, const void *msg, size_t n);

#endif
