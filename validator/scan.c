#include "scan.h"

#include "arena.h"
#include "err.h"
#include "policy.h"
#include "report.h"
#include "container.h"
#include "sandbox.h"
#include "sign.h"

#include <stdarg.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void pp_scan_options_init(pp_scan_options *o, const pp_policy *policy)
{
    memset(o, 0, sizeof *o);
    o->policy = policy;
    pp_limits_default(&o->limits);
    o->flavor = PP_FLAVOR_C;
    o->encoding = PP_ENC_ASCII;
}

static pp_err add_stream(pp_scan_state *st, size_t *cap)
{
    if (st->nstreams == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        pp_stream_result *ns = pp_realloc(st->streams, nc * sizeof *ns);
        if (!ns)
            return PP_E_NOMEM;
        st->streams = ns;
        char(*nn)[PP_MAX_STREAM_NAME] = pp_realloc(st->names, nc * sizeof *nn);
        if (!nn)
            return PP_E_NOMEM;
        st->names = nn;
        *cap = nc;
    }
    return PP_OK;
}

/* The nesting budget over everything built, after the streams ran (unless one already failed). */
static pp_err check_depth(pp_scan_state *st, const pp_limits *limits)
{
    if (st->error.code != PP_OK)
        return PP_OK;
    pp_val *roots = pp_malloc((st->nstreams ? st->nstreams : 1) * sizeof *roots);
    if (!roots)
        return PP_E_NOMEM;
    for (size_t i = 0; i < st->nstreams; i++)
        roots[i] = st->streams[i].root;
    int rc = pp_graph_check_depth(roots, st->nstreams, st->graph.events,
                                  limits->v[PP_LIMIT_NESTING], &st->error);
    pp_free(roots);
    if (rc == PP_E_NOMEM)
        return PP_E_NOMEM;
    if (rc)
        pp_error_set_stream(&st->error, st->nstreams ? st->names[0] : "pickle");
    return PP_OK;
}

pp_err pp_scan_streams(const uint8_t *data, size_t len, const pp_scan_options *opt, bool single,
                       pp_scan_state *st)
{
    memset(st, 0, sizeof *st);
    pp_error_clear(&st->error);
    pp_graph_init(&st->graph, opt->limits.v[PP_LIMIT_GRAPH_MEMORY]);
    if (len > opt->limits.v[PP_LIMIT_INPUT_BYTES]) {
        pp_fail_limit(&st->error, PP_LIMIT_INPUT_BYTES, 0, -1,
                      opt->limits.v[PP_LIMIT_INPUT_BYTES]);
        pp_error_set_stream(&st->error, "pickle");
        return PP_OK;
    }
    size_t cap = 0, pos = 0;
    for (;;) {
        if (add_stream(st, &cap))
            return PP_E_NOMEM;
        size_t i = st->nstreams;
        if (i == 0)
            snprintf(st->names[i], PP_MAX_STREAM_NAME, "pickle");
        else
            snprintf(st->names[i], PP_MAX_STREAM_NAME, "pickle#%zu", i);
        pp_vm_options vo = {
            .flavor = opt->flavor,
            .encoding = opt->encoding,
            .limits = &opt->limits,
            .stream_name = st->names[i],
            .stream_index = (uint32_t)i,
        };
        pp_error e;
        pp_error_clear(&e);
        size_t events_before = st->graph.nevents;
        pp_err rc = pp_vm_run(&st->graph, data + pos, len - pos, pos, &vo, &st->streams[i], &e);
        if (i > 0 && rc != PP_OK && st->graph.nevents == events_before &&
            rc != PP_E_LIMIT && rc != PP_E_NOMEM) {
            /* Not a pickle that does anything: plain trailing bytes after the last STOP. */
            st->trailing = true;
            st->trailing_offset = pos;
            break;
        }
        st->nstreams++;
        if (rc != PP_OK) {
            st->error = e;
            break;
        }
        pos = (size_t)(st->streams[i].end);
        if (pos >= len || single)
            break;
        if (st->nstreams >= opt->limits.v[PP_LIMIT_STREAMS]) {
            pp_fail_limit(&st->error, PP_LIMIT_STREAMS, pos, -1, opt->limits.v[PP_LIMIT_STREAMS]);
            pp_error_set_stream(&st->error, st->names[i]);
            break;
        }
    }
    return check_depth(st, &opt->limits);
}

