/* The pickleproof.toml reader: a small strict TOML subset (see config.h). One pass over the
 * text with a line counter; every error names the file and line. */
#include "config.h"

#include "pickleproof.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (1u << 20) /* a config file is small; a huge one is a mistake */
#define CONFIG_MAX_ITEMS 4096       /* strings in one array */

void pp_config_init(pp_config *c)
{
    memset(c, 0, sizeof *c);
    c->require_signature = -1;
}

static void list_free(pp_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void pp_config_free(pp_config *c)
{
    free(c->path);
    list_free(&c->policies);
    list_free(&c->limits);
    list_free(&c->keys);
    list_free(&c->exclude);
    list_free(&c->include);
    free(c->format);
    free(c->color);
    free(c->sandbox);
    pp_config_init(c);
}

/* ---- the parser ----------------------------------------------------------------------------- */

typedef struct parser {
    const char *origin, *dir;
    const char *p, *end;
    unsigned line;
    char table[64]; /* "" at the top level */
    bool seen_limits;
    char **seen; /* keys set so far, as "table.key" */
    size_t nseen;
    pp_config *c;
} parser;

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%u: ", ps->origin, ps->line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static void skip_blank(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t'))
        ps->p++;
}

static void skip_comment(parser *ps)
{
    if (ps->p < ps->end && *ps->p == '#')
        while (ps->p < ps->end && *ps->p != '\n')
            ps->p++;
}

/* Blank lines and comments between array items. */
static void skip_space_nl(parser *ps)
{
    for (;;) {
        skip_blank(ps);
        skip_comment(ps);
        if (ps->p < ps->end && *ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') ps->p++;
        if (ps->p < ps->end && *ps->p == '\n') {
            ps->p++;
            ps->line++;
            continue;
        }
        return;
    }
}

/* After a value or header: blanks, a comment, then the end of the line. */
static int end_of_line(parser *ps)
{
    skip_blank(ps);
    skip_comment(ps);
    if (ps->p < ps->end && *ps->p == '\r' && ps->p + 1 < ps->end && ps->p[1] == '\n') ps->p++;
    if (ps->p == ps->end) return 0;
    if (*ps->p != '\n') return fail(ps, "unexpected '%c' after the value", *ps->p);
    ps->p++;
    ps->line++;
    return 0;
}

static bool bare_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

static int parse_key(parser *ps, char *out, size_t cap)
{
    size_t n = 0;
    while (ps->p < ps->end && bare_char(*ps->p)) {
        if (n + 1 >= cap) return fail(ps, "key too long");
        out[n++] = *ps->p++;
    }
    out[n] = 0;
    if (!n) return fail(ps, "expected a key");
    return 0;
}

static void put_utf8(char *o, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xc0 | (cp >> 6));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | (cp >> 12));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*n)++] = (char)(0xf0 | (cp >> 18));
        o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* A basic or literal string on one line; *out is malloc'd. */
static int parse_string(parser *ps, char **out)
{
    char q = *ps->p++;
    const char *start = ps->p;
    /* the decoded string is never longer than the source */
    size_t cap = (size_t)(ps->end - start) + 1, n = 0;
    char *o = malloc(cap);
    if (!o) return fail(ps, "out of memory");
    for (;;) {
        if (ps->p == ps->end || *ps->p == '\n') {
            free(o);
            return fail(ps, "unterminated string");
        }
        char ch = *ps->p++;
        if (ch == q) break;
        if ((unsigned char)ch < 0x20 && ch != '\t') {
            free(o);
            return fail(ps, "control character in a string");
        }
        if (ch != '\\' || q == '\'') {
            o[n++] = ch;
            continue;
        }
        if (ps->p == ps->end) {
            free(o);
            return fail(ps, "unterminated string");
        }
        char e = *ps->p++;
        switch (e) {
        case '"':
            o[n++] = '"';
            break;
        case '\\':
            o[n++] = '\\';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 'u': {
            uint32_t cp = 0;
            for (int i = 0; i < 4; i++) {
                char h = ps->p < ps->end ? *ps->p++ : 0;
                int v = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (v < 0) {
                    free(o);
                    return fail(ps, "bad \\u escape");
                }
                cp = cp << 4 | (uint32_t)v;
            }
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
                free(o);
                return fail(ps, "\\u%04x is not allowed in a string", (unsigned)cp);
            }
            /* 6 source bytes become at most 3 */
            put_utf8(o, &n, cp);
            break;
        }
        default:
            free(o);
            return fail(ps, "unknown escape \\%c", e);
        }
    }
    o[n] = 0;
    *out = o;
    return 0;
}

