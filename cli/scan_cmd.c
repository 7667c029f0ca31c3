/* scan, explain and dump: their options, pickleproof.toml, and the parallel scan of a walked
 * file list with results printed in walk order. */
#include "cli.h"
#include "config.h"
#include "output.h"
#include "walk.h"

#include "pickleproof.h"

#include "buf.h"
#include "dump.h"
#include "err.h"
#include "explain.h"
#include "report.h"
#include "scan.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 256 /* each running scan holds a few descriptors and one helper process */

typedef struct strvec {
    const char **v;
    size_t n;
} strvec;

typedef struct cli {
    const char *cmd;
    /* flags as given */
    const char *format, *output, *color, *sandbox, *signature, *config;
    strvec policies, limits, keys, include, exclude;
    long jobs;
    bool follow, require_sig, json, verbose, quiet, no_config, no_sandbox;
    pp_flavor flavor;
    pp_encoding encoding;
    const char **files;
    size_t nfiles;
    /* what they add up to with the config file */
    pp_config conf;
    pp_policy *policy;
    pp_keyring *keyring;
    pp_scan_options opt;
    int fmt;
    bool color_on;
} cli;

static int push(strvec *s, const char *v)
{
    const char **nv = realloc(s->v, (s->n + 1) * sizeof *nv);
    if (!nv) return -1;
    s->v = nv;
    s->v[s->n++] = v;
    return 0;
}

static int parse_sandbox(const char *v, pp_sandbox_level *out)
{
    static const char *const names[] = {"require", "auto", "process", "off"};
    for (int i = 0; i < 4; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = (pp_sandbox_level)i;
            return 0;
        }
    return -1;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s) return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > hi) return false;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

static int parse_args(cli *c, int argc, char **argv)
{
    bool dashdash = false;
    const char *cmd = c->cmd;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define TAKE(flag)                                                                                 \
    (strcmp(a, flag) == 0                                                                          \
         ? (i + 1 < argc ? (val = argv[++i], 1) : -1)                                              \
         : (strncmp(a, flag "=", sizeof(flag)) == 0 ? (val = a + sizeof(flag), 1) : 0))
#define NEED(msg)                                                                                  \
    do {                                                                                           \
        if (t < 0) return pp_cli_usage_error(cmd, msg, NULL);                                      \
    } while (0)
        int t;
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            c->files[c->nfiles++] = a;
        } else if (strcmp(a, "--") == 0) {
            dashdash = true;
        } else if ((t = TAKE("--format"))) {
            NEED("--format takes text, json, jsonl or sarif");
            if (pp_out_format_parse(val) < 0)
                return pp_cli_usage_error(cmd, "--format takes text, json, jsonl or sarif", val);
            c->format = val;
        } else if ((t = TAKE("--output")) || (t = TAKE("-o"))) {
            NEED("--output needs a file");
            c->output = val;
        } else if ((t = TAKE("--color")) || (t = TAKE("--colour"))) {
            NEED("--color takes auto, always or never");
            if (strcmp(val, "auto") && strcmp(val, "always") && strcmp(val, "never"))
                return pp_cli_usage_error(cmd, "--color takes auto, always or never", val);
            c->color = val;
        } else if ((t = TAKE("--include"))) {
            NEED("--include needs a glob");
            if (push(&c->include, val)) return PP_EXIT_USAGE;
        } else if ((t = TAKE("--exclude"))) {
            NEED("--exclude needs a glob");
            if (push(&c->exclude, val)) return PP_EXIT_USAGE;
        } else if (strcmp(a, "--follow-symlinks") == 0 || strcmp(a, "-L") == 0) {
            c->follow = true;
        } else if ((t = TAKE("--jobs")) || (t = TAKE("-j")) ||
                   (strncmp(a, "-j", 2) == 0 && a[2] && (val = a + 2, t = 1))) {
            NEED("--jobs needs a number");
            if (!parse_long(val, 1, MAX_JOBS, &c->jobs))
                return pp_cli_usage_error(cmd, "--jobs takes a number from 1 to 256", val);
        } else if ((t = TAKE("--policy"))) {
            NEED("--policy needs a name or file");
            if (push(&c->policies, val)) return PP_EXIT_USAGE;
        } else if ((t = TAKE("--limit"))) {
            NEED("--limit takes NAME=VALUE");
            pp_limits scratch;
            pp_limits_default(&scratch);
            if (pp_limits_set(&scratch, val) != PP_OK)
                return pp_cli_usage_error(cmd, "--limit takes NAME=VALUE with a known limit name",
                                          val);
            if (push(&c->limits, val)) return PP_EXIT_USAGE;
        } else if ((t = TAKE("--flavor"))) {
            NEED("--flavor takes c or py");
            if (strcmp(val, "c") == 0)
                c->flavor = PP_FLAVOR_C;
            else if (strcmp(val, "py") == 0)
                c->flavor = PP_FLAVOR_PY;
            else
                return pp_cli_usage_error(cmd, "--flavor takes c or py", val);
        } else if ((t = TAKE("--encoding"))) {
            NEED("--encoding needs a value");
            if (strcmp(val, "ascii") == 0)
                c->encoding = PP_ENC_ASCII;
            else if (strcmp(val, "latin1") == 0 || strcmp(val, "latin-1") == 0)
                c->encoding = PP_ENC_LATIN1;
            else if (strcmp(val, "utf-8") == 0 || strcmp(val, "utf8") == 0)
                c->encoding = PP_ENC_UTF8;
            else if (strcmp(val, "bytes") == 0)
                c->encoding = PP_ENC_BYTES;
            else
                return pp_cli_usage_error(cmd, "--encoding takes ascii, latin1, utf-8 or bytes",
                                          val);
        } else if ((t = TAKE("--sandbox"))) {
            pp_sandbox_level l;
            NEED("--sandbox takes require, auto, process or off");
            if (parse_sandbox(val, &l))
                return pp_cli_usage_error(cmd, "--sandbox takes require, auto, process or off",
                                          val);
            c->sandbox = val;
        } else if (strcmp(a, "--no-sandbox") == 0) {
            c->sandbox = "off";
        } else if ((t = TAKE("--key"))) {
            NEED("--key needs a public key or keyring file");
            if (push(&c->keys, val)) return PP_EXIT_USAGE;
        } else if ((t = TAKE("--signature"))) {
            NEED("--signature needs a file");
            c->signature = val;
        } else if (strcmp(a, "--require-signature") == 0) {
            c->require_sig = true;
        } else if ((t = TAKE("--config"))) {
            NEED("--config needs a file");
            c->config = val;
        } else if (strcmp(a, "--no-config") == 0) {
            c->no_config = true;
        } else if (strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            c->verbose = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            c->quiet = true;
        } else {
            return pp_cli_usage_error(cmd, "unknown option", a);
        }
