/* Judging a VM graph against a policy: one pass over the events in stream order.
 *
 * Rules (stable ids, all critical):
 *   global-not-allowed     a find_class lookup of a name the policy does not list
 *   call-not-allowed       REDUCE of a global without `call`, or of anything but a global;
 *                          INST/OBJ with arguments of a class without `construct`
 *   construct-not-allowed  NEWOBJ/NEWOBJ_EX/INST/OBJ of anything but a `construct` global
 *   argument-not-allowed   a permitted call or construction whose arguments fail its pattern
 *   build-not-allowed      BUILD on a global, a persistent id, an extension object, or an
 *                          object not known to be an instance of a `construct` class
 *   dunder-state           BUILD state (or slot state) with a "__x__" key, a key that is an
 *                          object, or a state whose keys cannot be seen
 *   mutation-not-allowed   APPEND/APPENDS/SETITEM(S)/ADDITEMS method calls on anything but an
 *                          instance of a `construct` class
 *   persistent-id          PERSID/BINPERSID (unless a container hook accepts it)
 *   extension-code         EXT1/EXT2/EXT4
 *
 * "Instance of class C" is only ever known from the graph: a permitted NEW/INST/OBJ of C, or a
 * permitted call whose rule says `-> self` or `-> argN`. Results of the checks on each node are
 * kept in a side table keyed by node address (the graph is read-only here), so every node is
 * judged once and the pass stays linear. */
#include "policy_int.h"

#include "report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SEV "critical"
#define MEMO_MIN 16   /* sequences longer than this have their star-pattern results memoized */
#define NAME_SHOW 160 /* longest name or string quoted in a message */

/* ---- side tables ------------------------------------------------------------------------ */

enum {
    F_GLOBAL_SEEN = 1u << 0, /* global: looked up and recorded in the report */
    F_OK = 1u << 1,          /* CALL/NEW: creation was permitted; val is the rule */
    F_DICT_DONE = 1u << 2,   /* dict: keys scanned for dunder names */
    F_DICT_BAD = 1u << 3,    /* dict: aux is the offending key's index */
    F_LATIN1_DONE = 1u << 4, /* latin1 call: aux is 1 when its str argument encodes */
};

typedef struct nslot {
    const void *key;
    const void *val;
    uint32_t flags;
    size_t aux;
} nslot;

typedef struct mslot {
    const void *seq;
    const pp_pat *pat;
    int result; /* 0 empty, 1 no, 2 yes */
} mslot;

typedef struct ck {
    const pp_policy *p;
    pp_report *r;
    const char *const *streams;
    size_t nstreams;
    const pp_policy_hooks *hooks;
    uint64_t depth; /* nesting-depth limit */
    nslot *tab;
    size_t tcap, tn;
    mslot *memo;
    size_t mcap, mn;
    char *nb[2]; /* "module.qualname" buffers for finding globals */
    size_t nbcap[2];
    bool nomem;
} ck;

static size_t ptr_hash(const void *a, const void *b)
{
    uint64_t h = (uint64_t)(uintptr_t)a * 0x9e3779b97f4a7c15u;
    h ^= (uint64_t)(uintptr_t)b * 0xc2b2ae3d27d4eb4fu;
    return (size_t)(h ^ (h >> 29));
}

/* The slot for a node, created empty. NULL only when out of memory. */
static nslot *slot(ck *c, const void *key)
{
    if ((c->tn + 1) * 2 > c->tcap) {
        size_t ncap = c->tcap ? c->tcap * 2 : 256;
        nslot *t = pp_calloc(ncap, sizeof *t);
        if (!t) {
            c->nomem = true;
            return NULL;
        }
        for (size_t i = 0; i < c->tcap; i++) {
            if (!c->tab[i].key) continue;
            size_t j = ptr_hash(c->tab[i].key, NULL) & (ncap - 1);
            while (t[j].key)
                j = (j + 1) & (ncap - 1);
            t[j] = c->tab[i];
        }
        pp_free(c->tab);
        c->tab = t;
        c->tcap = ncap;
    }
    size_t mask = c->tcap - 1;
    for (size_t i = ptr_hash(key, NULL) & mask;; i = (i + 1) & mask) {
        if (c->tab[i].key == key) return &c->tab[i];
        if (!c->tab[i].key) {
            c->tab[i].key = key;
            c->tn++;
            return &c->tab[i];
        }
    }
}

static const nslot *find(const ck *c, const void *key)
{
    if (!c->tcap) return NULL;
    size_t mask = c->tcap - 1;
    for (size_t i = ptr_hash(key, NULL) & mask;; i = (i + 1) & mask) {
        if (c->tab[i].key == key) return &c->tab[i];
        if (!c->tab[i].key) return NULL;
    }
}

static mslot *memo_slot(ck *c, const void *seq, const pp_pat *pat)
{
    if ((c->mn + 1) * 2 > c->mcap) {
        size_t ncap = c->mcap ? c->mcap * 2 : 64;
        mslot *t = pp_calloc(ncap, sizeof *t);
        if (!t) {
            c->nomem = true;
            return NULL;
        }
        for (size_t i = 0; i < c->mcap; i++) {
            if (!c->memo[i].result) continue;
            size_t j = ptr_hash(c->memo[i].seq, c->memo[i].pat) & (ncap - 1);
            while (t[j].result)
                j = (j + 1) & (ncap - 1);
            t[j] = c->memo[i];
        }
        pp_free(c->memo);
        c->memo = t;
        c->mcap = ncap;
    }
    size_t mask = c->mcap - 1;
    for (size_t i = ptr_hash(seq, pat) & mask;; i = (i + 1) & mask) {
        mslot *m = &c->memo[i];
        if (!m->result || (m->seq == seq && m->pat == pat)) return m;
    }
}

