/* `pickleproof explain`: the events of a graph as pseudo-Python, one statement per line.
 *
 * Everything shown can come from the file, so names and strings are escaped
 * (pp_report_put_escaped) and every walk is bounded: nesting by the depth limit, width by a
 * per-statement byte budget and a per-container item cap. The budget is what keeps a DAG of shared
 * tuples (8 references to 8 references to ...) from costing 8^depth. Containers on the path
 * being rendered print as [...] the way Python's repr shows recursion. */
#include "explain.h"

#include "arena.h"
#include "report.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ITEM_CAP 8       /* items shown per container */
#define BYTES_SHOWN 40   /* bytes shown of a bytes/bytearray value */
#define STR_SHOWN 80     /* bytes shown of a str value */
#define BIGINT_SHOWN 32  /* magnitude bytes shown of a huge int */
#define LINE_BUDGET 2048 /* bytes of one statement before values are elided */
#define DEPTH_CAP 512    /* nesting shown, whatever the depth limit */
#define STMT_WIDTH 40    /* comments start at this column of the statement */
#define RULES_PER_LINE 8

#define RED "\x1b[31m"
#define RESET "\x1b[0m"

enum { G_SEEN = 1, G_BARE = 2 };

typedef struct ctx {
    pp_buf *b;
    uint8_t *gflags; /* per node id: G_* for global nodes */
    size_t nids;
    const pp_node **path; /* containers being rendered, outermost first */
    size_t depth, maxdepth;
    size_t stmt_start;
} ctx;

typedef struct fref {
    uint64_t offset;
    size_t i;
} fref;

static void val(ctx *c, const pp_val *v);

static bool over(const ctx *c)
{
    return !pp_buf_ok(c->b) || c->b->n - c->stmt_start > LINE_BUDGET;
}

/* ---- names ------------------------------------------------------------------------------- */

static bool is_ident(const char *s, size_t n)
{
    if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool is_dotted(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (!is_ident(s + start, i - start)) return false;
            start = i + 1;
        }
    }
    return true;
}

/* A bare name like "v12" would read as one of our variables. */
static bool looks_like_var(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'v') return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static bool is_simple(const pp_node *g)
{
    return g->u.glob.module && g->u.glob.name && is_dotted(g->u.glob.module, g->u.glob.modlen) &&
           is_dotted(g->u.glob.name, g->u.glob.namelen);
}

static bool is_bare(const ctx *c, const pp_node *g)
{
    return g->id < c->nids && (c->gflags[g->id] & G_BARE);
}

static int cmp_global_name(const void *a, const void *b)
{
    const pp_node *x = *(const pp_node *const *)a, *y = *(const pp_node *const *)b;
    size_t n = x->u.glob.namelen < y->u.glob.namelen ? x->u.glob.namelen : y->u.glob.namelen;
    int d = n ? memcmp(x->u.glob.name, y->u.glob.name, n) : 0;
    if (d) return d;
    return (x->u.glob.namelen > y->u.glob.namelen) - (x->u.glob.namelen < y->u.glob.namelen);
}

/* A global is written by its bare name ("system") when that name is a plain identifier and no
 * other global in the input has the same name; otherwise as module.name. */
static pp_err classify_globals(ctx *c, const pp_graph *g)
{
    const pp_node **v = NULL;
    size_t n = 0, cap = 0;
    for (const pp_event *ev = g->events; ev; ev = ev->next) {
        const pp_node *node = ev->node;
        if (ev->kind != PP_EV_GLOBAL || !node || node->kind != PP_N_GLOBAL || !node->u.glob.name ||
            node->id >= c->nids || (c->gflags[node->id] & G_SEEN))
            continue;
        c->gflags[node->id] |= G_SEEN;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            const pp_node **nv = pp_realloc(v, nc * sizeof *v);
            if (!nv) {
                pp_free(v);
                return PP_E_NOMEM;
            }
            v = nv;
            cap = nc;
        }
        v[n++] = node;
    }
    if (n) qsort(v, n, sizeof *v, cmp_global_name);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && cmp_global_name(&v[i], &v[j]) == 0)
            j++;
        const pp_node *x = v[i];
        if (j == i + 1 && is_simple(x) && is_ident(x->u.glob.name, x->u.glob.namelen) &&
            !looks_like_var(x->u.glob.name, x->u.glob.namelen))
            c->gflags[x->id] |= G_BARE;
        i = j;
    }
    pp_free(v);
    return PP_OK;
}