void pp_scan_state_free(pp_scan_state *st)
{
    for (size_t i = 0; st->region_keys && i < st->region_cap; i++)
        pp_free(st->region_keys[i]);
    pp_free(st->region_keys);
    pp_free(st->region_bytes);
    pp_graph_free(&st->graph);
    pp_free(st->streams);
    pp_free(st->names);
    memset(st, 0, sizeof *st);
}

static pp_err report_error(pp_report *r, const pp_error *e)
{
    r->error = *e;
    const char *rule = pp_errname(e->code);
    return pp_report_add_finding(r, rule, "medium", NULL, e->opcode, e->offset, e->stream, "%s",
                                 e->msg);
}

/* ---- the scan context that containers feed --------------------------------------------------- */

struct pp_scan_ctx {
    const pp_scan_options *opt;
    pp_report *r;
    pp_scan_state st;
    size_t scap;
    void **kept;
    size_t nkept, keptcap;
    pp_policy_hooks hooks;
    bool has_hooks;
    unsigned depth;
    uint64_t inflated;
    const uint8_t *input;
    size_t input_len;
    bool container_set;
};

const pp_scan_options *pp_ctx_options(const pp_scan_ctx *c)
{
    return c->opt;
}

pp_report *pp_ctx_report(pp_scan_ctx *c)
{
    return c->r;
}

pp_graph *pp_ctx_graph(pp_scan_ctx *c)
{
    return &c->st.graph;
}

const uint8_t *pp_ctx_input(const pp_scan_ctx *c, size_t *len)
{
    *len = c->input_len;
    return c->input;
}

pp_err pp_ctx_keep(pp_scan_ctx *c, void *buf)
{
    if (c->nkept == c->keptcap) {
        size_t nc = c->keptcap ? c->keptcap * 2 : 8;
        void **nk = pp_realloc(c->kept, nc * sizeof *nk);
        if (!nk) {
            pp_free(buf);
            return PP_E_NOMEM;
        }
        c->kept = nk;
        c->keptcap = nc;
    }
    c->kept[c->nkept++] = buf;
    return PP_OK;
}

pp_err pp_ctx_region(pp_scan_ctx *c, const pp_array_region *reg, uint64_t *index)
{
    return pp_ctx_region_ex(c, reg, NULL, NULL, 0, index);
}

pp_err pp_ctx_region_ex(pp_scan_ctx *c, const pp_array_region *reg, const uint8_t *bytes,
                        const char *key, size_t keylen, uint64_t *index)
{
    pp_report *r = c->r;
    pp_scan_state *st = &c->st;
    if (r->narrays >= st->region_cap) {
        size_t nc = st->region_cap ? st->region_cap * 2 : 4;
        const uint8_t **nb = pp_realloc(st->region_bytes, nc * sizeof *nb);
        if (!nb)
            return PP_E_NOMEM;
        st->region_bytes = nb;
        char **nk = pp_realloc(st->region_keys, nc * sizeof *nk);
        if (!nk)
            return PP_E_NOMEM;
        st->region_keys = nk;
        for (size_t i = st->region_cap; i < nc; i++) {
            nb[i] = NULL;
            nk[i] = NULL;
        }
        st->region_cap = nc;
    }
    if (key) {
        char *k = pp_malloc(keylen + 1);
        if (!k)
            return PP_E_NOMEM;
        memcpy(k, key, keylen);
        k[keylen] = 0;
        st->region_keys[r->narrays] = k;
    }
    if (!bytes && reg->file_offset != PP_NO_OFFSET && reg->file_offset <= c->input_len &&
        reg->nbytes <= c->input_len - reg->file_offset)
        bytes = c->input + reg->file_offset;
    st->region_bytes[r->narrays] = bytes;
    if ((r->narrays & (r->narrays - 1)) == 0) { /* grow at powers of two */
        size_t nc = r->narrays ? r->narrays * 2 : 4;
        pp_array_region *na = pp_realloc(r->arrays, nc * sizeof *na);
        if (!na)
            return PP_E_NOMEM;
        r->arrays = na;
    }
    pp_array_region *d = &r->arrays[r->narrays];
    *d = *reg;
    d->where = pp_strdup(reg->where ? reg->where : "");
    if (!d->where)
        return PP_E_NOMEM;
    if (index)
        *index = r->narrays;
    r->narrays++;
    return PP_OK;
}

