/* The zip container (and what it dispatches to: npz members, nested archives, polyglot prefixes)
 * on arbitrary bytes, scanned as a file with the default policy. Invariants beyond "no crash":
 * a verdict from the table, an error behind every malformed/limit verdict, and every array
 * region with a file offset lies inside the input. Inputs that do not look like a zip are still
 * scanned (detection decides), so mutations that break the signature stay useful. */
#include "fuzz_common.h"
#include "pickleproof.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_policy *policy = fuzz_policy("default");
    pp_report *r = fuzz_scan(data, size, policy, "f.zip");
    if (!r)
        return 0; /* out of memory only */
    pp_report_free(r);
    return 0;
}
