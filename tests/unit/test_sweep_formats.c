/* The mutation sweep and allocation-failure injection over every container and text format
 * (test_sweep.c does raw pickles): small valid files of each (joblib raw and zlib, npy, npz,
 * PyTorch zip, legacy and tar, public key, keyring, signature, manifest, policy) get every bit
 * flip, every byte set to 0x00/0xff and every truncation. Each mutant gives a defined answer:
 *   scans     a verdict from the table; safe only when the original was safe, and then with no
 *             error; any other verdict with an error or a finding to say why; every array
 *             region with a file offset inside the input
 *   parsers   PP_OK or their one error code (signature-error, policy-error) with a message;
 *             a mutated signature that still verifies decodes to the very same signature
 * Failing the Nth allocation, for every N, gives out-of-memory (returned, or as the report's
 * error) or the unchanged answer, with nothing leaked (LeakSanitizer in the ASan build). */
#include "tap.h"

#include "arena.h"
#include "pickleproof.h"
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORPUS PP_SOURCE_DIR "/fuzz/corpus/"

static pp_policy *pol_default, *pol_torch;

static uint8_t *slurp(const char *rel, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", CORPUS, rel);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *b = malloc(16384);
    *n = b ? fread(b, 1, 16384, f) : 0;
    fclose(f);
    return b;
}

/* ---- scans ------------------------------------------------------------------------------- */

typedef struct scan_case {
    const char *file, *name; /* corpus file, path the scan is told */
    int torch;               /* the torch policy, else default */
    size_t span;             /* mutate the first `span` bytes only (0: all) */
} scan_case;

static const scan_case scans[] = {
    {"joblib/arange_p4.joblib", "m.joblib", 0, 0},
    {"joblib/small.zlib", "m.joblib", 0, 0},
    {"npy/f8_2x3.npy", "m.npy", 0, 0},
    {"npy/object.npy", "m.npy", 0, 0},
    {"zip/npz_deflate.npz", "m.npz", 0, 0},
    {"torch/zip_views.pt", "m.pt", 1, 0},
    {"torch/legacy_linear_sd.pt", "m.pt", 1, 0},
    {"torch/legacy_tar_ok.tar", "m.tar", 1, 1536},
};

/* 0 ok, -1 undefined answer, 1 out of memory (returned or as the report's error) */
static int scan(const uint8_t *d, size_t n, const scan_case *sc, pp_verdict *v, int was_safe)
{
    pp_scan_options o;
    pp_scan_options_init(&o, sc->torch ? pol_torch : pol_default);
    o.path = sc->name;
    o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 16u << 20;
    o.limits.v[PP_LIMIT_INFLATED_BYTES] = 16u << 20;
    pp_report *r = NULL;
    pp_err rc = pp_scan_buffer(d, n, &o, &r);
    if (rc != PP_OK) return rc == PP_E_NOMEM ? 1 : -1;
    *v = r->verdict;
    int ok = r->verdict <= PP_VERDICT_ERROR;
    if (r->verdict == PP_VERDICT_SAFE)
        ok &= r->error.code == PP_OK && was_safe;
    else
        ok &= r->error.code != PP_OK || r->nfindings > 0;
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *a = &r->arrays[i];
        if (a->file_offset != PP_NO_OFFSET)
            ok &= a->file_offset <= n && a->nbytes <= n - a->file_offset;
    }
    int nomem = r->error.code == PP_E_NOMEM;
    pp_report_free(r);
    return !ok ? -1 : nomem ? 1 : 0;
}

