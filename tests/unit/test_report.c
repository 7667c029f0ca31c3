/* Reports: the verdict table, global deduplication, JSON that stays valid whatever bytes a file
 * put in its names, terminal-safe text, and explain on a hand-built graph with a cycle. */
#include "explain.h"
#include "report.h"
#include "tap.h"

#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Stand-ins for modules another part of the tree owns. Weak, so the library's real definitions
 * win when the test is linked against it. */
__attribute__((weak)) size_t pp_policy_names(const pp_policy *p, const char *const **names)
{
    static const char *const n[] = {"default", "sklearn"};
    (void)p;
    *names = n;
    return 2;
}

__attribute__((weak)) const char *pp_vm_opname(int op)
{
    switch (op) {
    case 0x93:
        return "STACK_GLOBAL";
    case 0x63:
        return "GLOBAL";
    case 0x52:
        return "REDUCE";
    case 0x81:
        return "NEWOBJ";
    case 0x62:
        return "BUILD";
    case 0x61:
        return "APPEND";
    case 0x73:
        return "SETITEM";
    case 0x58:
        return "BINUNICODE";
    case 0x2e:
        return "STOP";
    default:
        return NULL;
    }
}

/* ---- a strict JSON checker (RFC 8259, raw bytes must be valid UTF-8) ---------------------- */

typedef struct jp {
    const unsigned char *p, *end;
    int depth;
} jp;

static int j_value(jp *j);

static void j_ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int j_lit(jp *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return 0;
    j->p += n;
    return 1;
}

static int hexd(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int j_utf8(jp *j)
{
    unsigned char c = *j->p;
    size_t len;
    unsigned cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1fu;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0fu;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)(j->end - j->p) < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((j->p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (j->p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    j->p += len;
    return 1;
}

static int j_string(jp *j)
{
    if (j->p >= j->end || *j->p != '"') return 0;
    j->p++;
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c == '"') {
            j->p++;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end) return 0;
            c = *j->p++;
            if (c == 'u') {
                if (j->end - j->p < 4) return 0;
                for (int i = 0; i < 4; i++)
                    if (!hexd(*j->p++)) return 0;
            } else if (!strchr("\"\\/bfnrt", c) || !c) {
                return 0;
            }
        } else if (c >= 0x80) {
            if (!j_utf8(j)) return 0;
        } else {
            j->p++;
        }
    }
    return 0;
}

static int digits(jp *j)
{
    const unsigned char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s;
}

static int j_number(jp *j)
{
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!digits(j))
        return 0;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!digits(j)) return 0;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (!digits(j)) return 0;
    }
    return 1;
}

static int j_seq(jp *j, char close, int object)
{
    j->p++;
    j_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return 1;
    }
    for (;;) {
        j_ws(j);
        if (object) {
            if (!j_string(j)) return 0;
            j_ws(j);
            if (j->p >= j->end || *j->p++ != ':') return 0;
        }
        if (!j_value(j)) return 0;
        j_ws(j);
        if (j->p >= j->end) return 0;
        if (*j->p == close) {
            j->p++;
            return 1;
        }
        if (*j->p++ != ',') return 0;
    }
}

static int j_value(jp *j)
{
    j_ws(j);
    if (j->p >= j->end || ++j->depth > 64) return 0;
    int ok;
    switch (*j->p) {
    case '{':
        ok = j_seq(j, '}', 1);
        break;
    case '[':
        ok = j_seq(j, ']', 0);
        break;
    case '"':
        ok = j_string(j);
        break;
    case 't':
        ok = j_lit(j, "true");
        break;
    case 'f':
        ok = j_lit(j, "false");
        break;
    case 'n':
        ok = j_lit(j, "null");
        break;
    default:
        ok = j_number(j);
        break;
    }
    j->depth--;
    return ok;
}

/* Every line of s (jsonl) or the whole of s is one valid JSON value. */
static int json_valid(const char *s, size_t n)
{
    jp j = {(const unsigned char *)s, (const unsigned char *)s + n, 0};
    if (!j_value(&j)) return 0;
    j_ws(&j);
    return j.p == j.end;
}

static char *slurp(FILE *f, size_t *n)
{
    long len = ftell(f);
    rewind(f);
    char *s = malloc((size_t)len + 1);
    *n = fread(s, 1, (size_t)len, f);
    s[*n] = 0;
    return s;
}

/* ---- verdicts ---------------------------------------------------------------------------- */

static pp_verdict decide_with(const char *severity, const char *rule, pp_err code,
                              pp_verdict preset)
{
    pp_report *r = pp_report_new(NULL);
    r->verdict = preset;
    if (severity) pp_report_add_finding(r, rule ? rule : "x", severity, NULL, -1, 0, NULL, "m");
    r->error.code = code;
    pp_report_decide(r);
    pp_verdict v = r->verdict;
    pp_report_free(r);
    return v;
}

