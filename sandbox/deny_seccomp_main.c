/* pp_deny_seccomp PROGRAM ARGS...: runs PROGRAM under an outer seccomp filter that refuses
 * seccomp() (and prctl(PR_SET_SECCOMP)) with EPERM, like a container profile that forbids nested
 * filters. Tests use it to check that `require` fails closed and `auto` degrades to `process`
 * when the probe child cannot install its filter. Not installed. */
#include <errno.h>
#include <seccomp.h>
/* libseccomp's SCMP_A*() comparison macros leave datum_b to the implicit zero (clang warns) */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    scmp_filter_ctx c = seccomp_init(SCMP_ACT_ALLOW);
    if (!c || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(seccomp), 0) ||
        seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1,
                         SCMP_A0_32(SCMP_CMP_EQ, PR_SET_SECCOMP)) ||
        seccomp_load(c)) {
        fprintf(stderr, "pp_deny_seccomp: cannot install the outer filter\n");
        return 2;
    }
    seccomp_release(c);
    execv(argv[1], argv + 1);
    perror("pp_deny_seccomp: execv");
    return 2;
}
