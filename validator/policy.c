/* Policy files: parsing, includes and the global lookup table. The judging of graphs is in
 * policy_check.c. Syntax (policies/README.md):
 *
 *   policy NAME
 *   include NAME | include PATH
 *   reference GLOBAL
 *   call      GLOBAL [ARGS] [-> RESULT]
 *   construct GLOBAL [ARGS]
 *
 * GLOBAL is `module.name` (the last dot splits) or `module:dotted.qualname`: one spelling, one
 * meaning, so a policy can never allow more than its author read. Policies are written by
 * people we trust, but they are still parsed strictly: every error names the file, the line
 * and the reason, and nothing is guessed. */
#include "policy_int.h"

#include "err.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CAP ((size_t)256 << 20) /* everything one policy set may hold */
#define MAX_TEXT ((size_t)16 << 20)   /* one policy file */
#define MAX_LINE 4096
#define MAX_INCLUDE_DEPTH 16
#define MAX_PATTERN_DEPTH 8 /* nesting of () and [] in an argument pattern */
#define MAX_ELEMS 64        /* elements of one tuple pattern, or alternatives of one | chain */
#define MAX_POLICY_NAME 64

/* ---- creation and lookup ------------------------------------------------------------------ */

pp_err pp_policy_new(pp_policy **out)
{
    *out = NULL;
    pp_policy *p = pp_calloc(1, sizeof *p);
    if (!p) return PP_E_NOMEM;
    pp_arena_init(&p->arena, ARENA_CAP);
    *out = p;
    return PP_OK;
}

void pp_policy_free(pp_policy *p)
{
    if (!p) return;
    pp_arena_free(&p->arena);
    pp_free(p->slots);
    pp_free(p->names);
    pp_free(p->units);
    pp_free(p);
}

uint64_t pp_policy_hash(const char *module, size_t modlen, const char *name, size_t namelen)
{
    /* FNV-1a. Only the policy author chooses what is in the table, so a hostile stream can
     * pick which bucket it probes but cannot lengthen the probe chains. */
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < modlen; i++) {
        h ^= (uint8_t)module[i];
        h *= 1099511628211u;
    }
    h ^= 0x100; /* separator no byte can produce */
    h *= 1099511628211u;
    for (size_t i = 0; i < namelen; i++) {
        h ^= (uint8_t)name[i];
        h *= 1099511628211u;
    }
    return h;
}

const pp_pentry *pp_policy_entry(const pp_policy *p, const char *module, size_t modlen,
                                 const char *name, size_t namelen)
{
    /* hostile: names longer than any policy entry are never allowed; don't hash them */
    if (!p || !p->nslots || modlen > PP_POLICY_MAX_NAME || namelen > PP_POLICY_MAX_NAME)
        return NULL;
    uint64_t h = pp_policy_hash(module, modlen, name, namelen);
    size_t mask = p->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const pp_pentry *e = p->slots[i];
        if (!e) return NULL;
        if (e->hash == h && e->modlen == modlen && e->namelen == namelen &&
            memcmp(e->module, module, modlen) == 0 && memcmp(e->name, name, namelen) == 0)
            return e;
    }
}

unsigned pp_policy_lookup(const pp_policy *p, const char *module, size_t modlen, const char *name,
                          size_t namelen)
{
    const pp_pentry *e = pp_policy_entry(p, module, modlen, name, namelen);
    return e ? e->perms : 0;
}

size_t pp_policy_names(const pp_policy *p, const char *const **names)
{
    static const char *const none[] = {NULL};
    if (!p || !p->names) {
        *names = none;
        return 0;
    }
    *names = (const char *const *)p->names;
    return p->nnames;
}

static pp_err grow_table(pp_policy *p)
{
    size_t n = p->nslots ? p->nslots * 2 : 64;
    pp_pentry **s = pp_calloc(n, sizeof *s);
    if (!s) return PP_E_NOMEM;
    for (size_t i = 0; i < p->nslots; i++) {
        pp_pentry *e = p->slots[i];
        if (!e) continue;
        size_t j = (size_t)e->hash & (n - 1);
        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = e;
    }
    pp_free(p->slots);
    p->slots = s;
    p->nslots = n;
    return PP_OK;
}

/* Appends s to a NULL-terminated growable list of arena strings. */
static pp_err list_add(char ***list, size_t *n, size_t *cap, char *s)
{
    if (*n + 1 >= *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        char **l = pp_realloc(*list, nc * sizeof *l);
        if (!l) return PP_E_NOMEM;
        *list = l;
        *cap = nc;
    }
    (*list)[(*n)++] = s;
    (*list)[*n] = NULL;
    return PP_OK;
}

static bool list_has(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return true;
    return false;
}

/* ---- lexing one line ---------------------------------------------------------------------- */

typedef struct lx {
    pp_policy *p;
    pp_error *err;
    const char *origin;
    uint32_t line;
    const char *s; /* the line, without its newline */
    size_t n, i;
    pp_err rc; /* the first error, for parsers that return NULL */
} lx;

