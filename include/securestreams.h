/*
 * securestreams.h - the public face of the SecureStreams runtime.
 *
 * What a C embedder or a native plugin sees: the version, the error codes
 * every function of the library returns, and their descriptions. Internal
 * modules live under src/<area>/ with one header per module.
 */
#ifndef SECURESTREAMS_H
#define SECURESTREAMS_H

#define SS_VERSION_MAJOR 0
#define SS_VERSION_MINOR 1
#define SS_VERSION_PATCH 0
#define SS_VERSION_STRING "0.1.0"

/*
 * Error codes. Every fallible function returns 0 (or a non-negative count)
 * on success and one of these negative values on failure. ss_strerror()
 * turns one into a short lowercase phrase.
 */
typedef enum ss_err {
    SS_OK = 0,
    SS_ENOMEM = -1,     /* allocation failed or a memory cap was hit */
    SS_EINVAL = -2,     /* bad argument or bad configuration */
    SS_EIO = -3,        /* read/write/system call failed (see errno) */
    SS_EPROTO = -4,     /* malformed or unexpected wire message */
    SS_ETOOBIG = -5,    /* value larger than a batch or a limit */
    SS_ELUA = -6,       /* error raised by Lua code */
    SS_EENCODE = -7,    /* value cannot be encoded (function, cycle...) */
    SS_EDECODE = -8,    /* bytes are not a valid encoding */
    SS_ECSV = -9,       /* malformed CSV */
    SS_EUTF8 = -10,     /* bytes are not valid UTF-8 */
    SS_ETIMEOUT = -11,  /* a peer did not answer in time */
    SS_ECRYPTO = -12,   /* authentication or decryption failed */
    SS_EPEER = -13,     /* a peer died or misbehaved */
    SS_EDENIED = -14,   /* refused by policy (attestation, sandbox) */
    SS_EINTEGRITY = -15,/* stream integrity check failed */
    SS_EINTR = -16,     /* interrupted by a signal / shutdown request */
    SS_ENOTFOUND = -17, /* file, key or name not found */
} ss_err;

/* Returns a static description of err; never NULL, never fails. */
const char *ss_strerror(int err);

#endif