static void test_decide(void)
{
    const pp_verdict S = PP_VERDICT_SAFE;
    CHECK(decide_with(NULL, NULL, PP_OK, S) == PP_VERDICT_SAFE);
    CHECK(decide_with("critical", NULL, PP_OK, S) == PP_VERDICT_UNSAFE);
    CHECK(decide_with("high", NULL, PP_OK, S) == PP_VERDICT_UNSAFE);
    CHECK(decide_with("medium", NULL, PP_OK, S) == PP_VERDICT_SAFE);
    CHECK(decide_with("info", NULL, PP_OK, S) == PP_VERDICT_SAFE);
    CHECK(decide_with(NULL, NULL, PP_E_LIMIT, S) == PP_VERDICT_LIMIT);
    CHECK(decide_with("critical", NULL, PP_E_LIMIT, S) == PP_VERDICT_UNSAFE);
    CHECK(decide_with("low", NULL, PP_E_LIMIT, S) == PP_VERDICT_LIMIT);
    CHECK(decide_with(NULL, NULL, PP_E_TRUNCATED, S) == PP_VERDICT_MALFORMED);
    CHECK(decide_with(NULL, NULL, PP_E_TRAILING, S) == PP_VERDICT_MALFORMED);
    CHECK(decide_with("high", NULL, PP_E_BAD_OPCODE, S) == PP_VERDICT_UNSAFE);
    CHECK(decide_with("low", "trailing-data", PP_OK, S) == PP_VERDICT_MALFORMED);
    CHECK(decide_with("low", "trailing-data", PP_E_LIMIT, S) == PP_VERDICT_LIMIT);
    CHECK(decide_with(NULL, NULL, PP_E_IO, S) == PP_VERDICT_ERROR);
    CHECK(decide_with(NULL, NULL, PP_E_NOMEM, S) == PP_VERDICT_ERROR);
    CHECK(decide_with(NULL, NULL, PP_E_INTERNAL, S) == PP_VERDICT_ERROR);
    /* a later scan may not clear a verdict set before it */
    CHECK(decide_with("critical", NULL, PP_OK, PP_VERDICT_ERROR) == PP_VERDICT_ERROR);
    CHECK(decide_with(NULL, NULL, PP_OK, PP_VERDICT_UNSIGNED) == PP_VERDICT_UNSIGNED);
    CHECK(decide_with("critical", NULL, PP_OK, PP_VERDICT_BAD_SIGNATURE) ==
          PP_VERDICT_BAD_SIGNATURE);
    /* but a stale unsafe/malformed verdict is recomputed */
    CHECK(decide_with(NULL, NULL, PP_OK, PP_VERDICT_UNSAFE) == PP_VERDICT_SAFE);
}

/* ---- report building --------------------------------------------------------------------- */

static void test_basics(void)
{
    pp_report *r = pp_report_new(NULL);
    CHECK(r && strcmp(r->path, "<memory>") == 0);
    CHECK(strcmp(r->container, "pickle") == 0 && strcmp(r->sandbox, "off") == 0);
    CHECK(r->error.code == PP_OK && r->error.opcode == -1);
    CHECK(pp_report_set_container(r, "joblib/zlib") == PP_OK);
    CHECK(strcmp(r->container, "joblib/zlib") == 0);
    char rule[] = "global-not-allowed";
    CHECK(pp_report_add_finding(r, rule, "critical", "posix.system", 0x93, 1234, "pickle",
                                "%s is not in policy %d", "posix.system", 7) == PP_OK);
    rule[0] = 'X'; /* the report keeps its own copy */
    CHECK(r->nfindings == 1);
    const pp_finding *f = &r->findings[0];
    CHECK(strcmp(f->rule, "global-not-allowed") == 0);
    CHECK(strcmp(f->message, "posix.system is not in policy 7") == 0);
    CHECK(f->opcode && strcmp(f->opcode, "STACK_GLOBAL") == 0);
    CHECK(f->offset == 1234 && strcmp(f->stream, "pickle") == 0);
    CHECK(pp_report_add_finding(r, "r", "low", NULL, -1, 0, NULL, "x") == PP_OK);
    CHECK(r->findings[1].opcode == NULL && r->findings[1].global == NULL &&
          r->findings[1].stream == NULL);
    for (int i = 0; i < 1000; i++)
        pp_report_add_finding(r, "many", "info", NULL, -1, (uint64_t)i, NULL, "n%d", i);
    /* at most 100 findings per rule are listed, then one findings-truncated note */
    CHECK(r->nfindings == 103 && strcmp(r->findings[101].message, "n99") == 0 &&
          strcmp(r->findings[102].rule, "findings-truncated") == 0);
    CHECK(pp_report_set_policies(r, NULL) == PP_OK && r->npolicies == 0);
    pp_report *q = pp_report_new("m.pkl");
    CHECK(q && strcmp(q->path, "m.pkl") == 0);
    pp_report_free(q);
    pp_report_free(r);
    pp_report_free(NULL);
}