static pp_err lerr(lx *L, const char *fmt, ...) PP_PRINTF(2, 3);
static pp_err lerr(lx *L, const char *fmt, ...)
{
    char why[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (!L->rc) L->rc = PP_E_POLICY;
    return pp_fail(L->err, PP_E_POLICY, 0, -1, "%s:%u: %s", L->origin, L->line, why);
}

static pp_err nomem(lx *L)
{
    if (!L->rc) L->rc = PP_E_NOMEM;
    return pp_fail(L->err, PP_E_NOMEM, 0, -1, "%s:%u: out of memory loading the policy", L->origin,
                   L->line);
}

static void skip_ws(lx *L)
{
    while (L->i < L->n && (L->s[L->i] == ' ' || L->s[L->i] == '\t'))
        L->i++;
}

/* True at the end of the line or at a comment, after skipping blanks. */
static bool at_end(lx *L)
{
    skip_ws(L);
    return L->i >= L->n || L->s[L->i] == '#';
}

static int peek(const lx *L)
{
    return L->i < L->n ? (unsigned char)L->s[L->i] : -1;
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_namechar(int c)
{
    return is_alpha(c) || is_digit(c) || c == '.' || c == ':';
}

/* The next character for a message: printable, or a hex escape. */
static const char *show_char(int c, char buf[8])
{
    if (c < 0) return "end of line";
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", (unsigned)c & 0xffu);
    return buf;
}

static char *arena_strndup(lx *L, const char *s, size_t n)
{
    char *d = pp_arena_strndup(&L->p->arena, s, n);
    if (!d) nomem(L);
    return d;
}

/* Dotted ASCII identifiers: "a", "a.b_c". */
static bool dotted_ok(const char *s, size_t n)
{
    if (!n) return false;
    bool start = true;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '.') {
            if (start) return false;
            start = true;
        } else if (start) {
            if (!is_alpha(c)) return false;
            start = false;
        } else if (!is_alpha(c) && !is_digit(c)) {
            return false;
        }
    }
    return !start;
}

typedef struct gname {
    const char *module, *name; /* arena copies */
    uint32_t modlen, namelen;
} gname;

/* Parses a GLOBAL at L->i: `module.name` (the last dot splits: the qualname has no dot) or
 * `module:qualname` (the qualname may be dotted). Anything else is an error, never a guess. */
static pp_err parse_global(lx *L, gname *g)
{
    size_t start = L->i;
    while (L->i < L->n && is_namechar((unsigned char)L->s[L->i]))
        L->i++;
    const char *s = L->s + start;
    size_t n = L->i - start;
    if (!n) {
        char b[8];
        return lerr(L, "expected a global (module.name or module:qualname), found %s",
                    show_char(peek(L), b));
    }
    const char *colon = memchr(s, ':', n);
    size_t ml, qs;
    if (colon) {
        ml = (size_t)(colon - s);
        qs = ml + 1;
        if (memchr(colon + 1, ':', n - qs))
            return lerr(L, "global '%.*s' has more than one ':'", (int)n, s);
    } else {
        const char *dot = NULL;
        for (size_t i = n; i-- > 0;)
            if (s[i] == '.') {
                dot = s + i;
                break;
            }
        if (!dot)
            return lerr(L, "global '%.*s' has no module: write module.name or module:qualname",
                        (int)n, s);
        ml = (size_t)(dot - s);
        qs = ml + 1;
    }
    if (!dotted_ok(s, ml))
        return lerr(L, "global '%.*s': module '%.*s' is not a dotted ASCII identifier", (int)n, s,
                    (int)ml, s);
    if (!dotted_ok(s + qs, n - qs))
        return lerr(L, "global '%.*s': qualname '%.*s' is not a dotted ASCII identifier", (int)n, s,
                    (int)(n - qs), s + qs);
    if (ml > PP_POLICY_MAX_NAME || n - qs > PP_POLICY_MAX_NAME)
        return lerr(L, "global '%.40s...' is longer than %d characters", s, PP_POLICY_MAX_NAME);
    g->module = arena_strndup(L, s, ml);
    g->name = arena_strndup(L, s + qs, n - qs);
    if (!g->module || !g->name) return PP_E_NOMEM;
    g->modlen = (uint32_t)ml;
    g->namelen = (uint32_t)(n - qs);
    return PP_OK;
}

/* ---- argument patterns ---------------------------------------------------------------------- */

static pp_pat *new_pat(lx *L, uint8_t kind, size_t start)
{
    pp_pat *pt = pp_arena_zalloc(&L->p->arena, sizeof *pt);
    if (!pt) {
        nomem(L);
        return NULL;
    }
    pt->kind = kind;
    pt->src = L->s + start; /* fixed up by set_src once the pattern ends */
    return pt;
}

/* Copies the pattern's source text [start, L->i) into the arena, trimmed. */
static bool set_src(lx *L, pp_pat *pt, size_t start)
{
    size_t end = L->i;
    while (end > start && (L->s[end - 1] == ' ' || L->s[end - 1] == '\t'))
        end--;
    pt->src = arena_strndup(L, L->s + start, end - start);
    return pt->src != NULL;
}

