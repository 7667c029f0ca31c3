/* Building reports. The public pp_report is the first member of a private struct that also holds
 * the array capacities and the hash set that deduplicates globals: pp_report_add_global runs for
 * every global lookup, millions of times on big files, so it must not scan the list. */
#include "report.h"

#include "arena.h"
#include "sign.h"
#include "vm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct gkey {
    uint64_t hash;
    size_t idx1; /* index into globals + 1; 0 = empty slot */
} gkey;

typedef struct report_impl {
    pp_report pub; /* first: a pp_report * is a report_impl * */
    size_t fcap, gcap;
    /* Raw "module.qualname" bytes of each global, for exact comparison. Aliases globals[i]
     * unless the name held a NUL byte and the stored string had to be escaped. */
    struct graw {
        char *p;
        size_t n;
    } * graw;
    gkey *slots;
    size_t nslots; /* power of two, or 0 */
    uint64_t k0, k1;
    /* findings per rule, so a file repeating one forbidden call a million times gives a bounded
     * report (the verdict is decided by the first ones anyway) */
    struct rule_count {
        char rule[48];
        size_t count;
    } rules[32];
    size_t nrules;
} report_impl;

#define MAX_FINDINGS_PER_RULE 100

static report_impl *impl(pp_report *r)
{
    return (report_impl *)r;
}

/* ---- keyed hash -------------------------------------------------------------------------- */

/* SipHash-1-3 with a per-report key. Global names come from the file: an unkeyed hash would let a
 * file choose thousands of names that land in one bucket and make deduplication quadratic. */
typedef struct sip {
    uint64_t v0, v1, v2, v3;
    uint64_t m;
    unsigned mlen;
    uint64_t total;
} sip;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(sip *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static void sip_init(sip *s, uint64_t k0, uint64_t k1)
{
    s->v0 = k0 ^ 0x736f6d6570736575ull;
    s->v1 = k1 ^ 0x646f72616e646f6dull;
    s->v2 = k0 ^ 0x6c7967656e657261ull;
    s->v3 = k1 ^ 0x7465646279746573ull;
    s->m = 0;
    s->mlen = 0;
    s->total = 0;
}

static void sip_update(sip *s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->m |= (uint64_t)p[i] << (8 * s->mlen);
        if (++s->mlen == 8) {
            s->v3 ^= s->m;
            sip_round(s);
            s->v0 ^= s->m;
            s->m = 0;
            s->mlen = 0;
        }
    }
    s->total += n;
}

