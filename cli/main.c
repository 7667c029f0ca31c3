/* The pickleproof command. Exit codes: 0 every file safe, 1 any file rejected, 2 usage or
 * operational error. Results go to stdout, diagnostics to stderr. */
#include "pickleproof.h"

#include "buf.h"
#include "dump.h"
#include "err.h"
#include "explain.h"
#include "report.h"
#include "scan.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cli/sign_cmd.c: argv[0] is the subcommand */
int pp_cli_keygen(int argc, char **argv);
int pp_cli_sign(int argc, char **argv);
int pp_cli_verify(int argc, char **argv);

enum { EXIT_SAFE = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

typedef struct cli {
    const char *cmd;
    const char *format; /* text | json */
    pp_policy *policy;
    bool policy_given;
    pp_scan_options opt;
    const char **files;
    size_t nfiles;
    bool json;    /* dump --json */
    bool verbose;
    int color;
    pp_keyring *keys;
} cli;

static void usage(FILE *f)
{
    fputs("usage: pickleproof COMMAND [OPTIONS] FILE...\n"
          "\n"
          "commands:\n"
          "  scan FILE...       judge each file against the policy; print verdicts\n"
          "  explain FILE       show what loading the file would do, as pseudo-Python\n"
          "  dump --json FILE...  print the canonical graph of each file (one JSON per line)\n"
          "  keygen             make a minisign-compatible key pair (-p PUB -s SEC [-W])\n"
          "  sign FILE...       sign files (-s SEC), or --manifest DIR|FILES... to sign a manifest\n"
          "  verify FILE...     check signatures (-p PUB [-x SIG]) or --manifest MANIFEST\n"
          "  policy list        list the built-in policies\n"
          "  policy show NAME   print a built-in policy\n"
          "  version            print the version\n"
          "\n"
          "options:\n"
          "  --format text|json     output format of scan (default text)\n"
          "  --policy NAME|FILE     policy to apply; repeatable (default: default)\n"
          "  --limit NAME=VALUE     change a limit, e.g. --limit graph-memory=512M; repeatable\n"
          "  --flavor c|py          read as pickle.load (c, default) or pickle._Unpickler (py)\n"
          "  --encoding ascii|latin1|utf-8|bytes  decoding of protocol-0/1 str payloads\n"
          "  --sandbox LEVEL        require (default: seccomp-confined helper, fail closed),\n"
          "                         auto, process (rlimits only) or off; also PICKLEPROOF_SANDBOX\n"
          "  --no-sandbox           the same as --sandbox=off (debugging, valgrind)\n"
          "  --key FILE             trusted minisign public key or keyring; repeatable\n"
          "  --signature FILE       detached signature (default FILE.minisig)\n"
          "  --require-signature    reject files without a valid signature (verdict unsigned)\n"
          "  -v, --verbose          list resolved globals in text output\n"
          "  -h, --help             this help\n"
          "\n"
          "limits: input-bytes opcodes stack-depth marks memo-entries nesting-depth\n"
          "        payload-bytes graph-memory streams inflated-bytes inflate-ratio zip-entries\n"
          "        archive-depth cpu-seconds deadline-ms sandbox-memory\n"
          "        hash-work\n"
          "exit status: 0 all files safe, 1 any file rejected, 2 usage or operational error\n"
          "\n"
          "examples:\n"
          "  pickleproof scan model.pkl\n"
          "  pickleproof scan --format json --policy default --policy team.policy *.pkl\n"
          "  pickleproof explain suspicious.pkl\n",
          f);
}

static int fail_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "pickleproof: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, "try 'pickleproof --help'\n");
    return EXIT_USAGE;
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

static int add_policy(cli *c, const char *name)
{
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_add(c->policy, name, &err) != PP_OK) {
        fprintf(stderr, "pickleproof: policy %s: %s\n", name, err.msg);
        return EXIT_USAGE;
    }
    c->policy_given = true;
    return 0;
}

