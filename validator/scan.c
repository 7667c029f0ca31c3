#include "scan.h"

#include "arena.h"
#include "err.h"
#include "policy.h"
#include "report.h"

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
    /* the nesting budget over everything built, after the streams ran */
    if (st->error.code == PP_OK) {
        pp_val *roots = pp_malloc((st->nstreams ? st->nstreams : 1) * sizeof *roots);
        if (!roots)
            return PP_E_NOMEM;
        for (size_t i = 0; i < st->nstreams; i++)
            roots[i] = st->streams[i].root;
        int rc = pp_graph_check_depth(roots, st->nstreams, st->graph.events,
                                      opt->limits.v[PP_LIMIT_NESTING], &st->error);
        pp_free(roots);
        if (rc == PP_E_NOMEM)
            return PP_E_NOMEM;
        if (rc)
            pp_error_set_stream(&st->error, st->nstreams ? st->names[0] : "pickle");
    }
    return PP_OK;
}

void pp_scan_state_free(pp_scan_state *st)
{
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

pp_err pp_scan_buffer(const uint8_t *data, size_t len, const pp_scan_options *opt, pp_report **out)
{
    *out = NULL;
    if (!opt || !opt->policy)
        return PP_E_USAGE;
    pp_report *r = pp_report_new(opt->path);
    if (!r)
        return PP_E_NOMEM;
    r->bytes = len;
    pp_err rc = pp_report_set_container(r, "pickle");
    if (!rc)
        rc = pp_report_set_policies(r, opt->policy);
    pp_scan_state st;
    if (!rc)
        rc = pp_scan_streams(data, len, opt, false, &st);
    if (rc) {
        pp_report_free(r);
        return rc;
    }
    r->nstreams = st.nstreams;
    const char **names = pp_malloc((st.nstreams ? st.nstreams : 1) * sizeof *names);
    if (!names) {
        rc = PP_E_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < st.nstreams; i++)
        names[i] = st.names[i];
    /* Judge what ran even if the stream then broke: CPython runs a call before it fails. */
    rc = pp_policy_check(opt->policy, &st.graph, &opt->limits, names, st.nstreams, r);
    pp_free(names);
    if (rc == PP_E_LIMIT && st.error.code == PP_OK) {
        /* the judgement's own walk hit a limit: the file is not accepted */
        pp_fail_limit(&st.error, PP_LIMIT_NESTING, 0, -1, opt->limits.v[PP_LIMIT_NESTING]);
        rc = PP_OK;
    }
    if (rc)
        goto done;
    if (st.error.code != PP_OK && (rc = report_error(r, &st.error)))
        goto done;
    if (st.trailing &&
        (rc = pp_report_add_finding(r, "trailing-data", "medium", NULL, -1, st.trailing_offset,
                                    st.nstreams ? st.names[st.nstreams - 1] : "pickle",
                                    "%llu bytes after STOP at offset %llu are not a pickle",
                                    (unsigned long long)(len - st.trailing_offset),
                                    (unsigned long long)st.trailing_offset)))
        goto done;
    pp_report_decide(r);
done:
    pp_scan_state_free(&st);
    if (rc) {
        pp_report_free(r);
        return rc;
    }
    *out = r;
    return PP_OK;
}

pp_err pp_input_open(const char *path, uint64_t max_bytes, pp_input *in, pp_error *err)
{
    memset(in, 0, sizeof *in);
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
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
    if (S_ISREG(sb.st_mode)) {
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
        if (fd != STDIN_FILENO)
            close(fd);
        return PP_OK;
    }
    /* pipes and stdin: read it all, within the input limit */
    size_t cap = 1 << 16, n = 0;
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
    if (fd != STDIN_FILENO)
        close(fd);
    return PP_OK;
fail:
    if (fd != STDIN_FILENO)
        close(fd);
    return err->code;
}

void pp_input_close(pp_input *in)
{
    if (in->map)
        munmap(in->map, in->maplen);
    pp_free(in->heap);
    memset(in, 0, sizeof *in);
}

pp_err pp_scan_file(const char *path, const pp_scan_options *opt, pp_report **out)
{
    *out = NULL;
    pp_input in;
    pp_error err;
    pp_error_clear(&err);
    pp_scan_options o = *opt;
    o.path = path;
    pp_err rc = pp_input_open(path, opt->limits.v[PP_LIMIT_INPUT_BYTES], &in, &err);
    if (rc) {
        pp_report *r = pp_report_new(path);
        if (!r)
            return PP_E_NOMEM;
        r->error = err;
        snprintf(r->error.stream, sizeof r->error.stream, "%s", "file");
        if (rc == PP_E_LIMIT) {
            report_error(r, &r->error);
            pp_report_decide(r);
        } else {
            r->verdict = PP_VERDICT_ERROR;
            report_error(r, &r->error);
        }
        *out = r;
        return PP_OK;
    }
    rc = pp_scan_buffer(in.data, in.len, &o, out);
    pp_input_close(&in);
    return rc;
}