static uint64_t sip_final(sip *s)
{
    uint64_t b = (s->total << 56) | s->m;
    s->v3 ^= b;
    sip_round(s);
    s->v0 ^= b;
    s->v2 ^= 0xff;
    sip_round(s);
    sip_round(s);
    sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The key only has to be unknown to the file's author, who cannot observe our hash table. ASLR
 * addresses serve without a syscall, which keeps the sandbox's syscall list short. */
static void seed_key(report_impl *ri)
{
    static const char anchor = 0;
    int local = 0;
    uint64_t x = (uint64_t)(uintptr_t)&anchor ^ ((uint64_t)(uintptr_t)&local << 17) ^
                 ((uint64_t)(uintptr_t)ri << 29);
    ri->k0 = splitmix(&x);
    ri->k1 = splitmix(&x);
}

/* ---- lifetime ---------------------------------------------------------------------------- */

pp_report *pp_report_new(const char *path)
{
    report_impl *ri = pp_calloc(1, sizeof *ri);
    if (!ri) return NULL;
    pp_report *r = &ri->pub;
    r->verdict = PP_VERDICT_SAFE;
    pp_error_clear(&r->error);
    r->sandbox = "off";
    r->path = pp_strdup(path ? path : "<memory>");
    r->container = pp_strdup("pickle");
    if (!r->path || !r->container) {
        pp_report_free(r);
        return NULL;
    }
    seed_key(ri);
    return r;
}

static void free_finding(pp_finding *f)
{
    /* rule and severity are const in the public struct but copied, so owned here */
    pp_free((void *)(uintptr_t)f->rule);
    pp_free((void *)(uintptr_t)f->severity);
    pp_free(f->global);
    pp_free(f->stream);
    pp_free(f->message);
}

static void free_policies(pp_report *r)
{
    for (size_t i = 0; i < r->npolicies; i++)
        pp_free(r->policies[i]);
    pp_free(r->policies);
    r->policies = NULL;
    r->npolicies = 0;
}

void pp_report_free(pp_report *r)
{
    if (!r) return;
    report_impl *ri = impl(r);
    for (size_t i = 0; i < r->nfindings; i++)
        free_finding(&r->findings[i]);
    pp_free(r->findings);
    for (size_t i = 0; i < r->nglobals; i++) {
        if (ri->graw[i].p != r->globals[i]) pp_free(ri->graw[i].p);
        pp_free(r->globals[i]);
    }
    pp_free(r->globals);
    pp_free(ri->graw);
    pp_free(ri->slots);
    free_policies(r);
    pp_free(r->sig_comment);
    pp_free(r->sig_reason);
    for (size_t i = 0; i < r->narrays; i++)
        pp_free(r->arrays[i].where);
    pp_free(r->arrays);
    pp_free(r->path);
    pp_free(r->container);
    pp_free(ri);
}

/* Grows *p (of *cap elements of size `size`) to hold at least `need` elements. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 1;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2) return 0;
        n *= 2;
    }
    if (n > SIZE_MAX / size) return 0;
    void *q = pp_realloc(*p, n * size);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

/* ---- findings ---------------------------------------------------------------------------- */

static char *vformat(const char *fmt, va_list ap) PP_PRINTF(1, 0);

static char *vformat(const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0) return pp_strdup("");
    char *s = pp_malloc((size_t)n + 1);
    if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

pp_err pp_report_add_finding(pp_report *r, const char *rule, const char *severity,
                             const char *global, int opcode, uint64_t offset, const char *stream,
                             const char *fmt, ...)
{
    report_impl *ri = impl(r);
    const char *rname = rule ? rule : "unknown";
    size_t k = 0;
    while (k < ri->nrules && strcmp(ri->rules[k].rule, rname) != 0)
        k++;
    if (k == ri->nrules && k < sizeof ri->rules / sizeof ri->rules[0] &&
        strlen(rname) < sizeof ri->rules[0].rule) {
        snprintf(ri->rules[k].rule, sizeof ri->rules[k].rule, "%s", rname);
        ri->nrules++;
    }
    if (k < ri->nrules && ++ri->rules[k].count > MAX_FINDINGS_PER_RULE) {
        if (ri->rules[k].count == MAX_FINDINGS_PER_RULE + 1 &&
            strcmp(rname, "findings-truncated") != 0)
            return pp_report_add_finding(r, "findings-truncated", "info", NULL, -1, offset, stream,
                                         "more than %d %s findings; the rest are not listed",
                                         MAX_FINDINGS_PER_RULE, rname);
        return PP_OK;
    }
    if (!grow((void **)&r->findings, &ri->fcap, r->nfindings + 1, sizeof *r->findings))
        return PP_E_NOMEM;
    pp_finding f = {0};
    f.rule = pp_strdup(rule ? rule : "unknown");
    f.severity = pp_strdup(severity ? severity : "info");
    f.global = global ? pp_strdup(global) : NULL;
    f.stream = stream ? pp_strdup(stream) : NULL;
    f.opcode = pp_vm_opname(opcode);
    f.offset = offset;
    va_list ap;
    va_start(ap, fmt);
    f.message = fmt ? vformat(fmt, ap) : pp_strdup("");
    va_end(ap);
    if (!f.rule || !f.severity || (global && !f.global) || (stream && !f.stream) || !f.message) {
        free_finding(&f);
        return PP_E_NOMEM;
    }
    r->findings[r->nfindings++] = f;
    return PP_OK;
}

/* ---- globals ----------------------------------------------------------------------------- */

static uint64_t global_hash(const report_impl *ri, const char *module, size_t modlen,
                            const char *name, size_t namelen)
{
    sip s;
    sip_init(&s, ri->k0, ri->k1);
    sip_update(&s, (const uint8_t *)module, modlen);
    sip_update(&s, (const uint8_t *)".", 1);
    sip_update(&s, (const uint8_t *)name, namelen);
    return sip_final(&s);
}

static int global_eq(const report_impl *ri, size_t i, const char *module, size_t modlen,
                     const char *name, size_t namelen)
{
    const char *k = ri->graw[i].p;
    return ri->graw[i].n == modlen + 1 + namelen && memcmp(k, module, modlen) == 0 &&
           k[modlen] == '.' && memcmp(k + modlen + 1, name, namelen) == 0;
}

static void slot_insert(gkey *slots, size_t nslots, uint64_t hash, size_t idx1)
{
    size_t mask = nslots - 1;
    size_t j = (size_t)hash & mask;
    while (slots[j].idx1)
        j = (j + 1) & mask;
    slots[j].hash = hash;
    slots[j].idx1 = idx1;
}

/* Keeps the load factor at or below 1/2 so linear probes stay short. */
static int rehash(report_impl *ri, size_t need)
{
    if (ri->nslots && need <= ri->nslots / 2) return 1;
    size_t n = ri->nslots ? ri->nslots * 2 : 64;
    while (need > n / 2) {
        if (n > SIZE_MAX / 2 / sizeof(gkey)) return 0;
        n *= 2;
    }
    gkey *s = pp_calloc(n, sizeof *s);
    if (!s) return 0;
    for (size_t i = 0; i < ri->nslots; i++)
        if (ri->slots[i].idx1) slot_insert(s, n, ri->slots[i].hash, ri->slots[i].idx1);
    pp_free(ri->slots);
    ri->slots = s;
    ri->nslots = n;
    return 1;
}

/* The stored string is a C string, so a NUL byte (which no importable name holds, but a file may)
 * is written as the four characters \x00 rather than silently cutting the name short. */
static char *display_name(const char *raw, size_t n)
{
    size_t nuls = 0;
    for (size_t i = 0; i < n; i++)
        nuls += raw[i] == 0;
    if (nuls > (SIZE_MAX - n - 1) / 3) return NULL;
    char *s = pp_malloc(n + 3 * nuls + 1);
    if (!s) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (raw[i]) {
            s[o++] = raw[i];
        } else {
            memcpy(s + o, "\\x00", 4);
            o += 4;
        }
    }
    s[o] = 0;
    return s;
}