/* ---- names and descriptions ---------------------------------------------------------------- */

/* "module.qualname" of a global node, NUL-terminated in buffer k (0 or 1). */
static const char *gname(ck *c, int k, const pp_node *g)
{
    size_t need = (size_t)g->u.glob.modlen + g->u.glob.namelen + 2;
    if (need > c->nbcap[k]) {
        char *b = pp_realloc(c->nb[k], need);
        if (!b) {
            c->nomem = true;
            return "?";
        }
        c->nb[k] = b;
        c->nbcap[k] = need;
    }
    char *b = c->nb[k];
    memcpy(b, g->u.glob.module, g->u.glob.modlen);
    b[g->u.glob.modlen] = '.';
    memcpy(b + g->u.glob.modlen + 1, g->u.glob.name, g->u.glob.namelen);
    b[need - 1] = 0;
    return b;
}

/* Appends printf output to a fixed buffer, truncating. A NULL buffer takes nothing, so checks
 * can run once without composing a message. */
static void cat(char *b, size_t cap, const char *fmt, ...) PP_PRINTF(3, 4);
static void cat(char *b, size_t cap, const char *fmt, ...)
{
    if (!b || !cap) return;
    size_t n = strlen(b);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, cap - n, fmt, ap);
    va_end(ap);
}

/* Name bytes from the stream, at most NAME_SHOW of them.
 * hostile: control bytes would reach terminals through text reports; they are escaped. */
static void cat_name(char *b, size_t cap, const char *s, size_t n)
{
    if (!b) return;
    size_t shown = n > NAME_SHOW ? NAME_SHOW : n;
    for (size_t i = 0; i < shown; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            cat(b, cap, "\\x%02x", ch);
        else
            cat(b, cap, "%c", ch);
    }
    if (n > shown) cat(b, cap, "...");
}

static void cat_global(char *b, size_t cap, const pp_node *g)
{
    cat_name(b, cap, g->u.glob.module, g->u.glob.modlen);
    cat(b, cap, ".");
    cat_name(b, cap, g->u.glob.name, g->u.glob.namelen);
}

/* A str or bytes payload, quoted, non-printables escaped, at most 32 bytes shown. */
static void cat_quoted(char *b, size_t cap, const uint8_t *s, size_t n, bool bytes)
{
    if (!b) return;
    cat(b, cap, "%s'", bytes ? "b" : "");
    size_t shown = n > 32 ? 32 : n;
    for (size_t i = 0; i < shown; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' && s[i] != '\\')
            cat(b, cap, "%c", s[i]);
        else
            cat(b, cap, "\\x%02x", s[i]);
    }
    cat(b, cap, "'%s", n > shown ? "..." : "");
}

static void cat_node(char *b, size_t cap, const pp_node *n)
{
    if (!b) return;
    switch (n->kind) {
    case PP_N_TUPLE:
        cat(b, cap, "a tuple of %zu", n->u.seq.n);
        break;
    case PP_N_LIST:
        cat(b, cap, "a list of %zu", n->u.seq.n);
        break;
    case PP_N_DICT:
        cat(b, cap, "a dict of %zu items", n->u.seq.n / 2);
        break;
    case PP_N_SET:
        cat(b, cap, "a set of %zu", n->u.seq.n);
        break;
    case PP_N_FROZENSET:
        cat(b, cap, "a frozenset of %zu", n->u.seq.n);
        break;
    case PP_N_BYTEARRAY:
        cat(b, cap, "a bytearray of %zu bytes", n->u.bytes.n);
        break;
    case PP_N_MEMORYVIEW:
        cat(b, cap, "a memoryview");
        break;
    case PP_N_GLOBAL:
        cat(b, cap, "global ");
        cat_global(b, cap, n);
        break;
    case PP_N_CALL:
    case PP_N_NEW: {
        const pp_val *fn = &n->u.call.fn;
        cat(b, cap, n->kind == PP_N_CALL ? "the result of calling " : "a new instance of ");
        if (pp_val_is(fn, PP_N_GLOBAL))
            cat_global(b, cap, fn->u.node);
        else
            cat(b, cap, "an object that is not a global");
        break;
    }
    case PP_N_PERSID:
        cat(b, cap, "a persistent id object");
        break;
    case PP_N_EXT:
        cat(b, cap, "an extension code object");
        break;
    default:
        cat(b, cap, "an unknown object");
        break;
    }
}

static void cat_val(char *b, size_t cap, const pp_val *v)
{
    switch (v->kind) {
    case PP_V_NONE:
        cat(b, cap, "None");
        break;
    case PP_V_BOOL:
        cat(b, cap, "%s", v->u.i ? "True" : "False");
        break;
    case PP_V_INT:
        cat(b, cap, "int %" PRId64, v->u.i);
        break;
    case PP_V_BIGINT:
        cat(b, cap, "an int of %zu bytes", v->u.s.n);
        break;
    case PP_V_FLOAT:
        cat(b, cap, "float %g", v->u.f);
        break;
    case PP_V_STR:
        cat(b, cap, "str ");
        cat_quoted(b, cap, v->u.s.p, v->u.s.n, false);
        break;
    case PP_V_BYTES:
        cat(b, cap, "bytes ");
        cat_quoted(b, cap, v->u.s.p, v->u.s.n, true);
        break;
    case PP_V_NODE:
        if (v->u.node)
            cat_node(b, cap, v->u.node);
        else
            cat(b, cap, "a missing object");
        break;
    default:
        cat(b, cap, "an unknown value");
        break;
    }
}

