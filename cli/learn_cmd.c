/* `pickleproof policy learn|show|list`. Learning itself is validator/learn.c; this file parses
 * options, prints the policy to stdout only when it is complete, and diagnostics to stderr. */
#include "learn_cmd.h"

#include "learn.h"
#include "pickleproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "pickleproof: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, "try 'pickleproof policy --help'\n");
    return EXIT_USAGE;
}

static void usage(FILE *f)
{
    fputs("usage: pickleproof policy list\n"
          "       pickleproof policy show NAME|FILE\n"
          "       pickleproof policy learn [OPTIONS] FILE... > team.policy\n"
          "\n"
          "learn scans each trusted sample (any container, in the sandbox, like scan) and prints\n"
          "the smallest policy that makes every one of them scan safe, each entry commented with\n"
          "where it was first seen.\n"
          "\n"
          "learn options:\n"
          "  --name NAME            the learned policy's name (default learned)\n"
          "  --include NAME|FILE    a policy the learned one includes; repeatable (default: default)\n"
          "  --no-include-default   include nothing unless --include says so\n"
          "  --allow-dangerous      emit denylisted globals (os.system, builtins.eval, ...) with a\n"
          "                         WARNING comment instead of refusing\n"
          "  --limit NAME=VALUE     change a scan limit; repeatable\n"
          "  --sandbox LEVEL        require (default), auto, process or off; also PICKLEPROOF_SANDBOX\n"
          "  --no-sandbox           the same as --sandbox=off\n"
          "\n"
          "exit status: 0 policy printed, 1 refused (a dangerous global, or a use no entry can\n"
          "allow), 2 usage error or a sample that is malformed, over a limit or unreadable\n",
          f);
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

static bool is_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 7 && strcmp(s + n - 7, ".policy") == 0);
}