static const struct {
    const char *word;
    uint8_t kind;
} pattern_words[] = {
    {"any", PP_PAT_ANY},
    {"None", PP_PAT_NONE},
    {"True", PP_PAT_TRUE},
    {"False", PP_PAT_FALSE},
    {"str", PP_PAT_T_STR},
    {"bytes", PP_PAT_T_BYTES},
    {"int", PP_PAT_T_INT},
    {"float", PP_PAT_T_FLOAT},
    {"bool", PP_PAT_T_BOOL},
    {"bytearray", PP_PAT_T_BYTEARRAY},
    {"memoryview", PP_PAT_T_MEMORYVIEW},
    {"tuple", PP_PAT_T_TUPLE},
    {"list", PP_PAT_T_LIST},
    {"dict", PP_PAT_T_DICT},
    {"set", PP_PAT_T_SET},
    {"frozenset", PP_PAT_T_FROZENSET},
    {"identifier", PP_PAT_IDENT},
    {"dtypestr", PP_PAT_DTYPESTR},
    {"class", PP_PAT_CLASS},
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A quoted literal at L->i (the quote). str literals keep raw UTF-8 and turn \xHH into the code
 * point U+00HH; bytes literals take printable ASCII and \xHH as a byte, as Python does. */
static pp_err parse_quoted(lx *L, bool bytes, const uint8_t **out, size_t *outn)
{
    int q = peek(L);
    L->i++;
    uint8_t *buf = pp_arena_alloc(&L->p->arena, L->n - L->i + 1);
    if (!buf) return nomem(L);
    size_t k = 0;
    for (;;) {
        int c = peek(L);
        if (c < 0) return lerr(L, "unterminated string literal");
        L->i++;
        if (c == q) break;
        if (c == '\\') {
            int e = peek(L);
            L->i++;
            int v;
            switch (e) {
            case '\\':
                v = '\\';
                break;
            case '\'':
                v = '\'';
                break;
            case '"':
                v = '"';
                break;
            case 'n':
                v = '\n';
                break;
            case 'r':
                v = '\r';
                break;
            case 't':
                v = '\t';
                break;
            case '0':
                v = 0;
                break;
            case 'x': {
                int h = hexval(peek(L));
                int l = h < 0 ? -1 : (L->i + 1 < L->n ? hexval((unsigned char)L->s[L->i + 1]) : -1);
                if (h < 0 || l < 0) return lerr(L, "\\x needs two hex digits");
                L->i += 2;
                v = h * 16 + l;
                break;
            }
            default: {
                char b[8];
                return lerr(L, "unknown escape \\%s in string literal",
                            e < 0 ? "<end of line>" : show_char(e, b));
            }
            }
            if (!bytes && v >= 0x80) {
                buf[k++] = (uint8_t)(0xc0 | (v >> 6));
                buf[k++] = (uint8_t)(0x80 | (v & 0x3f));
            } else {
                buf[k++] = (uint8_t)v;
            }
            continue;
        }
        if (bytes && (c < 0x20 || c > 0x7e))
            return lerr(L, "bytes literals take printable ASCII only; write \\x%02x", (unsigned)c);
        buf[k++] = (uint8_t)c;
    }
    *out = buf;
    *outn = k;
    return PP_OK;
}

static pp_pat *parse_alt(lx *L, unsigned depth);
static pp_pat *parse_seq(lx *L, uint8_t kind, unsigned depth, bool top, size_t start);

static pp_pat *parse_atom(lx *L, unsigned depth)
{
    skip_ws(L);
    size_t start = L->i;
    int c = peek(L);
    pp_pat *pt = NULL;
    char b[8];
    if (c < 0 || c == '#') {
        lerr(L, "expected an argument pattern, found end of line");
        return NULL;
    }
    if (c == '(' || c == '[') {
        L->i++;
        return parse_seq(L, c == '(' ? PP_PAT_TUPLE : PP_PAT_LIST, depth + 1, false, start);
    }
    if (c == '"' || c == '\'' ||
        (c == 'b' && L->i + 1 < L->n && (L->s[L->i + 1] == '"' || L->s[L->i + 1] == '\''))) {
        bool bytes = c == 'b';
        if (bytes) L->i++;
        if (!(pt = new_pat(L, bytes ? PP_PAT_BYTES : PP_PAT_STR, start))) return NULL;
        if (parse_quoted(L, bytes, &pt->u.s.p, &pt->u.s.n) != PP_OK) return NULL;
    } else if (c == '-' || is_digit(c)) {
        bool neg = c == '-';
        if (neg) L->i++;
        size_t d0 = L->i;
        uint64_t v = 0;
        while (is_digit(peek(L))) {
            unsigned d = (unsigned)(peek(L) - '0');
            if (v > (UINT64_MAX - d) / 10 || v * 10 + d > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
                lerr(L, "integer literal out of range");
                return NULL;
            }
            v = v * 10 + d;
            L->i++;
        }
        if (L->i == d0 || (L->i - d0 > 1 && L->s[d0] == '0') || is_alpha(peek(L))) {
            lerr(L, "malformed integer literal '%.*s'", (int)(L->i - start + 1), L->s + start);
            return NULL;
        }
        if (!(pt = new_pat(L, PP_PAT_INT, start))) return NULL;
        pt->u.i = neg ? (v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    } else if (c == '@') {
        L->i++;
        gname g;
        if (parse_global(L, &g) != PP_OK || !(pt = new_pat(L, PP_PAT_GLOBAL, start))) return NULL;
        pt->u.g.module = g.module;
        pt->u.g.name = g.name;
        pt->u.g.modlen = g.modlen;
        pt->u.g.namelen = g.namelen;
    } else if (is_alpha(c)) {
        while (is_alpha(peek(L)) || is_digit(peek(L)))
            L->i++;
        const char *w = L->s + start;
        size_t wn = L->i - start;
        if (wn == 8 && memcmp(w, "instance", 8) == 0) {
            skip_ws(L);
            if (peek(L) != '(') {
                lerr(L, "expected '(' after instance, found %s", show_char(peek(L), b));
                return NULL;
            }
            L->i++;
            skip_ws(L);
            gname g;
            if (parse_global(L, &g) != PP_OK) return NULL;
            skip_ws(L);
            if (peek(L) != ')') {
                lerr(L, "expected ')' after instance(%s, found %s", g.name, show_char(peek(L), b));
                return NULL;
            }
            L->i++;
            if (!(pt = new_pat(L, PP_PAT_INSTANCE, start))) return NULL;
            pt->u.g.module = g.module;
            pt->u.g.name = g.name;
            pt->u.g.modlen = g.modlen;
            pt->u.g.namelen = g.namelen;
        } else {
            for (size_t k = 0; k < sizeof pattern_words / sizeof pattern_words[0]; k++)
                if (strlen(pattern_words[k].word) == wn &&
                    memcmp(pattern_words[k].word, w, wn) == 0) {
                    if (!(pt = new_pat(L, pattern_words[k].kind, start))) return NULL;
                    break;
                }
            if (!pt) {
                lerr(L, "unknown pattern '%.*s'", (int)wn, w);
                return NULL;
            }
        }
    } else {
        lerr(L, "expected an argument pattern, found %s", show_char(c, b));
        return NULL;
    }
    return set_src(L, pt, start) ? pt : NULL;
}

static pp_pat *make_seq(lx *L, uint8_t kind, pp_pat **v, size_t n, size_t start)
{
    pp_pat *pt = new_pat(L, kind, start);
    if (!pt) return NULL;
    if (n) {
        pt->u.seq.v = pp_arena_alloc(&L->p->arena, n * sizeof *v);
        if (!pt->u.seq.v) {
            nomem(L);
            return NULL;
        }
        memcpy(pt->u.seq.v, v, n * sizeof *v);
    }
    pt->u.seq.n = n;
    return set_src(L, pt, start) ? pt : NULL;
}

/* atom ('|' atom)* */
static pp_pat *parse_alt(lx *L, unsigned depth)
{
    pp_pat *v[MAX_ELEMS];
    size_t n = 0;
    skip_ws(L);
    size_t start = L->i;
    for (;;) {
        if (n == MAX_ELEMS) {
            lerr(L, "more than %d alternatives", MAX_ELEMS);
            return NULL;
        }
        if (!(v[n++] = parse_atom(L, depth))) return NULL;
        skip_ws(L);
        if (peek(L) != '|') break;
        L->i++;
    }
    return n == 1 ? v[0] : make_seq(L, PP_PAT_ALT, v, n, start);
}

/* After '(' or '[': elements separated by ',', an optional trailing ',', and an optional last
 * `*pattern` for the rest. Inside a pattern, parentheses always make a tuple and never group:
 * a one-element tuple must be written (p,) as in Python, so `(int|None)` cannot be misread. The
 * top-level argument list is the exception: `(str)` is one argument. */
static pp_pat *parse_seq(lx *L, uint8_t kind, unsigned depth, bool top, size_t start)
{
    int close = kind == PP_PAT_LIST ? ']' : ')';
    pp_pat *v[MAX_ELEMS];
    size_t n = 0;
    pp_pat *star = NULL;
    bool trailing = false;
    char b[8];
    if (depth > MAX_PATTERN_DEPTH) {
        lerr(L, "argument pattern nested deeper than %d", MAX_PATTERN_DEPTH);
        return NULL;
    }
    skip_ws(L);
    if (peek(L) == close) {
        L->i++;
    } else {
        for (;;) {
            skip_ws(L);
            if (peek(L) == '*') {
                L->i++;
                if (!(star = parse_alt(L, depth))) return NULL;
                skip_ws(L);
                if (peek(L) == ',') {
                    L->i++;
                    skip_ws(L);
                }
                if (peek(L) != close) {
                    lerr(L, "a *pattern must be the last element");
                    return NULL;
                }
                L->i++;
                break;
            }
            if (n == MAX_ELEMS) {
                lerr(L, "more than %d elements in one pattern", MAX_ELEMS);
                return NULL;
            }
            if (!(v[n++] = parse_alt(L, depth))) return NULL;
            skip_ws(L);
            if (peek(L) == ',') {
                L->i++;
                trailing = true;
                skip_ws(L);
                if (peek(L) == close) {
                    L->i++;
                    break;
                }
                trailing = false;
                continue;
            }
            if (peek(L) == close) {
                L->i++;
                break;
            }
            lerr(L, "expected ',' or '%c', found %s", close, show_char(peek(L), b));
            return NULL;
        }
    }
    if (!top && kind == PP_PAT_TUPLE && n == 1 && !star && !trailing) {
        lerr(L, "write (p,) for a one-element tuple: parentheses do not group");
        return NULL;
    }
    pp_pat *pt = make_seq(L, kind, v, n, start);
    if (pt) pt->u.seq.star = star;
    return pt;
}

/* argtuple ('|' argtuple)* */
static pp_pat *parse_constraint(lx *L)
{
    pp_pat *v[MAX_ELEMS];
    size_t n = 0;
    size_t start = L->i;
    char b[8];
    for (;;) {
        skip_ws(L);
        size_t s = L->i;
        if (peek(L) != '(') {
            lerr(L, "expected '(' to start an argument list, found %s", show_char(peek(L), b));
            return NULL;
        }
        if (n == MAX_ELEMS) {
            lerr(L, "more than %d argument lists", MAX_ELEMS);
            return NULL;
        }
        L->i++;
        if (!(v[n++] = parse_seq(L, PP_PAT_TUPLE, 1, true, s))) return NULL;
        skip_ws(L);
        if (peek(L) != '|') break;
        L->i++;
    }
    return n == 1 ? v[0] : make_seq(L, PP_PAT_ALT, v, n, start);
}

/* The fewest fixed arguments any alternative takes, so `-> argN` always has its argument. */
static size_t min_fixed(const pp_pat *c)
{
    if (c->kind != PP_PAT_ALT) return c->u.seq.n;
    size_t m = SIZE_MAX;
    for (size_t i = 0; i < c->u.seq.n; i++)
        if (c->u.seq.v[i]->u.seq.n < m) m = c->u.seq.v[i]->u.seq.n;
    return m;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

/* `argN`, N >= 1, as a 0-based index. */
static bool parse_argn(lx *L, uint32_t *idx)
{
    if (L->n - L->i < 4 || memcmp(L->s + L->i, "arg", 3) != 0 || !is_digit(L->s[L->i + 3]) ||
        L->s[L->i + 3] == '0')
        return false;
    L->i += 3;
    uint32_t v = 0;
    while (is_digit(peek(L))) {
        if (v > 1000) return false;
        v = v * 10 + (uint32_t)(peek(L) - '0');
        L->i++;
    }
    *idx = v - 1;
    return !is_alpha(peek(L));
}

/* `-> self | argN | bytes | latin1(argN)` */
static pp_err parse_result(lx *L, pp_rule *r)
{
    char b[8];
    L->i += 2;
    skip_ws(L);
    size_t s = L->i;
    if (parse_argn(L, &r->resarg)) {
        r->res = PP_RES_ARG;
    } else {
        L->i = s;
        while (is_alpha(peek(L)) || is_digit(peek(L)))
            L->i++;
        const char *w = L->s + s;
        size_t wn = L->i - s;
        if (word_is(w, wn, "self")) {
            r->res = PP_RES_SELF;
        } else if (word_is(w, wn, "bytes")) {
            r->res = PP_RES_BYTES;
        } else if (word_is(w, wn, "latin1")) {
            skip_ws(L);
            if (peek(L) != '(')
                return lerr(L, "expected '(' after latin1, found %s", show_char(peek(L), b));
            L->i++;
            skip_ws(L);
            if (!parse_argn(L, &r->resarg)) return lerr(L, "expected argN inside latin1(...)");
            skip_ws(L);
            if (peek(L) != ')')
                return lerr(L, "expected ')' after latin1(arg%u, found %s", r->resarg + 1,
                            show_char(peek(L), b));
            L->i++;
            r->res = PP_RES_LATIN1;
        } else {
            return lerr(L, "unknown result '%.*s': expected self, argN, bytes or latin1(argN)",
                        (int)wn, w);
        }
    }
    if (r->res == PP_RES_ARG || r->res == PP_RES_LATIN1) {
        if (!r->args)
            return lerr(L, "-> %s needs an argument list to refer to",
                        r->res == PP_RES_ARG ? "argN" : "latin1(argN)");
        if (r->resarg >= min_fixed(r->args))
            return lerr(L, "-> refers to argument %u, but an allowed argument list is shorter",
                        r->resarg + 1);
    }
    return PP_OK;
}

/* ---- directives ---------------------------------------------------------------------------- */

static pp_pentry *get_entry(lx *L, const gname *g)
{
    pp_policy *p = L->p;
    uint64_t h = pp_policy_hash(g->module, g->modlen, g->name, g->namelen);
    pp_pentry *e = (pp_pentry *)pp_policy_entry(p, g->module, g->modlen, g->name, g->namelen);
    if (e) return e;
    if ((p->nentries + 1) * 2 > p->nslots && grow_table(p) != PP_OK) {
        nomem(L);
        return NULL;
    }
    e = pp_arena_zalloc(&p->arena, sizeof *e);
    if (!e) {
        nomem(L);
        return NULL;
    }
    e->module = g->module;
    e->name = g->name;
    e->modlen = g->modlen;
    e->namelen = g->namelen;
    e->hash = h;
    size_t mask = p->nslots - 1;
    size_t i = (size_t)h & mask;
    while (p->slots[i])
        i = (i + 1) & mask;
    p->slots[i] = e;
    p->nentries++;
    return e;
}

static pp_err permission_line(lx *L, unsigned perm, const char *kw)
{
    gname g;
    char b[8];
    pp_err rc = parse_global(L, &g);
    if (rc != PP_OK) return rc;
    int c = peek(L);
    if (c >= 0 && c != ' ' && c != '\t' && c != '#')
        return lerr(L, "unexpected %s after global %s.%s", show_char(c, b), g.module, g.name);
    pp_rule *r = pp_arena_zalloc(&L->p->arena, sizeof *r);
    if (!r) return nomem(L);
    r->origin = L->origin; /* the origin string outlives loading: see load_unit */
    r->line = L->line;
    if (!at_end(L) && peek(L) != '(' && !(L->n - L->i >= 2 && memcmp(L->s + L->i, "->", 2) == 0))
        return lerr(L, "expected an argument list '(...)' or '-> result' after %s.%s, found %s",
                    g.module, g.name, show_char(peek(L), b));
    if (!at_end(L) && peek(L) == '(') {
        if (perm == PP_PERM_REFERENCE)
            return lerr(L, "reference takes no argument list (only call and construct do)");
        if (!(r->args = parse_constraint(L))) return L->rc ? L->rc : PP_E_POLICY;
    }
    if (!at_end(L) && L->n - L->i >= 2 && memcmp(L->s + L->i, "->", 2) == 0) {
        if (perm != PP_PERM_CALL)
            return lerr(L, "%s takes no '-> result': %s", kw,
                        perm == PP_PERM_CONSTRUCT ? "a construction always gives an instance of "
                                                    "the class"
                                                  : "a reference is not called");
        if ((rc = parse_result(L, r)) != PP_OK) return rc;
    }
    if (!at_end(L)) return lerr(L, "unexpected %s after the %s line", show_char(peek(L), b), kw);
    pp_pentry *e = get_entry(L, &g);
    if (!e) return PP_E_NOMEM;
    e->perms |= perm | PP_PERM_REFERENCE;
    if (perm == PP_PERM_CALL) {
        if (e->call_tail)
            e->call_tail->next = r;
        else
            e->call = r;
        e->call_tail = r;
    } else if (perm == PP_PERM_CONSTRUCT) {
        if (e->construct_tail)
            e->construct_tail->next = r;
        else
            e->construct = r;
        e->construct_tail = r;
        if (!r->args) e->construct_any = true;
    }
    return PP_OK;
}

/* ---- units and includes -------------------------------------------------------------------- */

enum { UNIT_BUILTIN, UNIT_FILE, UNIT_TEXT };

typedef struct loader {
    pp_policy *p;
    pp_error *err;
    const char *stack[MAX_INCLUDE_DEPTH + 1]; /* keys of the units being loaded */
    const char *shown[MAX_INCLUDE_DEPTH + 1]; /* their names in messages */
    unsigned depth;
} loader;

typedef struct unit {
    int kind;
    const char *key;    /* "builtin:NAME" or "file:REALPATH"; NULL for text */
    const char *origin; /* arena string used in errors and rule provenance */
    const char *dir;    /* directory for relative includes (files only) */
    char *declared;     /* `policy NAME`, arena */
    bool seen_directive;
} unit;

static pp_err load_text(loader *ld, unit *u, const char *text, size_t len);

static bool is_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 7 && strcmp(s + n - 7, ".policy") == 0);
}

static bool policy_name_ok(const char *s, size_t n)
{
    if (!n || n > MAX_POLICY_NAME || !(is_alpha((unsigned char)s[0]) || is_digit(s[0])))
        return false;
    for (size_t i = 1; i < n; i++) {
        int c = (unsigned char)s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.') return false;
    }
    return true;
}

static const char *builtin_lookup(const char *name)
{
    return pp_policy_builtin_text(name);
}

/* Reads a whole policy file, bounded. *out is pp_malloc'd. */
static pp_err read_file(const char *path, char **out, size_t *outn, char *why, size_t whyn)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whyn, "cannot open policy file %s: %s", path, strerror(errno));
        return PP_E_POLICY;
    }
    size_t cap = 4096, n = 0;
    char *buf = pp_malloc(cap);
    if (!buf) {
        fclose(f);
        return PP_E_NOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap > MAX_TEXT) {
                pp_free(buf);
                fclose(f);
                snprintf(why, whyn, "policy file %s is larger than %zu bytes", path, MAX_TEXT);
                return PP_E_POLICY;
            }
            char *nb = pp_realloc(buf, cap * 2);
            if (!nb) {
                pp_free(buf);
                fclose(f);
                return PP_E_NOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        pp_free(buf);
        snprintf(why, whyn, "cannot read policy file %s", path);
        return PP_E_POLICY;
    }
    if (n > MAX_TEXT) {
        pp_free(buf);
        snprintf(why, whyn, "policy file %s is larger than %zu bytes", path, MAX_TEXT);
        return PP_E_POLICY;
    }
    *out = buf;
    *outn = n;
    return PP_OK;
}

