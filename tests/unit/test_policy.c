/* Policy files (syntax, errors, includes, lookups, built-ins) and every policy rule, on graphs
 * built by hand so each rule is tested without the VM. */
#include "policy.h"
#include "policy_int.h"
#include "report.h"
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers: policies ------------------------------------------------------------------ */

static pp_policy *policy_text(const char *text, pp_err *rc, pp_error *err)
{
    pp_policy *p = NULL;
    if (pp_policy_new(&p) != PP_OK) return NULL;
    pp_error_clear(err);
    *rc = pp_policy_add_text(p, "t.policy", text, strlen(text), err);
    return p;
}

static pp_policy *must(const char *text)
{
    pp_err rc;
    pp_error err;
    pp_policy *p = policy_text(text, &rc, &err);
    CHECKF(rc == PP_OK, "policy loads: %s", err.msg);
    return p;
}

/* The text must fail with PP_E_POLICY at `line`, the message containing `why`. */
static void bad(const char *text, unsigned line, const char *why)
{
    pp_err rc;
    pp_error err;
    pp_policy *p = policy_text(text, &rc, &err);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "t.policy:%u: ", line);
    CHECKF(rc == PP_E_POLICY && err.code == PP_E_POLICY, "rejects [%s]: rc %d", text, rc);
    CHECKF(strncmp(err.msg, prefix, strlen(prefix)) == 0, "[%s] error names %s: %s", text, prefix,
           err.msg);
    CHECKF(strstr(err.msg, why) != NULL, "[%s] error says '%s': %s", text, why, err.msg);
    pp_policy_free(p);
}

static unsigned perms(const pp_policy *p, const char *m, const char *n)
{
    return pp_policy_lookup(p, m, strlen(m), n, strlen(n));
}

/* ---- helpers: hand-built graphs ---------------------------------------------------------- */

static pp_arena A;
static pp_graph G;
static uint64_t OFF;
static pp_node *globals[64];
static size_t nglobals;
static pp_limits LIM;

static void reset(void)
{
    pp_arena_free(&A);
    pp_arena_init(&A, (size_t)1 << 28);
    memset(&G, 0, sizeof G);
    OFF = 100;
    nglobals = 0;
    pp_limits_default(&LIM);
}

static void *zalloc(size_t n)
{
    void *p = pp_arena_zalloc(&A, n);
    if (!p) {
        fprintf(stderr, "test arena exhausted\n");
        exit(2);
    }
    return p;
}

static pp_node *node(uint8_t kind, uint8_t op)
{
    pp_node *n = zalloc(sizeof *n);
    n->kind = kind;
    n->opcode = op;
    n->id = G.next_id++;
    n->offset = OFF;
    return n;
}

static pp_event *event(uint8_t kind, uint8_t op, pp_node *n, pp_val a, pp_val b)
{
    pp_event *e = zalloc(sizeof *e);
    e->kind = kind;
    e->opcode = op;
    e->offset = OFF++;
    e->node = n;
    e->a = a;
    e->b = b;
    if (G.events_tail)
        G.events_tail->next = e;
    else
        G.events = e;
    G.events_tail = e;
    G.nevents++;
    return e;
}

static pp_val V(pp_node *n)
{
    return pp_val_node(n);
}

static pp_val NONE(void)
{
    return pp_val_none();
}

static pp_val I(int64_t i)
{
    pp_val v = {0};
    v.kind = PP_V_INT;
    v.u.i = i;
    return v;
}

static pp_val BOOL(int b)
{
    pp_val v = {0};
    v.kind = PP_V_BOOL;
    v.u.i = b;
    return v;
}

static pp_val FL(double f)
{
    pp_val v = {0};
    v.kind = PP_V_FLOAT;
    v.u.f = f;
    return v;
}

static pp_val SN(const char *s, size_t n, uint8_t kind)
{
    pp_val v = {0};
    v.kind = kind;
    v.u.s.p = (const uint8_t *)s;
    v.u.s.n = n;
    return v;
}

static pp_val S(const char *s)
{
    return SN(s, strlen(s), PP_V_STR);
}

static pp_val B(const char *s)
{
    return SN(s, strlen(s), PP_V_BYTES);
}

/* A global lookup: interned per name like the VM does, with a GLOBAL event each time. */
static pp_node *glob_op(const char *m, const char *n, uint8_t op)
{
    pp_node *g = NULL;
    for (size_t i = 0; i < nglobals; i++)
        if (strcmp(globals[i]->u.glob.module, m) == 0 && strcmp(globals[i]->u.glob.name, n) == 0)
            g = globals[i];
    if (!g) {
        g = node(PP_N_GLOBAL, op);
        g->u.glob.module = m;
        g->u.glob.name = n;
        g->u.glob.modlen = (uint32_t)strlen(m);
        g->u.glob.namelen = (uint32_t)strlen(n);
        g->u.glob.raw_module = m;
        g->u.glob.raw_name = n;
        if (strchr(n, '.')) g->flags |= PP_NF_DOTTED;
        globals[nglobals++] = g;
    }
    event(PP_EV_GLOBAL, op, g, NONE(), NONE());
    return g;
}

static pp_val GL(const char *m, const char *n)
{
    return V(glob_op(m, n, 0x93));
}

static pp_node *seq(uint8_t kind, size_t n, va_list ap)
{
    pp_node *t = node(kind, kind == PP_N_TUPLE ? 't' : kind == PP_N_LIST ? 'l' : 'd');
    t->u.seq.v = n ? zalloc(n * sizeof(pp_val)) : NULL;
    for (size_t i = 0; i < n; i++)
        t->u.seq.v[i] = va_arg(ap, pp_val);
    t->u.seq.n = t->u.seq.cap = n;
    return t;
}

static pp_val TUP(size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    pp_node *t = seq(PP_N_TUPLE, n, ap);
    va_end(ap);
    return V(t);
}

static pp_val LIST(size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    pp_node *t = seq(PP_N_LIST, n, ap);
    va_end(ap);
    return V(t);
}

/* DICT(npairs, k, v, k, v...) */
static pp_val DICT(size_t npairs, ...)
{
    va_list ap;
    va_start(ap, npairs);
    pp_node *t = seq(PP_N_DICT, npairs * 2, ap);
    va_end(ap);
    return V(t);
}

static pp_node *call_v(uint8_t op, pp_val fn, size_t n, va_list ap)
{
    pp_node *c = node(PP_N_CALL, op);
    c->u.call.fn = fn;
    c->u.call.args = n ? zalloc(n * sizeof(pp_val)) : NULL;
    for (size_t i = 0; i < n; i++)
        c->u.call.args[i] = va_arg(ap, pp_val);
    c->u.call.nargs = n;
    event(PP_EV_CALL, op, c, NONE(), NONE());
    return c;
}

/* REDUCE fn(args...) */
static pp_val CALL(pp_val fn, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    pp_node *c = call_v('R', fn, n, ap);
    va_end(ap);
    return V(c);
}

/* INST/OBJ with arguments */
static pp_val INSTA(pp_val cls, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    pp_node *c = call_v('o', cls, n, ap);
    va_end(ap);
    return V(c);
}

/* NEWOBJ cls(args...) */
static pp_val NEW(pp_val cls, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    pp_node *c = node(PP_N_NEW, 0x81);
    c->u.call.fn = cls;
    c->u.call.args = n ? zalloc(n * sizeof(pp_val)) : NULL;
    for (size_t i = 0; i < n; i++)
        c->u.call.args[i] = va_arg(ap, pp_val);
    c->u.call.nargs = n;
    va_end(ap);
    event(PP_EV_NEW, 0x81, c, NONE(), NONE());
    return V(c);
}

static void BUILD(pp_val target, pp_val state)
{
    event(PP_EV_BUILD, 'b', target.u.node, state, NONE());
}

static const char *const STREAMS[] = {"pickle", "second"};

