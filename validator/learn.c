/* policy learn: scan, read what the policy check refused, allow exactly that, scan again.
 *
 * Findings are the interface on purpose: they come back from the sandboxed parser like any scan
 * result, so learning parses nothing in this process. A finding names a global; the rule (and,
 * where one rule covers several uses, the message the check wrote) says which permission would
 * have answered it. Findings that follow from an earlier refusal (BUILD on an object whose
 * construction was refused, a storage whose class was not referenced) are learned only once a
 * sample has no first-order finding left, so a refused helper never teaches `-> self`. */
#include "learn.h"

#include "arena.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PASSES 32 /* each pass adds at least one permission; real samples need 2-4 */

/* ---- the denylist ----------------------------------------------------------------------------- */

typedef struct deny {
    const char *module; /* the module, and (with name NULL) every submodule of it */
    const char *name;   /* an exact qualname, or NULL for the whole module */
    const char *why;
} deny;

/* Globals a trusted sample should never need: each runs code, imports by name, opens files or
 * sockets, or loads another pickle. Matching is exact on (module, qualname), or by module for
 * whole modules (and their submodules: `os.path` is os). */
static const deny DENY[] = {
    {"os", NULL, "runs commands and opens files"},
    {"posix", NULL, "runs commands and opens files (os)"},
    {"nt", NULL, "runs commands and opens files (os)"},
    {"subprocess", NULL, "runs commands"},
    {"_posixsubprocess", NULL, "runs commands"},
    {"pty", NULL, "runs commands"},
    {"multiprocessing", NULL, "starts processes"},
    {"asyncio", NULL, "runs commands and opens sockets"},
    {"signal", NULL, "installs signal handlers"},
    {"builtins", "eval", "evaluates a string"},
    {"builtins", "exec", "executes a string"},
    {"builtins", "compile", "compiles a string"},
    {"builtins", "__import__", "imports by name"},
    {"builtins", "open", "opens files"},
    {"builtins", "getattr", "reaches any attribute"},
    {"builtins", "setattr", "sets any attribute"},
    {"builtins", "delattr", "deletes any attribute"},
    {"builtins", "globals", "exposes module globals"},
    {"builtins", "locals", "exposes local variables"},
    {"builtins", "vars", "exposes any object's namespace"},
    {"builtins", "breakpoint", "starts a debugger"},
    {"builtins", "input", "reads the terminal"},
    {"builtins", "exit", "exits the process"},
    {"builtins", "quit", "exits the process"},
    {"builtins", "help", "runs the help system (imports by name)"},
    {"runpy", NULL, "runs modules by name"},
    {"importlib", NULL, "imports by name"},
    {"imp", NULL, "imports by name"},
    {"pkgutil", NULL, "imports by name"},
    {"zipimport", NULL, "imports from archives"},
    {"pickle", NULL, "loads another pickle"},
    {"_pickle", NULL, "loads another pickle"},
    {"pickletools", NULL, "loads another pickle"},
    {"shelve", NULL, "opens files and loads pickles"},
    {"marshal", NULL, "loads code objects"},
    {"dill", NULL, "loads pickles with code"},
    {"cloudpickle", NULL, "loads pickles with code"},
    {"joblib", "load", "loads another pickle"},
    {"joblib.numpy_pickle", "load", "loads another pickle"},
    {"torch", "load", "loads another pickle"},
    {"torch.serialization", "load", "loads another pickle"},
    {"numpy", "load", "loads another pickle (allow_pickle)"},
    {"numpy.core._ufunc_reconstruct", NULL, "imports by name"},
    {"numpy.core", "_ufunc_reconstruct", "imports by name"},
    {"numpy.core.umath", "_ufunc_reconstruct", "imports by name"},
    {"numpy._core", "_ufunc_reconstruct", "imports by name"},
    {"numpy._core.umath", "_ufunc_reconstruct", "imports by name"},
    {"code", NULL, "evaluates code"},
    {"codeop", NULL, "compiles code"},
    {"pdb", NULL, "evaluates code"},
    {"bdb", NULL, "evaluates code"},
    {"timeit", NULL, "evaluates code"},
    {"trace", NULL, "evaluates code"},
    {"cProfile", NULL, "evaluates code"},
    {"profile", NULL, "evaluates code"},
    {"types", "FunctionType", "builds functions from code objects"},
    {"types", "CodeType", "builds code objects"},
    {"types", "LambdaType", "builds functions from code objects"},
    {"types", "MethodType", "binds callables"},
    {"functools", "partial", "binds an arbitrary callable and its arguments"},
    {"functools", "reduce", "calls an arbitrary callable"},
    {"operator", "attrgetter", "reaches any attribute path"},
    {"operator", "itemgetter", "calls __getitem__ of whatever it is given"},
    {"operator", "methodcaller", "calls any method by name"},
    {"operator", "call", "calls an arbitrary callable"},
    {"sys", NULL, "reaches the interpreter's state"},
    {"gc", NULL, "reaches every object"},
    {"inspect", NULL, "reaches frames and code"},
    {"ctypes", NULL, "calls native code"},
    {"_ctypes", NULL, "calls native code"},
    {"cffi", NULL, "calls native code"},
    {"io", NULL, "opens files"},
    {"_io", NULL, "opens files"},
    {"codecs", NULL, "opens files and looks codecs up by name"},
    {"shutil", NULL, "copies and deletes files"},
    {"tempfile", NULL, "creates files"},
    {"pathlib", NULL, "opens files"},
    {"fileinput", NULL, "opens files"},
    {"glob", NULL, "lists files"},
    {"socket", NULL, "opens sockets"},
    {"_socket", NULL, "opens sockets"},
    {"ssl", NULL, "opens sockets"},
    {"urllib", NULL, "opens URLs"},
    {"http", NULL, "opens sockets"},
    {"ftplib", NULL, "opens sockets"},
    {"smtplib", NULL, "opens sockets"},
    {"telnetlib", NULL, "opens sockets"},
    {"socketserver", NULL, "opens sockets"},
    {"xmlrpc", NULL, "opens sockets"},
    {"requests", NULL, "opens URLs"},
    {"webbrowser", NULL, "starts programs"},
    {"platform", NULL, "runs commands"},
    {"threading", NULL, "starts threads running callables"},
    {"_thread", NULL, "starts threads running callables"},
};

