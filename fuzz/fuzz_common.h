/* What every harness shares: an invariant check that aborts (so libFuzzer and the replay driver
 * both report it) and a built-in policy loaded once per process. */
#ifndef PP_FUZZ_COMMON_H
#define PP_FUZZ_COMMON_H

#include "pickleproof.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void check(int cond)
{
    if (!cond)
        abort();
}

/* The built-in policy `name`, loaded on first use; aborts if it cannot be. */
static inline pp_policy *fuzz_policy(const char *name)
{
    static pp_policy *p;
    if (!p) {
        pp_error err;
        pp_error_clear(&err);
        if (pp_policy_new(&p) || pp_policy_add_builtin(p, name, &err))
            abort();
    }
    return p;
}

/* Scans data as the file `path` with `policy` (small graph and inflate budgets) and checks what
 * holds for every container: a verdict from the table; a safe verdict has no error and no
 * critical or high finding; a malformed/limit verdict carries an error or a finding; every array
 * region is well-formed and, when it has a file offset, lies inside the input. Returns the
 * report for harness-specific checks (free it), or NULL when the scan ran out of memory. */
static inline pp_report *fuzz_scan(const uint8_t *data, size_t size, pp_policy *policy,
                                   const char *path)
{
    pp_scan_options o;
    pp_scan_options_init(&o, policy);
    o.path = path;
    o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 64u << 20;
    o.limits.v[PP_LIMIT_INFLATED_BYTES] = 64u << 20;
    pp_report *r = NULL;
    if (pp_scan_buffer(data, size, &o, &r) != PP_OK)
        return NULL;
    check(r->verdict <= PP_VERDICT_ERROR);
    if (r->verdict == PP_VERDICT_SAFE) {
        check(r->error.code == PP_OK);
        for (size_t i = 0; i < r->nfindings; i++)
            check(strcmp(r->findings[i].severity, "critical") != 0 &&
                  strcmp(r->findings[i].severity, "high") != 0);
    }
    if (r->verdict == PP_VERDICT_MALFORMED || r->verdict == PP_VERDICT_LIMIT)
        check(r->error.code != PP_OK || r->nfindings > 0);
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *a = &r->arrays[i];
        check(a->where != NULL && a->ndim <= PP_MAX_NDIM && (a->order == 'C' || a->order == 'F'));
        if (a->file_offset != PP_NO_OFFSET)
            check(a->file_offset <= size && a->nbytes <= size - a->file_offset);
    }
    return r;
}

#endif