static const char *opname(int op)
{
    const char *s = pp_vm_opname(op);
    return s ? s : "opcode";
}

static const char *stream_of(const ck *c, const pp_event *ev)
{
    return c->streams && ev->stream < c->nstreams ? c->streams[ev->stream] : NULL;
}

static pp_err finding(ck *c, const pp_event *ev, const char *rule, const char *global,
                      const char *msg)
{
    return pp_report_add_finding(c->r, rule, SEV, global, ev->opcode, ev->offset, stream_of(c, ev),
                                 "%s", msg);
}

/* ---- what the graph tells us about nodes ----------------------------------------------------- */

static const pp_pentry *entry_of(ck *c, const pp_node *g)
{
    nslot *s = slot(c, g);
    if (!s) return NULL;
    if (!(s->flags & F_GLOBAL_SEEN)) {
        s->flags |= F_GLOBAL_SEEN;
        s->val = pp_policy_entry(c->p, g->u.glob.module, g->u.glob.modlen, g->u.glob.name,
                                 g->u.glob.namelen);
        if (pp_report_add_global(c->r, g->u.glob.module, g->u.glob.modlen, g->u.glob.name,
                                 g->u.glob.namelen) != PP_OK)
            c->nomem = true;
    }
    return s->val;
}

static unsigned perms_of(ck *c, const pp_node *g)
{
    const pp_pentry *e = entry_of(c, g);
    return e ? e->perms : 0;
}

static bool is_inst_op(const pp_node *n)
{
    return n->opcode == 'i' || n->opcode == 'o';
}

/* The global class an object is known to be an instance of, or NULL. Only permitted creations
 * count: a flagged call's result is nothing we can vouch for. */
static const pp_node *instance_class(const ck *c, const pp_node *n)
{
    if (n->kind != PP_N_CALL && n->kind != PP_N_NEW) return NULL;
    const nslot *s = find(c, n);
    if (!s || !(s->flags & F_OK)) return NULL;
    const pp_val *fn = &n->u.call.fn;
    if (n->kind == PP_N_NEW || is_inst_op(n)) return pp_val_is(fn, PP_N_GLOBAL) ? fn->u.node : NULL;
    const pp_rule *r = s->val;
    if (!r) return NULL;
    if (r->res == PP_RES_SELF) return pp_val_is(fn, PP_N_GLOBAL) ? fn->u.node : NULL;
    if (r->res == PP_RES_ARG && r->resarg < n->u.call.nargs &&
        pp_val_is(&n->u.call.args[r->resarg], PP_N_GLOBAL))
        return n->u.call.args[r->resarg].u.node;
    return NULL;
}

/* The permitted rule of a CALL node whose result is bytes, or NULL. */
static const pp_rule *bytes_rule(const ck *c, const pp_val *v)
{
    if (!pp_val_is(v, PP_N_CALL)) return NULL;
    const nslot *s = find(c, v->u.node);
    const pp_rule *r = s && (s->flags & F_OK) ? s->val : NULL;
    return r && (r->res == PP_RES_BYTES || r->res == PP_RES_LATIN1) ? r : NULL;
}

/* UTF-8 str whose code points are all < 256, as str.encode('latin-1') needs. Strings from the
 * VM are valid UTF-8, so a lead byte C2/C3 is followed by its continuation byte. */
static bool latin1_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) continue;
        if ((s[i] != 0xc2 && s[i] != 0xc3) || i + 1 >= n || (s[i + 1] & 0xc0) != 0x80) return false;
        i++;
    }
    return true;
}

static bool latin1_equal(const uint8_t *s, size_t n, const uint8_t *lit, size_t litn)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++, k++) {
        unsigned cp = s[i];
        if (cp >= 0x80) {
            if (i + 1 >= n) return false;
            cp = ((cp & 0x1fu) << 6) | (s[i + 1] & 0x3fu);
            i++;
        }
        if (k >= litn || lit[k] != cp) return false;
    }
    return k == litn;
}

/* Does v hold bytes (as a value or a permitted bytes-producing call)? If lit is set, also
 * compares the content, which must then be known. */
static bool bytes_match(ck *c, const pp_val *v, const uint8_t *lit, size_t litn, bool want_lit)
{
    if (v->kind == PP_V_BYTES)
        return !want_lit || (v->u.s.n == litn && memcmp(v->u.s.p, lit, litn) == 0);
    const pp_rule *r = bytes_rule(c, v);
    if (!r) return false;
    if (r->res == PP_RES_BYTES) return !want_lit;
    const pp_node *n = v->u.node;
    if (r->resarg >= n->u.call.nargs || n->u.call.args[r->resarg].kind != PP_V_STR) return false;
    const pp_val *a = &n->u.call.args[r->resarg];
    /* The encodability scan is cached: one payload may be referenced by many calls. */
    nslot *s = slot(c, n);
    if (!s) return false;
    if (!(s->flags & F_LATIN1_DONE)) {
        s->flags |= F_LATIN1_DONE;
        s->aux = latin1_ok(a->u.s.p, a->u.s.n);
    }
    if (!s->aux) return false;
    return !want_lit || latin1_equal(a->u.s.p, a->u.s.n, lit, litn);
}