#undef NEED
#undef TAKE
    }
    if (c->config && c->no_config)
        return pp_cli_usage_error(cmd, "--config and --no-config exclude each other", NULL);
    return 0;
}

static int add_policy(cli *c, const char *name)
{
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_add(c->policy, name, &err) != PP_OK) {
        fprintf(stderr, "pickleproof: policy %s: %s\n", name, err.msg);
        return PP_EXIT_USAGE;
    }
    return 0;
}

static int add_key(cli *c, const char *path)
{
    pp_error err;
    pp_error_clear(&err);
    if (!c->keyring && pp_keyring_new(&c->keyring) != PP_OK)
        return pp_cli_usage_error(c->cmd, "out of memory", NULL);
    if (pp_keyring_add_file(c->keyring, path, &err) != PP_OK) {
        fprintf(stderr, "pickleproof: %s\n", err.msg);
        return PP_EXIT_USAGE;
    }
    c->opt.keys = c->keyring;
    return 0;
}

/* Flags, then the environment (PICKLEPROOF_SANDBOX), then pickleproof.toml, then defaults. */
static int settle(cli *c)
{
    const char *cmd = c->cmd;
    if (!c->no_config) {
        char *path = c->config ? strdup(c->config) : pp_config_discover();
        if (path && pp_config_load(path, &c->conf) != 0) {
            free(path);
            return PP_EXIT_USAGE;
        }
        free(path);
    }
    const pp_config *f = &c->conf;
    int rc;
    if (c->policies.n) {
        for (size_t i = 0; i < c->policies.n; i++)
            if ((rc = add_policy(c, c->policies.v[i]))) return rc;
    } else if (f->policies.n) {
        for (size_t i = 0; i < f->policies.n; i++)
            if ((rc = add_policy(c, f->policies.v[i]))) return rc;
    } else if ((rc = add_policy(c, "default"))) {
        return rc;
    }
    for (size_t i = 0; i < f->limits.n; i++)
        pp_limits_set(&c->opt.limits, f->limits.v[i]); /* checked when the file was read */
    for (size_t i = 0; i < c->limits.n; i++)
        pp_limits_set(&c->opt.limits, c->limits.v[i]);
    c->opt.flavor = c->flavor;
    c->opt.encoding = c->encoding;
    const pp_strlist *keys = c->keys.n ? NULL : &f->keys;
    for (size_t i = 0; i < c->keys.n; i++)
        if ((rc = add_key(c, c->keys.v[i]))) return rc;
    for (size_t i = 0; keys && i < keys->n; i++)
        if ((rc = add_key(c, keys->v[i]))) return rc;
    c->opt.require_signature = c->require_sig || f->require_signature == 1;
    c->opt.signature_path = c->signature;
    const char *env = getenv("PICKLEPROOF_SANDBOX");
    const char *sbx = c->sandbox ? c->sandbox : env && *env ? env : f->sandbox;
    if (sbx && parse_sandbox(sbx, &c->opt.sandbox))
        return pp_cli_usage_error(cmd, "PICKLEPROOF_SANDBOX takes require, auto, process or off",
                                  sbx);
    c->fmt = pp_out_format_parse(c->format ? c->format : f->format ? f->format : "text");
    if (!c->include.n && f->include.given) {
        c->include.v = (const char **)f->include.v;
        c->include.n = f->include.n;
    }
    if (!c->exclude.n && f->exclude.given) {
        c->exclude.v = (const char **)f->exclude.v;
        c->exclude.n = f->exclude.n;
    }
    if (!c->jobs) c->jobs = f->jobs;
    if (!c->jobs) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->jobs = n < 1 ? 1 : n > MAX_JOBS ? MAX_JOBS : n;
    }
    const char *color = c->color ? c->color : f->color ? f->color : "auto";
    const char *nc = getenv("NO_COLOR");
    FILE *out = c->output ? NULL : stdout;
    c->color_on = strcmp(color, "always") == 0 ||
                  (strcmp(color, "auto") == 0 && out && isatty(fileno(out)) && !(nc && *nc));
    if (c->opt.require_signature && !c->keyring)
        return pp_cli_usage_error(cmd, "--require-signature needs --key", NULL);
    return 0;
}

