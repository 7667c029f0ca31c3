/* The joblib container (raw, compressed, zfile, old-format wrappers) through the whole scan.
 * Invariants beyond "no crash": a defined verdict; safe means no error and no rejecting finding;
 * every array region with a file offset lies inside the input, and its container path is set. */
#include "fuzz_common.h"
#include "pickleproof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the default policy allows joblib's array wrappers */
    pp_policy *policy = fuzz_policy("default");
    pp_report *r = fuzz_scan(data, size, policy, "f.joblib");
    if (!r)
        return 0; /* out of memory only */
    pp_report_free(r);
    return 0;
}