pp_err pp_ctx_finding(pp_scan_ctx *c, const char *rule, const char *severity, uint64_t offset,
                      const char *where, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pp_report_add_finding(c->r, rule, severity, NULL, -1, offset, where, "%s", msg);
}

pp_err pp_ctx_error(pp_scan_ctx *c, pp_err code, uint64_t offset, const char *where,
                    const char *fmt, ...)
{
    if (c->st.error.code != PP_OK)
        return code;
    char msg[sizeof c->st.error.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pp_fail(&c->st.error, code, offset, -1, "%s", msg);
    pp_error_set_stream(&c->st.error, where);
    return code;
}

pp_err pp_ctx_limit(pp_scan_ctx *c, pp_limit_id id, uint64_t offset, const char *where)
{
    if (c->st.error.code != PP_OK)
        return PP_E_LIMIT;
    pp_fail_limit(&c->st.error, id, offset, -1, c->opt->limits.v[id]);
    pp_error_set_stream(&c->st.error, where);
    return PP_E_LIMIT;
}

pp_err pp_ctx_set_container(pp_scan_ctx *c, const char *desc)
{
    if (c->container_set)
        return PP_OK;
    c->container_set = true;
    return pp_report_set_container(c->r, desc);
}

void pp_ctx_set_policy_hooks(pp_scan_ctx *c, const pp_policy_hooks *hooks)
{
    c->hooks = *hooks;
    c->has_hooks = true;
}

pp_err pp_ctx_inflated(pp_scan_ctx *c, uint64_t n, const char *where)
{
    uint64_t cap = c->opt->limits.v[PP_LIMIT_INFLATED_BYTES];
    if (n > cap || c->inflated > cap - n)
        return pp_ctx_limit(c, PP_LIMIT_INFLATED_BYTES, 0, where);
    c->inflated += n;
    return PP_OK;
}

/* One VM run over data[pos..len) as stream number st.nstreams. */
static pp_err run_one(pp_scan_ctx *c, const uint8_t *data, size_t len, size_t pos, uint64_t base,
                      const char *name, const pp_stream_opts *so, pp_error *e, size_t *events)
{
    pp_scan_state *st = &c->st;
    if (add_stream(st, &c->scap))
        return PP_E_NOMEM;
    size_t i = st->nstreams;
    snprintf(st->names[i], PP_MAX_STREAM_NAME, "%s", name);
    pp_vm_options vo = {
        .flavor = so->flavor,
        .encoding = so->encoding,
        .limits = &c->opt->limits,
        .stream_name = st->names[i],
        .stream_index = (uint32_t)i,
        .persistent_ids = so->persistent_ids,
        .hooks = so->hooks,
    };
    pp_error_clear(e);
    *events = st->graph.nevents;
    return pp_vm_run(&st->graph, data + pos, len - pos, base + pos, &vo, &st->streams[i], e);
}

pp_err pp_ctx_stream(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                     const char *name, const pp_stream_opts *so, size_t *end_out)
{
    pp_scan_state *st = &c->st;
    size_t pos = 0;
    if (base == PP_NO_OFFSET)
        base = 0;
    for (unsigned k = 0;; k++) {
        char nm[PP_MAX_STREAM_NAME];
        if (k == 0)
            snprintf(nm, sizeof nm, "%s", name);
        else
            snprintf(nm, sizeof nm, "%s#%u", name, k);
        pp_error e;
        size_t before = 0;
        pp_err rc = run_one(c, data, len, pos, base, nm, so, &e, &before);
        if (rc == PP_E_NOMEM && e.code == PP_OK)
            return PP_E_NOMEM;
        size_t i = st->nstreams;
        if (k > 0 && rc != PP_OK && st->graph.nevents == before && rc != PP_E_LIMIT &&
            rc != PP_E_NOMEM) {
            /* Not a pickle that does anything: plain trailing bytes after the last STOP. */
            return pp_ctx_finding(c, "trailing-data", "medium", base + pos, name,
                                  "%llu bytes after STOP at offset %llu are not a pickle",
                                  (unsigned long long)(len - pos),
                                  (unsigned long long)(base + pos));
        }
        st->nstreams++;
        if (rc != PP_OK) {
            if (st->error.code == PP_OK)
                st->error = e;
            return rc;
        }
        pos = (size_t)(st->streams[i].end - base);
        if (k == 0 && end_out)
            *end_out = pos;
        if (pos >= len || so->single || so->allow_trailing)
            return PP_OK;
        if (st->nstreams >= c->opt->limits.v[PP_LIMIT_STREAMS])
            return pp_ctx_limit(c, PP_LIMIT_STREAMS, base + pos, name);
    }
}

pp_err pp_container_pickle(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                           const char *where)
{
    pp_ctx_set_container(c, "pickle");
    pp_stream_opts so = {.flavor = c->opt->flavor, .encoding = c->opt->encoding};
    /* a bare pickle file is the stream "pickle"; inside a container, its container path */
    pp_err rc = pp_ctx_stream(c, data, len, base, c->depth <= 1 ? "pickle" : where, &so, NULL);
    return rc == PP_E_NOMEM ? rc : PP_OK;
}

/* Reads a whole regular file from an open fd (closed here) into a pp_malloc buffer: what side
 * files and signatures need. NOT_REGULAR and TOO_BIG are told apart for the callers' messages;
 * a file that shrinks while being read is SHORT. */
typedef enum {
    READ_OK,
    READ_NOT_REGULAR,
    READ_TOO_BIG,
    READ_SHORT,
    READ_NOMEM,
    READ_NOT_PLAIN,
    READ_OPEN_FAILED
} read_rc;

static read_rc read_regular(int fd, uint64_t max, uint8_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return READ_NOT_REGULAR;
    }
    if ((uint64_t)sb.st_size > max || (uint64_t)sb.st_size >= SIZE_MAX) {
        close(fd);
        return READ_TOO_BIG;
    }
    size_t want = (size_t)sb.st_size, got = 0;
    uint8_t *buf = pp_malloc(want + 1);
    if (!buf) {
        close(fd);
        return READ_NOMEM;
    }
    while (got < want) {
        ssize_t k = read(fd, buf + got, want - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    *out = buf;
    *n = got;
    return got == want ? READ_OK : READ_SHORT;
}

/* A side file: a plain name (hostile: it comes from the file) opened in the directory of
 * `path` without following links. */
static read_rc read_side(const char *path, const char *name, uint64_t max, uint8_t **buf,
                         size_t *n, int *eno)
{
    *buf = NULL;
    *n = 0;
    if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return READ_NOT_PLAIN;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path + (slash == path)), path);
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        *eno = errno;
        return READ_OPEN_FAILED;
    }
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    *eno = errno;
    close(dfd);
    if (fd < 0)
        return READ_OPEN_FAILED;
    return read_regular(fd, max, buf, n);
}