pp_err pp_report_add_global(pp_report *r, const char *module, size_t modlen, const char *name,
                            size_t namelen)
{
    report_impl *ri = impl(r);
    if (modlen > SIZE_MAX / 2 || namelen > SIZE_MAX / 2 - modlen - 2) return PP_E_NOMEM;
    uint64_t h = global_hash(ri, module, modlen, name, namelen);
    if (ri->nslots) {
        size_t mask = ri->nslots - 1;
        for (size_t j = (size_t)h & mask; ri->slots[j].idx1; j = (j + 1) & mask)
            if (ri->slots[j].hash == h &&
                global_eq(ri, ri->slots[j].idx1 - 1, module, modlen, name, namelen))
                return PP_OK;
    }
    /* Reserve everything first so a failure leaves the report unchanged. */
    size_t n = r->nglobals;
    size_t cap = ri->gcap, cap2 = ri->gcap;
    /* Both arrays grow from the same capacity by the same rule, so they stay equal; after a
     * failure between the two, the first is merely larger than recorded. */
    if (!rehash(ri, n + 1) || !grow((void **)&r->globals, &cap, n + 1, sizeof *r->globals) ||
        !grow((void **)&ri->graw, &cap2, n + 1, sizeof *ri->graw))
        return PP_E_NOMEM;
    ri->gcap = cap;
    size_t len = modlen + 1 + namelen;
    char *raw = pp_malloc(len + 1);
    if (!raw) return PP_E_NOMEM;
    memcpy(raw, module, modlen);
    raw[modlen] = '.';
    memcpy(raw + modlen + 1, name, namelen);
    raw[len] = 0;
    char *shown = raw;
    if (strlen(raw) != len) {
        shown = display_name(raw, len);
        if (!shown) {
            pp_free(raw);
            return PP_E_NOMEM;
        }
    }
    r->globals[n] = shown;
    ri->graw[n].p = raw;
    ri->graw[n].n = len;
    r->nglobals = n + 1;
    slot_insert(ri->slots, ri->nslots, h, n + 1);
    return PP_OK;
}