/* Fails with the includer's file:line when there is one, else with the bare reason. */
static pp_err fail_at(loader *ld, lx *from, pp_err code, const char *why)
{
    if (from) return pp_fail(ld->err, code, 0, -1, "%s:%u: %s", from->origin, from->line, why);
    return pp_fail(ld->err, code, 0, -1, "%s", why);
}

static pp_err check_nesting(loader *ld, lx *from, const char *key, const char *display)
{
    char why[256];
    for (unsigned i = 0; i < ld->depth; i++)
        if (ld->stack[i] && strcmp(ld->stack[i], key) == 0) {
            snprintf(why, sizeof why,
                     "include cycle: %s includes %s, which is already being loaded",
                     ld->depth ? ld->shown[ld->depth - 1] : "?", display);
            return fail_at(ld, from, PP_E_POLICY, why);
        }
    if (ld->depth >= MAX_INCLUDE_DEPTH) {
        snprintf(why, sizeof why, "includes nested deeper than %d at %s", MAX_INCLUDE_DEPTH,
                 display);
        return fail_at(ld, from, PP_E_POLICY, why);
    }
    return PP_OK;
}

static pp_err load_builtin(loader *ld, lx *from, const char *name)
{
    char why[256];
    const char *text = builtin_lookup(name);
    if (!text) {
        snprintf(why, sizeof why,
                 "no built-in policy named '%.64s' (include a file with a path containing '/' "
                 "or ending in .policy)",
                 name);
        return fail_at(ld, from, PP_E_POLICY, why);
    }
    char key[96];
    snprintf(key, sizeof key, "builtin:%s", name);
    if (list_has(ld->p->units, ld->p->nunits, key))
        return PP_OK; /* already loaded: includes form a DAG, not a tree */
    pp_err rc = check_nesting(ld, from, key, key);
    if (rc != PP_OK) return rc;
    unit u = {.kind = UNIT_BUILTIN};
    u.key = u.origin = pp_arena_strndup(&ld->p->arena, key, strlen(key));
    if (!u.key) return fail_at(ld, from, PP_E_NOMEM, "out of memory loading the policy");
    return load_text(ld, &u, text, strlen(text));
}