const char *pp_learn_danger(const char *module, const char *qualname)
{
    for (size_t i = 0; i < sizeof DENY / sizeof DENY[0]; i++) {
        const deny *d = &DENY[i];
        size_t n = strlen(d->module);
        if (strncmp(module, d->module, n) != 0) continue;
        if (d->name) {
            /* a method or attribute of a denied name is denied too: builtins:eval.__call__ */
            size_t q = strlen(d->name);
            if (module[n] == 0 && strncmp(qualname, d->name, q) == 0 &&
                (qualname[q] == 0 || qualname[q] == '.'))
                return d->why;
        } else if (module[n] == 0 || module[n] == '.') {
            return d->why;
        }
    }
    return NULL;
}

/* ---- names ---------------------------------------------------------------------------------- */

static bool ident_part(const char *s, size_t n)
{
    if (!n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i && c >= '0' && c <= '9')) return false;
    }
    return true;
}

/* Dot-separated ASCII identifiers: the only names a policy can write. */
static bool dotted_ok(const char *s, size_t n)
{
    if (!n || n > 512) return false;
    size_t a = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s[i] == '.') {
            if (!ident_part(s + a, i - a)) return false;
            a = i + 1;
        }
    return true;
}

/* ---- the learned set -------------------------------------------------------------------------- */

static pp_learn_entry *find_entry(pp_learn *l, const char *module, const char *qualname)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->entries[i].module, module) == 0 &&
            strcmp(l->entries[i].qualname, qualname) == 0)
            return &l->entries[i];
    return NULL;
}

