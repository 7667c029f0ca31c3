/* The PyTorch containers (zip, legacy stacked, legacy tar) on arbitrary bytes: a full scan with
 * the torch policy, so the persistent-id hook, the storage regions and the tensor checks run.
 * Invariants beyond "no crash": a verdict from the table, an error behind every malformed/limit
 * verdict, no critical finding in a safe verdict, and every region with a file offset inside the
 * input with nbytes = shape[0] x element size for a 1-d storage region. */
#include "fuzz_common.h"
#include "pickleproof.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_policy *policy = fuzz_policy("torch");
    pp_scan_options o;
    pp_scan_options_init(&o, policy);
    o.path = "m.pt";
    o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 64u << 20;
    o.limits.v[PP_LIMIT_INFLATED_BYTES] = 64u << 20;
    pp_report *r = NULL;
    if (pp_scan_buffer(data, size, &o, &r) != PP_OK) return 0; /* out of memory only */
    check(r->verdict <= PP_VERDICT_ERROR);
    if (r->verdict == PP_VERDICT_SAFE) {
        check(r->error.code == PP_OK);
        for (size_t i = 0; i < r->nfindings; i++)
            check(strcmp(r->findings[i].severity, "critical") != 0);
    }
    if (r->verdict == PP_VERDICT_MALFORMED || r->verdict == PP_VERDICT_LIMIT)
        check(r->error.code != PP_OK || r->nfindings > 0);
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *a = &r->arrays[i];
        check(a->where != NULL && a->ndim <= PP_MAX_NDIM);
        if (a->file_offset != PP_NO_OFFSET)
            check(a->file_offset <= size && a->nbytes <= size - a->file_offset);
    }
    pp_report_free(r);
    return 0;
}