static bool int_equal(const pp_val *v, int64_t want)
{
    if (v->kind == PP_V_INT) return v->u.i == want;
    if (v->kind != PP_V_BIGINT || !v->u.s.n) return false;
    /* hostile: a non-minimal LONG1/LONG4 can spell a small number in many bytes */
    const uint8_t *p = v->u.s.p;
    size_t n = v->u.s.n;
    uint8_t sign = (p[n - 1] & 0x80) ? 0xff : 0x00;
    while (n > 8 && p[n - 1] == sign && ((p[n - 2] & 0x80) ? 0xff : 0x00) == sign)
        n--;
    if (n > 8) return false;
    uint64_t u = sign ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++) {
        u &= ~((uint64_t)0xff << (8 * i));
        u |= (uint64_t)p[i] << (8 * i);
    }
    return (int64_t)u == want;
}

static bool ident_ok(const uint8_t *s, size_t n)
{
    if (!n || n > 255) return false;
    /* "__" also rules out name-mangled privates; every dunder reaches interpreter machinery */
    if (n >= 2 && s[0] == '_' && s[1] == '_') return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = s[i];
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
        if (!alpha && !(i && ch >= '0' && ch <= '9')) return false;
    }
    return true;
}

/* numpy's compact type codes as dtype.__reduce__ writes them ("f8", "U3", "V56", "M8") plus
 * an optional byte order and unit: [<>|=]?[A-Za-z?][0-9]{0,10}(\[[A-Za-z0-9]{1,10}\])? */
static bool dtypestr_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '<' || s[i] == '>' || s[i] == '|' || s[i] == '=')) i++;
    if (i >= n) return false;
    uint8_t k = s[i++];
    if (!((k >= 'a' && k <= 'z') || (k >= 'A' && k <= 'Z') || k == '?')) return false;
    size_t d = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && d <= 10) {
        i++;
        d++;
    }
    if (d > 10) return false;
    if (i < n && s[i] == '[') {
        size_t u = ++i;
        while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                         (s[i] >= '0' && s[i] <= '9')))
            i++;
        if (i == u || i - u > 10 || i >= n || s[i] != ']') return false;
        i++;
    }
    return i == n;
}

static bool global_is(const pp_node *g, const pp_pat *pt)
{
    return g->u.glob.modlen == pt->u.g.modlen && g->u.glob.namelen == pt->u.g.namelen &&
           memcmp(g->u.glob.module, pt->u.g.module, pt->u.g.modlen) == 0 &&
           memcmp(g->u.glob.name, pt->u.g.name, pt->u.g.namelen) == 0;
}

/* ---- pattern matching ---------------------------------------------------------------------- */

static bool match(ck *c, const pp_pat *pt, const pp_val *v, uint64_t depth);

/* Elements v[0..n) against a tuple/list pattern. `key` identifies the sequence for the memo. */
static bool match_elems(ck *c, const pp_pat *pt, const void *key, const pp_val *v, size_t n,
                        uint64_t depth)
{
    size_t nf = pt->u.seq.n;
    if (pt->u.seq.star ? n < nf : n != nf) return false;
    for (size_t i = 0; i < nf; i++)
        if (!match(c, pt->u.seq.v[i], &v[i], depth)) return false;
    const pp_pat *star = pt->u.seq.star;
    if (!star || n == nf || star->kind == PP_PAT_ANY) return true;
    /* hostile: one long tuple can be the argument of many calls; judge each pairing once */
    mslot *m = NULL;
    if (n - nf > MEMO_MIN) {
        if (!(m = memo_slot(c, key, star))) return false;
        if (m->result) return m->result == 2;
    }
    bool ok = true;
    for (size_t i = nf; i < n && ok; i++)
        ok = match(c, star, &v[i], depth);
    if (m) {
        /* memo_slot may have moved the table while matching nested sequences: look again */
        if (!(m = memo_slot(c, key, star))) return false;
        if (!m->result) c->mn++;
        m->seq = key;
        m->pat = star;
        m->result = ok ? 2 : 1;
    }
    return ok;
}