/* The entry whose "module.qualname" is `display`, so a class named in a message finds the
 * split its own lookup finding gave. */
static pp_learn_entry *find_display(pp_learn *l, const char *display)
{
    size_t dn = strlen(display);
    for (size_t i = 0; i < l->n; i++) {
        pp_learn_entry *e = &l->entries[i];
        size_t mn = strlen(e->module);
        if (mn < dn && memcmp(display, e->module, mn) == 0 && display[mn] == '.' &&
            strcmp(display + mn + 1, e->qualname) == 0)
            return e;
    }
    return NULL;
}

typedef struct site {
    const char *file;
    const pp_finding *f;
} site;

/* Adds `uses` to (module, qualname). Returns PP_OK and sets *grew when a bit was new. */
static pp_err learn_use(pp_learn *l, const char *module, const char *qualname, unsigned uses,
                        const site *s, bool *grew)
{
    pp_learn_entry *e = find_entry(l, module, qualname);
    if (!e) {
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 32;
            pp_learn_entry *v = pp_realloc(l->entries, ncap * sizeof *v);
            if (!v) return PP_E_NOMEM;
            l->entries = v;
            l->cap = ncap;
        }
        e = &l->entries[l->n];
        memset(e, 0, sizeof *e);
        e->module = pp_strdup(module);
        e->qualname = pp_strdup(qualname);
        e->file = pp_strdup(s->file);
        e->stream = pp_strdup(s->f->stream ? s->f->stream : "");
        if (!e->module || !e->qualname || !e->file || !e->stream) {
            pp_free(e->module);
            pp_free(e->qualname);
            pp_free(e->file);
            pp_free(e->stream);
            return PP_E_NOMEM;
        }
        e->offset = s->f->offset;
        snprintf(e->opcode, sizeof e->opcode, "%s", s->f->opcode ? s->f->opcode : "?");
        e->danger = pp_learn_danger(module, qualname);
        l->n++;
    }
    e->count++;
    if ((e->uses | uses) != e->uses) {
        e->uses |= uses;
        *grew = true;
    }
    return PP_OK;
}

/* ---- reading findings ------------------------------------------------------------------------ */

typedef struct use {
    char module[520], qualname[520];
    unsigned uses;
    bool second; /* follows from another refusal: learned only when nothing first-order is left */
} use;

/* Splits a finding's "module.qualname" (the last dot splits) unless the name is dotted, in
 * which case the message names the exact entry. */
static bool split(pp_learn *l, const char *display, const char *msg, use *u)
{
    const char *marker = msg ? strstr(msg, "only the exact entry ") : NULL;
    if (marker) {
        const char *a = marker + strlen("only the exact entry ");
        const char *end = strstr(a, " allows");
        const char *colon = end ? memchr(a, ':', (size_t)(end - a)) : NULL;
        if (!colon) return false;
        size_t mn = (size_t)(colon - a), qn = (size_t)(end - colon - 1);
        if (mn >= sizeof u->module || qn >= sizeof u->qualname) return false;
        memcpy(u->module, a, mn);
        u->module[mn] = 0;
        memcpy(u->qualname, colon + 1, qn);
        u->qualname[qn] = 0;
    } else {
        const pp_learn_entry *e = find_display(l, display);
        const char *dot = strrchr(display, '.');
        if (e) {
            snprintf(u->module, sizeof u->module, "%s", e->module);
            snprintf(u->qualname, sizeof u->qualname, "%s", e->qualname);
        } else {
            if (!dot || (size_t)(dot - display) >= sizeof u->module ||
                strlen(dot + 1) >= sizeof u->qualname)
                return false;
            memcpy(u->module, display, (size_t)(dot - display));
            u->module[dot - display] = 0;
            snprintf(u->qualname, sizeof u->qualname, "%s", dot + 1);
        }
    }
    return dotted_ok(u->module, strlen(u->module)) && dotted_ok(u->qualname, strlen(u->qualname));
}

