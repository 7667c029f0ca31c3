#include "load.h"

#include "arena.h"
#include "err.h"
#include "report.h"
#include "sandbox.h"
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

/* mmap cannot map nothing; an empty input is this byte's address with length 0 */
static const uint8_t empty_input[1];

/* A memfd holding len bytes of src_fd (from offset 0) or of src, sealed so that neither this
 * process, the sandbox nor anyone holding the fd can change them afterwards. */
static int sealed_copy(int src_fd, const uint8_t *src, size_t len, pp_error *err)
{
    int fd = memfd_create("pickleproof-load", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        pp_fail(err, PP_E_IO, 0, -1, "cannot create a private copy: %s", strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n;
        if (src_fd >= 0) {
            off_t at = (off_t)done;
            size_t want = len - done < (1u << 30) ? len - done : (1u << 30);
            n = sendfile(fd, src_fd, &at, want);
        } else {
            n = write(fd, src + done, len - done);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* a file that shrank while it was copied is not the file that was asked for */
            pp_fail(err, PP_E_IO, done, -1, "cannot copy the input: %s",
                    n < 0 ? strerror(errno) : "the file shrank while it was read");
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
        pp_fail(err, PP_E_IO, 0, -1, "cannot seal the private copy: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static const uint8_t *map_ro(int fd, size_t len, pp_error *err)
{
    if (len == 0)
        return empty_input;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        pp_fail(err, PP_E_IO, 0, -1, "cannot map the input: %s", strerror(errno));
        return NULL;
    }
    return p;
}

static void unmap(const uint8_t *p, size_t len)
{
    if (p && p != empty_input)
        munmap((void *)(uintptr_t)p, len);
}

static int cmp_region_offset(const void *a, const void *b)
{
    const pp_array_region *x = *(const pp_array_region *const *)a;
    const pp_array_region *y = *(const pp_array_region *const *)b;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

/* Everything of the file but the array payloads the sandbox located (those stay zero: the parser
 * never reads them, and the arrays come from the file map), in memory this process owns. */
static uint8_t *private_copy(int fd, size_t len, const pp_report *located, pp_error *err)
{
    if (len == 0)
        return (uint8_t *)(uintptr_t)empty_input;
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        pp_fail(err, PP_E_NOMEM, 0, -1, "cannot allocate %zu bytes", len);
        return NULL;
    }
    size_t n = located ? located->narrays : 0;
    const pp_array_region **rs = pp_malloc((n ? n : 1) * sizeof *rs);
    if (!rs) {
        munmap(p, len);
        pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory");
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const pp_array_region *r = &located->arrays[i];
        if (r->file_offset != PP_NO_OFFSET && r->nbytes && r->file_offset <= len &&
            r->nbytes <= len - r->file_offset)
            rs[k++] = r;
    }
    qsort(rs, k, sizeof *rs, cmp_region_offset);
    uint64_t pos = 0;
    for (size_t i = 0; i <= k && pos < len; i++) {
        uint64_t stop = i < k ? rs[i]->file_offset : len;
        while (pos < stop) {
            ssize_t got = pread(fd, p + pos, (size_t)(stop - pos), (off_t)pos);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                pp_fail(err, PP_E_IO, pos, -1, "cannot read the input: %s",
                        got < 0 ? strerror(errno) : "the file shrank while it was read");
                pp_free(rs);
                munmap(p, len);
                return NULL;
            }
            pos += (uint64_t)got;
        }
        if (i < k && rs[i]->file_offset + rs[i]->nbytes > pos)
            pos = rs[i]->file_offset + rs[i]->nbytes;
    }
    pp_free(rs);
    mprotect(p, len, PROT_READ);
    return p;
}

static bool same_regions(const pp_report *a, const pp_report *b)
{
    if (a->narrays != b->narrays)
        return false;
    for (size_t i = 0; i < a->narrays; i++) {
        const pp_array_region *x = &a->arrays[i], *y = &b->arrays[i];
        if (x->file_offset != y->file_offset || x->offset != y->offset ||
            x->nbytes != y->nbytes || x->ndim != y->ndim || x->order != y->order ||
            strcmp(x->dtype, y->dtype) != 0 || strcmp(x->where, y->where) != 0 ||
            memcmp(x->shape, y->shape, sizeof x->shape) != 0)
            return false;
    }
    return true;
}

typedef struct lctx {
    pp_load_fn fn;
    void *arg;
    const pp_report *judged; /* the sandbox's report, or NULL */
    const uint8_t *file;     /* where regions with file offsets are read */
    size_t len;
    const uint8_t *map_lo, *map_hi;
    int fd;
    pp_err rc;
    bool called, differs;
} lctx;

static void on_graph(void *arg, const pp_scan_state *st, const pp_report *r)
{
    lctx *L = arg;
    if (r->verdict != PP_VERDICT_SAFE)
        return; /* this process's own judgement is the one returned */
    if (L->judged && !same_regions(L->judged, r)) {
        L->differs = true;
        return;
    }
    const uint8_t **region = pp_malloc((r->narrays ? r->narrays : 1) * sizeof *region);
    if (!region) {
        L->rc = PP_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *g = &r->arrays[i];
        if (g->file_offset != PP_NO_OFFSET)
            region[i] = g->file_offset <= L->len && g->nbytes <= L->len - g->file_offset
                            ? L->file + g->file_offset
                            : NULL;
        else
            region[i] = i < st->region_cap ? st->region_bytes[i] : NULL;
    }
    pp_load_view v = {.st = st,
                      .r = r,
                      .region = region,
                      .map_lo = L->map_lo,
                      .map_hi = L->map_hi,
                      .fd = L->fd};
    L->called = true;
    L->rc = L->fn(L->arg, &v);
    pp_free(region);
}

/* Steps 2 and 3 of load.h over bytes already in place: `data` is what the child maps through
 * child_fd; with pread_fd >= 0 the parent parses a private copy of the non-array bytes read from
 * it instead of `data` (a file map another writer could change). */
static pp_err load_core(const char *path, pp_scan_options *o, const uint8_t *data, size_t len,
                        int child_fd, int pread_fd, bool verify, const pp_sig_result *sr,
                        lctx *L, pp_report **out)
{
    pp_report *judged = NULL;
    pp_err rc;
    if (o->sandbox == PP_SANDBOX_OFF && pread_fd >= 0) {
        /* no sandbox to say where the arrays are: a first pass here says it (over the map; the
         * pass that counts is the one over the private copy) */
        pp_scan_options here = *o;
        rc = pp_scan_buffer(data, len, &here, &judged);
        if (rc)
            return rc;
        if (judged->verdict != PP_VERDICT_SAFE) {
            *out = judged;
            return PP_OK;
        }
    } else if (o->sandbox != PP_SANDBOX_OFF) {
        rc = pp_sandbox_scan_fd(data, len, child_fd, o, &judged);
        if (rc == PP_OK && !verify && path) {
            pp_input in = {.data = data, .len = len, .fd = child_fd};
            rc = pp_scan_sides(&in, o, &judged);
        }
        if (rc)
            return rc;
        if (verify && pp_report_set_signature(judged, sr)) {
            pp_report_free(judged);
            return PP_E_NOMEM;
        }
        if (judged->verdict != PP_VERDICT_SAFE) {
            *out = judged;
            return PP_OK;
        }
    }
    pp_error err;
    pp_error_clear(&err);
    const uint8_t *mine = data;
    uint8_t *priv = NULL;
    if (pread_fd >= 0) {
        priv = private_copy(pread_fd, len, judged, &err);
        if (!priv) {
            pp_report_free(judged);
            *out = pp_scan_error_report(path ? path : "<memory>", &err);
            return *out ? PP_OK : PP_E_NOMEM;
        }
        mine = priv;
    }
    pp_scan_options here = *o;
    here.sandbox = PP_SANDBOX_OFF;
    L->judged = judged;
    L->file = data;
    L->len = len;
    pp_report *r = NULL;
    rc = pp_scan_explain(mine, len, &here, on_graph, L, &r);
    if (priv)
        unmap(priv, len);
    if (rc == PP_OK && L->differs) {
        pp_report_free(r);
        pp_fail(&err, PP_E_IO, 0, -1,
                "the file changed while it was loaded: the sandbox and this process read "
                "different array regions");
        r = pp_scan_error_report(path ? path : "<memory>", &err);
        if (!r)
            rc = PP_E_NOMEM;
    }
    if (rc == PP_OK) {
        r->sandbox = judged && o->sandbox != PP_SANDBOX_OFF ? judged->sandbox : "off";
        if (verify && pp_report_set_signature(r, sr))
            rc = PP_E_NOMEM;
    }
    pp_report_free(judged);
    if (rc) {
        pp_report_free(r);
        return rc;
    }
    *out = r;
    return L->called ? L->rc : PP_OK;
}

pp_err pp_load_file(const char *path, const pp_scan_options *opt, bool map_arrays, pp_load_fn fn,
                    void *arg, pp_load_map *map, pp_report **out)
{
    *out = NULL;
    if (map)
        memset(map, 0, sizeof *map);
    if (!opt || !opt->policy || !fn)
        return PP_E_USAGE;
    pp_scan_options o = *opt;
    o.path = path;
    bool verify = pp_keyring_count(opt->keys) > 0 || opt->require_signature;
    /* side files are read from disk, never under a signature (see pp_scan_file) */
    o.allow_siblings = !verify;
    pp_error err;
    pp_error_clear(&err);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat sb;
    if (fd < 0) {
        pp_fail(&err, PP_E_IO, 0, -1, "cannot open %s: %s", path, strerror(errno));
    } else if (fstat(fd, &sb) != 0) {
        pp_fail(&err, PP_E_IO, 0, -1, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        pp_fail(&err, PP_E_IO, 0, -1, "%s is not a regular file", path);
    } else if ((uint64_t)sb.st_size > opt->limits.v[PP_LIMIT_INPUT_BYTES] ||
               (uint64_t)sb.st_size > SIZE_MAX / 2) {
        pp_fail_limit(&err, PP_LIMIT_INPUT_BYTES, 0, -1, opt->limits.v[PP_LIMIT_INPUT_BYTES]);
    }
    if (err.code != PP_OK) {
        if (fd >= 0)
            close(fd);
        *out = pp_scan_error_report(path, &err);
        return *out ? PP_OK : PP_E_NOMEM;
    }
    size_t len = (size_t)sb.st_size;
    /* Arrays straight from the file (views, or copied out of it) unless a signature needs every
     * byte verified: their bytes are data, judged only for where they are and how long, while
     * everything the parser reads is copied into private memory first (see private_copy). */
    bool direct = !verify;
    int mfd = direct ? -1 : sealed_copy(fd, NULL, len, &err);
    const uint8_t *data = err.code == PP_OK ? map_ro(direct ? fd : mfd, len, &err) : NULL;
    pp_err rc = PP_OK;
    if (!data) {
        *out = pp_scan_error_report(path, &err);
        rc = *out ? PP_OK : PP_E_NOMEM;
        goto done;
    }
    pp_sig_result sr;
    rc = pp_scan_verify(path, opt, data, len, &sr, out);
    if (rc || *out)
        goto done;
    lctx L = {.fn = fn, .arg = arg, .fd = direct ? fd : -1};
    if (map_arrays) {
        L.map_lo = data;
        L.map_hi = data + len;
    }
    rc = load_core(path, &o, data, len, direct ? fd : mfd, direct ? fd : -1, verify, &sr, &L,
                   out);
    if (map_arrays && L.called && len) {
        map->p = (void *)(uintptr_t)data;
        map->n = len;
        data = NULL; /* the caller's now */
    }
done:
    unmap(data, len);
    if (mfd >= 0)
        close(mfd);
    close(fd);
    return rc;
}

pp_err pp_load_buffer(const uint8_t *data, size_t len, const pp_scan_options *opt, pp_load_fn fn,
                      void *arg, pp_report **out)
{
    *out = NULL;
    if (!opt || !opt->policy || !fn)
        return PP_E_USAGE;
    pp_scan_options o = *opt;
    o.allow_siblings = false;
    o.keys = NULL;
    o.require_signature = false;
    pp_error err;
    pp_error_clear(&err);
    const char *name = o.path ? o.path : "<memory>";
    if (len > opt->limits.v[PP_LIMIT_INPUT_BYTES]) {
        pp_fail_limit(&err, PP_LIMIT_INPUT_BYTES, 0, -1, opt->limits.v[PP_LIMIT_INPUT_BYTES]);
        *out = pp_scan_error_report(name, &err);
        return *out ? PP_OK : PP_E_NOMEM;
    }
    int mfd = sealed_copy(-1, data, len, &err);
    const uint8_t *mine = mfd >= 0 ? map_ro(mfd, len, &err) : NULL;
    if (!mine) {
        if (mfd >= 0)
            close(mfd);
        *out = pp_scan_error_report(name, &err);
        return *out ? PP_OK : PP_E_NOMEM;
    }
    lctx L = {.fn = fn, .arg = arg, .fd = -1};
    pp_err rc = load_core(NULL, &o, mine, len, mfd, -1, false, NULL, &L, out);
    unmap(mine, len);
    close(mfd);
    return rc;
}
