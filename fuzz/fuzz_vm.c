/* The VM and policy on raw pickle bytes, both flavours. Invariants beyond "no crash": the
 * verdict is one of the defined ones, a malformed/limit verdict carries an error, a safe verdict
 * has neither findings of severity critical nor an error and re-scans to the same report, the
 * JSON and text writers give valid output, and the canonical dump of the same bytes is a JSON
 * object whenever it succeeds. */
#include "buf.h"
#include "dump.h"
#include "fuzz_common.h"
#include "pickleproof.h"
#include "scan.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_policy *policy = fuzz_policy("default");
    for (int fl = 0; fl < 2; fl++) {
        pp_scan_options o;
        pp_scan_options_init(&o, policy);
        o.flavor = (pp_flavor)fl;
        o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 64u << 20;
        pp_report *r = NULL;
        if (pp_scan_buffer(data, size, &o, &r) != PP_OK)
            continue; /* out of memory only */
        check(r->verdict <= PP_VERDICT_ERROR);
        if (r->verdict == PP_VERDICT_SAFE) {
            check(r->error.code == PP_OK);
            for (size_t i = 0; i < r->nfindings; i++)
                check(strcmp(r->findings[i].severity, "critical") != 0);
        }
        if (r->verdict == PP_VERDICT_MALFORMED || r->verdict == PP_VERDICT_LIMIT)
            check(r->error.code != PP_OK || r->nfindings > 0);
        fuzz_check_writers(r);
        if (r->verdict == PP_VERDICT_SAFE) {
            pp_report *again = NULL;
            if (pp_scan_buffer(data, size, &o, &again) == PP_OK) {
                check(fuzz_same_report(r, again));
                pp_report_free(again);
            }
        }
        pp_report_free(r);

        /* the dump writes shared values in full (up to 64 MiB): memo bombs make it the whole
         * cost, so throughput campaigns may leave it out (fuzz/README.md) */
        static int no_dump = -1;
        if (no_dump < 0)
            no_dump = getenv("PP_FUZZ_VM_NO_DUMP") != NULL;
        pp_scan_state st;
        if (!no_dump && pp_scan_streams(data, size, &o, true, &st) == PP_OK) {
            pp_buf b;
            pp_buf_init(&b);
            pp_error e = st.error;
            pp_err rc = pp_dump_json(&st.graph, st.streams, st.nstreams, 200, &b, &e);
            check(rc != PP_OK || (b.n > 0 && b.p[0] == '{'));
            pp_buf_free(&b);
            pp_scan_state_free(&st);
        }
    }
    return 0;
}