/* The name between `prefix` and `suffix` in msg, as a use of `uses`. */
static bool named_in(pp_learn *l, const char *msg, const char *prefix, const char *suffix,
                     unsigned uses, use *u)
{
    const char *a = msg ? strstr(msg, prefix) : NULL;
    if (!a) return false;
    a += strlen(prefix);
    const char *end = strstr(a, suffix);
    if (!end || end == a || (size_t)(end - a) >= sizeof u->module) return false;
    char name[520];
    memcpy(name, a, (size_t)(end - a));
    name[end - a] = 0;
    u->uses = uses;
    return split(l, name, NULL, u);
}

static bool learned_call(pp_learn *l, const use *u)
{
    const pp_learn_entry *e = find_entry(l, u->module, u->qualname);
    return e && (e->uses & PP_LEARN_CALL);
}

/* What permission answers the finding. false: none does (or not yet: see `second`). */
static bool reading(pp_learn *l, const pp_finding *f, use *u)
{
    memset(u, 0, sizeof *u);
    const char *rule = f->rule, *msg = f->message ? f->message : "";
    const char *g = f->global;
    if (strcmp(rule, "global-not-allowed") == 0) {
        u->uses = PP_LEARN_REFERENCE;
        return g && split(l, g, msg, u);
    }
    if (strcmp(rule, "construct-not-allowed") == 0) {
        u->uses = PP_LEARN_CONSTRUCT;
        return g && split(l, g, NULL, u);
    }
    if (strcmp(rule, "call-not-allowed") == 0) {
        if (!g || !f->opcode) return false;
        if (strstr(msg, " with arguments calls ")) { /* INST/OBJ with arguments: cls(*args) */
            u->uses = PP_LEARN_CONSTRUCT;
            return split(l, g, NULL, u);
        }
        /* "REDUCE calls NAME, which ...": a global. Anything else calls a call result. */
        size_t on = strlen(f->opcode), gn = strlen(g);
        if (strncmp(msg, f->opcode, on) != 0 || strncmp(msg + on, " calls ", 7) != 0 ||
            strncmp(msg + on + 7, g, gn) != 0 || msg[on + 7 + gn] != ',')
            return false;
        u->uses = PP_LEARN_CALL;
        return split(l, g, NULL, u);
    }
    if (strcmp(rule, "argument-not-allowed") == 0) {
        /* the one case a learned entry answers: a helper's class argument that is not
         * construct-allowed ("argument 1 (global X) does not match class (that global ...") */
        if (!strstr(msg, "(that global is not construct-allowed)")) return false;
        return named_in(l, msg, " (global ", ") does not match ", PP_LEARN_CONSTRUCT, u);
    }
    if (strcmp(rule, "build-not-allowed") == 0 || strcmp(rule, "mutation-not-allowed") == 0) {
        u->second = true;
        if (named_in(l, msg, " on the result of calling ", ", which is not known",
                     PP_LEARN_CALL | PP_LEARN_SELF | PP_LEARN_CONSTRUCT, u))
            /* only a call this policy learned may gain `-> self`: an included policy's
             * call line says what its result is, and learning cannot widen it */
            return learned_call(l, u);
        if (named_in(l, msg, " on a new instance of ", ", which is not known", PP_LEARN_CONSTRUCT,
                     u))
            return true;
        return named_in(l, msg, " on an instance of ", ", which the policy does not allow",
                        PP_LEARN_CONSTRUCT, u);
    }
    /* persistent ids and container findings (torch storages) follow from globals the pass did
     * not allow yet; the next pass judges them again */
    if (strcmp(rule, "dunder-state") != 0 && strcmp(rule, "extension-code") != 0) u->second = true;
    return false;
}

/* ---- passes -------------------------------------------------------------------------------- */

static void put_comment_text(pp_buf *b, const char *s);

/* One diagnostic line. Streams and messages come from the sandboxed parser and name archive
 * members: escaped like comments, so they cannot move a terminal's cursor. */