pp_err pp_ctx_open_sibling(pp_scan_ctx *c, const char *name, const char *where,
                           const uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    const pp_scan_options *o = c->opt;
    for (size_t i = 0; i < o->nsides; i++)
        if (strcmp(o->sides[i].name, name) == 0) {
            *data = o->sides[i].data;
            *len = o->sides[i].len;
            return PP_OK;
        }
    if (o->sides_final)
        return pp_ctx_error(c, PP_E_IO, 0, where, "cannot open side file %s", name);
    const char *path = c->opt->path;
    if (!c->opt->allow_siblings && path && strcmp(path, "-") != 0 &&
        pp_report_add_finding(c->r, PP_SIDE_FILE_NEEDED, "info", NULL, -1, 0, where, "%s",
                              name))
        return PP_E_NOMEM;
    if (!c->opt->allow_siblings || !path || strcmp(path, "-") == 0)
        return pp_ctx_error(c, PP_E_UNSUPPORTED, 0, where,
                            "side file '%s' cannot be read here: only an unsigned scan of the "
                            "file by path outside the sandbox (--sandbox=off) reads side files",
                            name);
    uint8_t *buf;
    size_t n;
    int eno = 0;
    read_rc rr = read_side(path, name, c->opt->limits.v[PP_LIMIT_INPUT_BYTES], &buf, &n, &eno);
    if (rr == READ_NOMEM)
        return PP_E_NOMEM;
    if (buf && pp_ctx_keep(c, buf))
        return PP_E_NOMEM;
    switch (rr) {
    case READ_NOT_PLAIN:
        return pp_ctx_error(c, PP_E_BAD_VALUE, 0, where, "side file name '%s' is not plain",
                            name);
    case READ_OPEN_FAILED:
        return pp_ctx_error(c, PP_E_IO, 0, where, "cannot open side file %s: %s", name,
                            strerror(eno));
    case READ_NOT_REGULAR:
        return pp_ctx_error(c, PP_E_IO, 0, where, "side file %s is not a regular file", name);
    case READ_TOO_BIG: return pp_ctx_limit(c, PP_LIMIT_INPUT_BYTES, 0, where);
    case READ_SHORT:
        return pp_ctx_error(c, PP_E_IO, 0, where, "side file %s changed while reading", name);
    default: break;
    }
    *data = buf;
    *len = n;
    return PP_OK;
}