/* ---- scalar values ----------------------------------------------------------------------- */

static void str_repr(ctx *c, const uint8_t *s, size_t n)
{
    /* Python's quote choice: single quotes unless the text has ' and no " */
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    size_t k = n;
    if (k > STR_SHOWN) {
        k = STR_SHOWN;
        while (k && (s[k] & 0xc0) == 0x80) /* do not cut a character in half */
            k--;
    }
    pp_buf_putc(c->b, q);
    pp_report_put_escaped(c->b, (const char *)s, k, q);
    pp_buf_putc(c->b, q);
    if (k < n) pp_buf_printf(c->b, "... (%zu bytes)", n);
}

static void bytes_repr(ctx *c, const uint8_t *s, size_t n)
{
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    size_t k = n > BYTES_SHOWN ? BYTES_SHOWN : n;
    pp_buf_putc(c->b, 'b');
    pp_buf_putc(c->b, q);
    for (size_t i = 0; i < k; i++) {
        uint8_t x = s[i];
        if (x == '\\' || x == (uint8_t)q) {
            char e[2] = {'\\', (char)x};
            pp_buf_put(c->b, e, 2);
        } else if (x == '\n') {
            pp_buf_puts(c->b, "\\n");
        } else if (x == '\r') {
            pp_buf_puts(c->b, "\\r");
        } else if (x == '\t') {
            pp_buf_puts(c->b, "\\t");
        } else if (x < 0x20 || x >= 0x7f) {
            pp_buf_printf(c->b, "\\x%02x", x);
        } else {
            pp_buf_putc(c->b, (char)x);
        }
    }
    pp_buf_putc(c->b, q);
    if (k < n) pp_buf_printf(c->b, "... (%zu bytes)", n);
}

/* PP_V_BIGINT: little-endian two's complement. Small values print in decimal; others in hex of
 * the magnitude, which needs no division and shows the size at a glance. */
static void bigint_repr(ctx *c, const uint8_t *s, size_t n)
{
    if (!n) {
        pp_buf_puts(c->b, "0");
        return;
    }
    bool neg = s[n - 1] & 0x80;
    /* The magnitude of a negative x is ~x + 1: bytes below the lowest nonzero one stay 0, that
     * one becomes 256 - b, and the ones above are inverted. No copy needed. */
    size_t low = 0;
    if (neg)
        while (low < n && s[low] == 0)
            low++;
#define MAG(i) (uint8_t)(!neg ? s[i] : (i) < low ? 0 : (i) == low ? (256 - s[i]) : (uint8_t)~s[i])
    size_t top = n;
    while (top > 0 && MAG(top - 1) == 0)
        top--;
    if (top == 0 && neg) {
        /* all zero bytes below a sign bit cannot happen; -0 is 0 */
        pp_buf_puts(c->b, "0");
        return;
    }
    if (top <= 8) {
        uint64_t m = 0;
        for (size_t i = top; i > 0; i--)
            m = (m << 8) | MAG(i - 1);
        pp_buf_printf(c->b, "%s%" PRIu64, neg ? "-" : "", m);
        return;
    }
    pp_buf_puts(c->b, neg ? "-0x" : "0x");
    size_t shown = top > BIGINT_SHOWN ? BIGINT_SHOWN : top;
    pp_buf_printf(c->b, "%x", (unsigned)MAG(top - 1));
    for (size_t i = top - 1; i > top - shown; i--)
        pp_buf_printf(c->b, "%02x", (unsigned)MAG(i - 1));
    if (shown < top) pp_buf_printf(c->b, "... (%zu-byte int)", top);
#undef MAG
}

static void float_repr(ctx *c, double d)
{
    if (isnan(d)) {
        pp_buf_puts(c->b, "nan");
        return;
    }
    if (isinf(d)) {
        pp_buf_puts(c->b, d < 0 ? "-inf" : "inf");
        return;
    }
    /* the shortest form that reads back as the same double, like Python's repr */
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*g", p, d);
        if (strtod(tmp, NULL) == d) break;
    }
    pp_buf_puts(c->b, tmp);
    if (!strpbrk(tmp, ".e")) pp_buf_puts(c->b, ".0");
}