static void sweep_scan(const scan_case *sc)
{
    size_t n;
    uint8_t *orig = slurp(sc->file, &n);
    CHECKF(orig != NULL && n > 0, "%s readable", sc->file);
    if (!orig) return;
    uint8_t *m = malloc(n);
    pp_verdict v0, v;
    CHECKF(scan(orig, n, sc, &v0, 1) == 0 && v0 == PP_VERDICT_SAFE, "%s is safe", sc->file);
    size_t span = sc->span && sc->span < n ? sc->span : n;
    int bad = 0, changed = 0, total = 0;
    for (size_t i = 0; i < span; i++) {
        for (int k = 0; k < 10; k++) {
            memcpy(m, orig, n);
            m[i] = (uint8_t)(k < 8 ? orig[i] ^ (1u << k) : k == 8 ? 0x00u : 0xffu);
            if (m[i] == orig[i]) continue;
            int rc = scan(m, n, sc, &v, 1);
            total++;
            bad += rc != 0;
            changed += rc == 0 && v != v0;
        }
        bad += scan(orig, i, sc, &v, 1) != 0; /* truncation */
    }
    printf("# %s: %d mutants and %zu truncations, %d with another verdict\n", sc->file, total, span,
           changed);
    CHECKF(bad == 0, "%s: %d mutants without a defined answer", sc->file, bad);
    CHECKF(changed > 0, "%s: some mutant is refused", sc->file);
    free(m);
    free(orig);
}

static void oom_scan(const scan_case *sc)
{
    size_t n;
    uint8_t *d = slurp(sc->file, &n);
    if (!d) return;
    pp_verdict want, v;
    CHECK(scan(d, n, sc, &want, 1) == 0);
    int unclean = 0;
    uint64_t k;
    for (k = 1; k < 200000; k++) {
        pp_alloc_fail_at(k);
        int rc = scan(d, n, sc, &v, 1);
        pp_alloc_fail_at(0);
        if (rc == 0 && v == want) break; /* N beyond the allocations this scan makes */
        unclean += rc != 1;
    }
    printf("# %s: failed each of %llu allocations\n", sc->file, (unsigned long long)k - 1);
    CHECKF(unclean == 0 && k > 1, "%s: %d of %llu injected failures not a clean out-of-memory",
           sc->file, unclean, (unsigned long long)k);
    free(d);
}

/* ---- text formats ------------------------------------------------------------------------ */

typedef enum { T_PUBKEY, T_KEYRING, T_SIG, T_MANIFEST, T_POLICY } text_kind;

typedef struct text_case {
    const char *file;
    text_kind kind;
} text_case;

static const text_case texts[] = {
    {"sign/our.pub", T_PUBKEY},        {"keyring/keyring", T_KEYRING},
    {"sign/hello.minisig", T_SIG},     {"sign/hello-legacy.minisig", T_SIG},
    {"sign/manifest-dir", T_MANIFEST}, {"policy/patterns", T_POLICY},
};

static pp_sigfile orig_sig;

/* 0 parsed, 1 refused cleanly, 2 out of memory, -1 anything else */
static int parse_text(const uint8_t *d, size_t n, text_kind kind)
{
    pp_error err;
    pp_error_clear(&err);
    pp_err rc, want = kind == T_POLICY ? PP_E_POLICY : PP_E_SIGNATURE;
    int ok = 1;
    switch (kind) {
    case T_PUBKEY: {
        pp_pubkey pk;
        rc = pp_pubkey_parse(d, n, "k.pub", &pk, &err);
        break;
    }
    case T_KEYRING: {
        pp_keyring *k = NULL;
        if (pp_keyring_new(&k) != PP_OK) return 2;
        rc = pp_keyring_add_text(k, (const char *)d, n, "keys", &err);
        pp_keyring_free(k);
        break;
    }
    case T_SIG: {
        static const char pub[] = "RWSgyWMGJ/0wu8GVyAqmMAhZcGgJM8UgVO5CR9exjR5EPwP7DSJFpLe8";
        pp_pubkey pk;
        pp_sigfile *s = malloc(sizeof *s);
        pp_sig_result *res = malloc(sizeof *res);
        if (!s || !res || pp_pubkey_parse((const uint8_t *)pub, sizeof pub - 1, "k", &pk, &err))
            return free(s), free(res), -1;
        rc = pp_sig_parse(d, n, "s.minisig", s, &err);
        if (rc == PP_OK) {
            pp_error e2;
            pp_error_clear(&e2);
            pp_err vr = pp_verify_buffer((const uint8_t *)"hello\n", 6, "hello.txt", &pk, 1, d, n,
                                         PP_VERIFY_ALLOW_LEGACY, res, &e2);
            if (vr == PP_E_NOMEM)
                rc = PP_E_NOMEM;
            else if (vr != PP_OK)
                ok = 0;
            else if (res->status == PP_SIG_VALID)
                ok = memcmp(s->alg, orig_sig.alg, 2) == 0 &&
                     memcmp(s->sig, orig_sig.sig, 64) == 0 &&
                     memcmp(s->global_sig, orig_sig.global_sig, 64) == 0 &&
                     memcmp(s->keynum, orig_sig.keynum, PP_KEYNUM_BYTES) == 0 &&
                     s->tc_len == orig_sig.tc_len && memcmp(s->tc, orig_sig.tc, s->tc_len) == 0;
        }
        free(s);
        free(res);
        break;
    }
    case T_MANIFEST: {
        pp_manifest m;
        memset(&m, 0, sizeof m);
        rc = pp_manifest_parse(d, n, "MANIFEST", &m, &err);
        if (rc == PP_OK) {
            rc = pp_manifest_finish(&m, "MANIFEST", &err);
            pp_manifest_free(&m);
        }
        break;
    }
    default: {
        pp_policy *p = NULL;
        if (pp_policy_new(&p) != PP_OK) return 2;
        rc = pp_policy_add_text(p, "t.policy", (const char *)d, n, &err);
        pp_policy_free(p);
        break;
    }
    }
    if (!ok) return -1;
    if (rc == PP_OK) return 0;
    if (rc == PP_E_NOMEM && err.code == PP_E_NOMEM) return 2;
    return rc == want && err.code == rc && err.msg[0] ? 1 : -1;
}

