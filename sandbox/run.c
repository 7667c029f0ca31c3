/* Parent side of the sandbox: prepare the request, spawn the helper, wait with a deadline, read a
 * capped result, decode it as hostile input and map every abnormal end to a verdict. */
#include "sandbox.h"

#include "arena.h"
#include "buf.h"
#include "err.h"
#include "report.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PP_SANDBOX_BUILD_DIR
#define PP_SANDBOX_BUILD_DIR ""
#endif
#ifndef PP_SANDBOX_BUILD_HELPER
#define PP_SANDBOX_BUILD_HELPER ""
#endif
#ifndef PP_SANDBOX_INSTALL_HELPER
#define PP_SANDBOX_INSTALL_HELPER "/usr/local/libexec/pickleproof/pickleproof-sandbox"
#endif
#ifndef PP_SANDBOX_HELPER_FROM_BINDIR
#define PP_SANDBOX_HELPER_FROM_BINDIR ""
#endif

#ifdef PP_SANITIZE
#define SECCOMP_MODE PP_SBX_MODE_RELAXED
#define SECCOMP_NAME "seccomp-relaxed"
#else
#define SECCOMP_MODE PP_SBX_MODE_SECCOMP
#define SECCOMP_NAME "seccomp"
#endif

/* ---- helper location ---------------------------------------------------------------------- */

static char *helper_override;

pp_err pp_sandbox_set_helper_path(const char *path)
{
    char *c = NULL;
    if (path && !(c = pp_strdup(path))) return PP_E_NOMEM;
    pp_free(helper_override);
    helper_override = c;
    return PP_OK;
}

const char *pp_sandbox_helper_path(void)
{
    if (helper_override) return helper_override;
#ifdef PP_SANDBOX_TESTING
    const char *env = getenv("PICKLEPROOF_SANDBOX_HELPER");
    if (env && *env) return env;
#endif
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return PP_SANDBOX_INSTALL_HELPER;
    exe[n] = 0;
    /* A program inside the build tree uses the helper built with it, so tests never pick up an
     * older installed helper speaking another wire version. */
    static const char build_dir[] = PP_SANDBOX_BUILD_DIR;
    size_t bn = strlen(build_dir);
    if (bn && (size_t)n > bn && strncmp(exe, build_dir, bn) == 0 && exe[bn] == '/')
        return PP_SANDBOX_BUILD_HELPER;
    /* An installed program finds the helper where the install put it relative to its own bin
     * directory, so a tree installed under another prefix (DESTDIR, --prefix) or moved still
     * works; programs installed elsewhere that link the library get the configured path. The
     * buffer is per thread because scans may run in parallel threads. */
    static const char from_bindir[] = PP_SANDBOX_HELPER_FROM_BINDIR;
    static _Thread_local char rel[PATH_MAX];
    char *slash = strrchr(exe, '/');
    if (from_bindir[0] && slash) {
        int k = snprintf(rel, sizeof rel, "%.*s/%s", (int)(slash - exe), exe, from_bindir);
        if (k > 0 && (size_t)k < sizeof rel && access(rel, X_OK) == 0) return rel;
    }
    return PP_SANDBOX_INSTALL_HELPER;
}

/* ---- running one child -------------------------------------------------------------------- */

typedef struct outcome {
    int spawn_err;        /* errno of a failed setup/spawn, 0 if the child ran */
    const char *spawn_op; /* what failed */
    int status;           /* waitpid status */
    bool waited;
    bool killed_deadline;
    bool killed_cap;
    bool killed_other; /* we killed it for a local failure (poll, out of memory) */
    uint64_t cpu_ms;   /* CPU time the child used */
    uint8_t *buf;      /* result bytes, at most PP_WIRE_MAX_FRAME + 1 */
    size_t n;
} outcome;

static void put_le(pp_buf *b, uint64_t v, unsigned n)
{
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    pp_buf_put(b, t, n);
}