static pp_err diag(pp_buf *b, const char *file, const pp_finding *f, const char *what)
{
    put_comment_text(b, file);
    if (f->stream && *f->stream) {
        size_t n = strlen(file);
        const char *s = f->stream;
        if (strncmp(s, file, n) == 0 && s[n] == '!') s += n + 1;
        if (strcmp(s, file) != 0) {
            pp_buf_putc(b, '!');
            put_comment_text(b, s);
        }
    }
    pp_buf_printf(b, " at offset %llu (", (unsigned long long)f->offset);
    put_comment_text(b, f->opcode ? f->opcode : "?");
    pp_buf_printf(b, "): %s: ", what);
    put_comment_text(b, f->message ? f->message : f->rule);
    pp_buf_putc(b, '\n');
    return pp_buf_ok(b) ? PP_OK : PP_E_NOMEM;
}

static pp_err pass_policy(const pp_learn *l, const pp_learn_options *o, pp_policy **out,
                          pp_error *err)
{
    pp_policy *p = NULL;
    pp_err rc = pp_policy_new(&p);
    if (rc != PP_OK) return rc;
    for (size_t i = 0; i < o->nincludes && rc == PP_OK; i++)
        rc = pp_policy_add(p, o->includes[i], err);
    if (rc == PP_OK) {
        pp_buf b;
        pp_buf_init(&b);
        pp_learn_render(l, "learned", NULL, 0, false, &b);
        if (!pp_buf_ok(&b))
            rc = PP_E_NOMEM;
        else
            rc = pp_policy_add_text(p, "<learned>", b.p ? b.p : "", b.n, err);
        pp_buf_free(&b);
    }
    if (rc != PP_OK) {
        pp_policy_free(p);
        return rc;
    }
    *out = p;
    return PP_OK;
}

void pp_learn_options_init(pp_learn_options *o)
{
    memset(o, 0, sizeof *o);
    pp_scan_options_init(&o->scan, NULL);
}