static bool match(ck *c, const pp_pat *pt, const pp_val *v, uint64_t depth)
{
    const pp_node *n = v->kind == PP_V_NODE ? v->u.node : NULL;
    if (v->kind == PP_V_NODE && !n) return false;
    switch (pt->kind) {
    case PP_PAT_ANY:
        return true;
    case PP_PAT_NONE:
        return v->kind == PP_V_NONE;
    case PP_PAT_TRUE:
        return v->kind == PP_V_BOOL && v->u.i;
    case PP_PAT_FALSE:
        return v->kind == PP_V_BOOL && !v->u.i;
    case PP_PAT_INT:
        return int_equal(v, pt->u.i);
    case PP_PAT_STR:
        return v->kind == PP_V_STR && v->u.s.n == pt->u.s.n &&
               memcmp(v->u.s.p, pt->u.s.p, pt->u.s.n) == 0;
    case PP_PAT_BYTES:
        return bytes_match(c, v, pt->u.s.p, pt->u.s.n, true);
    case PP_PAT_T_STR:
        return v->kind == PP_V_STR;
    case PP_PAT_T_BYTES:
        return bytes_match(c, v, NULL, 0, false);
    case PP_PAT_T_INT:
        return v->kind == PP_V_INT || v->kind == PP_V_BIGINT || v->kind == PP_V_BOOL;
    case PP_PAT_T_FLOAT:
        return v->kind == PP_V_FLOAT;
    case PP_PAT_T_BOOL:
        return v->kind == PP_V_BOOL;
    case PP_PAT_T_BYTEARRAY:
        return n && n->kind == PP_N_BYTEARRAY;
    case PP_PAT_T_MEMORYVIEW:
        return n && n->kind == PP_N_MEMORYVIEW;
    case PP_PAT_T_TUPLE:
        return n && n->kind == PP_N_TUPLE;
    case PP_PAT_T_LIST:
        return n && n->kind == PP_N_LIST;
    case PP_PAT_T_DICT:
        return n && n->kind == PP_N_DICT;
    case PP_PAT_T_SET:
        return n && n->kind == PP_N_SET;
    case PP_PAT_T_FROZENSET:
        return n && n->kind == PP_N_FROZENSET;
    case PP_PAT_IDENT:
        return v->kind == PP_V_STR && ident_ok(v->u.s.p, v->u.s.n);
    case PP_PAT_DTYPESTR:
        return v->kind == PP_V_STR && dtypestr_ok(v->u.s.p, v->u.s.n);
    case PP_PAT_CLASS: {
        if (!n || n->kind != PP_N_GLOBAL) return false;
        /* Only classes whose construction is unconstrained: a helper that creates an instance
         * of its argument would otherwise bypass the class's own argument pattern. */
        const pp_pentry *e = entry_of(c, n);
        return e && (e->perms & PP_PERM_CONSTRUCT) && e->construct_any;
    }
    case PP_PAT_GLOBAL:
        return n && n->kind == PP_N_GLOBAL && global_is(n, pt);
    case PP_PAT_INSTANCE: {
        const pp_node *cls = n ? instance_class(c, n) : NULL;
        return cls && global_is(cls, pt);
    }
    case PP_PAT_ALT:
        for (size_t i = 0; i < pt->u.seq.n; i++)
            if (match(c, pt->u.seq.v[i], v, depth)) return true;
        return false;
    case PP_PAT_TUPLE:
    case PP_PAT_LIST:
        if (!n || n->kind != (pt->kind == PP_PAT_TUPLE ? PP_N_TUPLE : PP_N_LIST)) return false;
        /* Patterns are finite trees, so this descends at most the pattern's depth, whatever
         * cycles the graph holds; the nesting limit still applies. */
        if (depth == 0) return false;
        return match_elems(c, pt, n, n->u.seq.v, n->u.seq.n, depth - 1);
    default:
        return false;
    }
}

/* A rule's pattern is one argument list or a | of them. */
static size_t alt_count(const pp_pat *top)
{
    return top->kind == PP_PAT_ALT ? top->u.seq.n : 1;
}

static const pp_pat *alt_at(const pp_pat *top, size_t i)
{
    return top->kind == PP_PAT_ALT ? top->u.seq.v[i] : top;
}

static bool match_args(ck *c, const pp_pat *top, const pp_node *call)
{
    for (size_t i = 0; i < alt_count(top); i++) {
        const pp_pat *a = alt_at(top, i);
        if (match_elems(c, a, call->u.call.args, call->u.call.args, call->u.call.nargs, c->depth))
            return true;
    }
    return false;
}

/* The first rule whose pattern accepts the node's arguments, or NULL. */
static const pp_rule *match_rules(ck *c, const pp_rule *r, const pp_node *n)
{
    for (; r; r = r->next) {
        if (!r->args) return r;
        /* Patterns describe positional arguments only; NEWOBJ_EX keywords need a rule
         * without a pattern. */
        if (n->kind == PP_N_NEW && n->u.call.nkw) continue;
        if (match_args(c, r->args, n)) return r;
    }
    return NULL;
}

static bool pat_has_class(const pp_pat *e)
{
    if (e->kind == PP_PAT_CLASS) return true;
    if (e->kind == PP_PAT_ALT)
        for (size_t i = 0; i < e->u.seq.n; i++)
            if (e->u.seq.v[i]->kind == PP_PAT_CLASS) return true;
    return false;
}

/* Why no rule matched, for the message: the argument that failed, in the alternative of the
 * first constrained rule that got furthest. */
static void explain(ck *c, const pp_rule *r, const pp_node *n, char *b, size_t cap)
{
    while (r && !r->args)
        r = r->next;
    if (!r) return;
    if (n->kind == PP_N_NEW && n->u.call.nkw) {
        cat(b, cap, "keyword arguments are not allowed by the policy's argument patterns");
        return;
    }
    size_t nargs = n->u.call.nargs;
    const pp_pat *best = NULL;
    size_t best_i = 0;
    for (size_t k = 0; k < alt_count(r->args); k++) {
        const pp_pat *a = alt_at(r->args, k);
        size_t nf = a->u.seq.n;
        if (a->u.seq.star ? nargs < nf : nargs != nf) continue;
        size_t i = 0;
        for (; i < nargs; i++) {
            const pp_pat *e = i < nf ? a->u.seq.v[i] : a->u.seq.star;
            if (!match(c, e, &n->u.call.args[i], c->depth)) break;
        }
        if (!best || i > best_i) {
            best = a;
            best_i = i;
        }
    }
    if (!best) {
        cat(b, cap, "%zu argument%s, but the policy allows only %s", nargs, nargs == 1 ? "" : "s",
            r->args->src);
        return;
    }
    if (best_i >= nargs) { /* cannot happen: every argument matched one by one */
        cat(b, cap, "the arguments do not match %s", r->args->src);
        return;
    }
    const pp_pat *e = best_i < best->u.seq.n ? best->u.seq.v[best_i] : best->u.seq.star;
    cat(b, cap, "argument %zu (", best_i + 1);
    cat_val(b, cap, &n->u.call.args[best_i]);
    cat(b, cap, ") does not match %s", e ? e->src : "?");
    /* The common puzzle: a class that is listed, but not in a way `class` accepts. */
    const pp_val *av = &n->u.call.args[best_i];
    if (e && pp_val_is(av, PP_N_GLOBAL) && pat_has_class(e)) {
        const pp_pentry *en = entry_of(c, av->u.node);
        if (!en || !(en->perms & PP_PERM_CONSTRUCT))
            cat(b, cap, " (that global is not construct-allowed)");
        else if (!en->construct_any)
            cat(b, cap,
                " (that class has an argument pattern on construct, so it can only be "
                "constructed directly)");
    }
}