static bool write_at(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *c = p;
    while (n) {
        ssize_t k = pwrite(fd, c, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        c += k;
        n -= (size_t)k;
        off += k;
    }
    return true;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The request memfd: header, then the input at a page boundary; sealed so nothing (not even a
 * later write through another descriptor) changes what the child parses. */
static int make_request(const uint8_t *data, size_t len, bool external,
                        const pp_scan_options *opt, const char *ptext, size_t ptn, int mode,
                        int hook, uint64_t as, const char **op)
{
    pp_buf h;
    pp_buf_init(&h);
    const char *path = opt->path ? opt->path : "";
    size_t pathn = strlen(path);
    size_t hlen = 12 + 4 + 4 + 8 * PP_LIMIT__COUNT + 24 + 4 + pathn + 4 + ptn + 4;
    for (size_t i = 0; i < opt->nsides; i++)
        hlen += 4 + strlen(opt->sides[i].name) + 8 + opt->sides[i].len;
    /* external: the input is the file on the child's fd 0, not a copy after the header */
    size_t off = external ? 0 : (hlen + 4095) & ~(size_t)4095;
    pp_buf_put(&h, "PPSQ", 4);
    put_le(&h, PP_SBX_REQ_VERSION, 2);
    put_le(&h, external ? PP_SBX_REQ_EXTERNAL : 0, 2);
    put_le(&h, hlen, 4);
    put_le(&h, (uint64_t)opt->flavor, 1);
    put_le(&h, (uint64_t)opt->encoding, 1);
    put_le(&h, (uint64_t)mode, 1);
    put_le(&h, (uint64_t)hook, 1);
    put_le(&h, PP_LIMIT__COUNT, 4);
    for (size_t i = 0; i < PP_LIMIT__COUNT; i++)
        put_le(&h, opt->limits.v[i], 8);
    put_le(&h, as, 8);
    put_le(&h, off, 8);
    put_le(&h, len, 8);
    put_le(&h, pathn, 4);
    pp_buf_put(&h, path, pathn);
    put_le(&h, ptn, 4);
    pp_buf_put(&h, ptext, ptn);
    /* side files the parent read for the child, which cannot open files; the last flag bit
     * says the list is final (anything else named is missing) */
    put_le(&h, opt->nsides | (opt->sides_final ? 0x80000000u : 0), 4);
    for (size_t i = 0; i < opt->nsides; i++) {
        size_t nl = strlen(opt->sides[i].name);
        put_le(&h, nl, 4);
        pp_buf_put(&h, opt->sides[i].name, nl);
        put_le(&h, opt->sides[i].len, 8);
        pp_buf_put(&h, opt->sides[i].data, opt->sides[i].len);
    }
    if (!pp_buf_ok(&h)) {
        *op = "request";
        errno = ENOMEM;
        return -1;
    }
    int fd = memfd_create("pickleproof-request", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        *op = "memfd_create";
        pp_buf_free(&h);
        return -1;
    }
    bool ok = external ? write_at(fd, h.p, h.n, 0)
                       : write_at(fd, h.p, h.n, 0) && (!len || write_at(fd, data, len, (off_t)off)) &&
                             ftruncate(fd, (off_t)(off + len)) == 0;
    pp_buf_free(&h);
    if (!ok || fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)) {
        *op = ok ? "sealing the request" : "writing the request";
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* fds 0-4 are the child's; keep ours above them so dup2 in the child never clobbers one with
 * another and always clears close-on-exec. */
static int lift_fd(int fd)
{
    if (fd > PP_SBX_OUT_FD) return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, PP_SBX_OUT_FD + 1);
    close(fd);
    return n;
}

extern char **environ;

static void run_child(const uint8_t *data, size_t len, int infd, const pp_scan_options *opt,
                      const char *ptext, size_t ptn, int mode, int hook, uint64_t as,
                      uint64_t deadline_ms, outcome *oc)
{
    memset(oc, 0, sizeof *oc);
    int rfd = -1, wfd = -1, pidfd = -1, xfd = -1;
    int mfd = make_request(data, len, infd >= 0, opt, ptext, ptn, mode, hook, as,
                           &oc->spawn_op);
    if (mfd < 0) {
        oc->spawn_err = errno ? errno : EIO;
        return;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        oc->spawn_err = errno;
        oc->spawn_op = "pipe2";
        close(mfd);
        return;
    }
    rfd = p[0];
    wfd = lift_fd(p[1]);
    mfd = lift_fd(mfd);
    if (infd >= 0)
        xfd = lift_fd(fcntl(infd, F_DUPFD_CLOEXEC, 0));
    if (wfd < 0 || mfd < 0 || (infd >= 0 && xfd < 0)) {
        oc->spawn_err = errno;
        oc->spawn_op = "fcntl";
        goto out;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, mfd, PP_SBX_IN_FD);
    posix_spawn_file_actions_adddup2(&fa, wfd, PP_SBX_OUT_FD);
    if (xfd >= 0)
        posix_spawn_file_actions_adddup2(&fa, xfd, 0); /* the input file itself, read-only */
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
#ifndef PP_SANITIZE
    /* sanitizer builds keep stderr for the runtime's reports */
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
#endif
    /* The host's handlers (Python's SIGINT) and blocked signals must not follow the child. */
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char smode[8], shook[8], sppid[24];
    snprintf(smode, sizeof smode, "%d", mode);
    snprintf(shook, sizeof shook, "%d", hook);
    snprintf(sppid, sizeof sppid, "%ld", (long)getpid());
    const char *helper = pp_sandbox_helper_path();
    char *argv[] = {(char *)"pickleproof-sandbox", (char *)"--child", smode, shook, sppid, NULL};
    /* A clean environment: nothing (LD_PRELOAD, GLIBC_TUNABLES) changes what the child does. */
    char *envp[8] = {NULL};
#ifdef PP_SANITIZE
    size_t ne = 0;
    static const char *const keep[] = {"ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS="};
    for (char **e = environ; *e && ne < 7; e++)
        for (size_t k = 0; k < 3; k++)
            if (strncmp(*e, keep[k], strlen(keep[k])) == 0) envp[ne++] = *e;
#endif
    pid_t pid;
    int src = posix_spawn(&pid, helper, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(wfd);
    wfd = -1;
    close(mfd);
    mfd = -1;
    if (xfd >= 0)
        close(xfd);
    xfd = -1;
    if (src != 0) {
        oc->spawn_err = src;
        oc->spawn_op = "spawning the sandbox helper";
        goto out;
    }
    /* A pidfd sees the exit even when a child that closed its pipe end keeps running. */
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    size_t cap = 0;
    bool eof = false, exited = false;
    uint64_t end = now_ms() + deadline_ms;
    while (!eof || (!exited && pidfd >= 0)) {
        uint64_t t = now_ms();
        if (t >= end) {
            kill(pid, SIGKILL);
            oc->killed_deadline = true;
            break;
        }
        struct pollfd pf[2] = {{.fd = eof ? -1 : rfd, .events = POLLIN},
                               {.fd = exited ? -1 : pidfd, .events = POLLIN}};
        uint64_t wait = end - t;
        int pr = poll(pf, 2, wait > INT_MAX ? INT_MAX : (int)wait);
        if (pr < 0 && errno != EINTR) {
            kill(pid, SIGKILL);
            oc->killed_other = true;
            break;
        }
        if (pr <= 0) continue;
        if (pf[1].revents) exited = true;
        if (pf[0].revents) {
            if (oc->n == cap) {
                size_t nc = cap ? cap * 2 : 4096;
                if (nc > PP_WIRE_MAX_FRAME + 1) nc = PP_WIRE_MAX_FRAME + 1;
                if (nc == cap) { /* hostile: more than any honest result */
                    kill(pid, SIGKILL);
                    oc->killed_cap = true;
                    break;
                }
                uint8_t *nb = pp_realloc(oc->buf, nc);
                if (!nb) {
                    kill(pid, SIGKILL);
                    oc->killed_other = true;
                    break;
                }
                oc->buf = nb;
                cap = nc;
            }
            ssize_t k = read(rfd, oc->buf + oc->n, cap - oc->n);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0)
                eof = true;
            else
                oc->n += (size_t)k;
        }
    }
    for (;;) {
        struct rusage ru;
        pid_t w = wait4(pid, &oc->status, 0, &ru);
        if (w == pid) {
            oc->waited = true;
            oc->cpu_ms = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000u +
                         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000u;
            break;
        }
        if (w < 0 && errno == EINTR) continue;
        break; /* ECHILD: the host ignores SIGCHLD, so the status is unknown */
    }
out:
    if (pidfd >= 0) close(pidfd);
    if (rfd >= 0) close(rfd);
    if (wfd >= 0) close(wfd);
    if (mfd >= 0) close(mfd);
    if (xfd >= 0) close(xfd);
}

/* ---- the probe ---------------------------------------------------------------------------- */

static int probe_state; /* 1 works, -1 does not; written once, under probe_once */
static const char *probe_why = "not probed";
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

/* A real child with the production filter scanning a real pickle. Run once: parallel scans
 * (scan -j) would otherwise all probe at start-up and race on probe_why. */
static void probe(void)
{
    static const uint8_t tiny[] = {0x80, 0x02, 'N', '.'};
    pp_scan_options o;
    pp_scan_options_init(&o, NULL);
    outcome oc;
    run_child(tiny, sizeof tiny, -1, &o, "", 0, SECCOMP_MODE, PP_SBX_HOOK_NONE, 0, 10000, &oc);
    int s = -1;
    if (oc.spawn_err)
        probe_why = "the sandbox helper could not be started";
    else if (!oc.waited || !WIFEXITED(oc.status))
        probe_why = "the probe child was killed while confining itself";
    else if (WEXITSTATUS(oc.status) == PP_SBX_EXIT_SETUP)
        probe_why = "seccomp() or no-new-privs refused (an outer sandbox forbids it?)";
    else if (WEXITSTATUS(oc.status) != 0 || oc.n < PP_WIRE_HEADER ||
             memcmp(oc.buf, "PPSR", 4) != 0)
        probe_why = "the probe child did not answer";
    else
        s = 1;
    pp_free(oc.buf);
    probe_state = s;
}

bool pp_sandbox_seccomp_available(const char **why)
{
    pthread_once(&probe_once, probe);
    int s = probe_state;
    if (why) *why = s > 0 ? NULL : probe_why;
    return s > 0;
}

/* ---- mapping outcomes to reports ---------------------------------------------------------- */

static pp_err fail_report(pp_report *r, pp_err code, const char *fmt, ...) PP_PRINTF(3, 4);

static pp_err fail_report(pp_report *r, pp_err code, const char *fmt, ...)
{
    char msg[sizeof r->error.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pp_error_clear(&r->error);
    pp_fail(&r->error, code, 0, -1, "%s", msg);
    pp_error_set_stream(&r->error, "sandbox");
    pp_err rc =
        pp_report_add_finding(r, pp_errname(code), "critical", NULL, -1, 0, "sandbox", "%s", msg);
    r->verdict = PP_VERDICT_ERROR;
    return rc;
}

static pp_err limit_report(pp_report *r, pp_limit_id id, uint64_t value)
{
    pp_error_clear(&r->error);
    pp_fail_limit(&r->error, id, 0, -1, value);
    pp_error_set_stream(&r->error, "sandbox");
    pp_err rc = pp_report_add_finding(r, pp_errname(PP_E_LIMIT), "medium", NULL, -1, 0, "sandbox",
                                      "%s", r->error.msg);
    pp_report_decide(r);
    return rc;
}

/* Empties a report the child filled before it is reused for a failure. */
static pp_report *fresh_report(pp_report *old, const pp_scan_options *opt, size_t len,
                               const char *level)
{
    if (old) pp_report_free(old);
    pp_report *r = pp_report_new(opt->path);
    if (!r) return NULL;
    r->bytes = len;
    r->sandbox = level;
    if (pp_report_set_policies(r, opt->policy)) {
        pp_report_free(r);
        return NULL;
    }
    return r;
}

#ifndef PP_SANITIZE
static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}
#endif

static int hook_from_env(void)
{
#ifdef PP_SANDBOX_TESTING
    const char *s = getenv("PICKLEPROOF_SANDBOX_TEST");
    if (s && *s)
        for (int i = 1; i < PP_SBX_HOOK__COUNT; i++)
            if (strcmp(s, pp_sbx_hook_names[i]) == 0) return i;
#endif
    return PP_SBX_HOOK_NONE;
}

pp_err pp_sandbox_scan(const uint8_t *data, size_t len, const pp_scan_options *opt, pp_report **out)
{
    return pp_sandbox_scan_fd(data, len, -1, opt, out);
}

pp_err pp_sandbox_scan_fd(const uint8_t *data, size_t len, int infd, const pp_scan_options *opt,
                          pp_report **out)
{
    *out = NULL;
    if (!opt || !opt->policy) return PP_E_USAGE;
    if (opt->sandbox == PP_SANDBOX_OFF) {
        pp_err rc = pp_scan_buffer(data, len, opt, out);
        if (rc == PP_OK) (*out)->sandbox = "off";
        return rc;
    }
    int mode = PP_SBX_MODE_PROCESS;
    const char *level = "process";
    const char *why = NULL;
    bool unavailable = false;
    if (opt->sandbox == PP_SANDBOX_REQUIRE || opt->sandbox == PP_SANDBOX_AUTO) {
        if (pp_sandbox_seccomp_available(&why)) {
            mode = SECCOMP_MODE;
            level = SECCOMP_NAME;
        } else if (opt->sandbox == PP_SANDBOX_REQUIRE) {
            unavailable = true; /* fail closed */
        }
    }
    pp_report *r = fresh_report(NULL, opt, len, unavailable ? "unavailable" : level);
    if (!r) return PP_E_NOMEM;
    if (unavailable) {
        pp_err rc = fail_report(r, PP_E_SANDBOX_ERROR,
                                "seccomp sandbox required but unavailable: %s (use "
                                "--sandbox=process or auto to run without it)",
                                why);
        if (rc) {
            pp_report_free(r);
            return rc;
        }
        *out = r;
        return PP_OK;
    }
    const pp_limits *L = &opt->limits;
    uint64_t as = 0;
#ifndef PP_SANITIZE
    /* ASan reserves terabytes of shadow: no RLIMIT_AS under sanitizers (sign-sandbox.md B) */
    uint64_t budget = L->v[PP_LIMIT_SANDBOX_MEMORY];
    if (!budget)
        budget = sat_add(sat_add(L->v[PP_LIMIT_GRAPH_MEMORY], L->v[PP_LIMIT_INFLATED_BYTES]),
                         (uint64_t)256 << 20);
    /* the request mapping, the binary and its libraries, the stack */
    as = sat_add(sat_add(budget, len), (uint64_t)64 << 20);
    if (as >= (uint64_t)1 << 47) as = 0;
#endif
    char *ptext = NULL;
    size_t ptn = 0;
    pp_err rc = pp_sandbox_policy_text(opt->policy, &ptext, &ptn);
    if (rc) {
        pp_report_free(r);
        return rc;
    }
    outcome oc;
    run_child(data, len, infd, opt, ptext, ptn, mode, hook_from_env(), as, L->v[PP_LIMIT_DEADLINE_MS],
              &oc);
    pp_free(ptext);

    if (oc.spawn_err) {
        rc = fail_report(r, PP_E_SANDBOX_ERROR, "%s (%s) failed: %s", oc.spawn_op,
                         pp_sandbox_helper_path(), strerror(oc.spawn_err));
    } else if (oc.killed_deadline) {
        rc = limit_report(r, PP_LIMIT_DEADLINE_MS, L->v[PP_LIMIT_DEADLINE_MS]);
    } else if (oc.killed_cap) {
        rc = fail_report(r, PP_E_SANDBOX_ERROR,
                         "the sandboxed parser wrote more than %zu bytes of result",
                         PP_WIRE_MAX_FRAME);
    } else if (!oc.waited) {
        rc = fail_report(r, PP_E_SANDBOX_ERROR,
                         "the sandboxed parser's exit status is unknown (SIGCHLD ignored?)");
    } else if (WIFSIGNALED(oc.status)) {
        int sig = WTERMSIG(oc.status);
        if (sig == SIGSYS)
            rc = fail_report(r, PP_E_SANDBOX,
                             "SANDBOX VIOLATION: the parser attempted a forbidden system call "
                             "and was killed; treat this file as an attack");
        else if (!oc.killed_other &&
                 (sig == SIGXCPU || (sig == SIGKILL && L->v[PP_LIMIT_CPU_SECONDS] &&
                                     oc.cpu_ms + 50 >= L->v[PP_LIMIT_CPU_SECONDS] * 1000)))
            rc = limit_report(r, PP_LIMIT_CPU_SECONDS, L->v[PP_LIMIT_CPU_SECONDS]);
        else if (sig == SIGKILL && !oc.killed_other)
            rc = fail_report(r, PP_E_SANDBOX_ERROR,
                             "the sandboxed parser was killed from outside (the kernel's "
                             "out-of-memory killer?)");
        else
            rc = fail_report(r, PP_E_SANDBOX_ERROR, "the sandboxed parser died of signal %d", sig);
    } else if (WEXITSTATUS(oc.status) != PP_SBX_EXIT_OK) {
        int st = WEXITSTATUS(oc.status);
        rc = fail_report(r, PP_E_SANDBOX_ERROR, "the sandboxed parser exited with status %d%s", st,
                         st == PP_SBX_EXIT_SETUP     ? " (it could not confine itself)"
                         : st == PP_SBX_EXIT_REQUEST ? " (helper and library versions differ?)"
                                                     : "");
    } else {
        pp_wire_result res;
        pp_error why_e;
        pp_error_clear(&why_e);
        rc = pp_wire_decode(oc.buf, oc.n, len, opt->policy, r, &res, &why_e);
        if (rc == PP_E_SANDBOX_ERROR) {
            if (!(r = fresh_report(r, opt, len, level)))
                rc = PP_E_NOMEM;
            else
                rc = fail_report(r, PP_E_SANDBOX_ERROR, "%s", why_e.msg);
        } else if (rc == PP_OK && res.scan_rc != PP_OK) {
            if (!(r = fresh_report(r, opt, len, level)))
                rc = PP_E_NOMEM;
            else if (res.scan_rc == PP_E_NOMEM && as)
                rc = limit_report(r, PP_LIMIT_SANDBOX_MEMORY, as);
            else
                rc = fail_report(r, PP_E_SANDBOX_ERROR, "the sandboxed scan failed: %s",
                                 pp_errname(res.scan_rc));
        } else if (rc == PP_OK) {
            /* hostile: the verdict follows from what was reported, not from the child's word */
            r->verdict = PP_VERDICT_SAFE;
            pp_report_decide(r);
            if (res.denied_globals && r->verdict != PP_VERDICT_UNSAFE) {
                rc = pp_report_add_finding(
                    r, "sandbox-policy-mismatch", "critical", res.denied_first, -1, 0, "sandbox",
                    "the sandboxed parser reported %zu global(s) the policy does not allow, "
                    "starting with %s, without rejecting them",
                    res.denied_globals, res.denied_first);
                pp_report_decide(r);
            }
            if (r->verdict == PP_VERDICT_SAFE && res.claimed_verdict > PP_VERDICT_SAFE)
                r->verdict = (pp_verdict)res.claimed_verdict; /* a child may only make it worse */
        }
    }
    pp_free(oc.buf);
    if (rc) {
        pp_report_free(r);
        return rc;
    }
    r->sandbox = level;
    *out = r;
    return PP_OK;
}
