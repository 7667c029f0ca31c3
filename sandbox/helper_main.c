/* pickleproof-sandbox: the confined parser. Spawned by the library with the request memfd on fd
 * 3 and the result pipe on fd 4 (see sandbox.h); not meant to be run by hand.
 *
 * Order matters: everything that needs the file system or the kernel's wider interface (the
 * dynamic loader, mapping the request, loading the trusted policy text) happens before
 * confinement; the untrusted bytes are touched only after the filter is in place. No stdio, no
 * exit(): one write of the result and _exit. */
#include "sandbox.h"

#include "arena.h"
#include "buf.h"
#include "cursor.h"
#include "scan.h"
#include "wire.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>

static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) _exit(PP_SBX_EXIT_WRITE);
        c += k;
        n -= (size_t)k;
    }
}

/* ---- the request ---------------------------------------------------------------------------- */

typedef struct request {
    pp_scan_options opt;
    pp_policy *policy;
    char *path;
    uint64_t address_space;
    const uint8_t *input;
    size_t input_len;
    pp_side_file sides[PP_SBX_MAX_SIDES];
    char *side_names[PP_SBX_MAX_SIDES];
} request;

static bool get_str(pp_cursor *c, const uint8_t **s, size_t *n)
{
    uint64_t len;
    if (!pp_cursor_le(c, 4, &len) || !pp_cursor_take(c, len, s)) return false;
    *n = (size_t)len;
    return true;
}

/* The request comes from the parent (trusted), but a version skew between an installed helper
 * and a newer library must fail cleanly, so it is read with the cursor all the same. */
static bool read_request(const uint8_t *m, size_t mlen, request *rq)
{
    pp_cursor c;
    pp_cursor_init(&c, m, mlen, 0);
    const uint8_t *magic, *path, *text;
    size_t pathn, textn;
    uint64_t ver, zero, hlen, flavor, enc, mode, hook, nlim, off, len;
    if (!pp_cursor_take(&c, 4, &magic) || memcmp(magic, "PPSQ", 4) != 0 ||
        !pp_cursor_le(&c, 2, &ver) || ver != PP_SBX_REQ_VERSION || !pp_cursor_le(&c, 2, &zero) ||
        (zero & ~(uint64_t)PP_SBX_REQ_EXTERNAL) != 0 ||
        !pp_cursor_le(&c, 4, &hlen) || !pp_cursor_le(&c, 1, &flavor) ||
        !pp_cursor_le(&c, 1, &enc) || !pp_cursor_le(&c, 1, &mode) || !pp_cursor_le(&c, 1, &hook) ||
        !pp_cursor_le(&c, 4, &nlim) || nlim != PP_LIMIT__COUNT)
        return false;
    pp_scan_options_init(&rq->opt, NULL);
    for (size_t i = 0; i < PP_LIMIT__COUNT; i++)
        if (!pp_cursor_le(&c, 8, &rq->opt.limits.v[i])) return false;
    if (!pp_cursor_le(&c, 8, &rq->address_space) || !pp_cursor_le(&c, 8, &off) ||
        !pp_cursor_le(&c, 8, &len) || !get_str(&c, &path, &pathn) || !get_str(&c, &text, &textn))
        return false;
    uint64_t nsides;
    if (!pp_cursor_le(&c, 4, &nsides)) return false;
    rq->opt.sides_final = (nsides & 0x80000000u) != 0;
    nsides &= 0x7fffffffu;
    if (nsides > PP_SBX_MAX_SIDES) return false;
    for (size_t i = 0; i < nsides; i++) {
        const uint8_t *nm, *d;
        size_t nn;
        uint64_t dl;
        if (!get_str(&c, &nm, &nn) || nn == 0 || nn > 255 || memchr(nm, 0, nn) ||
            !pp_cursor_le(&c, 8, &dl) || !pp_cursor_take(&c, dl, &d))
            return false;
        if (!(rq->side_names[i] = pp_malloc(nn + 1))) return false;
        memcpy(rq->side_names[i], nm, nn);
        rq->side_names[i][nn] = 0;
        rq->sides[i] = (pp_side_file){rq->side_names[i], d, (size_t)dl};
    }
    rq->opt.sides = rq->sides;
    rq->opt.nsides = (size_t)nsides;
    if (flavor > PP_FLAVOR_PY || enc > PP_ENC_BYTES) return false;
    rq->opt.flavor = (pp_flavor)flavor;
    rq->opt.encoding = (pp_encoding)enc;
    if (zero & PP_SBX_REQ_EXTERNAL) {
        /* the input is the file on fd 0: mapped before confinement, at most its size */
        struct stat sb;
        if (off != 0 || fstat(0, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0 ||
            len > (uint64_t)sb.st_size || len > SIZE_MAX)
            return false;
        rq->input = (const uint8_t *)"";
        if (len) {
            void *in = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, 0, 0);
            if (in == MAP_FAILED) return false;
            rq->input = in;
        }
    } else {
        if (off > mlen || len > mlen - off) return false;
        rq->input = m + off;
    }
    rq->input_len = (size_t)len;
    if (pathn) {
        if (!(rq->path = pp_malloc(pathn + 1))) return false;
        memcpy(rq->path, path, pathn);
        rq->path[pathn] = 0;
        rq->opt.path = rq->path;
    }
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&rq->policy) ||
        pp_policy_add_text(rq->policy, "sandbox", (const char *)text, textn, &err))
        return false;
    rq->opt.policy = rq->policy;
    return true;
}