static pp_err load_file(loader *ld, lx *from, const char *path)
{
    char why[512];
    /* The key is the canonical path so two spellings of one file load it once; a spelling
     * realpath cannot resolve fails at open below with the reason. Path buffers are on the
     * heap: this recurses once per include level. */
    char *real = pp_malloc(PATH_MAX);
    if (!real) return fail_at(ld, from, PP_E_NOMEM, "out of memory loading the policy");
    const char *canon = realpath(path, real) ? real : path;
    size_t kn = strlen(canon) + 6;
    char *key = pp_arena_alloc(&ld->p->arena, kn);
    char *origin = pp_arena_strndup(&ld->p->arena, path, strlen(path));
    if (key) snprintf(key, kn, "file:%s", canon);
    pp_free(real);
    if (!key || !origin) return fail_at(ld, from, PP_E_NOMEM, "out of memory loading the policy");
    if (list_has(ld->p->units, ld->p->nunits, key)) return PP_OK;
    pp_err rc = check_nesting(ld, from, key, origin);
    if (rc != PP_OK) return rc;
    char *text;
    size_t len;
    if ((rc = read_file(path, &text, &len, why, sizeof why)) != PP_OK)
        return fail_at(ld, from, rc, rc == PP_E_NOMEM ? "out of memory reading a policy" : why);
    unit u = {.kind = UNIT_FILE, .key = key, .origin = origin};
    const char *slash = strrchr(origin, '/');
    u.dir = slash ? pp_arena_strndup(&ld->p->arena, origin, (size_t)(slash - origin) + 1) : "";
    if (!u.dir) {
        pp_free(text);
        return fail_at(ld, from, PP_E_NOMEM, "out of memory loading the policy");
    }
    rc = load_text(ld, &u, text, len);
    pp_free(text);
    return rc;
}