static void test_globals(void)
{
    pp_report *r = pp_report_new("g");
    CHECK(pp_report_add_global(r, "posix", 5, "system", 6) == PP_OK);
    CHECK(pp_report_add_global(r, "posix", 5, "system", 6) == PP_OK);
    CHECK(pp_report_add_global(r, "builtins", 8, "eval", 4) == PP_OK);
    CHECK(pp_report_add_global(r, "posix", 5, "system", 6) == PP_OK);
    CHECK(r->nglobals == 2);
    CHECK(strcmp(r->globals[0], "posix.system") == 0 &&
          strcmp(r->globals[1], "builtins.eval") == 0);
    /* the listing is by the joined name */
    pp_report_add_global(r, "a.b", 3, "c", 1);
    pp_report_add_global(r, "a", 1, "b.c", 3);
    CHECK(r->nglobals == 3 && strcmp(r->globals[2], "a.b.c") == 0);
    /* names are bytes: a NUL does not cut the name, and does not merge it with its prefix */
    pp_report_add_global(r, "po\0six", 6, "system", 6);
    pp_report_add_global(r, "po", 2, "system", 6);
    pp_report_add_global(r, "po\0six", 6, "system", 6);
    CHECK(r->nglobals == 5);
    CHECKF(strcmp(r->globals[3], "po\\x00six.system") == 0, "got %s", r->globals[3]);
    CHECK(strcmp(r->globals[4], "po.system") == 0);
    CHECK(pp_report_add_global(r, "", 0, "", 0) == PP_OK && strcmp(r->globals[5], ".") == 0);
    pp_report_free(r);

    /* many distinct names, each looked up repeatedly: first-seen order, no duplicates, fast */
    r = pp_report_new("many");
    enum { N = 200000 };
    clock_t t0 = clock();
    char name[32];
    for (int rep = 0; rep < 3; rep++)
        for (int i = 0; i < N; i++) {
            int len = snprintf(name, sizeof name, "f%d", i);
            if (pp_report_add_global(r, "mod", 3, name, (size_t)len) != PP_OK) break;
        }
    for (int i = 0; i < 2000000; i++)
        pp_report_add_global(r, "mod", 3, "f7", 2);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECK(r->nglobals == N);
    CHECK(strcmp(r->globals[0], "mod.f0") == 0 && strcmp(r->globals[N - 1], "mod.f199999") == 0);
    CHECKF(secs < 20, "add_global took %.1fs", secs);
    pp_report_free(r);
}

/* ---- writers ----------------------------------------------------------------------------- */

static const char nasty[] = "evil\"\\\x01\x1b[31m\n\t\x7f\xff\xfe\xc3\x28\xe2\x80\xae"
                            "\xed\xa0\x80\xf4\x90\x80\x80\xc2\x9b\xe2\x82\xac ok";

static pp_report *nasty_report(void)
{
    pp_report *r = pp_report_new(nasty);
    pp_report_set_container(r, nasty);
    r->bytes = 134;
    r->nstreams = 2;
    pp_report_add_global(r, nasty, sizeof nasty - 1, nasty, sizeof nasty - 1);
    pp_report_add_global(r, "posix", 5, "system", 6);
    pp_report_add_finding(r, "global-not-allowed", "critical", nasty, 0x93, 2, nasty,
                          "global %s is not allowed", nasty);
    pp_report_add_finding(r, "call-not-allowed", "high", "posix.system", 0x52, 20, "pickle",
                          "call");
    pp_report_add_finding(r, "weird", "low", NULL, 300, UINT64_MAX, NULL, "%s", "");
    r->error.code = PP_E_LIMIT;
    r->error.limit = PP_LIMIT_STACK;
    r->error.offset = 77;
    r->error.opcode = 0x58;
    memset(r->error.stream, 'S', sizeof r->error.stream); /* no terminator: must not overrun */
    snprintf(r->error.msg, sizeof r->error.msg, "limit %s", nasty);
    r->policies = pp_calloc(2, sizeof *r->policies);
    r->policies[0] = pp_strdup("default");
    r->policies[1] = pp_strdup(nasty);
    r->npolicies = 2;
    pp_report_decide(r);
    return r;
}

/* Runs /usr/bin/python3's json module over the file (each line when `lines`), when there is one,
 * then the Python statements in `check` with the (last) value in d. */
static int python_accepts(const char *path, int lines, const char *check)
{
    if (access("/usr/bin/python3", X_OK) != 0) return 1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import json,sys\n"
             "t = open(sys.argv[1], \"rb\").read().decode(\"utf-8\")\n"
             "for line in (t.split(\"\\n\") if %d else [t]):\n"
             "    if line.strip(): d = json.loads(line)\n"
             "%s' %s",
             lines, check, path);
    return system(cmd) == 0;
}