static int parse_args(cli *c, int argc, char **argv)
{
    bool dashdash = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define TAKE(flag)                                                                                 \
    (strcmp(a, flag) == 0 ? (i + 1 < argc ? (val = argv[++i], 1) : -1)                             \
     : (strncmp(a, flag "=", sizeof(flag)) == 0 ? (val = a + sizeof(flag), 1) : 0))
        int t;
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            c->files[c->nfiles++] = a;
        } else if (strcmp(a, "--") == 0) {
            dashdash = true;
        } else if ((t = TAKE("--format"))) {
            if (t < 0 || (strcmp(val, "text") && strcmp(val, "json")))
                return fail_usage("--format takes text or json", val);
            c->format = val;
        } else if ((t = TAKE("--policy"))) {
            if (t < 0)
                return fail_usage("--policy needs a name or file", NULL);
            int rc = add_policy(c, val);
            if (rc)
                return rc;
        } else if ((t = TAKE("--limit"))) {
            if (t < 0 || pp_limits_set(&c->opt.limits, val) != PP_OK)
                return fail_usage("--limit takes NAME=VALUE with a known limit name", val);
        } else if ((t = TAKE("--flavor"))) {
            if (t < 0)
                return fail_usage("--flavor takes c or py", NULL);
            if (strcmp(val, "c") == 0)
                c->opt.flavor = PP_FLAVOR_C;
            else if (strcmp(val, "py") == 0)
                c->opt.flavor = PP_FLAVOR_PY;
            else
                return fail_usage("--flavor takes c or py", val);
        } else if ((t = TAKE("--encoding"))) {
            if (t < 0)
                return fail_usage("--encoding needs a value", NULL);
            if (strcmp(val, "ascii") == 0)
                c->opt.encoding = PP_ENC_ASCII;
            else if (strcmp(val, "latin1") == 0 || strcmp(val, "latin-1") == 0)
                c->opt.encoding = PP_ENC_LATIN1;
            else if (strcmp(val, "utf-8") == 0 || strcmp(val, "utf8") == 0)
                c->opt.encoding = PP_ENC_UTF8;
            else if (strcmp(val, "bytes") == 0)
                c->opt.encoding = PP_ENC_BYTES;
            else
                return fail_usage("--encoding takes ascii, latin1, utf-8 or bytes", val);
        } else if ((t = TAKE("--sandbox"))) {
            if (t < 0 || parse_sandbox(val, &c->opt.sandbox))
                return fail_usage("--sandbox takes auto, require, process or off", val);
        } else if (strcmp(a, "--no-sandbox") == 0) {
            c->opt.sandbox = PP_SANDBOX_OFF;
        } else if ((t = TAKE("--key"))) {
            if (t < 0)
                return fail_usage("--key needs a public key or keyring file", NULL);
            pp_error kerr;
            pp_error_clear(&kerr);
            if (!c->keys && pp_keyring_new(&c->keys) != PP_OK)
                return fail_usage("out of memory", NULL);
            if (pp_keyring_add_file(c->keys, val, &kerr) != PP_OK) {
                fprintf(stderr, "pickleproof: %s\n", kerr.msg);
                return EXIT_USAGE;
            }
            c->opt.keys = c->keys;
        } else if ((t = TAKE("--signature"))) {
            if (t < 0)
                return fail_usage("--signature needs a file", NULL);
            c->opt.signature_path = val;
        } else if (strcmp(a, "--require-signature") == 0) {
            c->opt.require_signature = true;
        } else if (strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            c->verbose = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(EXIT_SAFE);
        } else {
            return fail_usage("unknown option", a);
        }
#undef TAKE
    }
    if (c->opt.require_signature && !c->keys)
        return fail_usage("--require-signature needs --key", NULL);
    if (c->opt.signature_path && c->nfiles > 1)
        return fail_usage("--signature names the signature of one file; give one file", NULL);
    if (strcmp(c->cmd, "dump") == 0 && (c->keys || c->opt.require_signature))
        return fail_usage("dump does not check signatures (use scan or explain)", NULL);
    if (!c->policy_given) {
        int rc = add_policy(c, "default");
        if (rc)
            return rc;
    }
    return 0;
}