pp_err pp_ctx_scan_any(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                       const char *where)
{
    if (c->depth >= c->opt->limits.v[PP_LIMIT_ARCHIVE_DEPTH])
        return pp_ctx_limit(c, PP_LIMIT_ARCHIVE_DEPTH, base == PP_NO_OFFSET ? 0 : base, where);
    c->depth++;
    pp_err rc;
    switch (pp_detect(data, len)) {
    case PP_CT_JOBLIB:
    case PP_CT_COMPRESSED:
    case PP_CT_JOBLIB_ZF: rc = pp_container_joblib(c, data, len, base, where); break;
    case PP_CT_NPY: rc = pp_container_npy(c, data, len, base, where); break;
    case PP_CT_ZIP: rc = pp_container_zip(c, data, len, base, where); break;
    case PP_CT_TORCH_LEGACY: rc = pp_container_torch_legacy(c, data, len, base, where); break;
    case PP_CT_TAR: rc = pp_container_tar(c, data, len, base, where); break;
    default: rc = pp_container_joblib(c, data, len, base, where); break;
    }
    c->depth--;
    return rc;
}

static void ctx_free(pp_scan_ctx *c)
{
    for (size_t i = 0; i < c->nkept; i++)
        pp_free(c->kept[i]);
    pp_free(c->kept);
    pp_scan_state_free(&c->st);
}

/* Runs the containers and the VM; leaves the graph in c for the judgement (and explain). */
static pp_err ctx_run(pp_scan_ctx *c, const uint8_t *data, size_t len, const pp_scan_options *opt,
                      pp_report *r)
{
    memset(c, 0, sizeof *c);
    c->opt = opt;
    c->r = r;
    c->input = data;
    c->input_len = len;
    pp_error_clear(&c->st.error);
    pp_graph_init(&c->st.graph, opt->limits.v[PP_LIMIT_GRAPH_MEMORY]);
    if (len > opt->limits.v[PP_LIMIT_INPUT_BYTES]) {
        pp_ctx_limit(c, PP_LIMIT_INPUT_BYTES, 0, "file");
        return PP_OK;
    }
    const char *where = opt->path ? opt->path : "<memory>";
    pp_err rc = pp_ctx_scan_any(c, data, len, 0, where);
    if (rc == PP_E_NOMEM)
        return rc;
    if (!c->container_set)
        pp_ctx_set_container(c, "pickle");
    return PP_OK;
}

static pp_err judge(pp_scan_ctx *c)
{
    pp_scan_state *st = &c->st;
    pp_report *r = c->r;
    pp_err rc = check_depth(st, &c->opt->limits);
    if (rc)
        return rc;
    r->nstreams = st->nstreams;
    const char **names = pp_malloc((st->nstreams ? st->nstreams : 1) * sizeof *names);
    if (!names)
        return PP_E_NOMEM;
    for (size_t i = 0; i < st->nstreams; i++)
        names[i] = st->names[i];
    /* Judge what ran even if a stream then broke: CPython runs a call before it fails. */
    rc = pp_policy_check_ex(c->opt->policy, &st->graph, &c->opt->limits, names, st->nstreams,
                            c->has_hooks ? &c->hooks : NULL, r);
    pp_free(names);
    if (rc == PP_E_LIMIT && st->error.code == PP_OK) {
        /* the judgement's own walk hit a limit: the file is not accepted */
        pp_fail_limit(&st->error, PP_LIMIT_NESTING, 0, -1, c->opt->limits.v[PP_LIMIT_NESTING]);
        rc = PP_OK;
    }
    if (rc)
        return rc;
    if (st->error.code != PP_OK && (rc = report_error(r, &st->error)))
        return rc;
    pp_report_decide(r);
    return PP_OK;
}