static void test_json(void)
{
    pp_report *r = nasty_report();
    CHECK(r->verdict == PP_VERDICT_UNSAFE);
    pp_buf b;
    pp_buf_init(&b);
    CHECK(pp_report_json(r, &b) == PP_OK);
    CHECKF(json_valid(b.p, b.n), "invalid JSON: %s", b.p);
    CHECK(!memchr(b.p, '\n', b.n));
    CHECK(strstr(b.p, "\"verdict\":\"unsafe\"") != NULL);
    CHECK(strstr(b.p, "\"globals\":[") != NULL);
    CHECK(strstr(b.p, "\"error\":{\"name\":\"limit-exceeded\",\"offset\":77,"
                      "\"opcode\":\"BINUNICODE\",\"limit\":\"stack-depth\"") != NULL);
    CHECK(strstr(b.p, "\"opcode\":null,\"offset\":18446744073709551615") != NULL);
    CHECK(strstr(b.p, "\"signature\":{\"status\":\"not-checked\"},\"sandbox\":\"off\"") != NULL);
    CHECK(strstr(b.p, "\\u00ff") != NULL && strstr(b.p, "\\u001b") != NULL);
    CHECK(strstr(b.p, "\xe2\x82\xac") != NULL); /* valid UTF-8 passes through */
    pp_buf_free(&b);

    /* the document and jsonl through a real FILE */
    pp_report *clean = pp_report_new("clean.pkl");
    pp_report_decide(clean);
    const pp_report *two[2] = {r, clean};
    char path[] = "/tmp/pp_test_report_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w+b") : NULL;
    CHECK(f != NULL);
    if (f) {
        CHECK(pp_report_write_json_doc(two, 2, f) == PP_OK);
        size_t n;
        char *s = slurp(f, &n);
        CHECKF(json_valid(s, n), "invalid document: %s", s);
        CHECK(strncmp(s, "{\"tool\":\"pickleproof\",\"version\":\"" PP_VERSION "\",\"files\":[",
                      40) == 0);
        CHECK(strstr(s, "\"summary\":{\"files\":2,\"safe\":1,\"unsafe\":1,\"malformed\":0,"
                        "\"limit\":0,\"unsigned\":0,\"bad-signature\":0,\"error\":0}}") != NULL);
        free(s);
        CHECK(python_accepts(path, 0,
                             "assert d[\"summary\"][\"unsafe\"] == 1\n"
                             "f = d[\"files\"][0]\n"
                             "assert f[\"findings\"][0][\"severity\"] == \"critical\"\n"
                             "assert f[\"globals\"][1] == \"posix.system\"\n"
                             "assert \"\\x1b\" in f[\"path\"] and \"\\xff\" in f[\"path\"]\n"
                             "assert f[\"error\"][\"stream\"] == \"S\" * 256\n"));

        CHECK(ftruncate(fd, 0) == 0);
        rewind(f);
        CHECK(pp_report_write_jsonl(r, f) == PP_OK);
        CHECK(pp_report_write_jsonl(clean, f) == PP_OK);
        s = slurp(f, &n);
        char *nl = memchr(s, '\n', n);
        CHECK(nl && json_valid(s, (size_t)(nl - s)));
        CHECK(nl && json_valid(nl + 1, n - (size_t)(nl + 1 - s) - 1) && s[n - 1] == '\n');
        CHECK(strstr(s, "\"error\":null") != NULL && strstr(s, "\"policy\":[]") != NULL);
        free(s);
        CHECK(python_accepts(path, 1, ""));

        /* an empty document is valid too */
        CHECK(ftruncate(fd, 0) == 0);
        rewind(f);
        CHECK(pp_report_write_json_doc(NULL, 0, f) == PP_OK);
        s = slurp(f, &n);
        CHECK(json_valid(s, n) && strstr(s, "\"files\":[]") != NULL);
        free(s);
        fclose(f);
        unlink(path);
    }
    pp_report_free(clean);
    pp_report_free(r);
}

/* Every ESC in s starts one of our SGR sequences: ESC [ digits/semicolons m. */
static int only_sgr(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != 0x1b) continue;
        if (i + 1 >= n || s[i + 1] != '[') return 0;
        size_t j = i + 2;
        while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == ';'))
            j++;
        if (j >= n || s[j] != 'm') return 0;
        i = j;
    }
    return 1;
}