/* ---- the rules ------------------------------------------------------------------------------- */

static pp_err rule_global(ck *c, const pp_event *ev)
{
    const pp_node *g = ev->node;
    if (!g || g->kind != PP_N_GLOBAL) return PP_E_INTERNAL;
    if (perms_of(c, g)) return PP_OK;
    char m[512] = "";
    cat(m, sizeof m, "global ");
    cat_global(m, sizeof m, g);
    cat(m, sizeof m, " is not allowed by the policy (importing it alone runs module code)");
    const char *rm = g->u.glob.raw_module, *rn = g->u.glob.raw_name;
    bool renamed =
        (g->flags & PP_NF_RENAMED) ||
        (rm &&
         (strlen(rm) != g->u.glob.modlen || memcmp(rm, g->u.glob.module, g->u.glob.modlen) != 0)) ||
        (rn &&
         (strlen(rn) != g->u.glob.namelen || memcmp(rn, g->u.glob.name, g->u.glob.namelen) != 0));
    if (renamed) {
        cat(m, sizeof m, "; the stream wrote ");
        cat_name(m, sizeof m, rm ? rm : "?", rm ? strlen(rm) : 1);
        cat(m, sizeof m, ".");
        cat_name(m, sizeof m, rn ? rn : "?", rn ? strlen(rn) : 1);
        cat(m, sizeof m, ", renamed by _compat_pickle");
    }
    if (g->flags & PP_NF_DOTTED) {
        /* The finding's global joins module and qualname with '.', which cannot say where the
         * module ends; the entry that would allow it does (policy learn reads it from here). */
        cat(m, sizeof m, "; the name is a dotted attribute path, which only the exact entry ");
        cat_name(m, sizeof m, g->u.glob.module, g->u.glob.modlen);
        cat(m, sizeof m, ":");
        cat_name(m, sizeof m, g->u.glob.name, g->u.glob.namelen);
        cat(m, sizeof m, " allows");
    }
    return finding(c, ev, "global-not-allowed", gname(c, 0, g), m);
}

static void mark_ok(ck *c, const pp_node *n, const pp_rule *r)
{
    nslot *s = slot(c, n);
    if (s) {
        s->flags |= F_OK;
        s->val = r;
    }
}

static pp_err rule_call(ck *c, const pp_event *ev)
{
    const pp_node *n = ev->node;
    if (!n || n->kind != PP_N_CALL) return PP_E_INTERNAL;
    const pp_val *fn = &n->u.call.fn;
    const char *op = opname(ev->opcode);
    char m[768] = "";
    if (!pp_val_is(fn, PP_N_GLOBAL)) {
        cat(m, sizeof m, "%s calls ", op);
        cat_val(m, sizeof m, fn);
        cat(m, sizeof m, "; only globals the policy allows to be called may be called");
        const pp_node *cls = pp_val_is(fn, PP_N_CALL) || pp_val_is(fn, PP_N_NEW)
                                 ? instance_class(c, fn->u.node)
                                 : NULL;
        return finding(c, ev, "call-not-allowed", cls ? gname(c, 0, cls) : NULL, m);
    }
    const pp_node *g = fn->u.node;
    const pp_pentry *e = entry_of(c, g);
    unsigned perms = e ? e->perms : 0;
    const pp_rule *rules;
    if (is_inst_op(n)) {
        /* INST/OBJ with arguments runs cls(*args): __new__ and __init__ */
        if (!(perms & PP_PERM_CONSTRUCT)) {
            cat(m, sizeof m, "%s with arguments calls ", op);
            cat_global(m, sizeof m, g);
            cat(m, sizeof m, "(*args), which needs construct permission%s",
                (perms & PP_PERM_CALL) ? " (it is only call-allowed)" : "");
            return finding(c, ev, "call-not-allowed", gname(c, 0, g), m);
        }
        rules = e->construct;
    } else {
        if (!(perms & PP_PERM_CALL)) {
            cat(m, sizeof m, "%s calls ", op);
            cat_global(m, sizeof m, g);
            cat(m, sizeof m, ", which the policy does not allow to be called%s",
                (perms & PP_PERM_CONSTRUCT) ? " (it is only construct-allowed)"
                : perms                     ? " (it is only a reference)"
                                            : "");
            return finding(c, ev, "call-not-allowed", gname(c, 0, g), m);
        }
        rules = e->call;
    }
    const pp_rule *r = match_rules(c, rules, n);
    if (r) {
        mark_ok(c, n, r);
        return PP_OK;
    }
    cat(m, sizeof m, "%s of ", op);
    cat_global(m, sizeof m, g);
    cat(m, sizeof m, " with arguments the policy does not allow: ");
    explain(c, rules, n, m, sizeof m);
    return finding(c, ev, "argument-not-allowed", gname(c, 0, g), m);
}