/* ---- nodes ------------------------------------------------------------------------------- */

static void global_ref(ctx *c, const pp_node *g)
{
    if (is_bare(c, g)) {
        pp_report_put_escaped(c->b, g->u.glob.name, g->u.glob.namelen, 0);
    } else if (is_simple(g)) {
        pp_report_put_escaped(c->b, g->u.glob.module, g->u.glob.modlen, 0);
        pp_buf_putc(c->b, '.');
        pp_report_put_escaped(c->b, g->u.glob.name, g->u.glob.namelen, 0);
    } else {
        pp_buf_puts(c->b, "find_class(");
        str_repr(c, (const uint8_t *)(g->u.glob.module ? g->u.glob.module : ""),
                 g->u.glob.module ? g->u.glob.modlen : 0);
        pp_buf_puts(c->b, ", ");
        str_repr(c, (const uint8_t *)(g->u.glob.name ? g->u.glob.name : ""),
                 g->u.glob.name ? g->u.glob.namelen : 0);
        pp_buf_putc(c->b, ')');
    }
}

static bool on_path(const ctx *c, const pp_node *n)
{
    for (size_t i = 0; i < c->depth; i++)
        if (c->path[i] == n) return true;
    return false;
}

static void container(ctx *c, const pp_node *n)
{
    const char *open, *close;
    size_t count = n->u.seq.n;
    switch (n->kind) {
    case PP_N_TUPLE:
        open = "(";
        close = count == 1 ? ",)" : ")";
        break;
    case PP_N_LIST:
        open = "[";
        close = "]";
        break;
    case PP_N_DICT:
        open = "{";
        close = "}";
        count /= 2;
        break;
    case PP_N_SET:
        open = count ? "{" : "set(";
        close = count ? "}" : ")";
        break;
    default: /* PP_N_FROZENSET */
        open = count ? "frozenset({" : "frozenset(";
        close = count ? "})" : ")";
        break;
    }
    pp_buf_puts(c->b, open);
    /* hostile: cycles and sharing; the path check stops the first, the budget the second */
    if (count && (on_path(c, n) || c->depth >= c->maxdepth)) {
        pp_buf_puts(c->b, "...");
        pp_buf_puts(c->b, close);
        return;
    }
    c->path[c->depth++] = n;
    for (size_t i = 0; i < count; i++) {
        if (i) pp_buf_puts(c->b, ", ");
        if (i == ITEM_CAP || over(c)) {
            pp_buf_printf(c->b, "... (%zu items)", count);
            break;
        }
        if (n->kind == PP_N_DICT) {
            val(c, &n->u.seq.v[2 * i]);
            pp_buf_puts(c->b, ": ");
            val(c, &n->u.seq.v[2 * i + 1]);
        } else {
            val(c, &n->u.seq.v[i]);
        }
    }
    c->depth--;
    pp_buf_puts(c->b, close);
}

static void node_ref(ctx *c, const pp_node *n)
{
    if (!n) {
        pp_buf_puts(c->b, "?");
        return;
    }
    switch (n->kind) {
    case PP_N_GLOBAL:
        global_ref(c, n);
        return;
    case PP_N_CALL:
    case PP_N_NEW:
    case PP_N_PERSID:
    case PP_N_EXT:
        pp_buf_printf(c->b, "v%" PRIu32, n->id);
        return;
    case PP_N_BYTEARRAY:
        pp_buf_puts(c->b, "bytearray(");
        bytes_repr(c, n->u.bytes.p, n->u.bytes.n);
        pp_buf_putc(c->b, ')');
        return;
    case PP_N_MEMORYVIEW:
        pp_buf_puts(c->b, "memoryview(");
        if (n->u.view && n->u.view->kind == PP_N_BYTEARRAY)
            node_ref(c, n->u.view);
        else
            pp_buf_puts(c->b, "?");
        pp_buf_putc(c->b, ')');
        return;
    case PP_N_TUPLE:
    case PP_N_LIST:
    case PP_N_DICT:
    case PP_N_SET:
    case PP_N_FROZENSET:
        container(c, n);
        return;
    case PP_N_ARRAY:
        /* the raw bytes a container located; they are never read when scanning */
        pp_buf_printf(c->b, "<array: raw bytes, region %" PRIu64 ">", n->u.array.region);
        return;
    default:
        pp_buf_printf(c->b, "<node kind %u>", n->kind);
        return;
    }
}