/* No byte a terminal would act on or reorder by: controls, C1 (as UTF-8), U+202E. */
static int terminal_safe(const char *s, size_t n, int allow_sgr)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\n' && !(c == 0x1b && allow_sgr)) || c == 0x7f) return 0;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] < 0xa0) return 0;
        if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
            (unsigned char)s[i + 2] == 0xae)
            return 0;
        if (c == 0xff || c == 0xfe) return 0;
    }
    return allow_sgr ? only_sgr(s, n) : !memchr(s, 0x1b, n);
}

static void test_text(void)
{
    pp_report *r = nasty_report();
    pp_buf b;
    pp_buf_init(&b);
    CHECK(pp_report_text(r, &b, PP_TEXT_VERBOSE) == PP_OK);
    CHECKF(terminal_safe(b.p, b.n, 0), "unsafe text: %s", b.p);
    CHECK(strstr(b.p, ": LIMIT (") == NULL); /* critical finding wins */
    CHECK(strstr(b.p, ": UNSAFE (") != NULL);
    CHECK(strstr(b.p, "134 bytes, 2 streams, sandbox off)\n") != NULL);
    CHECK(strstr(b.p, "\\x1b[31m") != NULL && strstr(b.p, "\\u202e") != NULL);
    CHECK(strstr(b.p, "\\udc00") == NULL && strstr(b.p, "\\ud800") != NULL);
    CHECK(strstr(b.p, "\\x9b") != NULL && strstr(b.p, "\\xff") != NULL);
    CHECK(strstr(b.p, "  offset 20  REDUCE  call-not-allowed (high)  posix.system: call\n") !=
          NULL);
    CHECK(strstr(b.p, "error limit-exceeded (stack-depth)") != NULL);
    CHECK(strstr(b.p, "    posix.system\n") != NULL);
    pp_buf_free(&b);

    pp_buf_init(&b);
    CHECK(pp_report_text(r, &b, PP_TEXT_COLOR) == PP_OK);
    CHECKF(terminal_safe(b.p, b.n, 1), "unsafe colored text: %s", b.p);
    CHECK(strstr(b.p, "\x1b[1;31mUNSAFE\x1b[0m") != NULL);
    CHECK(strstr(b.p, "  globals:") == NULL);
    pp_buf_free(&b);

    /* an error the scanner also recorded as a finding is shown once */
    pp_report *t = pp_report_new("t.pkl");
    t->error.code = PP_E_TRUNCATED;
    t->error.offset = 9;
    snprintf(t->error.msg, sizeof t->error.msg, "cut");
    CHECK(!pp_report_error_shown(t));
    pp_report_add_finding(t, "truncated", "medium", NULL, 0x58, 9, "pickle", "cut");
    CHECK(pp_report_error_shown(t));
    pp_report_decide(t);
    pp_buf_init(&b);
    pp_report_text(t, &b, 0);
    CHECKF(strcmp(b.p, "t.pkl: MALFORMED (pickle, 0 bytes, sandbox off)\n"
                       "  offset 9  BINUNICODE  truncated (medium)  cut\n") == 0,
           "got %s", b.p);
    pp_buf_free(&b);
    pp_graph g;
    memset(&g, 0, sizeof g);
    pp_stream_result st;
    memset(&st, 0, sizeof st);
    st.end = 9;
    pp_buf_init(&b);
    CHECK(pp_explain(&g, &st, 1, t, 10, &b, 0) == PP_OK);
    CHECKF(strcmp(b.p, "# stream 0: pickle, protocol 0, bytes 0..9, no STOP\n"
                       "@9     !! truncated (BINUNICODE): cut\n") == 0,
           "got %s", b.p);
    pp_buf_free(&b);
    pp_report_free(t);

    pp_report *clean = pp_report_new("clean.pkl");
    pp_report_decide(clean);
    pp_buf_init(&b);
    pp_report_text(clean, &b, 0);
    CHECKF(strcmp(b.p, "clean.pkl: SAFE (pickle, 0 bytes, sandbox off)\n") == 0, "got %s", b.p);
    pp_buf_free(&b);
    FILE *f = tmpfile();
    if (f) {
        CHECK(pp_report_write_text(clean, f, 0) == PP_OK && ftell(f) == 47);
        fclose(f);
    }
    pp_report_free(clean);
    pp_report_free(r);
}

/* ---- explain ----------------------------------------------------------------------------- */

#define SV(lit) ((pp_val){.kind = PP_V_STR, .u.s = {(const uint8_t *)(lit), sizeof(lit) - 1}})
#define BV(lit) ((pp_val){.kind = PP_V_BYTES, .u.s = {(const uint8_t *)(lit), sizeof(lit) - 1}})
#define IV(x) ((pp_val){.kind = PP_V_INT, .u.i = (x)})

static pp_event *add_event(pp_graph *g, pp_event *ev, pp_evkind k, int op, uint64_t off,
                           uint32_t stream, pp_node *node)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = (uint8_t)k;
    ev->opcode = (uint8_t)op;
    ev->offset = off;
    ev->stream = stream;
    ev->node = node;
    if (g->events_tail)
        g->events_tail->next = ev;
    else
        g->events = ev;
    g->events_tail = ev;
    g->nevents++;
    return ev;
}