typedef enum vkind { V_STR, V_INT, V_BOOL, V_ARRAY } vkind;

typedef struct value {
    vkind kind;
    char *s;
    long long i;
    bool b;
    char **items;
    size_t nitems;
} value;

static void value_free(value *v)
{
    free(v->s);
    for (size_t i = 0; i < v->nitems; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

static const char *kind_name(vkind k)
{
    return k == V_STR    ? "a string"
           : k == V_INT  ? "an integer"
           : k == V_BOOL ? "a boolean"
                         : "an array";
}

static int parse_value(parser *ps, value *v)
{
    memset(v, 0, sizeof *v);
    if (ps->p == ps->end || *ps->p == '\n') return fail(ps, "missing value");
    char ch = *ps->p;
    if (ch == '"' || ch == '\'') {
        v->kind = V_STR;
        return parse_string(ps, &v->s);
    }
    if (ch == '[') {
        ps->p++;
        v->kind = V_ARRAY;
        for (;;) {
            skip_space_nl(ps);
            if (ps->p == ps->end) return fail(ps, "unterminated array");
            if (*ps->p == ']') {
                ps->p++;
                return 0;
            }
            if (*ps->p != '"' && *ps->p != '\'') return fail(ps, "arrays hold strings only");
            if (v->nitems >= CONFIG_MAX_ITEMS)
                return fail(ps, "more than %d items", CONFIG_MAX_ITEMS);
            char **ni = realloc(v->items, (v->nitems + 1) * sizeof *ni);
            if (!ni) return fail(ps, "out of memory");
            v->items = ni;
            if (parse_string(ps, &v->items[v->nitems])) return -1;
            v->nitems++;
            skip_space_nl(ps);
            if (ps->p == ps->end) return fail(ps, "unterminated array");
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == ']') continue;
            return fail(ps, "expected ',' or ']' in an array");
        }
    }
    const char *s = ps->p;
    while (ps->p < ps->end && (bare_char(*ps->p) || *ps->p == '+'))
        ps->p++;
    size_t n = (size_t)(ps->p - s);
    if (n == 4 && memcmp(s, "true", 4) == 0) {
        v->kind = V_BOOL;
        v->b = true;
        return 0;
    }
    if (n == 5 && memcmp(s, "false", 5) == 0) {
        v->kind = V_BOOL;
        return 0;
    }
    /* decimal integers, '_' only between digits, no leading zeros (TOML) */
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n) return fail(ps, "expected a value (string, integer, true/false or array)");
    if (s[i] == '0' && n - i > 1) return fail(ps, "leading zeros are not allowed");
    long long val = 0;
    for (; i < n; i++) {
        if (s[i] == '_' && i > 0 && i + 1 < n && s[i - 1] >= '0' && s[i - 1] <= '9' &&
            s[i + 1] >= '0' && s[i + 1] <= '9')
            continue;
        if (s[i] < '0' || s[i] > '9')
            return fail(ps, "expected a value (string, integer, true/false or array), got '%.*s'",
                        (int)(n > 40 ? 40 : n), s);
        if (val > (INT64_MAX - (s[i] - '0')) / 10) return fail(ps, "integer out of range");
        val = val * 10 + (s[i] - '0');
    }
    v->kind = V_INT;
    v->i = neg ? -val : val;
    return 0;
}

static int want(parser *ps, const char *key, const value *v, vkind k)
{
    if (v->kind != k)
        return fail(ps, "%s must be %s, not %s", key, kind_name(k), kind_name(v->kind));
    return 0;
}

/* Relative paths in the file mean paths next to the file. */
static char *resolve(parser *ps, const char *p)
{
    if (p[0] == '/' || !ps->dir || !ps->dir[0] || strcmp(ps->dir, ".") == 0) return strdup(p);
    size_t dn = strlen(ps->dir), pn = strlen(p);
    char *o = malloc(dn + pn + 2);
    if (!o) return NULL;
    memcpy(o, ps->dir, dn);
    o[dn] = '/';
    memcpy(o + dn + 1, p, pn + 1);
    return o;
}