static void val(ctx *c, const pp_val *v)
{
    if (over(c)) {
        pp_buf_puts(c->b, "...");
        return;
    }
    switch (v->kind) {
    case PP_V_NONE:
        pp_buf_puts(c->b, "None");
        break;
    case PP_V_BOOL:
        pp_buf_puts(c->b, v->u.i ? "True" : "False");
        break;
    case PP_V_INT:
        pp_buf_printf(c->b, "%" PRId64, v->u.i);
        break;
    case PP_V_BIGINT:
        bigint_repr(c, v->u.s.p, v->u.s.n);
        break;
    case PP_V_FLOAT:
        float_repr(c, v->u.f);
        break;
    case PP_V_STR:
        str_repr(c, v->u.s.p, v->u.s.n);
        break;
    case PP_V_BYTES:
        bytes_repr(c, v->u.s.p, v->u.s.n);
        break;
    case PP_V_NODE:
        node_ref(c, v->u.node);
        break;
    default:
        pp_buf_printf(c->b, "<value kind %u>", v->kind);
        break;
    }
}

static void args(ctx *c, const pp_val *v, size_t n, bool first)
{
    for (size_t i = 0; i < n; i++) {
        if (i || !first) pp_buf_puts(c->b, ", ");
        if (i == ITEM_CAP || over(c)) {
            pp_buf_printf(c->b, "... (%zu arguments)", n);
            return;
        }
        val(c, &v[i]);
    }
}

static void kwargs(ctx *c, const pp_val *kw, size_t nkw, bool first)
{
    for (size_t i = 0; i < nkw; i++) {
        if (i || !first) pp_buf_puts(c->b, ", ");
        if (i == ITEM_CAP || over(c)) {
            pp_buf_printf(c->b, "... (%zu keywords)", nkw);
            return;
        }
        const pp_val *k = &kw[2 * i];
        if (k->kind == PP_V_STR && is_ident((const char *)k->u.s.p, k->u.s.n)) {
            pp_buf_put(c->b, k->u.s.p, k->u.s.n);
            pp_buf_putc(c->b, '=');
        } else {
            /* not a keyword Python could spell: show it as an unpacked dict */
            pp_buf_puts(c->b, "**{");
            val(c, k);
            pp_buf_puts(c->b, ": ");
            val(c, &kw[2 * i + 1]);
            pp_buf_putc(c->b, '}');
            continue;
        }
        val(c, &kw[2 * i + 1]);
    }
}

/* ---- statements -------------------------------------------------------------------------- */

static void stmt_global(ctx *c, const pp_event *ev, pp_buf *note)
{
    const pp_node *g = ev->node;
    if (is_bare(c, g)) {
        pp_buf_puts(c->b, "from ");
        pp_report_put_escaped(c->b, g->u.glob.module, g->u.glob.modlen, 0);
        pp_buf_puts(c->b, " import ");
        pp_report_put_escaped(c->b, g->u.glob.name, g->u.glob.namelen, 0);
    } else if (is_simple(g)) {
        pp_buf_puts(c->b, "import ");
        pp_report_put_escaped(c->b, g->u.glob.module, g->u.glob.modlen, 0);
        pp_buf_puts(c->b, "; ");
        global_ref(c, g);
    } else {
        global_ref(c, g);
    }
    if ((g->flags & PP_NF_RENAMED) && ev->a.kind == PP_V_STR && ev->b.kind == PP_V_STR) {
        pp_buf_puts(note, "written as ");
        pp_report_put_escaped(note, (const char *)ev->a.u.s.p, ev->a.u.s.n, 0);
        pp_buf_putc(note, '.');
        pp_report_put_escaped(note, (const char *)ev->b.u.s.p, ev->b.u.s.n, 0);
    }
}