static void set_global(pp_node *n, uint32_t id, const char *m, size_t ml, const char *nm, size_t nl)
{
    memset(n, 0, sizeof *n);
    n->kind = PP_N_GLOBAL;
    n->id = id;
    n->u.glob.module = m;
    n->u.glob.modlen = (uint32_t)ml;
    n->u.glob.name = nm;
    n->u.glob.namelen = (uint32_t)nl;
    n->u.glob.raw_module = m;
    n->u.glob.raw_name = nm;
}

static void set_seq(pp_node *n, pp_nkind k, pp_val *v, size_t count)
{
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)k;
    n->u.seq.v = v;
    n->u.seq.n = n->u.seq.cap = count;
}

static char *explain_text(const pp_graph *g, const pp_stream_result *s, size_t ns,
                          const pp_report *r, uint64_t depth, int color)
{
    pp_buf b;
    pp_buf_init(&b);
    pp_err e = pp_explain(g, s, ns, r, depth, &b, color);
    CHECKF(e == PP_OK, "pp_explain: %d", (int)e);
    return pp_buf_take(&b);
}

static void test_explain(void)
{
    pp_graph g;
    memset(&g, 0, sizeof g);
    pp_event evs[16];
    int ne = 0;
    pp_node gsys, gnd, gloads1, gloads2, gevil, grec, call, nw, lst, tup, dct, barr, mv;

    set_global(&gsys, 0, "posix", 5, "system", 6);
    set_global(&gnd, 2, "numpy", 5, "ndarray", 7);
    set_global(&gloads1, 4, "pickle", 6, "loads", 5);
    set_global(&gloads2, 5, "marshal", 7, "loads", 5);
    static const char evil_mod[] = "os\x1b[2J";
    static const char evil_name[] = "sys\xe2\x80\xaetem'";
    set_global(&gevil, 6, evil_mod, sizeof evil_mod - 1, evil_name, sizeof evil_name - 1);
    set_global(&grec, 7, "copyreg", 7, "_reconstructor", 14);
    grec.flags = PP_NF_RENAMED;

    pp_val call_args[1] = {SV("echo pwned")};
    memset(&call, 0, sizeof call);
    call.kind = PP_N_CALL;
    call.id = 1;
    call.u.call.fn = pp_val_node(&gsys);
    call.u.call.args = call_args;
    call.u.call.nargs = 1;

    pp_val kw[4] = {SV("order"), SV("C"), IV(3), pp_val_none()};
    memset(&nw, 0, sizeof nw);
    nw.kind = PP_N_NEW;
    nw.id = 3;
    nw.u.call.fn = pp_val_node(&gnd);
    nw.u.call.kw = kw;
    nw.u.call.nkw = 2;

    /* lst = [1, 2, (lst,)]: a cycle through a tuple */
    pp_val tup_items[1], lst_items[3] = {IV(1), IV(2), pp_val_none()};
    set_seq(&lst, PP_N_LIST, lst_items, 3);
    set_seq(&tup, PP_N_TUPLE, tup_items, 1);
    tup_items[0] = pp_val_node(&lst);
    lst_items[2] = pp_val_node(&tup);

    static const uint8_t big[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80};
    static const uint8_t minus_one[] = {0xff, 0xff};
    static const char long_bytes[100] = "AAAA";
    memset(&barr, 0, sizeof barr);
    barr.kind = PP_N_BYTEARRAY;
    barr.u.bytes.p = (const uint8_t *)"\x00\x01'";
    barr.u.bytes.n = 3;
    memset(&mv, 0, sizeof mv);
    mv.kind = PP_N_MEMORYVIEW;
    mv.u.view = &barr;

    pp_val state_items[6];
    pp_node state;
    set_seq(&state, PP_N_TUPLE, state_items, 6);
    state_items[0] = IV(1);
    state_items[1] = (pp_val){.kind = PP_V_BOOL, .u.i = 0};
    state_items[2] = (pp_val){.kind = PP_V_FLOAT, .u.f = 0.1};
    state_items[3] = (pp_val){.kind = PP_V_BYTES, .u.s = {(const uint8_t *)long_bytes, 100}};
    state_items[4] = (pp_val){.kind = PP_V_BIGINT, .u.s = {big, sizeof big}};
    state_items[5] = (pp_val){.kind = PP_V_BIGINT, .u.s = {minus_one, sizeof minus_one}};

    pp_val d_items[10] = {SV("a"), pp_val_node(&nw),    SV("b"), pp_val_node(&lst),
                          SV("c"), pp_val_node(&gevil), SV("d"), pp_val_node(&mv),
                          SV("e"), SV("it's \"q\"\n")};
    set_seq(&dct, PP_N_DICT, d_items, 10);

    add_event(&g, &evs[ne++], PP_EV_GLOBAL, 0x93, 2, 0, &gsys);
    add_event(&g, &evs[ne++], PP_EV_CALL, 0x52, 20, 0, &call);
    add_event(&g, &evs[ne++], PP_EV_GLOBAL, 0x93, 25, 0, &gnd);
    add_event(&g, &evs[ne++], PP_EV_NEW, 0x81, 31, 0, &nw);
    add_event(&g, &evs[ne++], PP_EV_BUILD, 0x62, 40, 0, &nw)->a = pp_val_node(&state);
    add_event(&g, &evs[ne++], PP_EV_APPEND, 0x61, 52, 0, &nw)->a = IV(5);
    pp_event *si = add_event(&g, &evs[ne++], PP_EV_SETITEM, 0x73, 53, 0, &nw);
    si->a = SV("k");
    si->b = pp_val_node(&lst);
    add_event(&g, &evs[ne++], PP_EV_GLOBAL, 0x63, 60, 0, &gloads1);
    add_event(&g, &evs[ne++], PP_EV_GLOBAL, 0x63, 70, 0, &gloads2);
    add_event(&g, &evs[ne++], PP_EV_GLOBAL, 0x63, 80, 0, &gevil);
    pp_event *rn = add_event(&g, &evs[ne++], PP_EV_GLOBAL, 0x63, 130, 1, &grec);
    rn->a = SV("copy_reg");
    rn->b = SV("_reconstructor");
    g.next_id = 8;

    pp_stream_result st[2];
    memset(st, 0, sizeof st);
    st[0].root = pp_val_node(&dct);
    st[0].stopped = true;
    st[0].start = 0;
    st[0].end = 120;
    st[0].protocol = 2;
    st[1].stopped = false;
    st[1].start = 120;
    st[1].end = 150;
    st[1].protocol = -1;

    pp_report *r = pp_report_new("x.pkl");
    pp_report_add_finding(r, "global-not-allowed", "critical", "posix.system", 0x93, 2, "pickle",
                          "not allowed");
    pp_report_add_finding(r, "call-not-allowed", "critical", "posix.system", 0x52, 20, "pickle",
                          "not allowed");
    pp_report_add_finding(r, "wrong-opcode", "low", NULL, 0x52, 2, NULL, "does not match");
    pp_report_add_finding(r, "trailing-data", "low", NULL, -1, 200, NULL, "junk \x1b]0;x\x07");
    r->error.code = PP_E_TRUNCATED;
    r->error.offset = 150;
    r->error.opcode = 0x58;
    snprintf(r->error.msg, sizeof r->error.msg, "pickle data was truncated");

    char *s = explain_text(&g, st, 2, r, 100, 0);
    if (s) {
        printf("%s", s);
        CHECK(strstr(s, "# stream 0: pickle, protocol 2, bytes 0..120\n") != NULL);
        CHECK(strstr(s, "# stream 1: pickle, no PROTO, bytes 120..150, no STOP\n") != NULL);
        CHECK(strstr(s, "@2     from posix import system") != NULL);
        CHECK(strstr(s, "from posix import system                # !! global-not-allowed\n"));
        CHECK(strstr(s, "@20    v1 = system('echo pwned')               # !! call-not-allowed\n"));
        CHECK(strstr(s, "v3 = ndarray.__new__(ndarray, order='C', **{3: None})\n") != NULL);
        CHECK(strstr(s, "v3.__setstate__((1, False, 0.1, b'AAAA\\x00\\x00") != NULL);
        CHECK(strstr(s, "... (100 bytes), -0x800000000000000000, -1))") != NULL);
        CHECK(strstr(s, "# BUILD\n") != NULL);
        CHECK(strstr(s, "v3.append(5)\n") != NULL);
        CHECK(strstr(s, "v3['k'] = [1, 2, ([...],)]\n") != NULL);
        CHECK(strstr(s, "import pickle; pickle.loads\n") != NULL);
        CHECK(strstr(s, "import marshal; marshal.loads\n") != NULL);
        CHECK(strstr(s, "find_class('os\\x1b[2J', \"sys\\u202etem'\")") != NULL);
        CHECK(strstr(s, "# written as copy_reg._reconstructor\n") != NULL);
        CHECK(strstr(s, "return {'a': v3, 'b': [1, 2, ([...],)], 'c': find_class(") != NULL);
        CHECK(strstr(s, "'d': memoryview(bytearray(b\"\\x00\\x01'\"))") != NULL);
        CHECK(strstr(s, "'e': 'it\\'s \"q\"\\n'}\n") != NULL);
        CHECK(strstr(s, "@2     !! wrong-opcode (REDUCE): does not match\n") != NULL);
        CHECK(strstr(s, "@150   !! truncated: pickle data was truncated\n") != NULL);
        CHECK(strstr(s, "@200   !! trailing-data: junk \\x1b]0;x\\x07\n") != NULL);
        /* order: the error closes stream 1, the trailing finding comes last */
        CHECK(strstr(s, "@150") < strstr(s, "@200") && strstr(s, "@130") < strstr(s, "@150"));
        CHECK(terminal_safe(s, strlen(s), 0));
        free(s);
    }
    s = explain_text(&g, st, 2, r, 100, 1);
    if (s) {
        CHECK(strstr(s, "# \x1b[31m!! global-not-allowed\x1b[0m\n") != NULL);
        CHECK(terminal_safe(s, strlen(s), 1));
        free(s);
    }
    /* without a report, and with depth 0: containers elided, nothing marked */
    s = explain_text(&g, st, 2, NULL, 0, 0);
    if (s) {
        CHECK(strstr(s, "!!") == NULL);
        CHECK(strstr(s, "return {...}\n") != NULL);
        free(s);
    }
    /* every allocation failure is reported, never crashes or leaks */
    int done = 0;
    for (uint64_t n = 1; n < 100 && !done; n++) {
        pp_buf b;
        pp_buf_init(&b);
        pp_alloc_fail_at(n);
        pp_err e = pp_explain(&g, st, 2, r, 100, &b, 0);
        pp_alloc_fail_at(0);
        CHECK(e == PP_OK || e == PP_E_NOMEM);
        done = e == PP_OK;
        pp_buf_free(&b);
    }
    CHECK(done);
    pp_report_free(r);
}