static pp_err rule_new(ck *c, const pp_event *ev)
{
    const pp_node *n = ev->node;
    if (!n || n->kind != PP_N_NEW) return PP_E_INTERNAL;
    const pp_val *cls = &n->u.call.fn;
    const char *op = opname(ev->opcode);
    char m[768] = "";
    if (!pp_val_is(cls, PP_N_GLOBAL)) {
        cat(m, sizeof m, "%s instantiates ", op);
        cat_val(m, sizeof m, cls);
        cat(m, sizeof m, "; only globals the policy allows to be constructed may be");
        return finding(c, ev, "construct-not-allowed", NULL, m);
    }
    const pp_node *g = cls->u.node;
    const pp_pentry *e = entry_of(c, g);
    unsigned perms = e ? e->perms : 0;
    if (!(perms & PP_PERM_CONSTRUCT)) {
        cat(m, sizeof m, "%s instantiates ", op);
        cat_global(m, sizeof m, g);
        cat(m, sizeof m, ", which the policy does not allow to be constructed%s",
            (perms & PP_PERM_CALL) ? " (it is only call-allowed)"
            : perms                ? " (it is only a reference)"
                                   : "");
        return finding(c, ev, "construct-not-allowed", gname(c, 0, g), m);
    }
    const pp_rule *r = match_rules(c, e->construct, n);
    if (r) {
        mark_ok(c, n, r);
        return PP_OK;
    }
    cat(m, sizeof m, "%s of ", op);
    cat_global(m, sizeof m, g);
    cat(m, sizeof m, " with arguments the policy does not allow: ");
    explain(c, e->construct, n, m, sizeof m);
    return finding(c, ev, "argument-not-allowed", gname(c, 0, g), m);
}

/* The global to name in a finding about an object: its class if known, else its callee. */
static const char *object_global(ck *c, const pp_node *n)
{
    if (n->kind == PP_N_GLOBAL) return gname(c, 1, n);
    if (n->kind == PP_N_CALL || n->kind == PP_N_NEW) {
        const pp_node *cls = instance_class(c, n);
        if (cls) return gname(c, 1, cls);
        if (pp_val_is(&n->u.call.fn, PP_N_GLOBAL)) return gname(c, 1, n->u.call.fn.u.node);
    }
    return NULL;
}

/* Is the target an instance of a construct-allowed class? Else explains why not into m (which
 * may be NULL). */
static bool target_ok(ck *c, const pp_node *t, char *m, size_t cap)
{
    if (t->kind == PP_N_CALL || t->kind == PP_N_NEW) {
        const pp_node *cls = instance_class(c, t);
        if (cls && (perms_of(c, cls) & PP_PERM_CONSTRUCT)) return true;
        if (cls) {
            cat(m, cap, "an instance of ");
            cat_global(m, cap, cls);
            cat(m, cap, ", which the policy does not allow to be constructed");
        } else {
            cat_node(m, cap, t);
            cat(m, cap, ", which is not known to be an instance of a construct-allowed class");
        }
        return false;
    }
    if (t->kind == PP_N_GLOBAL) {
        cat_node(m, cap, t);
        cat(m, cap, " (a module, class or function: never allowed)");
        return false;
    }
    cat_node(m, cap, t);
    cat(m, cap, " (only instances of construct-allowed classes may be)");
    return false;
}

static bool is_dunder(const pp_val *k)
{
    return k->kind == PP_V_STR && k->u.s.n >= 2 && k->u.s.p[0] == '_' && k->u.s.p[1] == '_' &&
           k->u.s.p[k->u.s.n - 2] == '_' && k->u.s.p[k->u.s.n - 1] == '_';
}

/* A key that is an object (not a str, bytes, number or tuple of them) may be a str subclass
 * instance equal to a dunder name, and attribute lookup would honour it. */
static bool is_object_key(const pp_val *k)
{
    if (k->kind != PP_V_NODE || !k->u.node) return false;
    uint8_t kind = k->u.node->kind;
    return kind == PP_N_GLOBAL || kind == PP_N_CALL || kind == PP_N_NEW || kind == PP_N_PERSID ||
           kind == PP_N_EXT;
}

/* Checks one state dict (state or slot state). Appends the reason to m and returns false on a
 * violation. */
static bool state_ok(ck *c, const pp_val *v, const char *what, char *m, size_t cap)
{
    if (v->kind != PP_V_NODE || !v->u.node) return true;
    const pp_node *d = v->u.node;
    switch (d->kind) {
    case PP_N_DICT: {
        /* hostile: one big dict may be the state of many BUILDs; scan it once */
        nslot *s = slot(c, d);
        if (!s) return true;
        if (!(s->flags & F_DICT_DONE)) {
            s->flags |= F_DICT_DONE;
            for (size_t i = 0; i + 1 < d->u.seq.n; i += 2)
                if (is_dunder(&d->u.seq.v[i]) || is_object_key(&d->u.seq.v[i])) {
                    s->flags |= F_DICT_BAD;
                    s->aux = i;
                    break;
                }
        }
        if (!(s->flags & F_DICT_BAD)) return true;
        const pp_val *k = &d->u.seq.v[s->aux];
        if (is_dunder(k)) {
            cat(m, cap, "%s sets the dunder name ", what);
            cat_quoted(m, cap, k->u.s.p, k->u.s.n, false);
            cat(m, cap, "; dunder names in BUILD state are never allowed");
        } else {
            cat(m, cap, "%s has a key that is ", what);
            cat_val(m, cap, k);
            cat(m, cap, ", which could compare equal to a dunder name");
        }
        return false;
    }
    case PP_N_GLOBAL:
    case PP_N_CALL:
    case PP_N_NEW:
    case PP_N_PERSID:
    case PP_N_EXT:
        /* A dict subclass or mapping built by calls: its keys are not visible to us. */
        cat(m, cap, "%s is ", what);
        cat_node(m, cap, d);
        cat(m, cap, ", whose keys cannot be checked for dunder names");
        return false;
    default:
        /* tuples, lists, sets, bytearrays: not a dict, so never written into __dict__ */
        return true;
    }
}

