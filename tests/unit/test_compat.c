/* pp_compat_map against find_class's _compat_pickle step. Expected pairs were printed by CPython
 * 3.11 (NAME_MAPPING first, else IMPORT_MAPPING); the table walk checks every generated row. */
#include "compat.h"
#include "tap.h"

#include <stdbool.h>
#include <string.h>

extern const char *const pp_compat_name_map[][4];
extern const size_t pp_compat_name_map_len;
extern const char *const pp_compat_import_map[][2];
extern const size_t pp_compat_import_map_len;

typedef struct ccase {
    const char *mod;
    size_t modlen;
    const char *name;
    size_t namelen;
    const char *want_mod, *want_name;
    /* 0: unchanged (outputs are the inputs); 1: IMPORT_MAPPING (the name is the input);
     * 2: NAME_MAPPING (both from the table) */
    int how;
} ccase;

#define S(x) x, sizeof(x) - 1

static const ccase cases[] = {
    {S("__builtin__"), S("xrange"), "builtins", "range", 2},
    {S("__builtin__"), S("len"), "builtins", "len", 1},
    {S("__builtin__"), S("set"), "builtins", "set", 1},
    {S("__builtin__"), S("reduce"), "functools", "reduce", 2},
    {S("__builtin__"), S("unicode"), "builtins", "str", 2},
    {S("exceptions"), S("StandardError"), "builtins", "Exception", 2},
    /* the name stays IOError (builtins.IOError is OSError, but allowlists see the name) */
    {S("exceptions"), S("IOError"), "builtins", "IOError", 2},
    {S("exceptions"), S("Foo"), "exceptions", "Foo", 0}, /* not in IMPORT_MAPPING */
    {S("UserDict"), S("UserDict"), "collections", "UserDict", 2},
    {S("UserDict"), S("DictMixin"), "collections", "DictMixin", 1},
    {S("UserList"), S("x"), "collections", "x", 1},
    {S("os"), S("system"), "os", "system", 0},
    {S("builtins"), S("eval"), "builtins", "eval", 0},
    {S("copy_reg"), S("_reconstructor"), "copyreg", "_reconstructor", 1},
    {S("itertools"), S("izip"), "builtins", "zip", 2},
    {S("itertools"), S("chain"), "itertools", "chain", 0},
    {S("urllib"), S("urlopen"), "urllib.request", "urlopen", 2},
    {S("urllib"), S("quote"), "urllib.parse", "quote", 2},
    {S("urllib"), S("foo"), "urllib", "foo", 0},
    {S("cPickle"), S("loads"), "pickle", "loads", 1},
    {S("commands"), S("getoutput"), "subprocess", "getoutput", 1},
    {S("dummy_thread"), S("x"), "_dummy_thread", "x", 1},
    {S("thread"), S("start_new_thread"), "_thread", "start_new_thread", 1},
    {S("multiprocessing"), S("AuthenticationError"), "multiprocessing.context",
     "AuthenticationError", 2},
    {S("socket"), S("_socketobject"), "socket", "SocketType", 2},
    {S("whichdb"), S("whichdb"), "dbm", "whichdb", 2},
    {S("xmlrpclib"), S("x"), "xmlrpc.client", "x", 1},
    /* near misses: embedded NUL, prefixes, extensions, empty */
    {S("__builtin__\0"), S("len"), "__builtin__\0", "len", 0},
    {S("__builtin"), S("len"), "__builtin", "len", 0},
    {S("__builtin__x"), S("len"), "__builtin__x", "len", 0},
    {S("__builtin__"), S("xrange\0"), "builtins", "xrange\0", 1},
    {S("__builtin__"), S("xrang"), "builtins", "xrang", 1},
    {S(""), S(""), "", "", 0},
    {S("\xff"), S("\xff"), "\xff", "\xff", 0},
    {S("A"), S("B"), "A", "B", 0},
    {S("zzzz"), S("zzzz"), "zzzz", "zzzz", 0},
};

static void test_cases(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const ccase *c = &cases[k];
        const char *m, *n;
        size_t ml, nl;
        int r = pp_compat_map(c->mod, c->modlen, c->name, c->namelen, &m, &ml, &n, &nl);
        bool ok = r == (c->how != 0);
        if (c->how == 0)
            ok = ok && m == c->mod && ml == c->modlen;
        else
            ok = ok && ml == strlen(c->want_mod) && !memcmp(m, c->want_mod, ml);
        if (c->how == 2)
            ok = ok && nl == strlen(c->want_name) && !memcmp(n, c->want_name, nl);
        else
            ok = ok && n == c->name && nl == c->namelen;
        CHECKF(ok, "compat %s.%s: got %d %.*s.%.*s", c->mod, c->name, r, (int)ml, m, (int)nl, n);
    }
}

static void test_tables(void)
{
    /* CPython 3.11: 88 NAME_MAPPING and 55 IMPORT_MAPPING entries (formats.md 1.7) */
    CHECK(pp_compat_name_map_len == 88);
    CHECK(pp_compat_import_map_len == 55);
    for (size_t i = 0; i < pp_compat_name_map_len; i++) {
        const char *const *row = pp_compat_name_map[i];
        if (i) {
            const char *const *prev = pp_compat_name_map[i - 1];
            int c = strcmp(prev[0], row[0]);
            CHECKF(c < 0 || (c == 0 && strcmp(prev[1], row[1]) < 0), "name map unsorted at %zu", i);
        }
        const char *m, *n;
        size_t ml, nl;
        int r = pp_compat_map(row[0], strlen(row[0]), row[1], strlen(row[1]), &m, &ml, &n, &nl);
        CHECKF(r == 1 && m == row[2] && ml == strlen(row[2]) && n == row[3] && nl == strlen(row[3]),
               "name map row %s.%s", row[0], row[1]);
    }
    for (size_t i = 0; i < pp_compat_import_map_len; i++) {
        const char *const *row = pp_compat_import_map[i];
        if (i)
            CHECKF(strcmp(pp_compat_import_map[i - 1][0], row[0]) < 0, "import map unsorted at %zu",
                   i);
        /* a name no NAME_MAPPING row uses: only the module changes */
        static const char name[] = "no such name";
        const char *m, *n;
        size_t ml, nl;
        int r = pp_compat_map(row[0], strlen(row[0]), name, sizeof name - 1, &m, &ml, &n, &nl);
        CHECKF(r == 1 && m == row[1] && ml == strlen(row[1]) && n == name && nl == sizeof name - 1,
               "import map row %s", row[0]);
    }
}

int main(void)
{
    test_cases();
    test_tables();
    return tap_done();
}