/* Shared structure blows up exponentially if walked naively; deep nesting must not recurse
 * without bound. */
static void test_explain_bombs(void)
{
    enum { LEVELS = 60, DEEP = 100000 };
    static pp_node tuples[LEVELS];
    static pp_val items[LEVELS][8];
    set_seq(&tuples[0], PP_N_TUPLE, items[0], 1);
    items[0][0] = IV(7);
    for (int k = 1; k < LEVELS; k++) {
        set_seq(&tuples[k], PP_N_TUPLE, items[k], 8);
        for (int i = 0; i < 8; i++)
            items[k][i] = pp_val_node(&tuples[k - 1]);
    }
    pp_graph g;
    memset(&g, 0, sizeof g);
    pp_stream_result st;
    memset(&st, 0, sizeof st);
    st.stopped = true;
    st.root = pp_val_node(&tuples[LEVELS - 1]);
    clock_t t0 = clock();
    char *s = explain_text(&g, &st, 1, NULL, 1000000, 0);
    CHECKF((double)(clock() - t0) / CLOCKS_PER_SEC < 2, "shared tuples too slow");
    CHECK(s && strlen(s) < 8192);
    free(s);

    pp_node *deep = calloc(DEEP, sizeof *deep);
    pp_val *dv = calloc(DEEP, sizeof *dv);
    set_seq(&deep[0], PP_N_LIST, NULL, 0);
    for (int k = 1; k < DEEP; k++) {
        set_seq(&deep[k], PP_N_LIST, &dv[k], 1);
        dv[k] = pp_val_node(&deep[k - 1]);
    }
    st.root = pp_val_node(&deep[DEEP - 1]);
    s = explain_text(&g, &st, 1, NULL, UINT64_MAX, 0);
    CHECK(s && strstr(s, "[[[[") && strstr(s, "...") && strlen(s) < 8192);
    free(s);
    free(deep);
    free(dv);
}