static int exit_for(const pp_report *r)
{
    if (r->verdict == PP_VERDICT_SAFE) return PP_EXIT_SAFE;
    if (r->verdict == PP_VERDICT_ERROR) return PP_EXIT_USAGE;
    return PP_EXIT_REJECTED;
}

/* ---- the parallel scan ---------------------------------------------------------------------- */

enum { JOB_PENDING, JOB_DONE, JOB_SKIPPED, JOB_NOMEM };

typedef struct job {
    const pp_walk_entry *e;
    pp_report *r;
    int state;
} job;

typedef struct pool {
    job *jobs;
    size_t n;
    size_t next; /* the next job to claim (atomic) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const pp_scan_options *opt;
} pool;

/* Each worker takes the next file in walk order; pp_scan_file is safe to call from several
 * threads (the sandbox spawns a helper per file with posix_spawn and close-on-exec pipes). */
static void *worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        size_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n) return NULL;
        job *j = &p->jobs[i];
        pp_report *r = NULL;
        int st = JOB_DONE;
        if (!j->e->explicit && pp_walk_sniff(j->e->path) == 0)
            st = JOB_SKIPPED;
        else if (pp_scan_file(j->e->path, p->opt, &r) != PP_OK)
            st = JOB_NOMEM;
        pthread_mutex_lock(&p->mu);
        j->r = r;
        j->state = st;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