static pp_err include_line(loader *ld, unit *u, lx *L)
{
    size_t s = L->i;
    while (L->i < L->n && L->s[L->i] != ' ' && L->s[L->i] != '\t' && L->s[L->i] != '#')
        L->i++;
    size_t n = L->i - s;
    if (!n) return lerr(L, "include needs a built-in policy name or a file path");
    if (!at_end(L)) return lerr(L, "include takes one name (paths with spaces are not supported)");
    const char *t = L->s + s;
    bool path_like = memchr(t, '/', n) || (n > 7 && memcmp(t + n - 7, ".policy", 7) == 0);
    if (!path_like) {
        char name[MAX_POLICY_NAME + 1];
        if (n > MAX_POLICY_NAME)
            return lerr(L,
                        "no built-in policy named '%.32s...' (include a file with a path "
                        "containing '/' or ending in .policy)",
                        t);
        memcpy(name, t, n);
        name[n] = 0;
        return load_builtin(ld, L, name);
    }
    /* Built-in policies are self-contained: the binary must not depend on the file system. */
    if (u->kind == UNIT_BUILTIN)
        return lerr(L, "a built-in policy can only include built-in policies");
    const char *dir = t[0] == '/' || !u->dir ? "" : u->dir;
    size_t dn = strlen(dir);
    if (dn + n >= PATH_MAX) return lerr(L, "include path too long");
    char *path = pp_malloc(dn + n + 1);
    if (!path) return nomem(L);
    memcpy(path, dir, dn);
    memcpy(path + dn, t, n);
    path[dn + n] = 0;
    pp_err rc = load_file(ld, L, path);
    pp_free(path);
    return rc;
}

