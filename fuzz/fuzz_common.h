/* What every harness shares: an invariant check that aborts (so libFuzzer and the replay driver
 * both report it) and a built-in policy loaded once per process. */
#ifndef PP_FUZZ_COMMON_H
#define PP_FUZZ_COMMON_H

#include "pickleproof.h"

#include <stdlib.h>

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

#endif