static pp_report *run(const pp_policy *p)
{
    pp_report *r = pp_report_new(NULL);
    pp_err rc = pp_policy_check(p, &G, &LIM, STREAMS, 2, r);
    CHECKF(rc == PP_OK, "check runs: %s", pp_errname(rc));
    return r;
}

static size_t count(const pp_report *r, const char *rule)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nfindings; i++)
        if (strcmp(r->findings[i].rule, rule) == 0) n++;
    return n;
}

static const pp_finding *first(const pp_report *r, const char *rule)
{
    for (size_t i = 0; i < r->nfindings; i++)
        if (strcmp(r->findings[i].rule, rule) == 0) return &r->findings[i];
    return NULL;
}

static void dump(const pp_report *r)
{
    for (size_t i = 0; i < r->nfindings; i++)
        printf("#   %s [%s] %s @%llu: %s\n", r->findings[i].rule,
               r->findings[i].global ? r->findings[i].global : "-",
               r->findings[i].opcode ? r->findings[i].opcode : "-",
               (unsigned long long)r->findings[i].offset, r->findings[i].message);
}

/* The graph gives no findings at all. */
static void clean(const pp_policy *p, const char *what)
{
    pp_report *r = run(p);
    CHECKF(r->nfindings == 0, "%s: no findings (got %zu)", what, r->nfindings);
    if (r->nfindings) dump(r);
    pp_report_free(r);
}

/* The graph gives exactly `n` findings of `rule` and none of any other rule. */
static const pp_finding *only(pp_report *r, const char *rule, size_t n, const char *what)
{
    /* reports list at most 100 findings per rule, then one findings-truncated note */
    size_t listed = n > 100 ? 100 : n, total = n > 100 ? 101 : n;
    CHECKF(count(r, rule) == listed && r->nfindings == total &&
               (n <= 100) == (count(r, "findings-truncated") == 0),
           "%s: %zu x %s (got %zu findings)", what, n, rule, r->nfindings);
    if (count(r, rule) != listed || r->nfindings != total) dump(r);
    return first(r, rule);
}

static bool msg_has(const pp_finding *f, const char *s)
{
    return f && f->message && strstr(f->message, s);
}

/* ---- parsing ----------------------------------------------------------------------------- */

static void test_parse_good(void)
{
    pp_policy *p = must("# a comment line\n"
                        "policy team-1.x   # trailing comment\n"
                        "\n"
                        "   \t\n"
                        "reference builtins.int\r\n"
                        "reference a.b.c.D   # module a.b.c\n"
                        "reference a.b:C.D   # module a.b, dotted qualname\n"
                        "call m.f\n"
                        "call m.f (str, \"x\" | 'y' | b\"\\x00z\", -5, None, True, False)\n"
                        "call m.g () | (int) | (int, *str) -> self\n"
                        "call m.h (any, (0,), [int, *float], (*int), (), []) -> arg1\n"
                        "call m.e (str) -> latin1(arg1)\n"
                        "call m.b () -> bytes\n"
                        "call m.i (@x.y | @x:y.z, instance(n.D), class, identifier, dtypestr)\n"
                        "call m.t (tuple, list, dict, set, frozenset, bytearray, memoryview, bool, "
                        "float)\n"
                        "construct m.C\n"
                        "construct m.K (int)\n"
                        "construct m.f\n"
                        "call m.s (\"tab\\there\\\\ \\\"q\\\" \\'s\\' \\xe9 # not a comment\")\n");
    CHECK(perms(p, "builtins", "int") == PP_PERM_REFERENCE);
    CHECK(perms(p, "a.b.c", "D") == PP_PERM_REFERENCE);
    CHECK(perms(p, "a.b", "C.D") == PP_PERM_REFERENCE);
    CHECK(perms(p, "a.b", "c.D") == 0); /* the last dot splits: no prefix matching */
    CHECK(perms(p, "a.b.c", "d") == 0); /* exact, case-sensitive */
    CHECK(perms(p, "m", "f") == (PP_PERM_REFERENCE | PP_PERM_CALL | PP_PERM_CONSTRUCT));
    CHECK(perms(p, "m", "C") == (PP_PERM_REFERENCE | PP_PERM_CONSTRUCT));
    CHECK(perms(p, "m", "nope") == 0);
    CHECK(perms(p, "", "") == 0);
    char big[PP_POLICY_MAX_NAME + 2];
    memset(big, 'a', sizeof big);
    CHECK(pp_policy_lookup(p, big, sizeof big, "f", 1) == 0);
    const pp_pentry *e = pp_policy_entry(p, "m", 1, "C", 1);
    CHECK(e && e->construct_any);
    e = pp_policy_entry(p, "m", 1, "K", 1);
    CHECK(e && !e->construct_any && e->construct && e->construct->args);
    e = pp_policy_entry(p, "m", 1, "h", 1);
    CHECK(e && e->call && e->call->res == PP_RES_ARG && e->call->resarg == 0);
    e = pp_policy_entry(p, "m", 1, "e", 1);
    CHECK(e && e->call && e->call->res == PP_RES_LATIN1);
    e = pp_policy_entry(p, "m", 1, "s", 1);
    CHECK(e && e->call && e->call->args && e->call->args->u.seq.n == 1);
    if (e && e->call && e->call->args && e->call->args->u.seq.n == 1) {
        const pp_pat *lit = e->call->args->u.seq.v[0];
        const char want[] = "tab\there\\ \"q\" 's' \xc3\xa9 # not a comment";
        CHECK(lit->kind == PP_PAT_STR && lit->u.s.n == strlen(want) &&
              memcmp(lit->u.s.p, want, lit->u.s.n) == 0);
    }
    const char *const *names;
    CHECK(pp_policy_names(p, &names) == 1 && strcmp(names[0], "team-1.x") == 0 && !names[1]);
    pp_policy_free(p);

    /* no policy line: the origin names it */
    p = must("reference a.b\n");
    CHECK(pp_policy_names(p, &names) == 1 && strcmp(names[0], "t") == 0);
    pp_policy_free(p);

    /* empty text, text without a final newline */
    p = must("");
    pp_policy_free(p);
    p = must("reference a.b");
    CHECK(perms(p, "a", "b") == PP_PERM_REFERENCE);
    pp_policy_free(p);
}