static int take_list(parser *ps, const char *key, value *v, pp_strlist *l, bool paths,
                     bool policy_names)
{
    if (want(ps, key, v, V_ARRAY)) return -1;
    l->v = calloc(v->nitems ? v->nitems : 1, sizeof *l->v);
    if (!l->v) return fail(ps, "out of memory");
    l->given = true;
    for (size_t i = 0; i < v->nitems; i++) {
        const char *it = v->items[i];
        if (!it[0]) return fail(ps, "%s: empty string", key);
        bool file = paths && !(policy_names && pp_policy_builtin_text(it));
        l->v[i] = file ? resolve(ps, it) : strdup(it);
        if (!l->v[i]) return fail(ps, "out of memory");
        l->n++;
    }
    return 0;
}

static int take_choice(parser *ps, const char *key, value *v, char **out,
                       const char *const *choices)
{
    if (want(ps, key, v, V_STR)) return -1;
    for (const char *const *c = choices; *c; c++)
        if (strcmp(v->s, *c) == 0) {
            *out = v->s;
            v->s = NULL;
            return 0;
        }
    return fail(ps, "%s: unknown value \"%s\"", key, v->s);
}

static int set_key(parser *ps, const char *key, value *v)
{
    pp_config *c = ps->c;
    if (strcmp(ps->table, "limits") == 0) {
        char a[256];
        if (v->kind == V_INT) {
            if (v->i < 0) return fail(ps, "limit %s: negative", key);
            snprintf(a, sizeof a, "%s=%lld", key, v->i);
        } else if (v->kind == V_STR) {
            snprintf(a, sizeof a, "%s=%s", key, v->s);
        } else {
            return fail(ps, "limit %s must be an integer or a string like \"512M\"", key);
        }
        pp_limits scratch;
        pp_limits_default(&scratch);
        if (pp_limits_set(&scratch, a) != PP_OK)
            return fail(ps, "unknown limit or bad value: %s", a);
        char **nv = realloc(c->limits.v, (c->limits.n + 1) * sizeof *nv);
        if (!nv) return fail(ps, "out of memory");
        c->limits.v = nv;
        if (!(nv[c->limits.n] = strdup(a))) return fail(ps, "out of memory");
        c->limits.n++;
        c->limits.given = true;
        return 0;
    }
    static const char *const formats[] = {"text", "json", "jsonl", "sarif", NULL};
    static const char *const colors[] = {"auto", "always", "never", NULL};
    static const char *const sandboxes[] = {"require", "auto", "process", "off", NULL};
    if (strcmp(key, "policies") == 0) return take_list(ps, key, v, &c->policies, true, true);
    if (strcmp(key, "keys") == 0) return take_list(ps, key, v, &c->keys, true, false);
    if (strcmp(key, "exclude") == 0) return take_list(ps, key, v, &c->exclude, false, false);
    if (strcmp(key, "include") == 0) return take_list(ps, key, v, &c->include, false, false);
    if (strcmp(key, "require-signature") == 0) {
        if (want(ps, key, v, V_BOOL)) return -1;
        c->require_signature = v->b;
        return 0;
    }
    if (strcmp(key, "jobs") == 0) {
        if (want(ps, key, v, V_INT)) return -1;
        if (v->i < 1 || v->i > 256) return fail(ps, "jobs must be between 1 and 256");
        c->jobs = (long)v->i;
        return 0;
    }
    if (strcmp(key, "format") == 0) return take_choice(ps, key, v, &c->format, formats);
    if (strcmp(key, "color") == 0) return take_choice(ps, key, v, &c->color, colors);
    if (strcmp(key, "sandbox") == 0) return take_choice(ps, key, v, &c->sandbox, sandboxes);
    return fail(ps,
                "unknown key \"%s\" (policies, keys, require-signature, exclude, include, "
                "jobs, format, color, sandbox, [limits])",
                key);
}