/* ---- globals: the report lists joined names; the wire wants the VM's exact split --------------
 */

typedef struct split_map {
    const pp_node **slots;
    size_t nslots;
    pp_wire_global *out;
    bool nomem;
    int hook;
    pp_buf *frame; /* encoded here: the splits point into the graph, freed after the callback */
} split_map;

/* The report shows a NUL inside a name as the four characters \x00 (report.c). */
static uint64_t disp_hash_part(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i]) {
            h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
        } else {
            for (const char *e = "\\x00"; *e; e++)
                h = (h ^ (uint8_t)*e) * 0x100000001b3ull;
        }
    }
    return h;
}

static uint64_t node_hash(const pp_node *g)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = disp_hash_part(h, g->u.glob.module, g->u.glob.modlen);
    h = disp_hash_part(h, ".", 1);
    return disp_hash_part(h, g->u.glob.name, g->u.glob.namelen);
}

static bool node_matches(const pp_node *g, const char *shown)
{
    size_t k = 0;
    const char *parts[3] = {g->u.glob.module, ".", g->u.glob.name};
    size_t lens[3] = {g->u.glob.modlen, 1, g->u.glob.namelen};
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < lens[p]; i++) {
            if (parts[p][i]) {
                if (shown[k] != parts[p][i]) return false;
                k++;
            } else {
                if (strncmp(shown + k, "\\x00", 4) != 0) return false;
                k += 4;
            }
        }
    return shown[k] == 0;
}

static void collect_globals(void *arg, const pp_scan_state *st, const pp_report *r)
{
    split_map *m = arg;
    const pp_graph *g = &st->graph;
    size_t n = 0;
    for (size_t i = 0; i < g->nglobals_slots; i++)
        n += g->globals[i] != NULL;
    size_t ns = 16;
    while (ns < n * 2)
        ns *= 2;
    m->slots = pp_calloc(ns, sizeof *m->slots);
    m->out = pp_calloc(r->nglobals ? r->nglobals : 1, sizeof *m->out);
    if (!m->slots || !m->out) {
        m->nomem = true;
        return;
    }
    m->nslots = ns;
    for (size_t i = 0; i < g->nglobals_slots; i++) {
        const pp_node *nd = g->globals[i];
        if (!nd) continue;
        size_t j = (size_t)node_hash(nd) & (ns - 1);
        while (m->slots[j])
            j = (j + 1) & (ns - 1);
        m->slots[j] = nd;
    }
    for (size_t i = 0; i < r->nglobals; i++) {
        const char *s = r->globals[i];
        uint64_t h = disp_hash_part(0xcbf29ce484222325ull, s, strlen(s));
        const pp_node *found = NULL;
        for (size_t j = (size_t)h & (ns - 1); m->slots[j]; j = (j + 1) & (ns - 1))
            if (node_matches(m->slots[j], s)) {
                found = m->slots[j];
                break;
            }
        pp_wire_global *w = &m->out[i];
        if (found) {
            w->module = found->u.glob.module;
            w->modlen = found->u.glob.modlen;
            w->name = found->u.glob.name;
            w->namelen = found->u.glob.namelen;
        } else {
            /* not from the VM's intern table: the last dot splits, as policies read names */
            const char *dot = strrchr(s, '.');
            w->module = s;
            w->modlen = dot ? (size_t)(dot - s) : strlen(s);
            w->name = dot ? dot + 1 : "";
            w->namelen = dot ? strlen(dot + 1) : 0;
        }
    }
#ifdef PP_SANDBOX_TESTING
    if (m->hook == PP_SBX_HOOK_LIE) {
        /* an exploited parser claiming "safe" with no findings for a file it saw globals in */
        pp_report *lr = (pp_report *)(uintptr_t)r;
        for (size_t i = 0; i < lr->nfindings; i++)
            lr->findings[i].severity = "info"; /* leaks the copy: this process ends soon */
        pp_error_clear(&lr->error);
        lr->verdict = PP_VERDICT_SAFE;
    }
#endif
    pp_wire_encode(m->frame, PP_OK, r, m->out);
}

/* ---- test hooks: forbidden actions, run after confinement --------------------------------- */