static pp_err directive(loader *ld, unit *u, lx *L)
{
    skip_ws(L);
    if (at_end(L)) return PP_OK;
    size_t s = L->i;
    while (L->i < L->n && L->s[L->i] >= 'a' && L->s[L->i] <= 'z')
        L->i++;
    const char *w = L->s + s;
    size_t wn = L->i - s;
    int c = peek(L);
    if (!wn || (c >= 0 && c != ' ' && c != '\t')) {
        while (L->i < L->n && L->s[L->i] != ' ' && L->s[L->i] != '\t')
            L->i++;
        return lerr(L,
                    "unknown directive '%.*s': expected policy, include, reference, call or "
                    "construct",
                    (int)(L->i - s > 32 ? 32 : L->i - s), w);
    }
    if (at_end(L)) return lerr(L, "'%.*s' needs an argument", (int)wn, w);
    if (word_is(w, wn, "policy")) {
        if (u->declared) return lerr(L, "a file can name its policy only once");
        if (u->seen_directive)
            return lerr(L, "the policy line must come before every other directive");
        u->seen_directive = true;
        size_t a = L->i;
        while (L->i < L->n && L->s[L->i] != ' ' && L->s[L->i] != '\t' && L->s[L->i] != '#')
            L->i++;
        size_t an = L->i - a;
        if (!policy_name_ok(L->s + a, an))
            return lerr(L, "invalid policy name '%.*s': use letters, digits, '_', '-' and '.'",
                        (int)(an > 64 ? 64 : an), L->s + a);
        if (!at_end(L)) return lerr(L, "policy takes one name");
        if (!(u->declared = arena_strndup(L, L->s + a, an))) return PP_E_NOMEM;
        return PP_OK;
    }
    u->seen_directive = true;
    if (word_is(w, wn, "include")) return include_line(ld, u, L);
    if (word_is(w, wn, "reference")) return permission_line(L, PP_PERM_REFERENCE, "reference");
    if (word_is(w, wn, "call")) return permission_line(L, PP_PERM_CALL, "call");
    if (word_is(w, wn, "construct")) return permission_line(L, PP_PERM_CONSTRUCT, "construct");
    return lerr(L,
                "unknown directive '%.*s': expected policy, include, reference, call or "
                "construct",
                (int)wn, w);
}