static void write_text(const cli *c, const pp_report *r)
{
    pp_report_write_text_ex(r, stdout, (c->color ? PP_TEXT_COLOR : 0u) |
                                           (c->verbose ? PP_TEXT_VERBOSE : 0u));
}

static int exit_for(const pp_report *r)
{
    if (r->verdict == PP_VERDICT_SAFE)
        return EXIT_SAFE;
    if (r->verdict == PP_VERDICT_ERROR)
        return EXIT_USAGE;
    return EXIT_REJECTED;
}

static int cmd_scan(cli *c)
{
    if (!c->nfiles)
        return fail_usage("scan needs at least one file", NULL);
    pp_report **reports = calloc(c->nfiles, sizeof *reports);
    if (!reports)
        return EXIT_USAGE;
    int status = EXIT_SAFE;
    for (size_t i = 0; i < c->nfiles; i++) {
        if (pp_scan_file(c->files[i], &c->opt, &reports[i]) != PP_OK) {
            fprintf(stderr, "pickleproof: %s: out of memory\n", c->files[i]);
            status = EXIT_USAGE;
            continue;
        }
        int s = exit_for(reports[i]);
        if (s > status)
            status = s;
        if (reports[i]->verdict == PP_VERDICT_ERROR)
            fprintf(stderr, "pickleproof: %s: %s\n", c->files[i], reports[i]->error.msg);
        if (strcmp(c->format, "text") == 0)
            write_text(c, reports[i]);
    }
    if (strcmp(c->format, "json") == 0) {
        size_t n = 0;
        for (size_t i = 0; i < c->nfiles; i++)
            if (reports[i])
                reports[n++] = reports[i];
        pp_report_write_json_doc((const pp_report *const *)reports, n, stdout);
    }
    for (size_t i = 0; i < c->nfiles; i++)
        pp_report_free(reports[i]);
    free(reports);
    return status;
}

