/*
 * ss_error.c - descriptions of the library's error codes.
 */
#include "securestreams.h"
#include "core/ss_util.h"

#include <stdarg.h>
#include <stdio.h>

/* See securestreams.h. This function can't fail. */
const char *ss_strerror(int err)
{
    switch (err) {
    case SS_OK: return "success";
    case SS_ENOMEM: return "out of memory";
    case SS_EINVAL: return "invalid argument";
    case SS_EIO: return "input/output error";
    case SS_EPROTO: return "protocol error";
    case SS_ETOOBIG: return "value too large";
    case SS_ELUA: return "lua error";
    case SS_EENCODE: return "value cannot be encoded";
    case SS_EDECODE: return "malformed encoding";
    case SS_ECSV: return "malformed csv";
    case SS_EUTF8: return "invalid utf-8";
    case SS_ETIMEOUT: return "timed out";
    case SS_ECRYPTO: return "authentication failed";
    case SS_EPEER: return "peer failure";
    case SS_EDENIED: return "permission denied";
    case SS_EINTEGRITY: return "stream integrity violation";
    case SS_EINTR: return "interrupted";
    case SS_ENOTFOUND: return "not found";
    }
    return "unknown error";
}

/* See ss_util.h. */
void ss_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
