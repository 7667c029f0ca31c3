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
    pp_report *r = fuzz_scan(data, size, policy, "m.pt");
    if (!r)
        return 0; /* out of memory only */
    pp_report_free(r);
    return 0;
}