static int cmd_dump(cli *c)
{
    if (!c->json)
        return fail_usage("dump needs --json", NULL);
    if (!c->nfiles)
        return fail_usage("dump needs at least one file", NULL);
    int status = EXIT_SAFE;
    for (size_t i = 0; i < c->nfiles; i++) {
        pp_input in;
        pp_error err;
        pp_error_clear(&err);
        if (pp_input_open(c->files[i], c->opt.limits.v[PP_LIMIT_INPUT_BYTES], &in, &err)) {
            fprintf(stderr, "pickleproof: %s: %s\n", c->files[i], err.msg);
            printf("{\"ok\":false,\"error\":\"%s\",\"offset\":0,\"message\":\"io\"}\n",
                   pp_errname(err.code));
            status = EXIT_USAGE;
            continue;
        }
        pp_scan_state st;
        if (pp_scan_streams(in.data, in.len, &c->opt, true, &st) != PP_OK) {
            fprintf(stderr, "pickleproof: %s: out of memory\n", c->files[i]);
            pp_input_close(&in);
            return EXIT_USAGE;
        }
        pp_buf b;
        pp_buf_init(&b);
        pp_err rc = pp_dump_json(&st.graph, st.streams, st.nstreams,
                                 c->opt.limits.v[PP_LIMIT_NESTING], &b, &st.error);
        if (rc == PP_E_NOMEM) {
            fprintf(stderr, "pickleproof: %s: out of memory\n", c->files[i]);
            status = EXIT_USAGE;
        }
        if (rc == PP_E_LIMIT) {
            /* the walk hit the nesting limit: report that instead of a partial document */
            pp_buf_free(&b);
            pp_buf_init(&b);
            pp_buf_printf(&b, "{\"ok\":false,\"error\":\"limit-exceeded\",\"offset\":0,"
                              "\"message\":\"%s\"}",
                          st.error.limit >= 0 ? pp_limit_name((pp_limit_id)st.error.limit)
                                              : "graph walk");
        }
        if (b.p)
            fwrite(b.p, 1, b.n, stdout);
        fputc('\n', stdout);
        if (st.error.code != PP_OK && status == EXIT_SAFE)
            status = EXIT_REJECTED;
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
    pp_explain(&st->graph, st->streams, st->nstreams, r,
               a->c->opt.limits.v[PP_LIMIT_NESTING], a->b, a->c->color);
}

static int cmd_explain(cli *c)
{
    if (c->nfiles != 1)
        return fail_usage("explain takes exactly one file", NULL);
    if (c->opt.sandbox != PP_SANDBOX_OFF)
        fprintf(stderr, "pickleproof: explain parses %s in this process, not in the sandbox "
                        "(it needs the whole graph); scan it first\n",
                c->files[0]);
    pp_report *r = NULL;
    pp_buf b;
    pp_buf_init(&b);
    explain_arg a = {c, &b};
    if (pp_scan_file_explain(c->files[0], &c->opt, render_explain, &a, &r) != PP_OK) {
        fprintf(stderr, "pickleproof: %s: out of memory\n", c->files[0]);
        pp_buf_free(&b);
        return EXIT_USAGE;
    }
    if (r->verdict == PP_VERDICT_ERROR)
        fprintf(stderr, "pickleproof: %s: %s\n", c->files[0], r->error.msg);
    if (b.p)
        fwrite(b.p, 1, b.n, stdout);
    pp_report_write_text(r, stdout, c->color);
    int status = exit_for(r);
    pp_buf_free(&b);
    pp_report_free(r);
    return status;
}

static int cmd_policy(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[2], "list") == 0) {
        for (const char *const *n = pp_policy_builtin_names(); *n; n++)
            printf("%s\n", *n);
        return EXIT_SAFE;
    }
    if (argc >= 4 && strcmp(argv[2], "show") == 0) {
        const char *t = pp_policy_builtin_text(argv[3]);
        if (!t)
            return fail_usage("no built-in policy named", argv[3]);
        fputs(t, stdout);
        return EXIT_SAFE;
    }
    return fail_usage("policy takes 'list' or 'show NAME'", NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EXIT_SAFE;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("pickleproof %s\n", PP_VERSION);
        return EXIT_SAFE;
    }
    if (strcmp(cmd, "policy") == 0)
        return cmd_policy(argc, argv);
    if (strcmp(cmd, "keygen") == 0)
        return pp_cli_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "sign") == 0)
        return pp_cli_sign(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return pp_cli_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "scan") && strcmp(cmd, "dump") && strcmp(cmd, "explain"))
        return fail_usage("unknown command", cmd);

    cli c;
    memset(&c, 0, sizeof c);
    c.cmd = cmd;
    c.format = "text";
    c.files = calloc((size_t)argc, sizeof *c.files);
    if (!c.files || pp_policy_new(&c.policy) != PP_OK) {
        fprintf(stderr, "pickleproof: out of memory\n");
        return EXIT_USAGE;
    }
    pp_scan_options_init(&c.opt, c.policy);
    const char *sbx = getenv("PICKLEPROOF_SANDBOX");
    if (sbx && *sbx && parse_sandbox(sbx, &c.opt.sandbox)) {
        fprintf(stderr, "pickleproof: PICKLEPROOF_SANDBOX takes auto, require, process or off\n");
        return EXIT_USAGE;
    }
    const char *nc = getenv("NO_COLOR");
    c.color = isatty(STDOUT_FILENO) && !(nc && *nc);
    int rc = parse_args(&c, argc, argv);
    if (!rc) {
        c.opt.policy = c.policy;
        if (strcmp(cmd, "scan") == 0)
            rc = cmd_scan(&c);
        else if (strcmp(cmd, "dump") == 0)
            rc = cmd_dump(&c);
        else
            rc = cmd_explain(&c);
    }
    pp_policy_free(c.policy);
    pp_keyring_free(c.keys);
    free(c.files);
    return rc;
}
