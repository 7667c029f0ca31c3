/* The joblib container (raw, compressed, zfile, old-format wrappers) through the whole scan.
 * Invariants beyond "no crash": a defined verdict; safe means no error and no rejecting finding;
 * every array region with a file offset lies inside the input, and its container path is set. */
#include "pickleproof.h"

#include <stdlib.h>
#include <string.h>

static pp_policy *policy;

static void check(int cond)
{
    if (!cond) abort();
}

static const char extra[] = "construct joblib.numpy_pickle.NumpyArrayWrapper\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!policy) {
        pp_error err;
        pp_error_clear(&err);
        if (pp_policy_new(&policy) || pp_policy_add_builtin(policy, "default", &err) ||
            pp_policy_add_text(policy, "fuzz-joblib", extra, sizeof extra - 1, &err))
            abort();
    }
    pp_scan_options o;
    pp_scan_options_init(&o, policy);
    o.path = "f.joblib";
    o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 64u << 20;
    o.limits.v[PP_LIMIT_INFLATED_BYTES] = 64u << 20;
    pp_report *r = NULL;
    if (pp_scan_buffer(data, size, &o, &r) != PP_OK) return 0; /* out of memory only */
    check(r->verdict <= PP_VERDICT_ERROR);
    if (r->verdict == PP_VERDICT_SAFE) {
        check(r->error.code == PP_OK);
        for (size_t i = 0; i < r->nfindings; i++)
            check(strcmp(r->findings[i].severity, "critical") != 0 &&
                  strcmp(r->findings[i].severity, "high") != 0);
    }
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *a = &r->arrays[i];
        check(a->where != NULL && a->ndim <= PP_MAX_NDIM && (a->order == 'C' || a->order == 'F'));
        if (a->file_offset != PP_NO_OFFSET)
            check(a->file_offset <= size && a->nbytes <= size - a->file_offset);
    }
    pp_report_free(r);
    return 0;
}