static int run_scan(cli *c)
{
    const char *cmd = c->cmd;
    if (!c->nfiles)
        return pp_cli_usage_error(cmd, "scan needs at least one file or directory", NULL);
    size_t stdin_args = 0;
    for (size_t i = 0; i < c->nfiles; i++)
        stdin_args += strcmp(c->files[i], "-") == 0;
    if (stdin_args > 1) return pp_cli_usage_error(cmd, "'-' (standard input) given twice", NULL);
    pp_walk_opts wo = {c->include.v, c->include.n, c->exclude.v, c->exclude.n, c->follow};
    pp_walk_list wl;
    memset(&wl, 0, sizeof wl);
    int status = PP_EXIT_SAFE;
    for (size_t i = 0; i < c->nfiles; i++) {
        int w = pp_walk_add(&wl, c->files[i], &wo);
        if (w == -2) {
            pp_walk_free(&wl);
            return pp_cli_usage_error(cmd, "out of memory", NULL);
        }
    }
    if (wl.errors) status = PP_EXIT_USAGE;
    if (c->opt.signature_path && wl.n > 1) {
        pp_walk_free(&wl);
        return pp_cli_usage_error(cmd, "--signature names the signature of one file; give one file",
                                  NULL);
    }
    FILE *f = stdout;
    if (c->output && !(f = fopen(c->output, "w"))) {
        fprintf(stderr, "pickleproof: %s: %s\n", c->output, strerror(errno));
        pp_walk_free(&wl);
        return PP_EXIT_USAGE;
    }
    pp_out o;
    memset(&o, 0, sizeof o);
    o.fmt = (pp_out_format)c->fmt;
    o.f = f;
    o.quiet = c->quiet;
    o.text_flags = (c->color_on ? PP_TEXT_COLOR : 0u) | (c->verbose ? PP_TEXT_VERBOSE : 0u);
    const char *nc = getenv("NO_COLOR");
    o.color_err =
        isatty(STDERR_FILENO) && !(nc && *nc) && !(c->color && !strcmp(c->color, "never"));
    pp_out_begin(&o);

    pool p;
    memset(&p, 0, sizeof p);
    p.jobs = calloc(wl.n ? wl.n : 1, sizeof *p.jobs);
    size_t nthreads = wl.n < (size_t)c->jobs ? wl.n : (size_t)c->jobs;
    pthread_t *th = calloc(nthreads ? nthreads : 1, sizeof *th);
    if (!p.jobs || !th) {
        free(p.jobs);
        free(th);
        pp_walk_free(&wl);
        if (c->output) fclose(f);
        return pp_cli_usage_error(cmd, "out of memory", NULL);
    }
    for (size_t i = 0; i < wl.n; i++)
        p.jobs[i].e = &wl.v[i];
    p.n = wl.n;
    p.opt = &c->opt;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    size_t started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, worker, &p) != 0) break;
    if (started == 0 && wl.n) {
        worker(&p); /* no thread could start: scan here, one by one */
    }
    size_t skipped = 0;
    for (size_t i = 0; i < wl.n; i++) {
        pthread_mutex_lock(&p.mu);
        while (p.jobs[i].state == JOB_PENDING) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&p.cv, &p.mu, &ts);
            pthread_mutex_unlock(&p.mu);
            pp_out_progress(&o, i, wl.n);
            pthread_mutex_lock(&p.mu);
        }
        job j = p.jobs[i];
        pthread_mutex_unlock(&p.mu);
        if (j.state == JOB_SKIPPED) {
            skipped++;
        } else if (j.state == JOB_NOMEM) {
            fprintf(stderr, "pickleproof: %s: out of memory\n", j.e->path);
            status = PP_EXIT_USAGE;
        } else {
            int s = exit_for(j.r);
            if (s > status) status = s;
            if (j.r->verdict == PP_VERDICT_ERROR)
                fprintf(stderr, "pickleproof: %s: %.*s\n", j.e->path,
                        (int)strnlen(j.r->error.msg, sizeof j.r->error.msg), j.r->error.msg);
            pp_out_file(&o, j.r);
            pp_report_free(j.r);
        }
        pp_out_progress(&o, i + 1, wl.n);
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    free(th);
    free(p.jobs);
    if (!pp_out_end(&o, skipped, wl.excluded, status)) {
        fprintf(stderr, "pickleproof: writing the results failed\n");
        status = PP_EXIT_USAGE;
    }
    if (c->output && fclose(f) != 0) {
        fprintf(stderr, "pickleproof: %s: %s\n", c->output, strerror(errno));
        status = PP_EXIT_USAGE;
    }
    pp_walk_free(&wl);
    return status;
}

/* ---- dump and explain ----------------------------------------------------------------------- */

