/* The two messages between the parent and the sandboxed parser, both little-endian and framed:
 *
 *   request (parent -> child, a sealed memfd on fd 3): trusted, written by the parent
 *   result  (child -> parent, one write to the pipe on fd 4): UNTRUSTED, an exploited parser
 *           controls every byte, so the decoder is a bounded cursor walk like any file format.
 *
 * Result frame (version 1):
 *   "PPSR" u16 version u16 flags(0) u32 body_len   then body_len bytes, nothing after
 *   body: u32 scan_rc                        pp_err of pp_scan_buffer; if != 0 the body ends here
 *         u8 verdict  str container  u64 nstreams  u64 bytes
 *         error: u32 code u64 offset i32 opcode i32 limit str stream str msg
 *         u32 nfindings { str rule  str severity  u8 has_global [str global]  i32 opcode
 *                         u64 offset  u8 has_stream [str stream]  str message }
 *         u32 nglobals  { str module  str qualname }       in the report's first-seen order
 *         u32 narrays   { str where  u64 offset  u64 file_offset  u64 nbytes  str dtype
 *                         u32 ndim  u64 shape[ndim]  u8 order }
 *   str = u32 length + bytes (no NUL inside, bounded per field).
 */
#ifndef PP_SANDBOX_WIRE_H
#define PP_SANDBOX_WIRE_H

#include "buf.h"
#include "pickleproof.h"

#include <stdint.h>

#define PP_WIRE_VERSION 1
/* The largest result frame the parent reads; the child's report is bounded by the per-rule
 * finding cap, so only a pathological number of distinct globals or arrays comes near it. */
#define PP_WIRE_MAX_FRAME ((size_t)64 << 20)
#define PP_WIRE_HEADER 12

/* One resolved global, split exactly as the VM resolved it. */
typedef struct pp_wire_global {
    const char *module, *name;
    size_t modlen, namelen;
} pp_wire_global;

/* Appends the result frame for (scan_rc, r) to b; globals[i] is the split of r->globals[i].
 * r may be NULL when scan_rc != PP_OK. Failure is sticky in b (pp_buf_ok). */
void pp_wire_encode(pp_buf *b, pp_err scan_rc, const pp_report *r, const pp_wire_global *globals);

/* What decoding found besides the report contents. */
typedef struct pp_wire_result {
    pp_err scan_rc;        /* the child's pp_scan_buffer result */
    int claimed_verdict;   /* the verdict the child claimed */
    size_t denied_globals; /* reported globals the policy gives no permission at all */
    char denied_first[160];
} pp_wire_result;

/* Decodes an untrusted result frame into r (a fresh report from pp_report_new, whose path,
 * bytes and policies the caller sets). `input_len` bounds every array region that claims a file
 * offset; `policy` (may be NULL) re-checks every reported global. Returns PP_OK, PP_E_NOMEM, or
 * PP_E_SANDBOX_ERROR with the reason in why->msg; r is then partially filled and must be freed. */
pp_err pp_wire_decode(const uint8_t *p, size_t n, uint64_t input_len, const pp_policy *policy,
                      pp_report *r, pp_wire_result *res, pp_error *why);

#endif