static void run_hook(int hook)
{
#ifdef PP_SANDBOX_TESTING
    static volatile uint64_t sink;
    switch (hook) {
    case PP_SBX_HOOK_OPEN:
        (void)open("/etc/passwd", O_RDONLY);
        break;
    case PP_SBX_HOOK_EXECVE: {
        char *const av[] = {(char *)"/bin/true", NULL};
        execve("/bin/true", av, av + 1);
        break;
    }
    case PP_SBX_HOOK_SOCKET:
        (void)socket(AF_INET, SOCK_STREAM, 0);
        break;
    case PP_SBX_HOOK_PTRACE:
        (void)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        break;
    case PP_SBX_HOOK_MPROTECT_EXEC: {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) (void)mprotect(p, 4096, PROT_READ | PROT_EXEC);
        break;
    }
    case PP_SBX_HOOK_MMAP_EXEC:
        (void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        break;
    case PP_SBX_HOOK_WRITE_FD:
        (void)write(1, "x", 1);
        break;
#if defined(__x86_64__)
    case PP_SBX_HOOK_I386: {
        /* getpid through the 32-bit entry: arrives with AUDIT_ARCH_I386 */
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        (void)ret;
        break;
    }
    case PP_SBX_HOOK_X32:
        (void)syscall(39L | 0x40000000L);
        break;
#endif
    case PP_SBX_HOOK_SPIN:
        for (;;)
            sink++;
    case PP_SBX_HOOK_MEMBOMB: {
        /* allocate and touch until the address-space limit says no, then carry on like a
         * scan that ran out of memory */
        for (size_t n = 0; n < ((size_t)1 << 20); n++) {
            uint8_t *p = malloc((size_t)1 << 20);
            if (!p) return;
            memset(p, 1, (size_t)1 << 20);
            sink += p[4095];
        }
        break;
    }
    default:
        break;
    }
#else
    (void)hook;
#endif
}

int main(int argc, char **argv)
{
    uint64_t mode, hook, ppid;
    if (argc != 5 || strcmp(argv[1], "--child") != 0 ||
        !parse_uint(argv[2], PP_SBX_MODE_PROCESS, &mode) ||
        !parse_uint(argv[3], PP_SBX_HOOK__COUNT - 1, &hook) ||
        !parse_uint(argv[4], INT32_MAX, &ppid))
        return 2; /* run by hand: nothing to do */
    /* Only fds 0-4 stay: an fd the host leaked without O_CLOEXEC must not reach the parser. */
    if (syscall(SYS_close_range, PP_SBX_OUT_FD + 1, ~0U, 0) != 0)
        for (int fd = PP_SBX_OUT_FD + 1; fd < 65536; fd++)
            close(fd);
    /* Die with the parent, and close the race where it died before the prctl. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || getppid() != (pid_t)ppid)
        _exit(PP_SBX_EXIT_SETUP);
    struct stat sb;
    if (fstat(PP_SBX_IN_FD, &sb) != 0 || sb.st_size <= 0) _exit(PP_SBX_EXIT_REQUEST);
    size_t mlen = (size_t)sb.st_size;
    const uint8_t *m = mmap(NULL, mlen, PROT_READ, MAP_PRIVATE, PP_SBX_IN_FD, 0);
    if (m == MAP_FAILED) _exit(PP_SBX_EXIT_REQUEST);
    request rq;
    memset(&rq, 0, sizeof rq);
    if (!read_request(m, mlen, &rq)) _exit(PP_SBX_EXIT_REQUEST);
    pp_buf out;
    pp_buf_init(&out);
    const char *why;
    if (pp_sbx_confine((int)mode, rq.address_space, rq.opt.limits.v[PP_LIMIT_CPU_SECONDS], &why))
        _exit(PP_SBX_EXIT_SETUP);
    run_hook((int)hook);
#ifdef PP_SANDBOX_TESTING
    if (hook == PP_SBX_HOOK_GARBAGE) {
        write_all(PP_SBX_OUT_FD, "PPSR\x01\x00\x00\x00\xff\xff\xff\xff garbage", 21);
        _exit(0);
    }
    if (hook == PP_SBX_HOOK_HUGE) {
        static uint8_t chunk[1 << 16];
        for (;;)
            write_all(PP_SBX_OUT_FD, chunk, sizeof chunk);
    }
#endif
    pp_report *r = NULL;
    split_map sm;
    memset(&sm, 0, sizeof sm);
    sm.hook = (int)hook;
    sm.frame = &out;
    pp_err rc = pp_scan_explain(rq.input, rq.input_len, &rq.opt, collect_globals, &sm, &r);
#ifdef PP_SANDBOX_TESTING
    if (hook == PP_SBX_HOOK_MEMBOMB)
        rc = PP_E_NOMEM; /* the hook already spent the memory a bomb would */
#endif
    if (rc == PP_OK && (sm.nomem || !pp_buf_ok(&out))) rc = PP_E_NOMEM;
    if (rc != PP_OK) {
        pp_buf_free(&out); /* the frame, if any, was encoded but the scan failed after all */
        pp_buf_init(&out);
        pp_wire_encode(&out, rc, NULL, NULL);
        if (!pp_buf_ok(&out)) _exit(PP_SBX_EXIT_WRITE);
    }
    write_all(PP_SBX_OUT_FD, out.p, out.n);
    /* no cleanup: the process ends here, and exit() would run handlers the filter forbids */
    _exit(PP_SBX_EXIT_OK);
}