pp_err pp_scan_explain(const uint8_t *data, size_t len, const pp_scan_options *opt,
                       pp_explain_fn fn, void *arg, pp_report **out)
{
    *out = NULL;
    if (!opt || !opt->policy)
        return PP_E_USAGE;
    pp_report *r = pp_report_new(opt->path);
    if (!r)
        return PP_E_NOMEM;
    r->bytes = len;
    pp_scan_ctx c;
    memset(&c, 0, sizeof c);
    pp_err rc = pp_report_set_policies(r, opt->policy);
    if (!rc)
        rc = ctx_run(&c, data, len, opt, r);
    if (!rc)
        rc = judge(&c);
    if (!rc && fn)
        fn(arg, &c.st, r);
    ctx_free(&c);
    if (rc) {
        pp_report_free(r);
        return rc;
    }
    *out = r;
    return PP_OK;
}

pp_err pp_scan_buffer(const uint8_t *data, size_t len, const pp_scan_options *opt, pp_report **out)
{
    return pp_scan_explain(data, len, opt, NULL, NULL, out);
}

static pp_err input_open(const char *path, uint64_t max_bytes, bool copy, pp_input *in,
                         pp_error *err);

pp_err pp_input_open(const char *path, uint64_t max_bytes, pp_input *in, pp_error *err)
{
    return input_open(path, max_bytes, false, in, err);
}

pp_err pp_input_read(const char *path, uint64_t max_bytes, pp_input *in, pp_error *err)
{
    return input_open(path, max_bytes, true, in, err);
}