static int run_dump(cli *c)
{
    if (!c->json) return pp_cli_usage_error(c->cmd, "dump needs --json", NULL);
    if (!c->nfiles) return pp_cli_usage_error(c->cmd, "dump needs at least one file", NULL);
    int status = PP_EXIT_SAFE;
    for (size_t i = 0; i < c->nfiles; i++) {
        pp_input in;
        pp_error err;
        pp_error_clear(&err);
        if (pp_input_open(c->files[i], c->opt.limits.v[PP_LIMIT_INPUT_BYTES], &in, &err)) {
            fprintf(stderr, "pickleproof: %s: %s\n", c->files[i], err.msg);
            printf("{\"ok\":false,\"error\":\"%s\",\"offset\":0,\"message\":\"io\"}\n",
                   pp_errname(err.code));
            status = PP_EXIT_USAGE;
            continue;
        }
        pp_scan_state st;
        if (pp_scan_streams(in.data, in.len, &c->opt, true, &st) != PP_OK) {
            fprintf(stderr, "pickleproof: %s: out of memory\n", c->files[i]);
            pp_input_close(&in);
            return PP_EXIT_USAGE;
        }
        pp_buf b;
        pp_buf_init(&b);
        pp_err rc = pp_dump_json(&st.graph, st.streams, st.nstreams,
                                 c->opt.limits.v[PP_LIMIT_NESTING], &b, &st.error);
        if (rc == PP_E_NOMEM) {
            fprintf(stderr, "pickleproof: %s: out of memory\n", c->files[i]);
            status = PP_EXIT_USAGE;
        }
        if (rc == PP_E_LIMIT) {
            /* the walk hit the nesting limit: report that instead of a partial document */
            pp_buf_free(&b);
            pp_buf_init(&b);
            pp_buf_printf(&b,
                          "{\"ok\":false,\"error\":\"limit-exceeded\",\"offset\":0,"
                          "\"message\":\"%s\"}",
                          st.error.limit >= 0 ? pp_limit_name((pp_limit_id)st.error.limit)
                                              : "graph walk");
        }
        if (b.p) fwrite(b.p, 1, b.n, stdout);
        fputc('\n', stdout);
        if (st.error.code != PP_OK && status == PP_EXIT_SAFE) status = PP_EXIT_REJECTED;
        pp_buf_free(&b);
        pp_scan_state_free(&st);
        pp_input_close(&in);
    }
    return status;
}

typedef struct explain_arg {
    const cli *c;
    pp_buf *b;
} explain_arg;

static void render_explain(void *arg, const pp_scan_state *st, const pp_report *r)
{
    explain_arg *a = arg;
    pp_explain(&st->graph, st->streams, st->nstreams, r, a->c->opt.limits.v[PP_LIMIT_NESTING], a->b,
               a->c->color_on);
}

static int run_explain(cli *c)
{
    if (c->nfiles != 1) return pp_cli_usage_error(c->cmd, "explain takes exactly one file", NULL);
    if (c->opt.sandbox != PP_SANDBOX_OFF)
        fprintf(stderr,
                "pickleproof: explain parses %s in this process, not in the sandbox "
                "(it needs the whole graph); scan it first\n",
                c->files[0]);
    pp_report *r = NULL;
    pp_buf b;
    pp_buf_init(&b);
    explain_arg a = {c, &b};
    if (pp_scan_file_explain(c->files[0], &c->opt, render_explain, &a, &r) != PP_OK) {
        fprintf(stderr, "pickleproof: %s: out of memory\n", c->files[0]);
        pp_buf_free(&b);
        return PP_EXIT_USAGE;
    }
    if (r->verdict == PP_VERDICT_ERROR)
        fprintf(stderr, "pickleproof: %s: %s\n", c->files[0], r->error.msg);
    if (b.p) fwrite(b.p, 1, b.n, stdout);
    pp_report_write_text(r, stdout, c->color_on);
    int status = exit_for(r);
    pp_buf_free(&b);
    pp_report_free(r);
    return status;
}

/* ---- entry points --------------------------------------------------------------------------- */

static int run(int argc, char **argv, int (*fn)(cli *))
{
    cli c;
    memset(&c, 0, sizeof c);
    c.cmd = argv[0];
    pp_config_init(&c.conf);
    c.files = calloc((size_t)argc, sizeof *c.files);
    if (!c.files || pp_policy_new(&c.policy) != PP_OK) {
        free(c.files);
        fprintf(stderr, "pickleproof: out of memory\n");
        return PP_EXIT_USAGE;
    }
    pp_scan_options_init(&c.opt, c.policy);
    int rc = parse_args(&c, argc, argv);
    if (!rc && fn == run_dump && (c.keys.n || c.require_sig))
        rc =
            pp_cli_usage_error(c.cmd, "dump does not check signatures (use scan or explain)", NULL);
    if (!rc) rc = settle(&c);
    if (!rc) {
        c.opt.policy = c.policy;
        rc = fn(&c);
    }
    pp_policy_free(c.policy);
    pp_keyring_free(c.keyring);
    /* include/exclude may borrow the config's lists */
    if (c.include.v != (const char **)c.conf.include.v) free(c.include.v);
    if (c.exclude.v != (const char **)c.conf.exclude.v) free(c.exclude.v);
    pp_config_free(&c.conf);
    free(c.files);
    free(c.policies.v);
    free(c.limits.v);
    free(c.keys.v);
    return rc;
}

int pp_cli_scan(int argc, char **argv)
{
    return run(argc, argv, run_scan);
}

int pp_cli_explain(int argc, char **argv)
{
    return run(argc, argv, run_explain);
}

int pp_cli_dump(int argc, char **argv)
{
    return run(argc, argv, run_dump);
}