static void stmt(ctx *c, const pp_event *ev, pp_buf *note)
{
    const pp_node *n = ev->node;
    if (!n) {
        pp_buf_printf(c->b, "pass  # event kind %u without a node", ev->kind);
        return;
    }
    switch (ev->kind) {
    case PP_EV_GLOBAL:
        if (n->kind == PP_N_GLOBAL)
            stmt_global(c, ev, note);
        else
            node_ref(c, n);
        return;
    case PP_EV_CALL:
        pp_buf_printf(c->b, "v%" PRIu32 " = ", n->id);
        if (n->kind != PP_N_CALL) break;
        val(c, &n->u.call.fn);
        pp_buf_putc(c->b, '(');
        args(c, n->u.call.args, n->u.call.nargs, true);
        pp_buf_putc(c->b, ')');
        return;
    case PP_EV_NEW:
        pp_buf_printf(c->b, "v%" PRIu32 " = ", n->id);
        if (n->kind != PP_N_NEW) break;
        val(c, &n->u.call.fn);
        pp_buf_puts(c->b, ".__new__(");
        val(c, &n->u.call.fn);
        args(c, n->u.call.args, n->u.call.nargs, false);
        kwargs(c, n->u.call.kw, n->u.call.nkw, false);
        pp_buf_putc(c->b, ')');
        return;
    case PP_EV_BUILD:
        node_ref(c, n);
        pp_buf_puts(c->b, ".__setstate__(");
        val(c, &ev->a);
        pp_buf_putc(c->b, ')');
        pp_buf_puts(note, "BUILD");
        return;
    case PP_EV_APPEND:
    case PP_EV_EXTEND:
    case PP_EV_ADD:
        node_ref(c, n);
        pp_buf_puts(c->b, ev->kind == PP_EV_APPEND   ? ".append("
                          : ev->kind == PP_EV_EXTEND ? ".extend("
                                                     : ".add(");
        val(c, &ev->a);
        pp_buf_putc(c->b, ')');
        return;
    case PP_EV_SETITEM:
        node_ref(c, n);
        pp_buf_putc(c->b, '[');
        val(c, &ev->a);
        pp_buf_puts(c->b, "] = ");
        val(c, &ev->b);
        return;
    case PP_EV_PERSID:
        pp_buf_printf(c->b, "v%" PRIu32 " = persistent_load(", n->id);
        if (n->kind == PP_N_PERSID) val(c, &n->u.persid.pid);
        pp_buf_putc(c->b, ')');
        return;
    case PP_EV_EXT:
        pp_buf_printf(c->b, "v%" PRIu32 " = find_class(*copyreg._inverted_registry[", n->id);
        if (n->kind == PP_N_EXT) pp_buf_printf(c->b, "%" PRId64, n->u.ext.code);
        pp_buf_puts(c->b, "])");
        return;
    default:
        pp_buf_printf(c->b, "pass  # event kind %u", ev->kind);
        return;
    }
    pp_buf_printf(c->b, "<node kind %u>", n->kind);
}

/* ---- findings ---------------------------------------------------------------------------- */

static int cmp_fref(const void *a, const void *b)
{
    const fref *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static size_t lower_bound(const fref *v, size_t n, uint64_t off)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].offset < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool finding_matches(const pp_finding *f, const pp_event *ev)
{
    if (f->offset != ev->offset) return false;
    if (!f->opcode) return true;
    const char *op = pp_vm_opname(ev->opcode);
    return op && strcmp(op, f->opcode) == 0;
}

typedef struct explainer {
    ctx c;
    const pp_report *r;
    fref *sorted;
    size_t nsorted;
    bool *matched; /* by finding index */
    size_t next;   /* next unmatched candidate in sorted */
    bool error_done;
    bool color;
    pp_buf note;
} explainer;

static void prefix(explainer *x, uint64_t offset)
{
    size_t start = x->c.b->n;
    pp_buf_printf(x->c.b, "@%" PRIu64, offset);
    size_t w = x->c.b->n - start;
    do
        pp_buf_putc(x->c.b, ' ');
    while (++w < 7);
}