/* Well-formed UTF-8 without surrogates or overlongs, so str literals compare byte-for-byte with
 * the VM's strings. */
static size_t utf8_bad(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07u;
        } else {
            return i + 1;
        }
        if (n - i <= k) return i + 1;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return i + 1;
            cp = (cp << 6) | (s[i + j] & 0x3fu);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return i + 1;
        i += k + 1;
    }
    return 0;
}

static pp_err record_name(loader *ld, const char *name)
{
    pp_policy *p = ld->p;
    if (list_has(p->names, p->nnames, name)) return PP_OK;
    char *d = pp_arena_strndup(&p->arena, name, strlen(name));
    if (!d || list_add(&p->names, &p->nnames, &p->capnames, d) != PP_OK)
        return pp_fail(ld->err, PP_E_NOMEM, 0, -1, "out of memory loading the policy");
    return PP_OK;
}

/* The name a unit is reported under when it has no `policy` line. */
static void default_name(const unit *u, char *buf, size_t cap)
{
    const char *o = u->origin;
    if (u->kind == UNIT_BUILTIN) {
        snprintf(buf, cap, "%s", o + 8);
        return;
    }
    const char *base = strrchr(o, '/');
    base = base ? base + 1 : o;
    size_t n = strlen(base);
    if (n > 7 && strcmp(base + n - 7, ".policy") == 0) n -= 7;
    snprintf(buf, cap, "%.*s", (int)(n > 200 ? 200 : n), base);
}

static pp_err load_text(loader *ld, unit *u, const char *text, size_t len)
{
    pp_err rc = PP_OK;
    ld->stack[ld->depth] = u->key;
    ld->shown[ld->depth++] = u->origin;
    lx L = {.p = ld->p, .err = ld->err, .origin = u->origin};
    size_t pos = 0;
    while (pos < len && rc == PP_OK) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        L.line++;
        L.s = text + pos;
        L.n = end - pos;
        L.i = 0;
        pos = nl ? end + 1 : len;
        if (L.n && L.s[L.n - 1] == '\r') L.n--;
        if (L.n > MAX_LINE) {
            rc = lerr(&L, "line longer than %d bytes", MAX_LINE);
            break;
        }
        for (size_t i = 0; i < L.n; i++) {
            unsigned char c = (unsigned char)L.s[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                rc = lerr(&L, "control character 0x%02x in column %zu", c, i + 1);
                break;
            }
        }
        size_t bad;
        if (rc == PP_OK && (bad = utf8_bad((const uint8_t *)L.s, L.n)) != 0)
            rc = lerr(&L, "invalid UTF-8 in column %zu", bad);
        if (rc == PP_OK) rc = directive(ld, u, &L);
    }
    ld->depth--;
    if (rc != PP_OK) return rc;
    if (u->key) {
        char *k = (char *)u->key;
        if (list_add(&ld->p->units, &ld->p->nunits, &ld->p->capunits, k) != PP_OK)
            return pp_fail(ld->err, PP_E_NOMEM, 0, -1, "out of memory loading the policy");
    }
    if (u->declared) return record_name(ld, u->declared);
    char name[256];
    default_name(u, name, sizeof name);
    return record_name(ld, name);
}

/* ---- public loading API -------------------------------------------------------------------- */

pp_err pp_policy_add_builtin(pp_policy *p, const char *name, pp_error *err)
{
    if (!p || !name) return pp_fail(err, PP_E_USAGE, 0, -1, "no policy name");
    loader ld = {.p = p, .err = err};
    return load_builtin(&ld, NULL, name);
}

pp_err pp_policy_add(pp_policy *p, const char *name_or_path, pp_error *err)
{
    if (!p || !name_or_path) return pp_fail(err, PP_E_USAGE, 0, -1, "no policy name");
    loader ld = {.p = p, .err = err};
    /* A plain word names a built-in even when a file of that name happens to be in the current
     * directory, so `--policy default` always means the reviewed built-in. Anything with a '/'
     * or a .policy suffix is a file; a plain word that is no built-in is tried as a file. */
    if (!is_path(name_or_path)) {
        if (pp_policy_builtin_text(name_or_path)) return load_builtin(&ld, NULL, name_or_path);
        FILE *f = fopen(name_or_path, "rb");
        if (!f)
            return pp_fail(err, PP_E_POLICY, 0, -1,
                           "no built-in policy and no policy file named '%.64s'", name_or_path);
        fclose(f);
    }
    return load_file(&ld, NULL, name_or_path);
}

pp_err pp_policy_add_text(pp_policy *p, const char *origin, const char *text, size_t len,
                          pp_error *err)
{
    if (!p || (!text && len)) return pp_fail(err, PP_E_USAGE, 0, -1, "no policy text");
    if (!origin) origin = "<text>";
    if (len > MAX_TEXT)
        return pp_fail(err, PP_E_POLICY, 0, -1, "%s: policy text larger than %zu bytes", origin,
                       MAX_TEXT);
    loader ld = {.p = p, .err = err};
    unit u = {.kind = UNIT_TEXT};
    u.origin = pp_arena_strndup(&p->arena, origin, strlen(origin));
    if (!u.origin) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory loading the policy");
    /* Relative includes in text resolve against the directory its origin names, if any. */
    const char *slash = strrchr(u.origin, '/');
    u.dir = slash ? pp_arena_strndup(&p->arena, u.origin, (size_t)(slash - u.origin) + 1) : "";
    if (!u.dir) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory loading the policy");
    return load_text(&ld, &u, text ? text : "", len);
}