/* ---- allocation failures ----------------------------------------------------------------- */

static void test_oom(void)
{
    int completed = 0;
    for (uint64_t n = 1; n < 5000 && !completed; n++) {
        pp_alloc_fail_at(n);
        pp_report *r = pp_report_new("p");
        if (!r) continue;
        int ok = 1;
        for (int i = 0; i < 40 && ok; i++) {
            char name[16];
            int len = snprintf(name, sizeof name, "n%d", i);
            ok = pp_report_add_global(r, "m", 1, name, (size_t)len) == PP_OK &&
                 pp_report_add_finding(r, "rule", "high", name, -1, 0, "s", "%d", i) == PP_OK;
        }
        pp_buf b;
        pp_buf_init(&b);
        if (ok) ok = pp_report_json(r, &b) == PP_OK && pp_report_text(r, &b, 3) == PP_OK;
        pp_buf_free(&b);
        CHECK(r->nglobals <= 40 && r->nfindings <= 40);
        pp_report_free(r);
        completed = ok;
    }
    pp_alloc_fail_at(0);
    CHECK(completed);
}

int main(void)
{
    test_decide();
    test_basics();
    test_globals();
    test_json();
    test_text();
    test_explain();
    test_explain_bombs();
    test_oom();
    return tap_done();
}
