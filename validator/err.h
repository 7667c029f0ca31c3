/* Error context helpers shared by every module. The first error wins: pp_fail() leaves an
 * already-set error alone, so a low-level failure is not masked by the caller's. */
#ifndef PP_ERR_H
#define PP_ERR_H

#include "pickleproof.h"

#if defined(__GNUC__)
#define PP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PP_PRINTF(a, b)
#endif

/* Records the error (if none is recorded yet) and returns `code`. */
pp_err pp_fail(pp_error *e, pp_err code, uint64_t offset, int opcode, const char *fmt, ...)
    PP_PRINTF(5, 6);
/* Records a PP_E_LIMIT naming the limit. */
pp_err pp_fail_limit(pp_error *e, pp_limit_id id, uint64_t offset, int opcode, uint64_t value);
void pp_error_set_stream(pp_error *e, const char *stream);

#endif
