/* Child-side confinement: rlimits, no-new-privs, then the seccomp filter. The allowlist is what
 * the parse path made on glibc 2.36 under strace (mmap, munmap, brk, mremap, write to the result
 * pipe, exit_group) plus madvise with restricted advice (musl, glibc tunables) and mprotect
 * without PROT_EXEC; ../shared/reference/sign-sandbox.md B2 has the measurements. Everything
 * else kills the whole process, so an exploited parser cannot open, exec, connect, trace or make
 * memory executable, and a stray libc call shows up as SIGSYS (a loud rejection) rather than as a
 * silent hole. */
#include "sandbox.h"

#include <errno.h>
#include <seccomp.h>
/* libseccomp's SCMP_A*() comparison macros leave datum_b to the implicit zero (clang warns) */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

const char *const pp_sbx_hook_names[PP_SBX_HOOK__COUNT] = {
    [PP_SBX_HOOK_NONE] = "none",
    [PP_SBX_HOOK_OPEN] = "open",
    [PP_SBX_HOOK_EXECVE] = "execve",
    [PP_SBX_HOOK_SOCKET] = "socket",
    [PP_SBX_HOOK_PTRACE] = "ptrace",
    [PP_SBX_HOOK_MPROTECT_EXEC] = "mprotect_exec",
    [PP_SBX_HOOK_MMAP_EXEC] = "mmap_exec",
    [PP_SBX_HOOK_WRITE_FD] = "write_fd",
    [PP_SBX_HOOK_I386] = "i386",
    [PP_SBX_HOOK_X32] = "x32",
    [PP_SBX_HOOK_SPIN] = "spin",
    [PP_SBX_HOOK_MEMBOMB] = "membomb",
    [PP_SBX_HOOK_GARBAGE] = "garbage",
    [PP_SBX_HOOK_HUGE] = "huge",
    [PP_SBX_HOOK_LIE] = "lie",
};

static int set_limit(int res, rlim_t soft, rlim_t hard)
{
    /* an inherited hard limit below ours (prlimit, ulimit -v, a container) is stricter: keep it
     * instead of failing, since raising it is refused */
    struct rlimit cur;
    if (getrlimit(res, &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
        if (hard == RLIM_INFINITY || hard > cur.rlim_max) hard = cur.rlim_max;
        if (soft == RLIM_INFINITY || soft > hard) soft = hard;
    }
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
    return setrlimit(res, &rl);
}

#define ALLOW(ctx, name, ...)                                                                      \
    (rc |= seccomp_rule_add((ctx), SCMP_ACT_ALLOW, SCMP_SYS(name), __VA_ARGS__))

/* The syscalls the sanitizer runtimes make on their own (shadow memory, alternate signal stack,
 * reports on stderr). Only in sanitizer builds; reported as "seccomp-relaxed". */
static int relaxed_extras(scmp_filter_ctx c)
{
    int rc = 0;
    static const char *const names[] = {
        "sigaltstack",   "rt_sigaction", "rt_sigprocmask",
        "getpid",        "gettid",       "sched_yield",
        "futex",         "readlink",     "ioctl",
        "pipe2",         "close",        "fstat",
        "newfstatat",    "getrlimit",    "prlimit64",
        "clock_gettime", "nanosleep",    "sched_getaffinity",
        "exit",          "tgkill",       "rt_sigreturn",
        "getrusage",     "write",        "writev",
        "mmap",          "madvise",      "mprotect",
        "munmap",
    };
    /* hostile: even relaxed, the actions the tests name stay fatal */
    static const char *const kill[] = {
        "open",
        "openat",
        "openat2",
        "execve",
        "execveat",
        "socket",
        "socketpair",
        "connect",
        "ptrace",
        "process_vm_writev",
        "process_vm_readv",
        "fork",
        "vfork",
        "clone",
        "clone3",
        "kill",
        "unlink",
        "unlinkat",
        "rename",
        "renameat",
        "renameat2",
        "mount",
        "chdir",
    };
    for (size_t i = 0; i < sizeof kill / sizeof kill[0]; i++) {
        int nr = seccomp_syscall_resolve_name(kill[i]);
        if (nr >= 0) rc |= seccomp_rule_add(c, SCMP_ACT_KILL_PROCESS, nr, 0);
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr < 0) continue;
        if (nr == SCMP_SYS(write)) {
            /* the result pipe and stderr (sanitizer reports), nothing else */
            rc |= seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 1, SCMP_A0_32(SCMP_CMP_EQ, 2));
            rc |= seccomp_rule_add(c, SCMP_ACT_KILL_PROCESS, nr, 1, SCMP_A0_32(SCMP_CMP_GT, 4));
            rc |= seccomp_rule_add(c, SCMP_ACT_KILL_PROCESS, nr, 1, SCMP_A0_32(SCMP_CMP_LT, 2));
            rc |= seccomp_rule_add(c, SCMP_ACT_KILL_PROCESS, nr, 1, SCMP_A0_32(SCMP_CMP_EQ, 3));
        } else if (nr == SCMP_SYS(writev)) {
            rc |= seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 1, SCMP_A0_32(SCMP_CMP_EQ, 2));
        } else if (nr == SCMP_SYS(mmap)) {
            /* ASan maps shadow with MAP_FIXED|MAP_NORESERVE: any non-exec mapping */
            rc |= seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 1,
                                   SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
            rc |= seccomp_rule_add(c, SCMP_ACT_KILL_PROCESS, nr, 1,
                                   SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
        } else if (nr == SCMP_SYS(mprotect)) {
            rc |= seccomp_rule_add(c, SCMP_ACT_KILL_PROCESS, nr, 1,
                                   SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
        } else if (nr == SCMP_SYS(madvise)) {
            rc |= seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 0);
        } else if (nr == SCMP_SYS(munmap)) {
            /* already allowed by the base set */
        } else {
            rc |= seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 0);
        }
    }
    return rc;
}