pp_err pp_learn_files(const char *const *paths, size_t npaths, const pp_learn_options *o,
                      pp_learn **out, pp_error *err)
{
    *out = NULL;
    pp_learn *l = pp_calloc(1, sizeof *l);
    bool *done = pp_calloc(npaths ? npaths : 1, sizeof *done);
    pp_buf d;
    pp_buf_init(&d);
    pp_err rc = l && done ? PP_OK : PP_E_NOMEM;
    bool finished = false;
    for (unsigned pass = 0; rc == PP_OK && !finished; pass++) {
        if (pass == MAX_PASSES) {
            pp_buf_printf(&d, "no policy after %u passes\n", pass);
            l->status = PP_LEARN_STUCK;
            break;
        }
        l->passes = pass + 1;
        pp_policy *p = NULL;
        if ((rc = pass_policy(l, o, &p, err)) != PP_OK) break;
        pp_scan_options so = o->scan;
        so.policy = p;
        bool grew = false, all_safe = true;
        /* the first finding no entry answers, reported if the pass learns nothing */
        pp_buf stuck;
        pp_buf_init(&stuck);
        for (size_t i = 0; i < npaths && rc == PP_OK; i++) {
            if (done[i]) continue;
            pp_report *r = NULL;
            so.path = paths[i];
            if ((rc = pp_scan_file(paths[i], &so, &r)) != PP_OK) break;
            if (r->verdict == PP_VERDICT_SAFE) {
                done[i] = true;
            } else if (r->verdict != PP_VERDICT_UNSAFE) {
                pp_buf_printf(&d, "%s: %s: %s\n", paths[i], pp_verdict_name(r->verdict),
                              r->error.msg[0] ? r->error.msg : pp_errname(r->error.code));
                l->status = PP_LEARN_INPUT;
            } else {
                all_safe = false;
                bool first_order = false;
                for (size_t k = 0; k < r->nfindings; k++) {
                    use u;
                    if (reading(l, &r->findings[k], &u) && !u.second) first_order = true;
                }
                for (size_t k = 0; k < r->nfindings && rc == PP_OK; k++) {
                    const pp_finding *f = &r->findings[k];
                    use u;
                    bool ok = reading(l, f, &u);
                    if (ok && (!u.second || !first_order)) {
                        site s = {paths[i], f};
                        rc = learn_use(l, u.module, u.qualname, u.uses, &s, &grew);
                    } else if (!ok && !u.second && !stuck.n) {
                        rc = diag(&stuck, paths[i], f, "no policy entry can allow this");
                    }
                }
                if (!first_order && !stuck.n && r->nfindings)
                    rc = diag(&stuck, paths[i], &r->findings[0], "no policy entry can allow this");
            }
            pp_report_free(r);
        }
        pp_policy_free(p);
        if (rc == PP_OK && l->status == PP_LEARNED) {
            for (size_t i = 0; i < l->n; i++) {
                const pp_learn_entry *e = &l->entries[i];
                if (!e->danger || o->allow_dangerous) continue;
                pp_finding f = {.stream = e->stream, .offset = e->offset, .opcode = e->opcode,
                                .rule = "dangerous"};
                char m[600];
                snprintf(m, sizeof m, "%s%s%s is on the denylist of dangerous globals (%s)",
                         e->module, strchr(e->qualname, '.') ? ":" : ".", e->qualname, e->danger);
                f.message = m;
                rc = diag(&d, e->file, &f, "refusing to learn it (--allow-dangerous emits it)");
                l->status = PP_LEARN_DANGEROUS;
            }
        }
        if (rc == PP_OK && l->status == PP_LEARNED) {
            if (all_safe) {
                finished = true;
            } else if (!grew) {
                l->status = PP_LEARN_STUCK;
                pp_buf_put(&d, stuck.p ? stuck.p : "no policy entry can allow a finding\n",
                           stuck.p ? stuck.n : strlen("no policy entry can allow a finding\n"));
            }
        }
        pp_buf_free(&stuck);
        if (l->status != PP_LEARNED) break;
    }
    pp_free(done);
    if (rc == PP_OK && !pp_buf_ok(&d)) rc = PP_E_NOMEM;
    if (rc != PP_OK) {
        pp_buf_free(&d);
        pp_learn_free(l);
        return rc;
    }
    l->diag = pp_buf_take(&d);
    *out = l;
    return PP_OK;
}

/* ---- rendering ------------------------------------------------------------------------------- */

/* Class-taking helpers, when a policy without `default` has to learn them: their class
 * argument is pinned to construct-allowed classes, so the helper constructs only what the
 * policy would construct directly, and the result is an instance of it. */
static const struct {
    const char *name;
    const char *args;
} HELPERS[] = {
    {"copyreg._reconstructor", "(class, @builtins.object, None) | (class, class, any) -> arg1"},
    {"copyreg.__newobj__", "(class, *any) -> arg1"},
    {"copyreg.__newobj_ex__", "(class, tuple, dict) -> arg1"},
    {"numpy.core.multiarray._reconstruct", "(class, (0,), b\"b\" | \"b\") -> arg1"},
    {"numpy._core.multiarray._reconstruct", "(class, (0,), b\"b\" | \"b\") -> arg1"},
};

static const char *helper_args(const pp_learn_entry *e)
{
    char full[1100];
    snprintf(full, sizeof full, "%s.%s", e->module, e->qualname);
    for (size_t i = 0; i < sizeof HELPERS / sizeof HELPERS[0]; i++)
        if (strcmp(full, HELPERS[i].name) == 0) return HELPERS[i].args;
    return NULL;
}

static void put_name(pp_buf *b, const pp_learn_entry *e)
{
    pp_buf_printf(b, "%s%s%s", e->module, strchr(e->qualname, '.') ? ":" : ".", e->qualname);
}

/* Comment text: file and stream names are the caller's and the archive's, so control bytes
 * (a newline would end the comment and start a directive) are escaped. */
static void put_comment_text(pp_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            pp_buf_printf(b, "\\x%02x", c);
        else
            pp_buf_putc(b, (char)c);
    }
}