static void test_parse_errors(void)
{
    bad("frobnicate a.b\n", 1, "unknown directive 'frobnicate'");
    bad("\n\nReference a.b\n", 3, "unknown directive");
    bad("reference\n", 1, "needs an argument");
    bad("reference   # nothing\n", 1, "needs an argument");
    bad("reference builtins\n", 1, "has no module");
    bad("reference a..b\n", 1, "not a dotted ASCII identifier");
    bad("reference .a.b\n", 1, "not a dotted ASCII identifier");
    bad("reference a.b.\n", 1, "not a dotted ASCII identifier");
    bad("reference a:b:c\n", 1, "more than one ':'");
    bad("reference a:\n", 1, "qualname");
    bad("reference 1a.b\n", 1, "not a dotted ASCII identifier");
    bad("reference a.b-c\n", 1, "unexpected '-'");
    bad("reference a.b*\n", 1, "unexpected '*'");
    bad("reference a.b (int)\n", 1, "reference takes no argument list");
    bad("reference a.b -> self\n", 1, "takes no '-> result'");
    bad("construct a.b -> self\n", 1, "takes no '-> result'");
    bad("call a.b str\n", 1, "expected an argument list");
    bad("call a.b(int)\n", 1, "unexpected '('");
    bad("call a.b (int\n", 1, "expected ',' or ')'");
    bad("call a.b (int,, str)\n", 1, "expected an argument pattern");
    bad("call a.b ((int))\n", 1, "write (p,) for a one-element tuple");
    bad("call a.b (frob)\n", 1, "unknown pattern 'frob'");
    bad("call a.b (\"x)\n", 1, "unterminated string");
    bad("call a.b (b\"\xc3\xa9\")\n", 1, "printable ASCII");
    bad("call a.b (\"\\q\")\n", 1, "unknown escape");
    bad("call a.b (\"\\x4\")\n", 1, "two hex digits");
    bad("call a.b (01)\n", 1, "malformed integer");
    bad("call a.b (1x)\n", 1, "malformed integer");
    bad("call a.b (-)\n", 1, "malformed integer");
    bad("call a.b (99999999999999999999)\n", 1, "out of range");
    bad("call a.b (9223372036854775808)\n", 1, "out of range");
    bad("call a.b (*int, str)\n", 1, "must be the last");
    bad("call a.b (@x)\n", 1, "has no module");
    bad("call a.b (instance(x.y)\n", 1, "expected ',' or ')'");
    bad("call a.b (instance(x.y int))\n", 1, "expected ')' after instance(");
    bad("call a.b (instance x.y)\n", 1, "expected '('");
    bad("call a.b (int) | str\n", 1, "expected '('");
    bad("call a.b (int) junk\n", 1, "unexpected 'j'");
    bad("call a.b (int) -> arg2\n", 1, "refers to argument 2");
    bad("call a.b (int) | () -> arg1\n", 1, "refers to argument 1");
    bad("call a.b -> arg1\n", 1, "needs an argument list");
    bad("call a.b (str) -> latin1(arg3)\n", 1, "refers to argument 3");
    bad("call a.b (int) -> frob\n", 1, "unknown result 'frob'");
    bad("call a.b (int) -> arg0\n", 1, "unknown result");
    bad("call a.b (int) -> self extra\n", 1, "unexpected 'e'");
    bad("call a.b ((((((((((int,),),),),),),),),),)\n", 1, "nested deeper than 8");
    bad("reference a.b\npolicy late\n", 2, "must come before every other directive");
    bad("policy x\npolicy y\n", 2, "only once");
    bad("policy bad!name\n", 1, "invalid policy name");
    bad("policy a b\n", 1, "one name");
    bad("reference a.b\x01\n", 1, "control character 0x01");
    bad("reference a.b # caf\xe9\n", 1, "invalid UTF-8");
    bad("include nosuchbuiltin\n", 1, "no built-in policy named 'nosuchbuiltin'");
    bad("include ./no/such/file.policy\n", 1, "cannot open policy file");
    bad("include a b\n", 1, "one name");

    char line[5000];
    memset(line, '#', sizeof line - 2);
    line[sizeof line - 2] = '\n';
    line[sizeof line - 1] = 0;
    bad(line, 1, "longer than 4096");
    char longname[700];
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "reference m.", 12);
    longname[sizeof longname - 1] = 0;
    bad(longname, 1, "longer than 512");

    /* a NUL byte inside the text is a control character */
    pp_policy *p = NULL;
    pp_error err;
    pp_error_clear(&err);
    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(pp_policy_add_text(p, "t.policy", "reference a.b\0x", 15, &err) == PP_E_POLICY);
    CHECK(strstr(err.msg, "control character 0x00") != NULL);
    pp_policy_free(p);

    /* a failed line adds nothing */
    pp_err rc;
    p = policy_text("reference ok.a\ncall bad.b (frob)\n", &rc, &err);
    CHECK(rc == PP_E_POLICY && perms(p, "ok", "a") && !perms(p, "bad", "b"));
    pp_policy_free(p);
}

/* ---- includes and files ------------------------------------------------------------------- */