static void sweep_text(const text_case *tc)
{
    size_t n;
    uint8_t *orig = slurp(tc->file, &n);
    CHECKF(orig != NULL && n > 0, "%s readable", tc->file);
    if (!orig) return;
    if (tc->kind == T_SIG) {
        pp_error err;
        pp_error_clear(&err);
        CHECK(pp_sig_parse(orig, n, "s", &orig_sig, &err) == PP_OK);
    }
    CHECKF(parse_text(orig, n, tc->kind) == 0, "%s parses", tc->file);
    uint8_t *m = malloc(n);
    int bad = 0, refused = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 10; k++) {
            memcpy(m, orig, n);
            m[i] = (uint8_t)(k < 8 ? orig[i] ^ (1u << k) : k == 8 ? 0x00u : 0xffu);
            if (m[i] == orig[i]) continue;
            int rc = parse_text(m, n, tc->kind);
            total++;
            bad += rc < 0 || rc == 2;
            refused += rc == 1;
        }
        int rc = parse_text(orig, i, tc->kind);
        bad += rc < 0 || rc == 2;
    }
    printf("# %s: %d mutants and %zu truncations, %d refused\n", tc->file, total, n, refused);
    CHECKF(bad == 0, "%s: %d mutants without a defined answer", tc->file, bad);
    CHECKF(refused > 0, "%s: some mutant is refused", tc->file);
    free(m);
    free(orig);
}

static void oom_text(const text_case *tc)
{
    size_t n;
    uint8_t *d = slurp(tc->file, &n);
    if (!d) return;
    int unclean = 0;
    uint64_t k;
    for (k = 1; k < 100000; k++) {
        pp_alloc_fail_at(k);
        int rc = parse_text(d, n, tc->kind);
        pp_alloc_fail_at(0);
        if (rc == 0) break;
        unclean += rc != 2;
    }
    CHECKF(unclean == 0, "%s: %d of %llu injected failures not a clean out-of-memory", tc->file,
           unclean, (unsigned long long)k);
    free(d);
}

int main(int argc, char **argv)
{
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&pol_default) || pp_policy_add_builtin(pol_default, "default", &err) ||
        pp_policy_new(&pol_torch) || pp_policy_add_builtin(pol_torch, "torch", &err))
        return 2;
    /* an argument limits the run to the files whose name contains it (for debugging) */
    const char *only = argc > 1 ? argv[1] : NULL;
    for (size_t i = 0; i < sizeof scans / sizeof scans[0]; i++) {
        if (only && !strstr(scans[i].file, only)) continue;
        sweep_scan(&scans[i]);
        oom_scan(&scans[i]);
    }
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (only && !strstr(texts[i].file, only)) continue;
        sweep_text(&texts[i]);
        oom_text(&texts[i]);
    }
    pp_policy_free(pol_default);
    pp_policy_free(pol_torch);
    return tap_done();
}