static pp_err input_open(const char *path, uint64_t max_bytes, bool copy, pp_input *in,
                         pp_error *err)
{
    memset(in, 0, sizeof *in);
    in->fd = -1;
    /* ownership by name, not by number: with stdin closed, open() may return 0 */
    bool owned = strcmp(path, "-") != 0;
    int fd = owned ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd < 0)
        return pp_fail(err, PP_E_IO, 0, -1, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        pp_fail(err, PP_E_IO, 0, -1, "cannot stat %s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        pp_fail(err, PP_E_IO, 0, -1, "%s is a directory", path);
        goto fail;
    }
    if (S_ISREG(sb.st_mode) && !copy) {
        if ((uint64_t)sb.st_size > max_bytes) {
            pp_fail_limit(err, PP_LIMIT_INPUT_BYTES, 0, -1, max_bytes);
            goto fail;
        }
        if (sb.st_size == 0) {
            in->data = (const uint8_t *)"";
            in->len = 0;
        } else {
            void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                pp_fail(err, PP_E_IO, 0, -1, "cannot map %s: %s", path, strerror(errno));
                goto fail;
            }
            in->map = m;
            in->maplen = (size_t)sb.st_size;
            in->data = m;
            in->len = (size_t)sb.st_size;
        }
        if (owned && in->map)
            in->fd = fd; /* the sandbox maps the same file instead of copying it */
        else if (owned)
            close(fd);
        return PP_OK;
    }
    /* pipes and stdin, or a private copy: read it all, within the input limit */
    size_t cap = 1 << 16, n = 0;
    if (S_ISREG(sb.st_mode)) {
        if ((uint64_t)sb.st_size > max_bytes) {
            pp_fail_limit(err, PP_LIMIT_INPUT_BYTES, 0, -1, max_bytes);
            goto fail;
        }
        cap = (size_t)sb.st_size + 1; /* the file may still grow: the loop below copes */
    }
    uint8_t *buf = pp_malloc(cap);
    if (!buf) {
        pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory reading %s", path);
        goto fail;
    }
    for (;;) {
        if (n == cap) {
            if (cap > max_bytes) {
                pp_free(buf);
                pp_fail_limit(err, PP_LIMIT_INPUT_BYTES, 0, -1, max_bytes);
                goto fail;
            }
            uint8_t *nb = pp_realloc(buf, cap * 2);
            if (!nb) {
                pp_free(buf);
                pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory reading %s", path);
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            pp_free(buf);
            pp_fail(err, PP_E_IO, 0, -1, "cannot read %s: %s", path, strerror(errno));
            goto fail;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    if (n > max_bytes) {
        pp_free(buf);
        pp_fail_limit(err, PP_LIMIT_INPUT_BYTES, 0, -1, max_bytes);
        goto fail;
    }
    in->heap = buf;
    in->data = buf;
    in->len = n;
    if (owned)
        close(fd);
    return PP_OK;
fail:
    if (owned)
        close(fd);
    return err->code;
}

void pp_input_close(pp_input *in)
{
    if (in->map)
        munmap(in->map, in->maplen);
    if (in->fd >= 0)
        close(in->fd);
    pp_free(in->heap);
    memset(in, 0, sizeof *in);
    in->fd = -1;
}

pp_report *pp_scan_error_report(const char *path, const pp_error *err)
{
    pp_report *r = pp_report_new(path);
    if (!r)
        return NULL;
    r->error = *err;
    snprintf(r->error.stream, sizeof r->error.stream, "%s", "file");
    report_error(r, &r->error);
    if (err->code == PP_E_LIMIT)
        pp_report_decide(r);
    else
        r->verdict = PP_VERDICT_ERROR;
    return r;
}

/* The confined parser cannot open files: when it asked for side files (old joblib), read them
 * here, as pp_ctx_open_sibling would, and run it once more with them; whatever could not be read
 * is then missing. Only for unsigned scans: a signature covers the main file alone. */
pp_err pp_scan_sides(const pp_input *in, pp_scan_options *o, pp_report **out)
{
    pp_side_file sides[PP_MAX_SIDES];
    uint8_t *bufs[PP_MAX_SIDES];
    size_t n = 0;
    pp_report *r = *out;
    for (size_t i = 0; i < r->nfindings && n < PP_MAX_SIDES; i++) {
        const pp_finding *f = &r->findings[i];
        if (strcmp(f->rule, PP_SIDE_FILE_NEEDED) != 0)
            continue;
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(sides[k].name, f->message) == 0;
        if (dup)
            continue;
        size_t len = 0;
        int eno = 0;
        read_rc rr = read_side(o->path, f->message, o->limits.v[PP_LIMIT_INPUT_BYTES], &bufs[n],
                               &len, &eno);
        if (rr != READ_OK) {
            pp_free(bufs[n]);
            continue; /* missing: the second run says so */
        }
        sides[n].name = f->message;
        sides[n].data = bufs[n];
        sides[n].len = len;
        n++;
    }
    bool asked = false;
    for (size_t i = 0; i < r->nfindings && !asked; i++)
        asked = strcmp(r->findings[i].rule, PP_SIDE_FILE_NEEDED) == 0;
    if (!asked)
        return PP_OK;
    o->sides = sides;
    o->nsides = n;
    o->sides_final = true;
    pp_report *again = NULL;
    pp_err rc = pp_sandbox_scan_fd(in->data, in->len, in->fd, o, &again);
    o->sides = NULL;
    o->nsides = 0;
    for (size_t i = 0; i < n; i++)
        pp_free(bufs[i]);
    if (rc == PP_OK) {
        pp_report_free(r);
        *out = again;
    }
    return rc;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* Reads the detached signature: NULL (and *n = 0) when there is none. */
static uint8_t *read_signature(const char *path, size_t *n, pp_error *err)
{
    *n = 0;
    /* hostile neighbours: a FIFO or device at the signature path must not block the scan */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            pp_fail(err, PP_E_IO, 0, -1, "cannot open signature %s: %s", path, strerror(errno));
        return NULL; /* no signature */
    }
    uint8_t *p;
    switch (read_regular(fd, PP_SIG_FILE_MAX, &p, n)) {
    case READ_NOT_REGULAR:
        pp_fail(err, PP_E_IO, 0, -1, "signature %s is not a regular file", path);
        return NULL;
    case READ_NOMEM:
        pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory reading %s", path);
        return NULL;
    case READ_TOO_BIG: /* oversized: a signature that does not parse */
        *n = 0;
        return pp_malloc(1);
    default: /* a short read is a signature that will not verify */
        return p;
    }
}

pp_err pp_scan_verify(const char *path, const pp_scan_options *opt, const uint8_t *data,
                      size_t len, pp_sig_result *srp, pp_report **out)
{
    *out = NULL;
    pp_sig_result sr;
    memset(&sr, 0, sizeof sr);
    *srp = sr;
    if (!(pp_keyring_count(opt->keys) > 0 || opt->require_signature))
        return PP_OK;
    char sigpath[4096];
    if (opt->signature_path)
        snprintf(sigpath, sizeof sigpath, "%s", opt->signature_path);
    else
        snprintf(sigpath, sizeof sigpath, "%s.minisig", path);
    size_t siglen = 0;
    pp_error serr;
    pp_error_clear(&serr);
    uint8_t *sig = read_signature(sigpath, &siglen, &serr);
    if (!sig && serr.code != PP_OK) {
        *out = pp_scan_error_report(path, &serr);
        return *out ? PP_OK : PP_E_NOMEM;
    }
    size_t nkeys = 0;
    const pp_pubkey *keys = pp_keyring_keys(opt->keys, &nkeys);
    if (nkeys == 0) {
        sr.status = sig ? PP_SIG_BAD : PP_SIG_UNSIGNED;
        snprintf(sr.reason, sizeof sr.reason, "no trusted key was given");
    } else {
        pp_error verr;
        pp_error_clear(&verr);
        pp_err rc = pp_verify_buffer(data, len, base_name(path), keys, nkeys, sig, siglen, 0, &sr,
                                     &verr);
        if (rc) {
            pp_free(sig);
            *out = pp_scan_error_report(path, &verr);
            return *out ? PP_OK : PP_E_NOMEM;
        }
    }
    pp_free(sig);
    *srp = sr;
    if (sr.status == PP_SIG_BAD || (sr.status == PP_SIG_UNSIGNED && opt->require_signature)) {
        /* nothing unverified is parsed */
        pp_report *r = pp_report_new(path);
        if (!r)
            return PP_E_NOMEM;
        r->bytes = len;
        if (pp_report_set_policies(r, opt->policy)) {
            pp_report_free(r);
            return PP_E_NOMEM;
        }
        r->verdict = sr.status == PP_SIG_BAD ? PP_VERDICT_BAD_SIGNATURE : PP_VERDICT_UNSIGNED;
        if (pp_report_set_signature(r, &sr) ||
            pp_report_add_finding(r, sr.status == PP_SIG_BAD ? "bad-signature" : "unsigned",
                                  "critical", NULL, -1, 0, "file", "%s",
                                  sr.reason[0] ? sr.reason : "no signature")) {
            pp_report_free(r);
            return PP_E_NOMEM;
        }
        pp_report_decide(r);
        *out = r;
    }
    return PP_OK;
}

pp_err pp_scan_file(const char *path, const pp_scan_options *opt, pp_report **out)
{
    return pp_scan_file_explain(path, opt, NULL, NULL, out);
}

pp_err pp_scan_file_explain(const char *path, const pp_scan_options *opt, pp_explain_fn fn,
                            void *arg, pp_report **out)
{
    *out = NULL;
    pp_input in;
    pp_error err;
    pp_error_clear(&err);
    pp_scan_options o = *opt;
    o.path = path;
    bool verify = pp_keyring_count(opt->keys) > 0 || opt->require_signature;
    /* Side files (old joblib) are read from disk: never under a signature, which covers only
     * this file's bytes; such models are signed through a manifest. */
    o.allow_siblings = !verify;
    /* With signatures the bytes are copied into memory this process owns before they are
     * verified: a mapping would show another writer's later changes to what is parsed. */
    pp_err rc = verify ? pp_input_read(path, opt->limits.v[PP_LIMIT_INPUT_BYTES], &in, &err)
                       : pp_input_open(path, opt->limits.v[PP_LIMIT_INPUT_BYTES], &in, &err);
    if (rc) {
        *out = pp_scan_error_report(path, &err);
        return *out ? PP_OK : PP_E_NOMEM;
    }
    pp_sig_result sr;
    bool checked = verify;
    rc = pp_scan_verify(path, opt, in.data, in.len, &sr, out);
    if (rc || *out) {
        pp_input_close(&in);
        return rc;
    }
    /* explain needs the graph in this process; everything else parses in the sandbox */
    if (fn || o.sandbox == PP_SANDBOX_OFF)
        rc = pp_scan_explain(in.data, in.len, &o, fn, arg, out);
    else /* unverified bytes: the child maps the file itself; verified ones go as a copy */
        rc = pp_sandbox_scan_fd(in.data, in.len, verify ? -1 : in.fd, &o, out);
    if (rc == PP_OK && !fn && !verify && o.sandbox != PP_SANDBOX_OFF)
        rc = pp_scan_sides(&in, &o, out);
    pp_input_close(&in);
    if (rc == PP_OK && checked && pp_report_set_signature(*out, &sr)) {
        pp_report_free(*out);
        *out = NULL;
        return PP_E_NOMEM;
    }
    return rc;
}
