/* The .npy container (header grammar, dtype and shape arithmetic, object-array pickles)
 * on arbitrary bytes, scanned as a file with the default policy. Invariants beyond "no crash":
 * a verdict from the table, an error behind every malformed/limit verdict, and every array
 * region with a file offset lies inside the input and its size is dtype x shape. Inputs that
 * lose the magic are still scanned (detection decides). */
#include "fuzz_common.h"
#include "pickleproof.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_policy *policy = fuzz_policy("default");
    pp_scan_options o;
    pp_scan_options_init(&o, policy);
    o.path = "f.npy";
    o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 64u << 20;
    o.limits.v[PP_LIMIT_INFLATED_BYTES] = 64u << 20;
    pp_report *r = NULL;
    if (pp_scan_buffer(data, size, &o, &r) != PP_OK) return 0; /* out of memory only */
    check(r->verdict <= PP_VERDICT_ERROR);
    if (r->verdict == PP_VERDICT_SAFE) check(r->error.code == PP_OK);
    if (r->verdict == PP_VERDICT_MALFORMED || r->verdict == PP_VERDICT_LIMIT)
        check(r->error.code != PP_OK || r->nfindings > 0);
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *a = &r->arrays[i];
        check(a->where != NULL && a->ndim <= PP_MAX_NDIM);
        if (a->file_offset != PP_NO_OFFSET)
            check(a->file_offset <= size && a->nbytes <= size - a->file_offset);
        check(a->order == 'C' || a->order == 'F');
        /* nbytes is itemsize x count: a multiple of the count, zero when the count is */
        uint64_t count = 1;
        int wrapped = 0;
        for (uint32_t k = 0; k < a->ndim; k++) {
            if (a->shape[k] && count > UINT64_MAX / a->shape[k]) wrapped = 1;
            count *= a->shape[k];
        }
        check(wrapped || (count == 0 ? a->nbytes == 0 : a->nbytes % count == 0));
    }
    pp_report_free(r);
    return 0;
}