static void event_line(explainer *x, const pp_event *ev)
{
    pp_buf *b = x->c.b;
    prefix(x, ev->offset);
    x->c.stmt_start = b->n;
    x->note.n = 0;
    if (x->note.p) x->note.p[0] = 0;
    stmt(&x->c, ev, &x->note);
    size_t nrules = 0;
    size_t k = x->sorted ? lower_bound(x->sorted, x->nsorted, ev->offset) : 0;
    for (; k < x->nsorted && x->sorted[k].offset == ev->offset; k++) {
        const pp_finding *f = &x->r->findings[x->sorted[k].i];
        if (!finding_matches(f, ev)) continue;
        if (nrules == 0) {
            size_t w = b->n - x->c.stmt_start;
            pp_buf_puts(b, w < STMT_WIDTH ? "" : "  ");
            for (; w < STMT_WIDTH; w++)
                pp_buf_putc(b, ' ');
            pp_buf_puts(b, "# ");
            if (x->note.n) {
                pp_buf_put(b, x->note.p, x->note.n);
                pp_buf_puts(b, "  ");
            }
            if (x->color) pp_buf_puts(b, RED);
            pp_buf_puts(b, "!! ");
        } else if (nrules == RULES_PER_LINE) {
            pp_buf_puts(b, ", ...");
            nrules++;
            break;
        } else {
            pp_buf_puts(b, ", ");
        }
        pp_report_put_escaped(b, f->rule, strlen(f->rule), 0);
        nrules++;
    }
    if (nrules && x->color) pp_buf_puts(b, RESET);
    if (!nrules && x->note.n) {
        size_t w = b->n - x->c.stmt_start;
        pp_buf_puts(b, w < STMT_WIDTH ? "" : "  ");
        for (; w < STMT_WIDTH; w++)
            pp_buf_putc(b, ' ');
        pp_buf_puts(b, "# ");
        pp_buf_put(b, x->note.p, x->note.n);
    }
    pp_buf_putc(b, '\n');
}

static void alert_start(explainer *x, uint64_t offset)
{
    prefix(x, offset);
    if (x->color) pp_buf_puts(x->c.b, RED);
    pp_buf_puts(x->c.b, "!! ");
}

static void alert_end(explainer *x)
{
    if (x->color) pp_buf_puts(x->c.b, RESET);
    pp_buf_putc(x->c.b, '\n');
}

/* Findings no statement carries (a truncation, trailing data, a file-level rule) are shown on
 * their own line at their offset, in order. `inclusive` takes offset == limit too. */
static void flush_findings(explainer *x, uint64_t limit, bool inclusive)
{
    for (; x->next < x->nsorted; x->next++) {
        const fref *fr = &x->sorted[x->next];
        if (fr->offset > limit || (fr->offset == limit && !inclusive)) return;
        if (x->matched[fr->i]) continue;
        const pp_finding *f = &x->r->findings[fr->i];
        alert_start(x, f->offset);
        pp_report_put_escaped(x->c.b, f->rule, strlen(f->rule), 0);
        if (f->opcode) {
            pp_buf_puts(x->c.b, " (");
            pp_buf_puts(x->c.b, f->opcode);
            pp_buf_putc(x->c.b, ')');
        }
        pp_buf_puts(x->c.b, ": ");
        if (f->global) {
            pp_report_put_escaped(x->c.b, f->global, strlen(f->global), 0);
            pp_buf_puts(x->c.b, ": ");
        }
        if (f->message) pp_report_put_escaped(x->c.b, f->message, strlen(f->message), 0);
        alert_end(x);
    }
}

static void error_line(explainer *x)
{
    const pp_error *e = &x->r->error;
    x->error_done = true;
    alert_start(x, e->offset);
    pp_buf_puts(x->c.b, pp_errname(e->code));
    if (e->code == PP_E_LIMIT && e->limit >= 0 && e->limit < PP_LIMIT__COUNT)
        pp_buf_printf(x->c.b, " (%s)", pp_limit_name((pp_limit_id)e->limit));
    pp_buf_puts(x->c.b, ": ");
    pp_report_put_escaped(x->c.b, e->msg, strnlen(e->msg, sizeof e->msg), 0);
    alert_end(x);
}

