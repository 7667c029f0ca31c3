#include "err.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const errnames[PP_E__COUNT] = {
    [PP_OK] = "ok",
    [PP_E_NOMEM] = "out-of-memory",
    [PP_E_TRUNCATED] = "truncated",
    [PP_E_BAD_OPCODE] = "invalid-opcode",
    [PP_E_UNDERFLOW] = "stack-underflow",
    [PP_E_MARK] = "mark-error",
    [PP_E_MEMO] = "memo-missing",
    [PP_E_BAD_ARG] = "bad-argument",
    [PP_E_BAD_VALUE] = "bad-value",
    [PP_E_FRAME] = "frame-error",
    [PP_E_PROTOCOL] = "unsupported-protocol",
    [PP_E_LIMIT] = "limit-exceeded",
    [PP_E_UNSUPPORTED] = "unsupported",
    [PP_E_IO] = "io-error",
    [PP_E_USAGE] = "usage",
    [PP_E_POLICY] = "policy-error",
    [PP_E_DECODE] = "decode-error",
    [PP_E_INTERNAL] = "internal",
    [PP_E_TRAILING] = "trailing-data",
    [PP_E_SIGNATURE] = "signature-error",
    [PP_E_SANDBOX] = "sandbox-violation",
    [PP_E_SANDBOX_ERROR] = "sandbox-error",
};

const char *pp_errname(pp_err e)
{
    if ((unsigned)e >= PP_E__COUNT || !errnames[e])
        return "unknown";
    return errnames[e];
}

static const char *const verdicts[] = {"safe",     "unsafe",        "malformed", "limit",
                                       "unsigned", "bad-signature", "error"};

const char *pp_verdict_name(pp_verdict v)
{
    if ((unsigned)v >= sizeof verdicts / sizeof verdicts[0])
        return "error";
    return verdicts[v];
}

void pp_error_clear(pp_error *e)
{
    memset(e, 0, sizeof *e);
    e->code = PP_OK;
    e->opcode = -1;
    e->limit = -1;
}

pp_err pp_fail(pp_error *e, pp_err code, uint64_t offset, int opcode, const char *fmt, ...)
{
    if (!e || e->code != PP_OK)
        return code;
    e->code = code;
    e->offset = offset;
    e->opcode = opcode;
    e->limit = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

pp_err pp_fail_limit(pp_error *e, pp_limit_id id, uint64_t offset, int opcode, uint64_t value)
{
    if (!e || e->code != PP_OK)
        return PP_E_LIMIT;
    pp_fail(e, PP_E_LIMIT, offset, opcode, "limit %s exceeded (limit is %" PRIu64 ")",
            pp_limit_name(id), value);
    e->limit = (int)id;
    return PP_E_LIMIT;
}

void pp_error_set_stream(pp_error *e, const char *stream)
{
    if (!e || e->stream[0])
        return;
    snprintf(e->stream, sizeof e->stream, "%s", stream ? stream : "");
}
