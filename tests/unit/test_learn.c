/* policy learn without scans: the denylist, and the rendering of learned entries (grouping,
 * merged permissions, class-helper patterns, comment escaping), which must load as a policy. */
#include "arena.h"
#include "learn.h"
#include "tap.h"

#include <string.h>

static void add(pp_learn *l, const char *mod, const char *qual, unsigned uses, const char *file)
{
    pp_learn_entry *e = &l->entries[l->n++];
    memset(e, 0, sizeof *e);
    e->module = pp_strdup(mod);
    e->qualname = pp_strdup(qual);
    e->file = pp_strdup(file);
    e->stream = pp_strdup("pickle");
    e->offset = 7;
    strcpy(e->opcode, "GLOBAL");
    e->count = 3;
    e->uses = uses;
    e->danger = pp_learn_danger(mod, qual);
}

static void test_denylist(void)
{
    CHECK(pp_learn_danger("os", "system"));
    CHECK(pp_learn_danger("posix", "system"));
    CHECK(pp_learn_danger("os.path", "join")); /* submodules of a denied module */
    CHECK(pp_learn_danger("subprocess", "Popen"));
    CHECK(pp_learn_danger("builtins", "eval"));
    CHECK(pp_learn_danger("builtins", "eval.__call__")); /* an attribute of a denied name */
    CHECK(pp_learn_danger("importlib", "import_module"));
    CHECK(pp_learn_danger("pickle", "loads"));
    CHECK(pp_learn_danger("numpy", "load"));
    CHECK(pp_learn_danger("runpy", "run_path"));
    CHECK(!pp_learn_danger("builtins", "int"));
    CHECK(!pp_learn_danger("builtins", "evaluate"));
    CHECK(!pp_learn_danger("osx", "system")); /* a module prefix is not a package */
    CHECK(!pp_learn_danger("numpy", "loadtxt_like"));
    CHECK(!pp_learn_danger("sklearn.linear_model._base", "LinearRegression"));
}

static void test_render(void)
{
    pp_learn *l = pp_calloc(1, sizeof *l);
    l->cap = 8;
    l->entries = pp_calloc(l->cap, sizeof *l->entries);
    add(l, "zz", "f", PP_LEARN_REFERENCE, "b.pkl");
    add(l, "a.b", "C", PP_LEARN_REFERENCE | PP_LEARN_CALL | PP_LEARN_SELF | PP_LEARN_CONSTRUCT,
        "a.pkl");
    add(l, "a", "X.Y", PP_LEARN_REFERENCE | PP_LEARN_CONSTRUCT, "x\ninclude torch\n.pkl");
    add(l, "copyreg", "_reconstructor", PP_LEARN_REFERENCE | PP_LEARN_CALL, "a.pkl");
    add(l, "a", "g", PP_LEARN_REFERENCE | PP_LEARN_CALL, "a.pkl");
    pp_buf b;
    pp_buf_init(&b);
    const char *inc[] = {"default"};
    pp_learn_render(l, "team", inc, 1, true, &b);
    CHECK(pp_buf_ok(&b));
    const char *t = b.p;
    CHECK(strstr(t, "policy team\ninclude default\n"));
    CHECK(strstr(t, "call a.b.C -> self\nconstruct a.b.C\n"));
    CHECK(strstr(t, "construct a:X.Y\n"));
    CHECK(strstr(t, "call a.g\n") && !strstr(t, "reference a.g"));
    CHECK(strstr(t, "reference zz.f\n"));
    CHECK(strstr(t, "call copyreg._reconstructor (class, @builtins.object, None)"));
    CHECK(strstr(t, "# seen in a.pkl!pickle at offset 7 (GLOBAL), and 2 more\n"));
    CHECK(!strstr(t, "\ninclude torch") && strstr(t, "x\\x0ainclude torch\\x0a.pkl"));
    /* one group per top-level module, a before copyreg before zz */
    const char *ga = strstr(t, "# ---- a ----"), *gc = strstr(t, "# ---- copyreg ----"),
               *gz = strstr(t, "# ---- zz ----");
    CHECK(ga && gc && gz && ga < gc && gc < gz);
    CHECK(ga && !strstr(ga + 1, "# ---- a ----"));
    /* what it prints is a policy */
    pp_policy *p = NULL;
    pp_error err;
    pp_error_clear(&err);
    CHECK(pp_policy_new(&p) == PP_OK);
    CHECKF(pp_policy_add_text(p, "learned.policy", t, b.n, &err) == PP_OK, "%s", err.msg);
    pp_policy_free(p);
    pp_buf_free(&b);
    pp_learn_free(l);
}

int main(void)
{
    test_denylist();
    test_render();
    return tap_done();
}
