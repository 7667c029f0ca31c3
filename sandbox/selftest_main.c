/* pp_sandbox_selftest: scans files through pp_sandbox_scan and prints one JSON report per line,
 * so tests can drive the sandbox before the CLI has --sandbox. Not installed.
 *   pp_sandbox_selftest [--sandbox=require|auto|process|off] [--policy=NAME]... [--limit=N=V]...
 *                       [--flavor=py] [--probe] FILE...                                       */
#include "sandbox.h"

#include "report.h"
#include "scan.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    pp_policy *pol = NULL;
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&pol)) return 2;
    pp_scan_options o;
    pp_scan_options_init(&o, pol);
    bool policy_given = false;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--sandbox=", 10) == 0) {
            const char *v = a + 10;
            if (!strcmp(v, "require"))
                o.sandbox = PP_SANDBOX_REQUIRE;
            else if (!strcmp(v, "auto"))
                o.sandbox = PP_SANDBOX_AUTO;
            else if (!strcmp(v, "process"))
                o.sandbox = PP_SANDBOX_PROCESS;
            else if (!strcmp(v, "off"))
                o.sandbox = PP_SANDBOX_OFF;
            else
                return 2;
        } else if (strncmp(a, "--policy=", 9) == 0) {
            if (pp_policy_add(pol, a + 9, &err)) {
                fprintf(stderr, "policy: %s\n", err.msg);
                return 2;
            }
            policy_given = true;
        } else if (strncmp(a, "--limit=", 8) == 0) {
            if (pp_limits_set(&o.limits, a + 8)) return 2;
        } else if (!strcmp(a, "--flavor=py")) {
            o.flavor = PP_FLAVOR_PY;
        } else if (!strcmp(a, "--probe")) {
            const char *why = NULL;
            bool ok = pp_sandbox_seccomp_available(&why);
            printf("%s\n", ok ? "seccomp" : why);
            pp_policy_free(pol);
            return ok ? 0 : 1;
        } else {
            first = i;
            break;
        }
    }
    if (!policy_given && pp_policy_add_builtin(pol, "default", &err)) return 2;
    int worst = 0;
    for (int i = first; i < argc; i++) {
        pp_input in;
        pp_error e;
        pp_error_clear(&e);
        if (pp_input_open(argv[i], o.limits.v[PP_LIMIT_INPUT_BYTES], &in, &e)) {
            fprintf(stderr, "%s: %s\n", argv[i], e.msg);
            worst = 2;
            continue;
        }
        o.path = argv[i];
        pp_report *r = NULL;
        pp_err rc = pp_sandbox_scan(in.data, in.len, &o, &r);
        pp_input_close(&in);
        if (rc) {
            fprintf(stderr, "%s: %s\n", argv[i], pp_errname(rc));
            worst = 2;
            continue;
        }
        pp_report_write_jsonl(r, stdout);
        pp_report_free(r);
    }
    pp_policy_free(pol);
    return worst;
}