static int seen_before(parser *ps, const char *key)
{
    char full[128];
    snprintf(full, sizeof full, "%s.%s", ps->table, key);
    for (size_t i = 0; i < ps->nseen; i++)
        if (strcmp(ps->seen[i], full) == 0) return fail(ps, "duplicate key \"%s\"", key);
    char **ns = realloc(ps->seen, (ps->nseen + 1) * sizeof *ns);
    if (!ns) return fail(ps, "out of memory");
    ps->seen = ns;
    if (!(ns[ps->nseen] = strdup(full))) return fail(ps, "out of memory");
    ps->nseen++;
    return 0;
}

static int parse_all(parser *ps)
{
    for (;;) {
        skip_space_nl(ps);
        if (ps->p == ps->end) return 0;
        char key[64];
        if (*ps->p == '[') {
            ps->p++;
            skip_blank(ps);
            if (parse_key(ps, key, sizeof key)) return -1;
            skip_blank(ps);
            if (ps->p == ps->end || *ps->p != ']') return fail(ps, "expected ']'");
            ps->p++;
            if (strcmp(key, "limits") != 0)
                return fail(ps, "unknown table [%s] (only [limits])", key);
            if (ps->seen_limits) return fail(ps, "duplicate table [limits]");
            ps->seen_limits = true;
            snprintf(ps->table, sizeof ps->table, "%s", key);
            if (end_of_line(ps)) return -1;
            continue;
        }
        if (parse_key(ps, key, sizeof key)) return -1;
        skip_blank(ps);
        if (ps->p == ps->end || *ps->p != '=') return fail(ps, "expected '=' after %s", key);
        ps->p++;
        skip_blank(ps);
        unsigned line = ps->line;
        value v;
        int rc = parse_value(ps, &v);
        if (!rc) {
            unsigned after = ps->line;
            ps->line = line; /* errors about the key name the line it is on */
            rc = seen_before(ps, key) || set_key(ps, key, &v);
            ps->line = after;
        }
        value_free(&v);
        if (rc || end_of_line(ps)) return -1;
    }
}

int pp_config_parse(const char *origin, const char *dir, const char *text, size_t len, pp_config *c)
{
    parser ps = {.origin = origin, .dir = dir, .p = text, .end = text + len, .line = 1, .c = c};
    if (memchr(text, 0, len)) return fail(&ps, "NUL byte in the file");
    /* a UTF-8 byte order mark is tolerated, as TOML readers do */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) ps.p += 3;
    int rc = parse_all(&ps);
    for (size_t i = 0; i < ps.nseen; i++)
        free(ps.seen[i]);
    free(ps.seen);
    return rc;
}

int pp_config_load(const char *path, pp_config *c)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "pickleproof: config %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || n > CONFIG_MAX_BYTES) {
        fprintf(stderr, "%s:1: %s\n", path,
                !buf  ? "out of memory"
                : err ? "cannot read the file"
                      : "larger than 1 MiB");
        free(buf);
        return -1;
    }
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) *slash = 0;
    int rc = dir ? pp_config_parse(path, slash ? (dir[0] ? dir : "/") : ".", buf, n, c) : -1;
    free(dir);
    free(buf);
    if (rc == 0 && !(c->path = strdup(path))) rc = -1;
    return rc;
}

static bool exists(const char *dir, const char *name, bool want_reg)
{
    char p[4096];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", strcmp(dir, "/") ? dir : "", name) >= sizeof p)
        return false;
    struct stat sb;
    return stat(p, &sb) == 0 && (!want_reg || S_ISREG(sb.st_mode));
}

char *pp_config_discover(void)
{
    char dir[4096];
    if (!getcwd(dir, sizeof dir)) return NULL;
    for (;;) {
        if (exists(dir, "pickleproof.toml", true)) {
            char p[4096 + 20];
            snprintf(p, sizeof p, "%s/pickleproof.toml", strcmp(dir, "/") ? dir : "");
            return strdup(p);
        }
        /* the top of a checkout is as far as a project's settings reach */
        if (exists(dir, ".git", false) || strcmp(dir, "/") == 0) return NULL;
        char *s = strrchr(dir, '/');
        if (!s) return NULL;
        if (s == dir)
            dir[1] = 0;
        else
            *s = 0;
    }
}