static int install_filter(int mode)
{
    bool relaxed = mode == PP_SBX_MODE_RELAXED;
    /* Relaxed: unknown calls fail with EPERM instead of killing, because the sanitizer runtimes
     * probe things at odd moments; the dangerous ones are killed explicitly above. */
    scmp_filter_ctx c = seccomp_init(relaxed ? SCMP_ACT_ERRNO(EPERM) : SCMP_ACT_KILL_PROCESS);
    if (!c) return -1;
    int rc = 0;
    /* i386 (int 0x80) and x32 system calls take other numbers: refuse the architectures, and
     * libseccomp also refuses the x32 bit on x86-64 with this action. */
    rc |= seccomp_attr_set(c, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    ALLOW(c, read, 1, SCMP_A0_32(SCMP_CMP_EQ, PP_SBX_IN_FD));
    ALLOW(c, write, 1, SCMP_A0_32(SCMP_CMP_EQ, PP_SBX_OUT_FD));
    if (!relaxed) {
        /* anonymous private memory, never executable (malloc above the mmap threshold) */
        ALLOW(
            c, mmap, 2, SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),
            SCMP_A3_64(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS | MAP_TYPE, MAP_ANONYMOUS | MAP_PRIVATE));
        /* and read-only private maps of the input */
        ALLOW(c, mmap, 3, SCMP_A2_64(SCMP_CMP_EQ, PROT_READ),
              SCMP_A3_64(SCMP_CMP_MASKED_EQ, MAP_ANONYMOUS | MAP_TYPE, MAP_PRIVATE),
              SCMP_A4_32(SCMP_CMP_EQ, PP_SBX_IN_FD));
        ALLOW(c, mprotect, 1, SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        ALLOW(c, madvise, 1, SCMP_A2_32(SCMP_CMP_EQ, MADV_DONTNEED));
        ALLOW(c, madvise, 1, SCMP_A2_32(SCMP_CMP_EQ, MADV_FREE));
        ALLOW(c, madvise, 1, SCMP_A2_32(SCMP_CMP_EQ, MADV_HUGEPAGE));
        ALLOW(c, madvise, 1, SCMP_A2_32(SCMP_CMP_EQ, MADV_NOHUGEPAGE));
        rc |= seccomp_rule_add(c, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(madvise), 0);
        /* what libc may try opportunistically: fail softly (glibc ignores these failures) */
        rc |= seccomp_rule_add(c, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(sysinfo), 0); /* qsort */
        rc |= seccomp_rule_add(c, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(prctl), 0);   /* VMA names */
    }
    ALLOW(c, munmap, 0);
    ALLOW(c, brk, 0);
    ALLOW(c, mremap, 0);
    ALLOW(c, exit_group, 0);
    if (relaxed) rc |= relaxed_extras(c);
    if (rc == 0) rc = seccomp_load(c);
    seccomp_release(c);
    return rc == 0 ? 0 : -1;
}

int pp_sbx_confine(int mode, uint64_t address_space, uint64_t cpu_seconds, const char **why)
{
    *why = NULL;
    if (address_space && set_limit(RLIMIT_AS, (rlim_t)address_space, (rlim_t)address_space)) {
        *why = "setrlimit(RLIMIT_AS)";
        return -1;
    }
    /* SIGXCPU at the soft limit, SIGKILL one second later */
    if (cpu_seconds && set_limit(RLIMIT_CPU, (rlim_t)cpu_seconds, (rlim_t)cpu_seconds + 1)) {
        *why = "setrlimit(RLIMIT_CPU)";
        return -1;
    }
    if (set_limit(RLIMIT_FSIZE, 0, 0) || set_limit(RLIMIT_NPROC, 0, 0) ||
        set_limit(RLIMIT_CORE, 0, 0) || set_limit(RLIMIT_MEMLOCK, 0, 0) ||
        set_limit(RLIMIT_NOFILE, PP_SBX_OUT_FD + 1, PP_SBX_OUT_FD + 1)) {
        *why = "setrlimit";
        return -1;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        *why = "prctl(PR_SET_NO_NEW_PRIVS)";
        return -1;
    }
    if (mode == PP_SBX_MODE_PROCESS) return 0;
    if (install_filter(mode)) {
        *why = "seccomp filter refused";
        return -1;
    }
    return 0;
}
