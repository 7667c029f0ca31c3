/* Deterministic mutation sweep: every bit flip, every byte set to 0x00/0xff/'(' and every
 * truncation of small valid pickles, scanned in both flavours. Each must give a defined verdict
 * (never a crash, hang or sanitizer report); the originals keep their verdict. Also allocation-
 * failure injection: failing the Nth allocation for every N gives a clean out-of-memory error
 * or the normal report, with nothing leaked (LeakSanitizer checks at exit in the ASan build). */
#include "tap.h"

#include "arena.h"
#include "pickleproof.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pp_policy *policy;

static int scan(const uint8_t *d, size_t n, pp_flavor fl, pp_verdict *v)
{
    pp_scan_options o;
    pp_scan_options_init(&o, policy);
    o.flavor = fl;
    o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 16u << 20;
    pp_report *r = NULL;
    pp_err rc = pp_scan_buffer(d, n, &o, &r);
    if (rc == PP_OK) {
        *v = r->verdict;
        int ok = r->verdict <= PP_VERDICT_ERROR &&
                 (r->verdict != PP_VERDICT_SAFE || r->error.code == PP_OK);
        int nomem = r->error.code == PP_E_NOMEM;
        pp_report_free(r);
        return !ok ? -1 : nomem ? 1 : 0;
    }
    return rc == PP_E_NOMEM ? 1 : -1;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *b = malloc(4096);
    *n = b ? fread(b, 1, 4096, f) : 0;
    fclose(f);
    return b;
}

static void sweep(const char *path)
{
    size_t n;
    uint8_t *orig = slurp(path, &n);
    if (!orig || n == 0 || n >= 1024) {
        free(orig);
        return;
    }
    uint8_t *m = malloc(n);
    int bad = 0;
    pp_verdict v0[2], v;
    for (int fl = 0; fl < 2; fl++) {
        bad += scan(orig, n, (pp_flavor)fl, &v0[fl]) != 0;
        pp_verdict again;
        bad += scan(orig, n, (pp_flavor)fl, &again) != 0 || again != v0[fl];
        for (size_t i = 0; i < n; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(m, orig, n);
                m[i] ^= (uint8_t)(1u << bit);
                bad += scan(m, n, (pp_flavor)fl, &v) != 0;
            }
            static const uint8_t repl[] = {0x00, 0xff, '('};
            for (size_t k = 0; k < sizeof repl; k++) {
                memcpy(m, orig, n);
                m[i] = repl[k];
                bad += scan(m, n, (pp_flavor)fl, &v) != 0;
            }
            bad += scan(orig, i, (pp_flavor)fl, &v) != 0; /* truncation */
        }
    }
    CHECKF(bad == 0, "%s: %d mutants without a defined verdict", path, bad);
    free(m);
    free(orig);
}

static void oom(const char *path)
{
    size_t n;
    uint8_t *d = slurp(path, &n);
    if (!d)
        return;
    pp_verdict want;
    int rc = scan(d, n, PP_FLAVOR_C, &want);
    CHECK(rc == 0);
    int clean = 0, total = 0;
    for (uint64_t k = 1; k < 100000; k++) {
        pp_alloc_fail_at(k);
        pp_verdict v;
        rc = scan(d, n, PP_FLAVOR_C, &v);
        pp_alloc_fail_at(0);
        total++;
        /* out of memory, returned or as the report's error, or nothing failed */
        if (rc == 1 || (rc == 0 && v == want)) clean++;
        if (rc == 0 && v == want)
            break; /* N beyond the allocations this scan makes */
    }
    CHECKF(clean == total, "%s: %d of %d injected failures not clean", path, total - clean, total);
    free(d);
}

int main(void)
{
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&policy) || pp_policy_add_builtin(policy, "default", &err))
        return 2;
    const char *dir = PP_SOURCE_DIR "/fuzz/corpus/vm";
    DIR *dd = opendir(dir);
    CHECK(dd != NULL);
    struct dirent *e;
    int files = 0;
    while (dd && (e = readdir(dd)) != NULL) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "bad_", 4) == 0)
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        sweep(p);
        oom(p);
        files++;
    }
    if (dd)
        closedir(dd);
    CHECK(files >= 10);
    pp_policy_free(policy);
    return tap_done();
}