static int cmd_show(int argc, char **argv)
{
    if (argc != 3) return usage_error("policy show takes one NAME or FILE", NULL);
    const char *name = argv[2];
    const char *t = is_path(name) ? NULL : pp_policy_builtin_text(name);
    if (t) {
        fputs(t, stdout);
        return EXIT_OK;
    }
    /* a file: loaded first, so what is shown is a policy that parses (includes and all) */
    pp_policy *p = NULL;
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&p) != PP_OK) return usage_error("out of memory", NULL);
    pp_err rc = pp_policy_add(p, name, &err);
    pp_policy_free(p);
    if (rc != PP_OK) {
        fprintf(stderr, "pickleproof: policy %s: %s\n", name, err.msg);
        return EXIT_USAGE;
    }
    FILE *f = fopen(name, "rb");
    if (!f) {
        fprintf(stderr, "pickleproof: %s: cannot open\n", name);
        return EXIT_USAGE;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stdout);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "pickleproof: %s: read error\n", name);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cmd_learn(int argc, char **argv)
{
    pp_learn_options o;
    pp_learn_options_init(&o);
    const char *sbx = getenv("PICKLEPROOF_SANDBOX");
    if (sbx && *sbx && parse_sandbox(sbx, &o.scan.sandbox))
        return usage_error("PICKLEPROOF_SANDBOX takes auto, require, process or off", sbx);
    const char *name = "learned";
    bool no_default = false;
    const char **includes = calloc((size_t)argc + 1, sizeof *includes);
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    size_t ninc = 0, nfiles = 0;
    int status = EXIT_USAGE;
    if (!includes || !files) {
        fprintf(stderr, "pickleproof: out of memory\n");
        goto done;
    }
    bool dashdash = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            files[nfiles++] = a;
        } else if (strcmp(a, "--") == 0) {
            dashdash = true;
        } else if (strcmp(a, "--name") == 0) {
            if (!val) {
                status = usage_error("--name needs a policy name", NULL);
                goto done;
            }
            name = val;
            i++;
        } else if (strcmp(a, "--include") == 0) {
            if (!val) {
                status = usage_error("--include needs a policy name or file", NULL);
                goto done;
            }
            includes[ninc++] = val;
            i++;
        } else if (strcmp(a, "--no-include-default") == 0) {
            no_default = true;
        } else if (strcmp(a, "--allow-dangerous") == 0) {
            o.allow_dangerous = true;
        } else if (strcmp(a, "--limit") == 0) {
            if (!val || pp_limits_set(&o.scan.limits, val) != PP_OK)
                {
                status = usage_error("--limit takes NAME=VALUE", val);
                goto done;
            }
            i++;
        } else if (strcmp(a, "--sandbox") == 0) {
            if (!val || parse_sandbox(val, &o.scan.sandbox))
                {
                status = usage_error("--sandbox takes auto, require, process or off", val);
                goto done;
            }
            i++;
        } else if (strcmp(a, "--no-sandbox") == 0) {
            o.scan.sandbox = PP_SANDBOX_OFF;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            status = EXIT_OK;
            goto done;
        } else {
            status = usage_error("unknown option", a);
            goto done;
        }
    }
    if (!nfiles) {
        status = usage_error("policy learn needs at least one sample file", NULL);
        goto done;
    }
    if (!no_default) {
        /* default first, so the learned policy builds on it as every built-in does */
        memmove(includes + 1, includes, ninc * sizeof *includes);
        includes[0] = "default";
        ninc++;
    }
    /* the name is checked by loading the header the policy will start with */
    {
        pp_policy *p = NULL;
        pp_error err;
        pp_error_clear(&err);
        char head[300];
        int hn = snprintf(head, sizeof head, "policy %s\n", name);
        bool ok = hn > 0 && (size_t)hn < sizeof head && pp_policy_new(&p) == PP_OK &&
                  pp_policy_add_text(p, "--name", head, (size_t)hn, &err) == PP_OK;
        pp_policy_free(p);
        if (!ok) {
            status = usage_error("--name takes letters, digits, '_', '-' and '.'", name);
            goto done;
        }
    }
    o.includes = includes;
    o.nincludes = ninc;
    pp_learn *l = NULL;
    pp_error err;
    pp_error_clear(&err);
    pp_err rc = pp_learn_files(files, nfiles, &o, &l, &err);
    if (rc != PP_OK) {
        fprintf(stderr, "pickleproof: %s\n", err.msg[0] ? err.msg : pp_errname(rc));
        goto done;
    }
    if (l->status == PP_LEARNED) {
        pp_buf b;
        pp_buf_init(&b);
        pp_learn_render(l, name, includes, ninc, true, &b);
        if (!pp_buf_ok(&b)) {
            fprintf(stderr, "pickleproof: out of memory\n");
        } else if (fwrite(b.p, 1, b.n, stdout) != b.n || fflush(stdout) != 0) {
            fprintf(stderr, "pickleproof: cannot write the policy\n");
        } else {
            for (size_t i = 0; i < l->n; i++)
                if (l->entries[i].danger)
                    fprintf(stderr, "pickleproof: WARNING: learned dangerous global %s.%s (%s)\n",
                            l->entries[i].module, l->entries[i].qualname, l->entries[i].danger);
            status = EXIT_OK;
        }
        pp_buf_free(&b);
    } else {
        const char *d = l->diag ? l->diag : "";
        for (const char *s = d; *s;) {
            const char *nl = strchr(s, '\n');
            size_t n = nl ? (size_t)(nl - s) : strlen(s);
            fprintf(stderr, "pickleproof: %.*s\n", (int)n, s);
            s += n + (nl ? 1 : 0);
        }
        status = l->status == PP_LEARN_INPUT ? EXIT_USAGE : EXIT_REFUSED;
    }
    pp_learn_free(l);
done:
    free(includes);
    free(files);
    return status;
}

int pp_cli_policy(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        if (argc != 2) return usage_error("policy list takes no arguments", NULL);
        for (const char *const *n = pp_policy_builtin_names(); *n; n++)
            printf("%s\n", *n);
        return EXIT_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "show") == 0) return cmd_show(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "learn") == 0) return cmd_learn(argc, argv);
    return usage_error("policy takes list, show NAME|FILE or learn FILE...", argc >= 2 ? argv[1] : NULL);
}