static pp_err prepare_findings(explainer *x, const pp_graph *g)
{
    const pp_report *r = x->r;
    if (!r || !r->nfindings) return PP_OK;
    if (r->nfindings > SIZE_MAX / sizeof(fref)) return PP_E_NOMEM;
    x->sorted = pp_malloc(r->nfindings * sizeof *x->sorted);
    x->matched = pp_calloc(r->nfindings, sizeof *x->matched);
    if (!x->sorted || !x->matched) return PP_E_NOMEM;
    for (size_t i = 0; i < r->nfindings; i++) {
        x->sorted[i].offset = r->findings[i].offset;
        x->sorted[i].i = i;
    }
    x->nsorted = r->nfindings;
    qsort(x->sorted, x->nsorted, sizeof *x->sorted, cmp_fref);
    for (const pp_event *ev = g->events; ev; ev = ev->next) {
        size_t k = lower_bound(x->sorted, x->nsorted, ev->offset);
        for (; k < x->nsorted && x->sorted[k].offset == ev->offset; k++)
            if (finding_matches(&r->findings[x->sorted[k].i], ev))
                x->matched[x->sorted[k].i] = true;
    }
    return PP_OK;
}

/* ---- entry ------------------------------------------------------------------------------- */

pp_err pp_explain(const pp_graph *g, const pp_stream_result *streams, size_t nstreams,
                  const pp_report *r, uint64_t depth_limit, pp_buf *out, int color)
{
    explainer x;
    memset(&x, 0, sizeof x);
    x.r = r;
    x.color = color != 0;
    x.c.b = out;
    x.c.nids = g->next_id;
    x.c.maxdepth = depth_limit < DEPTH_CAP ? (size_t)depth_limit : DEPTH_CAP;
    pp_buf_init(&x.note);
    pp_err err = PP_E_NOMEM;
    x.c.gflags = pp_calloc(x.c.nids ? x.c.nids : 1, 1);
    x.c.path = pp_calloc(x.c.maxdepth ? x.c.maxdepth : 1, sizeof *x.c.path);
    if (!x.c.gflags || !x.c.path) goto done;
    if ((err = classify_globals(&x.c, g)) || (err = prepare_findings(&x, g))) goto done;

    const char *container = r && r->container ? r->container : "pickle";
    bool has_error = r && r->error.code != PP_OK && !pp_report_error_shown(r);
    const pp_event *ev = g->events;
    for (size_t s = 0; s < nstreams; s++) {
        const pp_stream_result *sr = &streams[s];
        pp_buf_printf(out, "# stream %zu: ", s);
        pp_report_put_escaped(out, container, strlen(container), 0);
        if (sr->protocol >= 0)
            pp_buf_printf(out, ", protocol %d", sr->protocol);
        else
            pp_buf_puts(out, ", no PROTO");
        pp_buf_printf(out, ", bytes %" PRIu64 "..%" PRIu64 "%s\n", sr->start, sr->end,
                      sr->stopped ? "" : ", no STOP");
        for (; ev && ev->stream <= s; ev = ev->next) {
            flush_findings(&x, ev->offset, false);
            event_line(&x, ev);
        }
        flush_findings(&x, sr->end, !sr->stopped);
        if (has_error && !x.error_done && r->error.offset >= sr->start &&
            r->error.offset <= sr->end)
            error_line(&x);
        if (sr->stopped) {
            x.c.stmt_start = out->n;
            pp_buf_puts(out, "return ");
            val(&x.c, &sr->root);
            pp_buf_putc(out, '\n');
        }
    }
    if (ev) pp_buf_puts(out, "# events of streams not listed\n");
    for (; ev; ev = ev->next) {
        flush_findings(&x, ev->offset, false);
        event_line(&x, ev);
    }
    flush_findings(&x, UINT64_MAX, true);
    if (has_error && !x.error_done) error_line(&x);
    err = pp_buf_ok(out) && pp_buf_ok(&x.note) ? PP_OK : PP_E_NOMEM;
done:
    pp_buf_free(&x.note);
    pp_free(x.c.gflags);
    pp_free(x.c.path);
    pp_free(x.sorted);
    pp_free(x.matched);
    return err;
}