static pp_err rule_build(ck *c, const pp_event *ev)
{
    const pp_node *t = ev->node;
    if (!t) return PP_E_INTERNAL;
    char m[768] = "";
    if (!target_ok(c, t, NULL, 0)) {
        cat(m, sizeof m, "BUILD on ");
        target_ok(c, t, m, sizeof m);
        pp_err rc = finding(c, ev, "build-not-allowed", object_global(c, t), m);
        if (rc != PP_OK) return rc;
    }
    /* Dunder keys are refused even on allowed classes: `__setstate__` in an instance dict is
     * called by the next BUILD, `__class__` in slot state swaps the class. */
    m[0] = 0;
    const pp_val *st = &ev->a;
    bool ok;
    if (pp_val_is(st, PP_N_TUPLE) && st->u.node->u.seq.n == 2) {
        ok = state_ok(c, &st->u.node->u.seq.v[0], "BUILD state", m, sizeof m);
        if (ok) ok = state_ok(c, &st->u.node->u.seq.v[1], "BUILD slot state", m, sizeof m);
    } else {
        ok = state_ok(c, st, "BUILD state", m, sizeof m);
    }
    if (ok) return PP_OK;
    return finding(c, ev, "dunder-state", object_global(c, t), m);
}

static const char *mutation_name(uint8_t kind)
{
    switch (kind) {
    case PP_EV_APPEND:
        return "append";
    case PP_EV_EXTEND:
        return "extend";
    case PP_EV_SETITEM:
        return "__setitem__";
    default:
        return "add";
    }
}

static pp_err rule_mutation(ck *c, const pp_event *ev)
{
    const pp_node *t = ev->node;
    if (!t) return PP_E_INTERNAL;
    char m[768] = "";
    if (target_ok(c, t, NULL, 0)) return PP_OK;
    cat(m, sizeof m, "%s calls %s() on ", opname(ev->opcode), mutation_name(ev->kind));
    target_ok(c, t, m, sizeof m);
    return finding(c, ev, "mutation-not-allowed", object_global(c, t), m);
}

static pp_err rule_persid(ck *c, const pp_event *ev)
{
    if (c->hooks && c->hooks->persid_allowed && c->hooks->persid_allowed(c->hooks->ctx, ev))
        return PP_OK;
    char m[512] = "";
    cat(m, sizeof m, "persistent id ");
    if (ev->node && ev->node->kind == PP_N_PERSID) cat_val(m, sizeof m, &ev->node->u.persid.pid);
    cat(m, sizeof m, " would call the loader's persistent_load; not allowed in a plain pickle");
    return finding(c, ev, "persistent-id", NULL, m);
}

static pp_err rule_ext(ck *c, const pp_event *ev)
{
    char m[256] = "";
    if (ev->node && ev->node->kind == PP_N_EXT)
        cat(m, sizeof m,
            "extension code %" PRId64 " resolves through the process-wide copyreg "
            "registry, which no policy can see; not allowed",
            ev->node->u.ext.code);
    else
        cat(m, sizeof m, "extension codes are not allowed");
    return finding(c, ev, "extension-code", NULL, m);
}

pp_err pp_policy_check_ex(const pp_policy *p, const pp_graph *g, const pp_limits *limits,
                          const char *const *stream_names, size_t nstreams,
                          const pp_policy_hooks *hooks, pp_report *r)
{
    if (!p || !g || !r) return PP_E_USAGE;
    ck c = {.p = p, .r = r, .streams = stream_names, .nstreams = nstreams, .hooks = hooks};
    c.depth = limits ? limits->v[PP_LIMIT_NESTING] : 10000;
    pp_err rc = PP_OK;
    size_t seen = 0;
    for (const pp_event *ev = g->events; ev && rc == PP_OK; ev = ev->next) {
        /* a graph whose list is longer than its count is corrupt (or cyclic): stop */
        if (++seen > g->nevents) {
            rc = PP_E_INTERNAL;
            break;
        }
        switch (ev->kind) {
        case PP_EV_GLOBAL:
            rc = rule_global(&c, ev);
            break;
        case PP_EV_CALL:
            rc = rule_call(&c, ev);
            break;
        case PP_EV_NEW:
            rc = rule_new(&c, ev);
            break;
        case PP_EV_BUILD:
            rc = rule_build(&c, ev);
            break;
        case PP_EV_APPEND:
        case PP_EV_EXTEND:
        case PP_EV_SETITEM:
        case PP_EV_ADD:
            rc = rule_mutation(&c, ev);
            break;
        case PP_EV_PERSID:
            rc = rule_persid(&c, ev);
            break;
        case PP_EV_EXT:
            rc = rule_ext(&c, ev);
            break;
        default:
            rc = PP_E_INTERNAL;
            break;
        }
        if (rc == PP_OK && c.nomem) rc = PP_E_NOMEM;
    }
    pp_free(c.tab);
    pp_free(c.memo);
    pp_free(c.nb[0]);
    pp_free(c.nb[1]);
    return rc;
}

pp_err pp_policy_check(const pp_policy *p, const pp_graph *g, const pp_limits *limits,
                       const char *const *stream_names, size_t nstreams, pp_report *r)
{
    return pp_policy_check_ex(p, g, limits, stream_names, nstreams, NULL, r);
}
