/* Policy text (pp_policy_add_text): the line grammar, global spellings, argument patterns,
 * results and built-in includes. File includes are skipped (a mutated path could name a FIFO).
 * Invariants beyond "no crash":
 *   - a failure is PP_E_POLICY (or PP_E_NOMEM) with a message;
 *   - every entry of a parsed policy is found again by pp_policy_lookup with its permissions;
 *   - the policy written back as text (one line per entry and rule, each pattern's own source
 *     text) parses, and the result has the same entries, permissions, rules and pattern trees;
 *   - a pickle that calls a listed global the policy does not let it call is never safe. */
#include "fuzz_common.h"
#include "pickleproof.h"
#include "policy_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same_pat(const pp_pat *a, const pp_pat *b, int depth)
{
    check(depth < 64);
    if (!a || !b) return a == b;
    if (a->kind != b->kind || strcmp(a->src, b->src) != 0) return 0;
    switch (a->kind) {
    case PP_PAT_INT:
        return a->u.i == b->u.i;
    case PP_PAT_STR:
    case PP_PAT_BYTES:
        return a->u.s.n == b->u.s.n && (a->u.s.n == 0 || memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0);
    case PP_PAT_GLOBAL:
    case PP_PAT_INSTANCE:
        return a->u.g.modlen == b->u.g.modlen && a->u.g.namelen == b->u.g.namelen &&
               memcmp(a->u.g.module, b->u.g.module, a->u.g.modlen) == 0 &&
               memcmp(a->u.g.name, b->u.g.name, a->u.g.namelen) == 0;
    case PP_PAT_ALT:
    case PP_PAT_TUPLE:
    case PP_PAT_LIST:
        if (a->u.seq.n != b->u.seq.n || !same_pat(a->u.seq.star, b->u.seq.star, depth + 1))
            return 0;
        for (size_t i = 0; i < a->u.seq.n; i++)
            if (!same_pat(a->u.seq.v[i], b->u.seq.v[i], depth + 1)) return 0;
        return 1;
    default:
        return 1;
    }
}

static int same_rules(const pp_rule *a, const pp_rule *b)
{
    for (; a && b; a = a->next, b = b->next)
        if (a->res != b->res || a->resarg != b->resarg || !same_pat(a->args, b->args, 0)) return 0;
    return a == NULL && b == NULL;
}

static void put_rules(pp_buf *b, const char *kw, const pp_pentry *e, const pp_rule *r)
{
    for (; r; r = r->next) {
        pp_buf_printf(b, "%s %.*s:%.*s", kw, (int)e->modlen, e->module, (int)e->namelen, e->name);
        if (r->args) pp_buf_printf(b, " %s", r->args->src);
        switch (r->res) {
        case PP_RES_SELF:
            pp_buf_puts(b, " -> self");
            break;
        case PP_RES_ARG:
            pp_buf_printf(b, " -> arg%u", r->resarg + 1);
            break;
        case PP_RES_BYTES:
            pp_buf_puts(b, " -> bytes");
            break;
        case PP_RES_LATIN1:
            pp_buf_printf(b, " -> latin1(arg%u)", r->resarg + 1);
            break;
        default:
            break;
        }
        pp_buf_putc(b, '\n');
    }
}

/* A protocol-4 pickle that looks the global up and calls it with no arguments. */
static int call_pickle(const pp_pentry *e, uint8_t *out, size_t cap, size_t *n)
{
    if (e->modlen > 255 || e->namelen > 255 || e->modlen + e->namelen + 16 > cap) return 0;
    size_t k = 0;
    out[k++] = 0x80, out[k++] = 4;
    out[k++] = 0x8c, out[k++] = (uint8_t)e->modlen;
    memcpy(out + k, e->module, e->modlen), k += e->modlen;
    out[k++] = 0x8c, out[k++] = (uint8_t)e->namelen;
    memcpy(out + k, e->name, e->namelen), k += e->namelen;
    out[k++] = 0x93, out[k++] = ')', out[k++] = 'R', out[k++] = '.';
    *n = k;
    return 1;
}

static int has(const uint8_t *d, size_t n, const char *s)
{
    size_t m = strlen(s);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(d + i, s, m) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (has(data, size, "include") && (memchr(data, '/', size) || has(data, size, ".policy")))
        return 0;
    pp_policy *p = NULL;
    if (pp_policy_new(&p) != PP_OK) return 0;
    pp_error err;
    pp_error_clear(&err);
    pp_err rc = pp_policy_add_text(p, "fuzz.policy", (const char *)data, size, &err);
    if (rc != PP_OK) {
        check(rc == PP_E_POLICY || rc == PP_E_NOMEM);
        check(err.code == rc && err.msg[0]);
        pp_policy_free(p);
        return 0;
    }
    const pp_pentry *first_nocall = NULL;
    for (size_t i = 0; i < p->nslots; i++) {
        const pp_pentry *e = p->slots[i];
        if (!e) continue;
        check(pp_policy_lookup(p, e->module, e->modlen, e->name, e->namelen) == e->perms);
        check(e->perms & PP_PERM_REFERENCE);
        if (!(e->perms & PP_PERM_CALL) && !first_nocall) first_nocall = e;
    }
    if (p->nentries <= 256) {
        pp_buf b;
        pp_buf_init(&b);
        for (size_t i = 0; i < p->nslots; i++) {
            const pp_pentry *e = p->slots[i];
            if (!e) continue;
            pp_buf_printf(&b, "reference %.*s:%.*s\n", (int)e->modlen, e->module, (int)e->namelen,
                          e->name);
            put_rules(&b, "call", e, e->call);
            put_rules(&b, "construct", e, e->construct);
        }
        pp_policy *q = NULL;
        if (pp_buf_ok(&b) && pp_policy_new(&q) == PP_OK) {
            pp_error_clear(&err);
            rc = pp_policy_add_text(q, "again.policy", b.p ? b.p : "", b.n, &err);
            check(rc == PP_OK || rc == PP_E_NOMEM);
            if (rc == PP_OK) {
                check(q->nentries == p->nentries);
                for (size_t i = 0; i < p->nslots; i++) {
                    const pp_pentry *e = p->slots[i];
                    if (!e) continue;
                    const pp_pentry *f =
                        pp_policy_entry(q, e->module, e->modlen, e->name, e->namelen);
                    check(f != NULL && f->perms == e->perms &&
                          f->construct_any == e->construct_any);
                    check(same_rules(e->call, f->call) && same_rules(e->construct, f->construct));
                }
            }
            pp_policy_free(q);
        }
        pp_buf_free(&b);
    }
    uint8_t pk[600];
    size_t pn;
    if (first_nocall && call_pickle(first_nocall, pk, sizeof pk, &pn)) {
        pp_scan_options o;
        pp_scan_options_init(&o, p);
        pp_report *r = NULL;
        if (pp_scan_buffer(pk, pn, &o, &r) == PP_OK) {
            check(r->verdict != PP_VERDICT_SAFE);
            pp_report_free(r);
        }
    }
    pp_policy_free(p);
    return 0;
}
