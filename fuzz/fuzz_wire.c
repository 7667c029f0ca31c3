/* The sandbox result decoder on arbitrary bytes: what an exploited child could write to its pipe.
 * Invariants beyond "no crash": a decoded frame re-encodes to a frame that decodes to the same
 * report (decode(encode(decode(x))) == decode(x)), failures are sandbox errors with a reason,
 * and every array region claiming file bytes lies inside the input. */
#include "../sandbox/wire.h"

#include "fuzz_common.h"
#include "pickleproof.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_policy *policy = fuzz_policy("default");
    /* the input the parent holds: the seeds were encoded for 4096 bytes */
    uint64_t input_len = 4096;
    pp_report *r = pp_report_new("fuzz");
    check(r != NULL);
    pp_error why;
    pp_error_clear(&why);
    pp_wire_result res;
    pp_err rc = pp_wire_decode(data, size, input_len, policy, r, &res, &why);
    check(rc == PP_OK || rc == PP_E_SANDBOX_ERROR || rc == PP_E_NOMEM);
    if (rc == PP_E_SANDBOX_ERROR) check(why.code == PP_E_SANDBOX_ERROR && why.msg[0]);
    if (rc == PP_OK) {
        check(res.scan_rc < PP_E__COUNT);
        if (res.scan_rc == PP_OK) {
            /* decode(encode(decode(x))) == decode(x): what the parent understood survives the
             * trip, so the encoder and decoder agree on every field */
            r->verdict = (pp_verdict)res.claimed_verdict;
            r->bytes = input_len; /* the parent sets it, as it sends the input */
            pp_wire_global *g = calloc(r->nglobals + 1, sizeof *g);
            check(g != NULL);
            for (size_t i = 0; i < r->nglobals; i++) {
                /* the split is lost in "module.qualname"; any dot with text on both sides
                 * joins back to the same string */
                const char *s = r->globals[i];
                size_t n = strlen(s), k = 1;
                while (k + 1 < n && s[k] != '.')
                    k++;
                check(k + 1 < n);
                g[i] = (pp_wire_global){s, s + k + 1, k, n - k - 1};
            }
            pp_buf b;
            pp_buf_init(&b);
            pp_wire_encode(&b, PP_OK, r, g);
            if (pp_buf_ok(&b)) {
                pp_report *r2 = pp_report_new("fuzz");
                check(r2 != NULL);
                pp_wire_result res2;
                pp_error_clear(&why);
                pp_err rc2 =
                    pp_wire_decode((const uint8_t *)b.p, b.n, input_len, NULL, r2, &res2, &why);
                if (rc2 == PP_E_SANDBOX_ERROR)
                    fprintf(stderr, "re-encoded frame refused: %s\n", why.msg);
                check(rc2 == PP_OK || rc2 == PP_E_NOMEM);
                if (rc2 == PP_OK) {
                    r2->verdict = (pp_verdict)res2.claimed_verdict;
                    r2->bytes = input_len;
                    check(res2.scan_rc == PP_OK && fuzz_same_report(r, r2));
                }
                pp_report_free(r2);
            }
            pp_buf_free(&b);
            free(g);
        }
        for (size_t i = 0; i < r->narrays; i++) {
            const pp_array_region *a = &r->arrays[i];
            check(a->ndim <= PP_MAX_NDIM);
            check(a->file_offset == PP_NO_OFFSET ||
                  (a->file_offset <= input_len && a->nbytes <= input_len - a->file_offset));
        }
    }
    pp_report_free(r);
    return 0;
}
