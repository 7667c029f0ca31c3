/* Key, keyring, signature and manifest text, each parsed and, when it parses, written back and
 * parsed again (fuzz_sign covers the parsers' reach into verification; this harness holds them
 * to their own output). Invariants beyond "no crash":
 *   - a keyring that loads has at least one key and no key twice; each key's .pub text parses
 *     back to the same key;
 *   - a signature file that parses formats to text that parses back to the same fields;
 *   - a manifest that parses and finishes formats to canonical text that parses and finishes
 *     to the same entries, and formatting that again gives the same bytes;
 *   - every failure is PP_E_SIGNATURE (or PP_E_NOMEM) with a message. */
#include "fuzz_common.h"
#include "sign.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void failed_cleanly(pp_err rc, const pp_error *err)
{
    check(rc == PP_E_SIGNATURE || rc == PP_E_NOMEM);
    check(err->code == rc && err->msg[0]);
}

static void keyring(const uint8_t *data, size_t size)
{
    pp_keyring *k = NULL;
    if (pp_keyring_new(&k) != PP_OK) return;
    pp_error err;
    pp_error_clear(&err);
    pp_err rc = pp_keyring_add_text(k, (const char *)data, size, "fuzz.keys", &err);
    if (rc != PP_OK) {
        failed_cleanly(rc, &err);
    } else {
        size_t n;
        const pp_pubkey *keys = pp_keyring_keys(k, &n);
        check(n >= 1 && n == pp_keyring_count(k));
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < i; j++)
                check(memcmp(&keys[i], &keys[j], sizeof keys[i]) != 0);
            char text[256];
            size_t len = pp_pubkey_format(&keys[i], text, sizeof text);
            check(len > 0);
            pp_pubkey back;
            pp_error_clear(&err);
            check(pp_pubkey_parse((const uint8_t *)text, len, "again", &back, &err) == PP_OK);
            check(memcmp(&back, &keys[i], sizeof back) == 0);
        }
    }
    pp_keyring_free(k);
}

static void sigfile(const uint8_t *data, size_t size)
{
    pp_sigfile *s = malloc(sizeof *s), *t = malloc(sizeof *t);
    if (!s || !t) {
        free(s);
        free(t);
        return;
    }
    pp_error err;
    pp_error_clear(&err);
    pp_err rc = pp_sig_parse(data, size, "fuzz.minisig", s, &err);
    if (rc != PP_OK) {
        failed_cleanly(rc, &err);
    } else {
        check(s->tc_len <= PP_SIG_TC_MAX && s->tc[s->tc_len] == 0);
        char *text = NULL;
        size_t len = 0;
        pp_error_clear(&err);
        if (pp_sig_format(s, "again", &text, &len, &err) == PP_OK) {
            pp_error_clear(&err);
            check(pp_sig_parse((const uint8_t *)text, len, "again", t, &err) == PP_OK);
            check(memcmp(s->alg, t->alg, 2) == 0 &&
                  memcmp(s->keynum, t->keynum, sizeof s->keynum) == 0 &&
                  memcmp(s->sig, t->sig, 64) == 0 &&
                  memcmp(s->global_sig, t->global_sig, 64) == 0 && s->tc_len == t->tc_len &&
                  memcmp(s->tc, t->tc, s->tc_len) == 0);
            free(text);
        }
    }
    free(s);
    free(t);
}

static void manifest(const uint8_t *data, size_t size)
{
    pp_manifest m, m2;
    memset(&m, 0, sizeof m);
    memset(&m2, 0, sizeof m2);
    pp_error err;
    pp_error_clear(&err);
    pp_err rc = pp_manifest_parse(data, size, "fuzz.manifest", &m, &err);
    if (rc != PP_OK) {
        failed_cleanly(rc, &err);
        return;
    }
    pp_error_clear(&err);
    rc = pp_manifest_finish(&m, "fuzz.manifest", &err);
    char *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;
    if (rc != PP_OK) {
        failed_cleanly(rc, &err);
    } else if (pp_manifest_format(&m, &text, &len, &err) == PP_OK) {
        pp_error_clear(&err);
        check(pp_manifest_parse((const uint8_t *)text, len, "again", &m2, &err) == PP_OK);
        check(pp_manifest_finish(&m2, "again", &err) == PP_OK);
        check(m2.n == m.n && m2.directory == m.directory);
        for (size_t i = 0; i < m.n; i++)
            check(strcmp(m.e[i].path, m2.e[i].path) == 0 && m.e[i].size == m2.e[i].size &&
                  memcmp(m.e[i].digest, m2.e[i].digest, 64) == 0);
        if (pp_manifest_format(&m2, &text2, &len2, &err) == PP_OK) {
            check(len2 == len && memcmp(text, text2, len) == 0);
            free(text2);
        }
        pp_manifest_free(&m2);
        free(text);
    }
    pp_manifest_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keyring(data, size);
    sigfile(data, size);
    manifest(data, size);
    return 0;
}