/* ---- the rest ---------------------------------------------------------------------------- */

pp_err pp_report_set_container(pp_report *r, const char *container)
{
    char *c = pp_strdup(container ? container : "pickle");
    if (!c) return PP_E_NOMEM;
    pp_free(r->container);
    r->container = c;
    return PP_OK;
}

pp_err pp_report_set_policies(pp_report *r, const pp_policy *p)
{
    const char *const *names = NULL;
    size_t n = p ? pp_policy_names(p, &names) : 0;
    char **v = NULL;
    if (n) {
        v = pp_calloc(n, sizeof *v);
        if (!v) return PP_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            v[i] = pp_strdup(names[i] ? names[i] : "");
            if (!v[i]) {
                for (size_t j = 0; j < i; j++)
                    pp_free(v[j]);
                pp_free(v);
                return PP_E_NOMEM;
            }
        }
    }
    free_policies(r);
    r->policies = v;
    r->npolicies = n;
    return PP_OK;
}

static int is_rejecting(const char *severity)
{
    return severity && (strcmp(severity, "critical") == 0 || strcmp(severity, "high") == 0);
}

/* Errors that say nothing about the file: the scan itself failed, so the answer is "error"
 * (exit 2), not a claim that the file is malformed. */
static int is_operational(pp_err e)
{
    return e == PP_E_NOMEM || e == PP_E_IO || e == PP_E_USAGE || e == PP_E_POLICY ||
           e == PP_E_INTERNAL || e == PP_E_SANDBOX || e == PP_E_SANDBOX_ERROR;
}

pp_err pp_report_set_signature(pp_report *r, const struct pp_sig_result *sr)
{
    r->sig_status = sr->status == PP_SIG_VALID      ? "valid"
                    : sr->status == PP_SIG_UNSIGNED ? "unsigned"
                                                    : "bad";
    snprintf(r->sig_keyid, sizeof r->sig_keyid, "%s", sr->keyid);
    pp_free(r->sig_comment);
    pp_free(r->sig_reason);
    r->sig_comment = NULL;
    r->sig_reason = NULL;
    if (sr->status == PP_SIG_VALID && !(r->sig_comment = pp_strdup(sr->trusted_comment)))
        return PP_E_NOMEM;
    if (sr->reason[0] && !(r->sig_reason = pp_strdup(sr->reason)))
        return PP_E_NOMEM;
    return PP_OK;
}

void pp_report_decide(pp_report *r)
{
    /* Set by the file reader or the signature check before the scan; the scan cannot clear it. */
    if (r->verdict == PP_VERDICT_ERROR || r->verdict == PP_VERDICT_UNSIGNED ||
        r->verdict == PP_VERDICT_BAD_SIGNATURE)
        return;
    int trailing = 0;
    for (size_t i = 0; i < r->nfindings; i++) {
        if (is_rejecting(r->findings[i].severity)) {
            r->verdict = PP_VERDICT_UNSAFE;
            return;
        }
        if (r->findings[i].rule && strcmp(r->findings[i].rule, "trailing-data") == 0) trailing = 1;
    }
    if (r->error.code == PP_E_LIMIT)
        r->verdict = PP_VERDICT_LIMIT;
    else if (is_operational(r->error.code))
        r->verdict = PP_VERDICT_ERROR;
    else if (r->error.code != PP_OK || trailing)
        r->verdict = PP_VERDICT_MALFORMED;
    else
        r->verdict = PP_VERDICT_SAFE;
}

bool pp_report_error_shown(const pp_report *r)
{
    if (r->error.code == PP_OK) return false;
    const char *name = pp_errname(r->error.code);
    for (size_t i = 0; i < r->nfindings; i++)
        if (r->findings[i].offset == r->error.offset && r->findings[i].rule &&
            strcmp(r->findings[i].rule, name) == 0)
            return true;
    return false;
}