static size_t top_len(const char *module)
{
    const char *dot = strchr(module, '.');
    return dot ? (size_t)(dot - module) : strlen(module);
}

static int cmp_entry(const void *a, const void *b)
{
    const pp_learn_entry *x = *(const pp_learn_entry *const *)a;
    const pp_learn_entry *y = *(const pp_learn_entry *const *)b;
    int c = strcmp(x->module, y->module);
    return c ? c : strcmp(x->qualname, y->qualname);
}

void pp_learn_render(const pp_learn *l, const char *name, const char *const *includes,
                     size_t nincludes, bool comments, pp_buf *b)
{
    const pp_learn_entry **v = pp_calloc(l->n ? l->n : 1, sizeof *v);
    if (!v) {
        b->failed = true;
        return;
    }
    for (size_t i = 0; i < l->n; i++)
        v[i] = &l->entries[i];
    qsort(v, l->n, sizeof *v, cmp_entry);
    if (comments) {
        pp_buf_puts(b, "# Learned by `pickleproof policy learn` from trusted samples: the smallest set of\n"
                       "# entries that makes every sample scan safe. Review every entry before use.\n");
    }
    pp_buf_printf(b, "policy %s\n", name);
    for (size_t i = 0; i < nincludes; i++)
        pp_buf_printf(b, "include %s\n", includes[i]);
    const char *group = NULL;
    size_t glen = 0;
    for (size_t i = 0; i < l->n; i++) {
        const pp_learn_entry *e = v[i];
        size_t tl = top_len(e->module);
        if (comments && (!group || tl != glen || strncmp(group, e->module, tl) != 0)) {
            pp_buf_printf(b, "\n# ---- %.*s ----\n", (int)tl, e->module);
            group = e->module;
            glen = tl;
        }
        if (comments) {
            if (e->danger)
                pp_buf_printf(b, "# WARNING: DANGEROUS: %s; learned only because "
                                 "--allow-dangerous was given\n",
                              e->danger);
            pp_buf_puts(b, "# seen in ");
            put_comment_text(b, e->file);
            const char *s = e->stream;
            size_t fn = strlen(e->file);
            if (strncmp(s, e->file, fn) == 0 && s[fn] == '!') s += fn + 1;
            if (*s && strcmp(s, e->file) != 0) { /* joblib names its stream after the file */
                pp_buf_putc(b, '!');
                put_comment_text(b, s);
            }
            pp_buf_printf(b, " at offset %llu (", (unsigned long long)e->offset);
            put_comment_text(b, e->opcode);
            pp_buf_putc(b, ')');
            if (e->count > 1) pp_buf_printf(b, ", and %llu more", (unsigned long long)(e->count - 1));
            pp_buf_putc(b, '\n');
        }
        unsigned u = e->uses;
        if (u & PP_LEARN_CALL) {
            const char *h = helper_args(e);
            pp_buf_puts(b, "call ");
            put_name(b, e);
            if (h)
                pp_buf_printf(b, " %s", h);
            else if (u & PP_LEARN_SELF)
                pp_buf_puts(b, " -> self");
            pp_buf_putc(b, '\n');
        }
        if (u & (PP_LEARN_CONSTRUCT | PP_LEARN_SELF)) {
            pp_buf_puts(b, "construct ");
            put_name(b, e);
            pp_buf_putc(b, '\n');
        }
        if (!(u & (PP_LEARN_CALL | PP_LEARN_CONSTRUCT | PP_LEARN_SELF))) {
            pp_buf_puts(b, "reference ");
            put_name(b, e);
            pp_buf_putc(b, '\n');
        }
    }
    pp_free(v);
}

void pp_learn_free(pp_learn *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        pp_free(l->entries[i].module);
        pp_free(l->entries[i].qualname);
        pp_free(l->entries[i].file);
        pp_free(l->entries[i].stream);
    }
    pp_free(l->entries);
    pp_free(l->diag);
    pp_free(l);
}