static char TMP[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TMP, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        CHECKF(0, "cannot write %s", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static pp_err add_file(pp_policy *p, const char *name, pp_error *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TMP, name);
    pp_error_clear(err);
    return pp_policy_add(p, path, err);
}

static void test_includes(void)
{
    snprintf(TMP, sizeof TMP, "/tmp/pp_test_policy_XXXXXX");
    if (!mkdtemp(TMP)) {
        CHECKF(0, "mkdtemp");
        return;
    }
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", TMP);
    mkdir(sub, 0700);
    write_file("a.policy", "policy a\ninclude sub/b.policy\nreference a.x\n");
    write_file("sub/b.policy", "include default\ninclude c.policy\nreference b.x\n");
    write_file("sub/c.policy", "reference c.x\n");
    write_file("self.policy", "reference s.x\ninclude ./self.policy\n");
    write_file("cyc1.policy", "include cyc2.policy\n");
    write_file("cyc2.policy", "\ninclude ./cyc1.policy\n");
    write_file("twice.policy", "include sub/c.policy\ninclude ./sub/c.policy\ninclude default\n");
    write_file("bad.policy", "reference x.y\n\n\ncall x.z (nope)\n");
    /* a chain deeper than the include limit */
    for (int i = 0; i < 20; i++) {
        char name[32], text[64];
        snprintf(name, sizeof name, "d%d.policy", i);
        snprintf(text, sizeof text, "include d%d.policy\n", i + 1);
        write_file(name, text);
    }
    write_file("d20.policy", "reference deep.x\n");

    pp_policy *p;
    pp_error err;
    const char *const *names;
    CHECK(pp_policy_new(&p) == PP_OK);
    CHECKF(add_file(p, "a.policy", &err) == PP_OK, "relative includes load: %s", err.msg);
    CHECK(perms(p, "a", "x") && perms(p, "b", "x") && perms(p, "c", "x"));
    CHECK(perms(p, "builtins", "int") == PP_PERM_REFERENCE); /* from the built-in default */
    size_t n = pp_policy_names(p, &names);
    CHECKF(n == 4 && strcmp(names[0], "default") == 0 && strcmp(names[1], "c") == 0 &&
               strcmp(names[2], "b") == 0 && strcmp(names[3], "a") == 0,
           "names in completion order (%zu)", n);
    /* loading again changes nothing: every unit is loaded once */
    CHECK(add_file(p, "a.policy", &err) == PP_OK);
    CHECK(pp_policy_names(p, &names) == 4);
    pp_policy_free(p);

    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(add_file(p, "twice.policy", &err) == PP_OK);
    CHECK(pp_policy_names(p, &names) == 3);
    pp_policy_free(p);

    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(add_file(p, "self.policy", &err) == PP_E_POLICY);
    CHECKF(strstr(err.msg, "self.policy:2: include cycle") != NULL, "self include: %s", err.msg);
    pp_policy_free(p);

    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(add_file(p, "cyc1.policy", &err) == PP_E_POLICY);
    CHECKF(strstr(err.msg, "cyc2.policy:2: include cycle") != NULL, "cycle: %s", err.msg);
    pp_policy_free(p);

    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(add_file(p, "d0.policy", &err) == PP_E_POLICY);
    CHECKF(strstr(err.msg, "nested deeper than 16") != NULL, "depth: %s", err.msg);
    pp_policy_free(p);

    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(add_file(p, "bad.policy", &err) == PP_E_POLICY);
    CHECKF(strstr(err.msg, "bad.policy:4: unknown pattern 'nope'") != NULL, "file:line: %s",
           err.msg);
    pp_policy_free(p);

    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(add_file(p, "missing.policy", &err) == PP_E_POLICY);
    CHECKF(strstr(err.msg, "cannot open policy file") != NULL, "missing: %s", err.msg);
    pp_error_clear(&err);
    CHECK(pp_policy_add(p, "nosuchpolicyword", &err) == PP_E_POLICY);
    CHECK(strstr(err.msg, "no built-in policy and no policy file named 'nosuchpolicyword'"));
    pp_error_clear(&err);
    CHECK(pp_policy_add(p, "default", &err) == PP_OK); /* a plain word is the built-in */
    CHECK(perms(p, "numpy", "dtype") == (PP_PERM_REFERENCE | PP_PERM_CALL | PP_PERM_CONSTRUCT));
    pp_error_clear(&err);
    CHECK(pp_policy_add_builtin(p, "nope", &err) == PP_E_POLICY);
    CHECK(strstr(err.msg, "no built-in policy named 'nope'") != NULL);
    pp_policy_free(p);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", TMP);
    CHECK(system(cmd) == 0);
}

static void test_builtins(void)
{
    const char *const *names = pp_policy_builtin_names();
    CHECK(names && names[0]);
    size_t k = 0;
    for (; names && names[k]; k++) {
        pp_policy *p;
        pp_error err;
        pp_error_clear(&err);
        CHECK(pp_policy_new(&p) == PP_OK);
        CHECKF(pp_policy_add_builtin(p, names[k], &err) == PP_OK, "built-in %s parses: %s",
               names[k], err.msg);
        const char *const *loaded;
        size_t n = pp_policy_names(p, &loaded);
        /* a built-in declares its own name, and it is the last one loaded */
        CHECKF(n >= 1 && strcmp(loaded[n - 1], names[k]) == 0, "built-in %s names itself",
               names[k]);
        CHECK(pp_policy_builtin_text(names[k]) != NULL);
        pp_policy_free(p);
    }
    CHECK(k >= 1);
    CHECK(pp_policy_builtin_text("nope") == NULL);
    CHECK(pp_policy_builtin_text(NULL) == NULL);

    pp_policy *p;
    pp_error err;
    CHECK(pp_policy_new(&p) == PP_OK);
    CHECK(pp_policy_add_builtin(p, "default", &err) == PP_OK);
    /* what the default must not allow */
    static const char *const forbidden[][2] = {
        {"builtins", "eval"},       {"builtins", "exec"},
        {"builtins", "open"},       {"builtins", "__import__"},
        {"builtins", "compile"},    {"builtins", "input"},
        {"builtins", "breakpoint"}, {"builtins", "setattr"},
        {"builtins", "delattr"},    {"builtins", "globals"},
        {"builtins", "vars"},       {"builtins", "type"},
        {"posix", "system"},        {"os", "system"},
        {"subprocess", "Popen"},    {"functools", "partial"},
        {"functools", "reduce"},    {"operator", "attrgetter"},
        {"pickle", "loads"},        {"numpy.core", "_ufunc_reconstruct"},
        {"numpy", "load"},          {"builtins", "getattr.__call__"},
    };
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
        CHECKF(perms(p, forbidden[i][0], forbidden[i][1]) == 0, "default forbids %s.%s",
               forbidden[i][0], forbidden[i][1]);
    CHECK(perms(p, "builtins", "getattr") == (PP_PERM_REFERENCE | PP_PERM_CALL));
    CHECK(perms(p, "_codecs", "encode") == (PP_PERM_REFERENCE | PP_PERM_CALL));
    CHECK(perms(p, "numpy.core.multiarray", "_reconstruct") & PP_PERM_CALL);
    CHECK(perms(p, "numpy._core.multiarray", "_reconstruct") & PP_PERM_CALL);
    CHECK(perms(p, "numpy._core.numeric", "_frombuffer") & PP_PERM_CALL);
    CHECK(perms(p, "numpy", "ndarray") == (PP_PERM_REFERENCE | PP_PERM_CONSTRUCT));
    CHECK(perms(p, "collections", "OrderedDict") ==
          (PP_PERM_REFERENCE | PP_PERM_CALL | PP_PERM_CONSTRUCT));
    CHECK(perms(p, "builtins", "float") == PP_PERM_REFERENCE);
    CHECK(perms(p, "__builtin__", "set") == 0); /* only post-rename names */
    pp_policy_free(p);
}

/* ---- rules ------------------------------------------------------------------------------- */

static pp_policy *DEF;

static void test_global_rule(void)
{
    reset();
    GL("builtins", "int");
    pp_node *sys = glob_op("posix", "system", 'c');
    glob_op("posix", "system", 'c');
    GL("builtins", "int");
    pp_node *ren = glob_op("subprocess", "getoutput", 'c');
    ren->flags |= PP_NF_RENAMED;
    ren->u.glob.raw_module = "commands";
    GL("pathlib", "os.system");
    pp_report *r = run(DEF);
    const pp_finding *f = only(r, "global-not-allowed", 4, "unknown globals");
    CHECK(f && strcmp(f->severity, "critical") == 0 && strcmp(f->global, "posix.system") == 0);
    CHECK(f && f->opcode && strcmp(f->opcode, "GLOBAL") == 0);
    CHECK(f && f->offset == 101 && f->stream && strcmp(f->stream, "pickle") == 0);
    CHECK(msg_has(f, "global posix.system is not allowed"));
    CHECK(r->nfindings == 4 && msg_has(&r->findings[2], "the stream wrote commands.getoutput") &&
          msg_has(&r->findings[2], "_compat_pickle"));
    CHECK(r->nfindings == 4 && msg_has(&r->findings[3], "dotted attribute path") &&
          strcmp(r->findings[3].global, "pathlib.os.system") == 0);
    /* globals: distinct, first-seen order, allowed or not */
    CHECK(r->nglobals == 4 && strcmp(r->globals[0], "builtins.int") == 0 &&
          strcmp(r->globals[1], "posix.system") == 0 &&
          strcmp(r->globals[2], "subprocess.getoutput") == 0 &&
          strcmp(r->globals[3], "pathlib.os.system") == 0);
    pp_report_free(r);
    (void)sys;

    /* control bytes in names are escaped in messages */
    reset();
    GL("ev\x1b[31mil", "x");
    r = run(DEF);
    f = only(r, "global-not-allowed", 1, "escape sequence in a name");
    CHECK(msg_has(f, "global ev\\x1b[31mil.x is not allowed"));
    pp_report_free(r);

    /* the stream index names the stream */
    reset();
    pp_node *g = glob_op("evil", "x", 'c');
    G.events_tail->stream = 1;
    r = run(DEF);
    f = only(r, "global-not-allowed", 1, "second stream");
    CHECK(f && strcmp(f->stream, "second") == 0);
    pp_report_free(r);
    (void)g;
}

static void test_call_rules(void)
{
    /* calls of globals without call permission */
    reset();
    CALL(GL("builtins", "int"), 1, S("5"));
    pp_report *r = run(DEF);
    const pp_finding *f = only(r, "call-not-allowed", 1, "reference-only call");
    CHECK(f && strcmp(f->global, "builtins.int") == 0 && msg_has(f, "only a reference") &&
          strcmp(f->opcode, "REDUCE") == 0);
    pp_report_free(r);

    reset();
    CALL(GL("builtins", "eval"), 1, S("1"));
    r = run(DEF);
    CHECK(count(r, "global-not-allowed") == 1 && count(r, "call-not-allowed") == 1);
    pp_report_free(r);

    /* calling a call result (getattr returns an opaque attribute) */
    pp_policy *p = must("construct m.C\ncall builtins.getattr (class, identifier)\n");
    reset();
    pp_val meth = CALL(GL("builtins", "getattr"), 2, GL("m", "C"), S("run"));
    CALL(meth, 1, S("x"));
    r = run(p);
    f = only(r, "call-not-allowed", 1, "call of a call result");
    CHECK(msg_has(f, "calls the result of calling builtins.getattr"));
    pp_report_free(r);

    /* calling a NEW instance */
    reset();
    CALL(NEW(GL("m", "C"), 0), 0);
    r = run(p);
    f = only(r, "call-not-allowed", 1, "call of an instance");
    CHECK(f && msg_has(f, "a new instance of m.C") && f->global && strcmp(f->global, "m.C") == 0);
    pp_report_free(r);

    /* calling a value that is not even callable */
    reset();
    CALL(S("x"), 0);
    r = run(p);
    only(r, "call-not-allowed", 1, "call of a str");
    pp_report_free(r);

    /* INST/OBJ with arguments needs construct */
    reset();
    INSTA(GL("builtins", "getattr"), 2, GL("m", "C"), S("run"));
    r = run(p);
    f = only(r, "call-not-allowed", 1, "INST with args of a call-only global");
    CHECK(msg_has(f, "needs construct permission") && msg_has(f, "only call-allowed"));
    pp_report_free(r);
    reset();
    INSTA(GL("m", "C"), 1, I(1));
    clean(p, "INST with args of an unconstrained construct class");
    pp_policy_free(p);

    /* INST with args is judged by the construct pattern */
    p = must("construct m.K (int)\n");
    reset();
    pp_val k = INSTA(GL("m", "K"), 1, I(1));
    BUILD(k, DICT(1, S("a"), I(1)));
    clean(p, "INST of m.K(1) then BUILD");
    reset();
    INSTA(GL("m", "K"), 1, S("1"));
    r = run(p);
    f = only(r, "argument-not-allowed", 1, "INST of m.K('1')");
    CHECK(msg_has(f, "argument 1 (str '1') does not match int"));
    pp_report_free(r);
    pp_policy_free(p);
}

static void test_argument_rules(void)
{
    reset();
    CALL(GL("_codecs", "encode"), 2, S("abc"), S("latin1"));
    CALL(GL("_codecs", "encode"), 2, S("abc"), S("latin-1"));
    clean(DEF, "_codecs.encode latin1");

    reset();
    CALL(GL("_codecs", "encode"), 2, S("abc"), S("rot13"));
    pp_report *r = run(DEF);
    const pp_finding *f = only(r, "argument-not-allowed", 1, "_codecs.encode rot13");
    CHECK(f && strcmp(f->global, "_codecs.encode") == 0);
    CHECK(msg_has(f, "argument 2 (str 'rot13') does not match \"latin1\" | \"latin-1\""));
    pp_report_free(r);

    reset();
    CALL(GL("_codecs", "encode"), 1, S("abc"));
    r = run(DEF);
    f = only(r, "argument-not-allowed", 1, "_codecs.encode arity");
    CHECK(msg_has(f, "1 argument, but the policy allows only (str,"));
    pp_report_free(r);

    /* builtins with simple arguments */
    reset();
    CALL(GL("builtins", "set"), 1, LIST(2, I(1), I(2)));
    CALL(GL("builtins", "frozenset"), 1, LIST(0));
    CALL(GL("builtins", "complex"), 2, FL(1.0), I(2));
    CALL(GL("builtins", "slice"), 3, I(1), I(5), NONE());
    CALL(GL("builtins", "slice"), 1, NONE());
    CALL(GL("builtins", "range"), 3, I(1), I(10), I(2));
    CALL(GL("builtins", "bytes"), 0);
    CALL(GL("builtins", "bytearray"), 1, B("xy"));
    CALL(GL("builtins", "bytearray"), 1, CALL(GL("_codecs", "encode"), 2, S("xy"), S("latin1")));
    CALL(GL("decimal", "Decimal"), 1, S("1.5"));
    CALL(GL("fractions", "Fraction"), 2, I(1), I(3));
    clean(DEF, "simple builtins");

    reset();
    CALL(GL("builtins", "slice"), 3, I(1), S("x"), NONE());
    CALL(GL("builtins", "bytearray"), 1, I(1000000000));
    CALL(GL("builtins", "range"), 0);
    CALL(GL("builtins", "set"), 1, GL("builtins", "int"));
    r = run(DEF);
    only(r, "argument-not-allowed", 4, "bad builtin arguments");
    pp_report_free(r);

    /* getattr: construct-allowed class and a plain attribute name */
    pp_policy *p = must("include default\nconstruct enum.Color\nconstruct k.K (int)\n");
    reset();
    CALL(GL("builtins", "getattr"), 2, GL("enum", "Color"), S("RED"));
    clean(p, "getattr(Color, 'RED')");
    reset();
    CALL(GL("builtins", "getattr"), 2, GL("enum", "Color"), S("__globals__"));
    CALL(GL("builtins", "getattr"), 2, GL("enum", "Color"), S("__private"));
    CALL(GL("builtins", "getattr"), 2, GL("enum", "Color"), S("a.b"));
    CALL(GL("builtins", "getattr"), 2, GL("enum", "Color"), S(""));
    CALL(GL("builtins", "getattr"), 2, GL("builtins", "int"), S("real"));
    CALL(GL("builtins", "getattr"), 2, GL("k", "K"), S("real"));
    r = run(p);
    only(r, "argument-not-allowed", 6, "bad getattr");
    CHECK(r->nfindings == 6 && msg_has(&r->findings[4], "not construct-allowed"));
    CHECK(r->nfindings == 6 && msg_has(&r->findings[5], "can only be constructed directly"));
    pp_report_free(r);

    /* numpy.dtype */
    reset();
    CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("<i4"), I(0), I(1));
    CALL(GL("numpy", "dtype"), 3, S("M8[ns]"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("U3"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("c16"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("?"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, GL("numpy", "record"), BOOL(0), BOOL(1));
    clean(DEF, "numpy.dtype forms");
    reset();
    CALL(GL("numpy", "dtype"), 3, S("i4,f8"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("float64"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(1), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), I(2));
    CALL(GL("numpy", "dtype"), 3, S("M8[]"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, S("f12345678901"), BOOL(0), BOOL(1));
    CALL(GL("numpy", "dtype"), 3, GL("numpy", "float64"), BOOL(0), BOOL(1));
    r = run(DEF);
    only(r, "argument-not-allowed", 7, "bad numpy.dtype");
    pp_report_free(r);
    pp_policy_free(p);
}

/* The shapes real numpy pickles have, protocols 0-5 (tests/unit comments name the protocol). */
static void test_numpy_shapes(void)
{
    /* protocol 3/4: _reconstruct(ndarray, (0,), b'b') + BUILD; dtype REDUCE + BUILD */
    reset();
    pp_val dt = CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), BOOL(1));
    BUILD(dt, TUP(8, I(3), S("<"), NONE(), NONE(), NONE(), I(-1), I(-1), I(0)));
    pp_val arr = CALL(GL("numpy.core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"),
                      TUP(1, I(0)), B("b"));
    BUILD(arr, TUP(5, I(1), TUP(1, I(3)), dt, BOOL(0), B("\x01\x02\x03")));
    clean(DEF, "ndarray protocol 3");

    /* protocol 2: the dummy and the data come from _codecs.encode */
    reset();
    dt = CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), BOOL(1));
    BUILD(dt, TUP(8, I(3), S("<"), NONE(), NONE(), NONE(), I(-1), I(-1), I(0)));
    pp_val dummy = CALL(GL("_codecs", "encode"), 2, S("b"), S("latin1"));
    arr = CALL(GL("numpy.core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), TUP(1, I(0)),
               dummy);
    pp_val data = CALL(GL("_codecs", "encode"), 2, S("\xc3\xa9\x01"), S("latin1"));
    BUILD(arr, TUP(5, I(1), TUP(1, I(3)), dt, BOOL(0), data));
    /* scalar(dtype, encoded bytes) */
    CALL(GL("numpy.core.multiarray", "scalar"), 2, dt,
         CALL(GL("_codecs", "encode"), 2, S("\x00\x00\xc3\x80?"), S("latin1")));
    clean(DEF, "ndarray and scalar protocol 2");

    /* _reconstruct's dummy pinned, including through _codecs.encode */
    reset();
    CALL(GL("numpy._core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), TUP(1, I(5)),
         B("b"));
    CALL(GL("numpy._core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), TUP(1, I(0)),
         CALL(GL("_codecs", "encode"), 2, S("f8"), S("latin1")));
    CALL(GL("numpy._core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), TUP(1, I(0)),
         CALL(GL("builtins", "bytes"), 0));
    CALL(GL("numpy._core.multiarray", "_reconstruct"), 3, GL("builtins", "int"), TUP(1, I(0)),
         B("b"));
    CALL(GL("numpy._core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), LIST(1, I(0)),
         B("b"));
    pp_report *r = run(DEF);
    only(r, "argument-not-allowed", 5, "bad _reconstruct");
    pp_report_free(r);

    /* a non-minimal big int 0 is still 0 */
    reset();
    pp_val zero = SN("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10, PP_V_BIGINT);
    CALL(GL("numpy.core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), TUP(1, zero),
         S("b"));
    clean(DEF, "bigint zero");
    reset();
    pp_val big = SN("\x00\x00\x00\x00\x00\x00\x00\x00\x01", 9, PP_V_BIGINT);
    CALL(GL("numpy.core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), TUP(1, big),
         S("b"));
    r = run(DEF);
    only(r, "argument-not-allowed", 1, "bigint 2**64");
    pp_report_free(r);

    /* an undecodable latin-1 str is not bytes */
    reset();
    dt = CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), BOOL(1));
    CALL(GL("numpy.core.multiarray", "scalar"), 2, dt,
         CALL(GL("_codecs", "encode"), 2, S("\xe2\x82\xac"), S("latin1")));
    r = run(DEF);
    only(r, "argument-not-allowed", 1, "euro sign is not latin-1");
    pp_report_free(r);

    /* protocol 5: _frombuffer */
    reset();
    pp_node *ba = node(PP_N_BYTEARRAY, 0x96);
    dt = CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), BOOL(1));
    CALL(GL("numpy.core.numeric", "_frombuffer"), 4, V(ba), dt, TUP(2, I(2), I(3)), S("C"));
    CALL(GL("numpy._core.numeric", "_frombuffer"), 5, B("xx"), dt, TUP(2, I(2), I(3)), S("K"),
         TUP(2, I(1), I(0)));
    clean(DEF, "_frombuffer");
    reset();
    dt = CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), BOOL(1));
    CALL(GL("numpy.core.numeric", "_frombuffer"), 4, B("x"), dt, TUP(1, S("2")), S("C"));
    CALL(GL("numpy.core.numeric", "_frombuffer"), 4, B("x"), S("f8"), TUP(0), S("C"));
    CALL(GL("numpy.core.numeric", "_frombuffer"), 4, B("x"), dt, TUP(0), S("X"));
    CALL(GL("numpy.core.numeric", "_frombuffer"), 5, B("x"), dt, TUP(0), S("C"), TUP(0));
    pp_val fb = CALL(GL("numpy.core.numeric", "_frombuffer"), 4, B("x"), dt, TUP(0), S("C"));
    BUILD(fb, NONE());
    r = run(DEF);
    CHECK(count(r, "argument-not-allowed") == 4 && count(r, "build-not-allowed") == 1 &&
          r->nfindings == 5);
    const pp_finding *f = first(r, "build-not-allowed");
    CHECK(msg_has(f, "not known to be an instance of a construct-allowed class"));
    pp_report_free(r);

    /* dtype from a flagged call is not an instance of numpy.dtype */
    reset();
    dt = CALL(GL("numpy", "dtype"), 3, S("i4,f8"), BOOL(0), BOOL(1));
    CALL(GL("numpy.core.multiarray", "scalar"), 2, dt, B("x"));
    r = run(DEF);
    CHECK(count(r, "argument-not-allowed") == 2 && r->nfindings == 2);
    CHECK(r->nfindings == 2 && msg_has(&r->findings[1], "does not match instance(numpy.dtype)"));
    pp_report_free(r);
}

static void test_copyreg_rules(void)
{
    pp_policy *p = must("include default\nconstruct u.Plain\nconstruct u.Pinned (int)\n"
                        "call u.f\n");
    reset();
    pp_val o = CALL(GL("copyreg", "_reconstructor"), 3, GL("u", "Plain"), GL("builtins", "object"),
                    NONE());
    BUILD(o, DICT(1, S("a"), I(1)));
    pp_val l = CALL(GL("copyreg", "_reconstructor"), 3, GL("u", "Plain"), GL("builtins", "list"),
                    LIST(1, I(1)));
    event(PP_EV_APPEND, 'a', l.u.node, I(2), NONE());
    pp_val n = CALL(GL("copyreg", "__newobj__"), 3, GL("u", "Plain"), I(1), S("x"));
    BUILD(n, TUP(2, NONE(), DICT(1, S("slot"), I(1))));
    CALL(GL("copyreg", "__newobj_ex__"), 3, GL("u", "Plain"), TUP(0), DICT(0));
    clean(p, "copyreg helpers on a construct-allowed class");

    reset();
    CALL(GL("copyreg", "_reconstructor"), 3, GL("u", "f"), GL("builtins", "object"), NONE());
    CALL(GL("copyreg", "_reconstructor"), 3, GL("u", "Pinned"), GL("builtins", "object"), NONE());
    CALL(GL("copyreg", "_reconstructor"), 3, GL("u", "Plain"), GL("builtins", "object"), I(1));
    CALL(GL("copyreg", "_reconstructor"), 3, GL("u", "Plain"), GL("u", "f"), NONE());
    CALL(GL("copyreg", "__newobj__"), 1, GL("numpy", "ndarray"));
    pp_report *r = run(p);
    only(r, "argument-not-allowed", 5, "copyreg helpers on other classes");
    CHECK(r->nfindings == 5 && msg_has(&r->findings[0], "not construct-allowed"));
    CHECK(r->nfindings == 5 && msg_has(&r->findings[1], "can only be constructed directly"));
    pp_report_free(r);
    pp_policy_free(p);
}

static void test_construct_rules(void)
{
    pp_policy *p = must("include default\nconstruct u.Plain\nconstruct u.Pinned (int)\n");
    reset();
    pp_val a = NEW(GL("u", "Plain"), 2, S("x"), I(1));
    BUILD(a, DICT(2, S("x"), I(1), S("_private"), LIST(0)));
    NEW(GL("u", "Pinned"), 1, I(7));
    clean(p, "NEWOBJ of construct-allowed classes");

    reset();
    NEW(GL("builtins", "int"), 0);
    NEW(GL("posix", "system"), 0);
    NEW(CALL(GL("builtins", "getattr"), 2, GL("u", "Plain"), S("Inner")), 0);
    NEW(S("x"), 0);
    NEW(GL("collections", "Counter"), 0);
    pp_report *r = run(p);
    CHECK(count(r, "construct-not-allowed") == 5 && count(r, "global-not-allowed") == 1 &&
          r->nfindings == 6);
    const pp_finding *f = first(r, "construct-not-allowed");
    CHECK(f && strcmp(f->global, "builtins.int") == 0 && msg_has(f, "only a reference") &&
          strcmp(f->opcode, "NEWOBJ") == 0);
    CHECK(r->nfindings == 6 && r->findings[3].global == NULL &&
          msg_has(&r->findings[3], "the result of calling builtins.getattr"));
    CHECK(r->nfindings == 6 && msg_has(&r->findings[5], "only call-allowed"));
    pp_report_free(r);

    /* NEW arguments against the construct pattern; keywords need an unconstrained line */
    reset();
    NEW(GL("u", "Pinned"), 1, S("7"));
    NEW(GL("u", "Pinned"), 0);
    pp_val kw = NEW(GL("u", "Pinned"), 1, I(7));
    kw.u.node->u.call.nkw = 1;
    kw.u.node->u.call.kw = zalloc(2 * sizeof(pp_val));
    kw.u.node->u.call.kw[0] = S("k");
    kw.u.node->u.call.kw[1] = I(1);
    pp_val kw2 = NEW(GL("u", "Plain"), 0);
    kw2.u.node->u.call.nkw = 1;
    kw2.u.node->u.call.kw = kw.u.node->u.call.kw;
    r = run(p);
    only(r, "argument-not-allowed", 3, "NEWOBJ arguments");
    CHECK(r->nfindings == 3 && msg_has(&r->findings[2], "keyword arguments"));
    pp_report_free(r);
    pp_policy_free(p);
}

static void test_build_rules(void)
{
    pp_policy *p = must("include default\nconstruct u.Plain\ncall u.f\ncall u.mk -> self\n"
                        "call u.factory (class) -> arg1\n");
    reset();
    BUILD(GL("u", "f"), DICT(1, S("x"), I(1)));
    BUILD(GL("u", "Plain"), NONE());
    BUILD(CALL(GL("u", "f"), 0), DICT(0));
    BUILD(CALL(GL("u", "mk"), 0), DICT(0)); /* u.mk is not construct-allowed */
    pp_node *pid = node(PP_N_PERSID, 'Q');
    BUILD(V(pid), NONE());
    pp_node *ext = node(PP_N_EXT, 0x82);
    BUILD(V(ext), NONE());
    BUILD(NEW(GL("builtins", "int"), 0), NONE()); /* also construct-not-allowed */
    pp_report *r = run(p);
    CHECK(count(r, "build-not-allowed") == 7 && count(r, "construct-not-allowed") == 1 &&
          r->nfindings == 8);
    const pp_finding *f = first(r, "build-not-allowed");
    CHECK(f && strcmp(f->global, "u.f") == 0 && msg_has(f, "a module, class or function") &&
          strcmp(f->opcode, "BUILD") == 0);
    CHECK(r->nfindings == 8 && msg_has(&r->findings[3], "an instance of u.mk, which the policy "
                                                        "does not allow to be constructed"));
    CHECK(r->nfindings == 8 && msg_has(&r->findings[4], "persistent id object"));
    CHECK(r->nfindings == 8 && msg_has(&r->findings[5], "extension code object"));
    pp_report_free(r);

    /* allowed: instances of construct classes, however they were made */
    reset();
    BUILD(CALL(GL("u", "factory"), 1, GL("u", "Plain")), DICT(1, S("a"), I(1)));
    BUILD(NEW(GL("u", "Plain"), 0), TUP(2, DICT(0), DICT(1, S("b"), I(2))));
    BUILD(INSTA(GL("u", "Plain"), 1, I(1)), NONE());
    pp_val od = CALL(GL("collections", "OrderedDict"), 0);
    BUILD(od, DICT(1, S("attr"), I(1)));
    clean(p, "BUILD on allowed instances");
    pp_policy_free(p);
}

static void test_dunder_rules(void)
{
    pp_policy *p = must("include default\nconstruct u.Plain\n");
    reset();
    pp_val o = NEW(GL("u", "Plain"), 0);
    BUILD(o, DICT(2, S("a"), I(1), S("__setstate__"), GL("builtins", "int")));
    BUILD(o, TUP(2, NONE(), DICT(1, S("__class__"), GL("u", "Plain"))));
    BUILD(o, TUP(2, DICT(1, S("__dict__"), DICT(0)), NONE()));
    BUILD(o, CALL(GL("collections", "OrderedDict"), 0));
    BUILD(o, DICT(1,
                  CALL(GL("numpy.core.multiarray", "scalar"), 2,
                       CALL(GL("numpy", "dtype"), 3, S("U12"), BOOL(0), BOOL(1)), B("x")),
                  I(1)));
    BUILD(o, TUP(2, NONE(), GL("builtins", "int")));
    BUILD(o, DICT(1, S("__"), I(1)));
    pp_report *r = run(p);
    const pp_finding *f = only(r, "dunder-state", 7, "dunder states");
    CHECK(f && strcmp(f->global, "u.Plain") == 0 && msg_has(f, "'__setstate__'"));
    CHECK(r->nfindings == 7 && msg_has(&r->findings[1], "slot state sets the dunder name "
                                                        "'__class__'"));
    CHECK(r->nfindings == 7 && msg_has(&r->findings[2], "'__dict__'"));
    CHECK(r->nfindings == 7 && msg_has(&r->findings[3], "keys cannot be checked"));
    CHECK(r->nfindings == 7 && msg_has(&r->findings[4], "could compare equal to a dunder name"));
    pp_report_free(r);

    /* fine: non-dunder keys, bytes keys, tuple keys, single underscores, non-dict states */
    reset();
    o = NEW(GL("u", "Plain"), 0);
    BUILD(o, DICT(4, S("_x"), I(1), S("__x"), I(1), B("__class__"), I(1), S("x__"), I(1)));
    BUILD(o, TUP(2, NONE(), NONE()));
    BUILD(o, TUP(3, S("__class__"), NONE(), NONE())); /* a __setstate__ tuple, not a dict */
    BUILD(o, LIST(1, S("__class__")));
    BUILD(o, I(5));
    clean(p, "harmless states");

    /* the same big dict as the state of many BUILDs is scanned once, and reported each time */
    reset();
    o = NEW(GL("u", "Plain"), 0);
    pp_node *d = node(PP_N_DICT, '}');
    d->u.seq.n = 20000;
    d->u.seq.v = zalloc(d->u.seq.n * sizeof(pp_val));
    for (size_t i = 0; i < d->u.seq.n; i++)
        d->u.seq.v[i] = (i % 2) ? I(1) : S("k");
    d->u.seq.v[d->u.seq.n - 2] = S("__reduce__");
    for (int i = 0; i < 1000; i++)
        BUILD(o, V(d));
    r = run(p);
    only(r, "dunder-state", 1000, "shared dict state");
    pp_report_free(r);
    pp_policy_free(p);
}

static void test_mutation_rules(void)
{
    reset();
    pp_val od = CALL(GL("collections", "OrderedDict"), 0);
    event(PP_EV_SETITEM, 'u', od.u.node, S("a"), I(1));
    pp_val dq = CALL(GL("collections", "deque"), 2, TUP(0), I(5));
    event(PP_EV_EXTEND, 'e', dq.u.node, LIST(2, I(1), I(2)), NONE());
    event(PP_EV_APPEND, 'a', dq.u.node, I(3), NONE());
    pp_val dd = CALL(GL("collections", "defaultdict"), 1, GL("builtins", "list"));
    event(PP_EV_SETITEM, 's', dd.u.node, S("k"), LIST(0));
    clean(DEF, "OrderedDict / deque / defaultdict mutations");

    reset();
    pp_val st = CALL(GL("builtins", "set"), 0); /* no -> self: opaque */
    event(PP_EV_ADD, 0x90, st.u.node, I(1), NONE());
    pp_node *g = glob_op("builtins", "int", 'c');
    event(PP_EV_SETITEM, 's', g, S("a"), I(1));
    pp_val od2 = CALL(GL("collections", "OrderedDict"), 1, I(1)); /* flagged call */
    event(PP_EV_SETITEM, 's', od2.u.node, S("a"), I(1));
    pp_node *pid = node(PP_N_PERSID, 'P');
    event(PP_EV_APPEND, 'a', pid, I(1), NONE());
    pp_report *r = run(DEF);
    CHECK(count(r, "mutation-not-allowed") == 4 && count(r, "argument-not-allowed") == 1 &&
          r->nfindings == 5);
    const pp_finding *f = first(r, "mutation-not-allowed");
    CHECK(f && strcmp(f->opcode, "ADDITEMS") == 0 && msg_has(f, "calls add() on") &&
          strcmp(f->global, "builtins.set") == 0);
    CHECK(r->nfindings == 5 && msg_has(&r->findings[1], "__setitem__() on global builtins.int"));
    pp_report_free(r);

    /* defaultdict's factory is pinned */
    reset();
    CALL(GL("collections", "defaultdict"), 1, GL("_codecs", "encode"));
    r = run(DEF);
    only(r, "argument-not-allowed", 1, "defaultdict(_codecs.encode)");
    pp_report_free(r);
}

static bool accept_storage(void *ctx, const pp_event *ev)
{
    (*(int *)ctx)++;
    return pp_val_is(&ev->node->u.persid.pid, PP_N_TUPLE);
}

static void test_persid_ext(void)
{
    reset();
    pp_node *pid = node(PP_N_PERSID, 'Q');
    pid->u.persid.pid = TUP(1, S("storage"));
    event(PP_EV_PERSID, 'Q', pid, NONE(), NONE());
    pp_node *p2 = node(PP_N_PERSID, 'P');
    p2->u.persid.pid = S("x");
    event(PP_EV_PERSID, 'P', p2, NONE(), NONE());
    pp_node *ext = node(PP_N_EXT, 0x82);
    ext->u.ext.code = 7;
    event(PP_EV_EXT, 0x82, ext, NONE(), NONE());
    pp_report *r = run(DEF);
    CHECK(count(r, "persistent-id") == 2 && count(r, "extension-code") == 1 && r->nfindings == 3);
    const pp_finding *f = first(r, "persistent-id");
    CHECK(f && strcmp(f->opcode, "BINPERSID") == 0 && msg_has(f, "persistent_load") && !f->global);
    f = first(r, "extension-code");
    CHECK(f && strcmp(f->opcode, "EXT1") == 0 && msg_has(f, "extension code 7"));
    pp_report_free(r);

    /* a container hook accepts the shapes it knows */
    int calls = 0;
    pp_policy_hooks hooks = {.persid_allowed = accept_storage, .ctx = &calls};
    r = pp_report_new(NULL);
    CHECK(pp_policy_check_ex(DEF, &G, &LIM, STREAMS, 2, &hooks, r) == PP_OK);
    CHECK(calls == 2 && count(r, "persistent-id") == 1 && count(r, "extension-code") == 1);
    pp_report_free(r);
}

static void test_walk_bounds(void)
{
    /* cyclic values: patterns descend only as deep as they are written */
    pp_policy *p = must("call m.f ([*[*int]])\ncall m.g (list)\n");
    reset();
    pp_val l = LIST(2, I(1), I(2));
    l.u.node->u.seq.v[1] = l; /* l = [1, l] */
    CALL(GL("m", "g"), 1, l);
    clean(p, "cyclic list as a list argument");
    reset();
    l = LIST(2, I(1), I(2));
    l.u.node->u.seq.v[0] = l;
    CALL(GL("m", "f"), 1, l);
    pp_report *r = run(p);
    only(r, "argument-not-allowed", 1, "cyclic list against a nested pattern");
    pp_report_free(r);
    pp_policy_free(p);

    /* the nesting-depth limit bounds pattern walks too */
    reset();
    CALL(GL("numpy.core.multiarray", "_reconstruct"), 3, GL("numpy", "ndarray"), TUP(1, I(0)),
         B("b"));
    LIM.v[PP_LIMIT_NESTING] = 0;
    r = run(DEF);
    only(r, "argument-not-allowed", 1, "nesting limit 0");
    pp_report_free(r);

    /* a long shared shape tuple is judged once per pattern, with the same answer each time */
    for (int bad_one = 0; bad_one < 2; bad_one++) {
        reset();
        pp_node *shape = node(PP_N_TUPLE, 't');
        shape->u.seq.n = 100000;
        shape->u.seq.v = zalloc(shape->u.seq.n * sizeof(pp_val));
        for (size_t i = 0; i < shape->u.seq.n; i++)
            shape->u.seq.v[i] = I(1);
        if (bad_one) shape->u.seq.v[500] = S("x");
        pp_val dt = CALL(GL("numpy", "dtype"), 3, S("f8"), BOOL(0), BOOL(1));
        for (int i = 0; i < 2000; i++)
            CALL(GL("numpy.core.numeric", "_frombuffer"), 4, B("x"), dt, V(shape), S("C"));
        if (!bad_one) {
            clean(DEF, "shared long shape");
            continue;
        }
        r = run(DEF);
        only(r, "argument-not-allowed", 2000, "shared long bad shape");
        pp_report_free(r);
    }
}

static void test_malformed_graphs(void)
{
    reset();
    GL("builtins", "int");
    G.events_tail->kind = 99;
    pp_report *r = pp_report_new(NULL);
    CHECK(pp_policy_check(DEF, &G, &LIM, STREAMS, 2, r) == PP_E_INTERNAL);
    pp_report_free(r);

    reset();
    GL("builtins", "int");
    G.events_tail->next = G.events; /* a cycle in the event list */
    r = pp_report_new(NULL);
    CHECK(pp_policy_check(DEF, &G, &LIM, STREAMS, 2, r) == PP_E_INTERNAL);
    pp_report_free(r);

    reset();
    event(PP_EV_CALL, 'R', node(PP_N_TUPLE, 't'), NONE(), NONE());
    r = pp_report_new(NULL);
    CHECK(pp_policy_check(DEF, &G, &LIM, STREAMS, 2, r) == PP_E_INTERNAL);
    pp_report_free(r);

    /* no stream names: findings carry none */
    reset();
    GL("evil", "x");
    r = pp_report_new(NULL);
    CHECK(pp_policy_check(DEF, &G, &LIM, NULL, 0, r) == PP_OK);
    CHECK(r->nfindings == 1 && r->findings[0].stream == NULL);
    pp_report_free(r);
}

/* Allocation failure at every point: an error, never a crash or a leak (ASan checks). */
static void test_oom(void)
{
    int failures = 0, ok_at = 0;
    for (uint64_t n = 1; n < 2000; n++) {
        pp_policy *p = NULL;
        pp_error err;
        pp_error_clear(&err);
        pp_alloc_fail_at(n);
        pp_err rc = pp_policy_new(&p);
        if (rc == PP_OK) rc = pp_policy_add_builtin(p, "default", &err);
        pp_alloc_fail_at(0);
        pp_policy_free(p);
        if (rc == PP_OK) {
            ok_at = (int)n;
            break;
        }
        if (rc != PP_E_NOMEM) failures++;
    }
    CHECKF(failures == 0 && ok_at > 1, "loading under allocation failure (ok at %d)", ok_at);

    reset();
    pp_val o = CALL(GL("collections", "OrderedDict"), 0);
    event(PP_EV_SETITEM, 's', o.u.node, S("a"), I(1));
    GL("evil", "x");
    BUILD(GL("evil", "y"), DICT(1, S("__class__"), I(1)));
    failures = 0;
    ok_at = 0;
    for (uint64_t n = 1; n < 200; n++) {
        pp_report *r = pp_report_new(NULL);
        if (!r) break;
        pp_alloc_fail_at(n);
        pp_err rc = pp_policy_check(DEF, &G, &LIM, STREAMS, 2, r);
        pp_alloc_fail_at(0);
        pp_report_free(r);
        if (rc == PP_OK) {
            ok_at = (int)n;
            break;
        }
        if (rc != PP_E_NOMEM) failures++;
    }
    CHECKF(failures == 0 && ok_at > 1, "checking under allocation failure (ok at %d)", ok_at);
}

int main(void)
{
    pp_arena_init(&A, 1);
    test_parse_good();
    test_parse_errors();
    test_includes();
    test_builtins();

    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&DEF) != PP_OK || pp_policy_add_builtin(DEF, "default", &err) != PP_OK) {
        CHECKF(0, "default policy: %s", err.msg);
        return tap_done();
    }
    test_global_rule();
    test_call_rules();
    test_argument_rules();
    test_numpy_shapes();
    test_copyreg_rules();
    test_construct_rules();
    test_build_rules();
    test_dunder_rules();
    test_mutation_rules();
    test_persid_ext();
    test_walk_bounds();
    test_malformed_graphs();
    test_oom();
    pp_policy_free(DEF);
    pp_arena_free(&A);
    return tap_done();
}
