/* Signatures: key ids, key/signature round trips, every bit flip and truncation of a good
 * signature file, the relabelled-legacy refusal, trusted-comment field checks, manifest paths
 * and canonical form. Known values come from minisign 0.11 (sign-sandbox.md §A1). */
#include "b2.h"
#include "sign.h"
#include "tap.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *parse_err(pp_err rc, const pp_error *e)
{
    return rc == PP_OK ? "ok" : e->msg;
}

static void test_keyid(void)
{
    const uint8_t k[8] = {0x7d, 0xf0, 0x9a, 0x5f, 0x39, 0xf5, 0xb0, 0x41};
    char id[PP_KEYID_CHARS + 1];
    pp_keyid_format(k, id);
    CHECKF(strcmp(id, "41B0F5395F9AF07D") == 0, "key id %s", id);

    /* a public key written by minisign 0.11 */
    const char *pub = "untrusted comment: minisign public key 41B0F5395F9AF07D\n"
                      "RWR98JpfOfWwQY8MUmVMJtKCydezygbbiBxOEZdgL6Vm80+ptNl8hdo8\n";
    pp_pubkey pk;
    pp_error e;
    pp_error_clear(&e);
    pp_err rc = pp_pubkey_parse((const uint8_t *)pub, strlen(pub), "k.pub", &pk, &e);
    CHECKF(rc == PP_OK, "minisign public key parses: %s", parse_err(rc, &e));
    pp_keyid_format(pk.keynum, id);
    CHECKF(strcmp(id, "41B0F5395F9AF07D") == 0, "its key id %s", id);
    char out[256];
    size_t n = pp_pubkey_format(&pk, out, sizeof out);
    CHECKF(n == strlen(pub) && memcmp(out, pub, n) == 0, "formats back byte for byte");
    /* the bare base64 form (-P) */
    const char *bare = "RWR98JpfOfWwQY8MUmVMJtKCydezygbbiBxOEZdgL6Vm80+ptNl8hdo8";
    pp_error_clear(&e);
    CHECK(pp_pubkey_parse((const uint8_t *)bare, strlen(bare), "-P", &pk, &e) == PP_OK);
    /* one character short, one too many, a bad character */
    pp_error_clear(&e);
    CHECK(pp_pubkey_parse((const uint8_t *)bare, strlen(bare) - 1, "-P", &pk, &e) ==
          PP_E_SIGNATURE);
    char buf[80];
    snprintf(buf, sizeof buf, "%s=", bare);
    pp_error_clear(&e);
    CHECK(pp_pubkey_parse((const uint8_t *)buf, strlen(buf), "-P", &pk, &e) == PP_E_SIGNATURE);
    snprintf(buf, sizeof buf, "%s", bare);
    buf[10] = '*';
    pp_error_clear(&e);
    CHECK(pp_pubkey_parse((const uint8_t *)buf, strlen(buf), "-P", &pk, &e) == PP_E_SIGNATURE);
    CHECKF(strstr(e.msg, "-P") != NULL, "error names the source: %s", e.msg);
}

static void test_seckey_roundtrip(pp_seckey **out_sk, pp_pubkey *out_pk)
{
    pp_error e;
    pp_error_clear(&e);
    pp_seckey *sk = NULL;
    pp_pubkey pk;
    CHECK(pp_seckey_generate(&sk, &pk, &e) == PP_OK);
    char *text = NULL;
    size_t tl = 0;
    CHECK(pp_seckey_format(sk, NULL, 0, 0, 0, &text, &tl, &e) == PP_OK);
    pp_seckey *back = NULL;
    pp_err rc = pp_seckey_parse((const uint8_t *)text, tl, "clear.key", &back, &e);
    CHECKF(rc == PP_OK, "clear key parses: %s", parse_err(rc, &e));
    CHECK(back && !pp_seckey_encrypted(back) && memcmp(back->sk, sk->sk, 64) == 0);
    pp_seckey_free(back);
    pp_secret_free(text);

    /* encrypted with cheap limits; the limits are read back from the file */
    const char *pw = "correct horse";
    CHECK(pp_seckey_format(
              sk, pw, strlen(pw), crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_INTERACTIVE,
              crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_INTERACTIVE, &text, &tl, &e) == PP_OK);
    pp_error_clear(&e);
    rc = pp_seckey_parse((const uint8_t *)text, tl, "enc.key", &back, &e);
    CHECKF(rc == PP_OK && pp_seckey_encrypted(back), "encrypted key parses: %s", parse_err(rc, &e));
    CHECK(memcmp(back->sk, sk->sk, 64) != 0);
    pp_error_clear(&e);
    rc = pp_seckey_decrypt(back, "wrong", 5, "enc.key", &e);
    CHECKF(rc == PP_E_SIGNATURE && strstr(e.msg, "wrong password"), "wrong password: %s", e.msg);
    CHECK(pp_seckey_encrypted(back));
    pp_error_clear(&e);
    rc = pp_seckey_decrypt(back, pw, strlen(pw), "enc.key", &e);
    CHECKF(rc == PP_OK, "right password: %s", parse_err(rc, &e));
    CHECK(!pp_seckey_encrypted(back) && memcmp(back->sk, sk->sk, 64) == 0 &&
          memcmp(back->keynum, sk->keynum, 8) == 0);
    pp_seckey_free(back);
    pp_secret_free(text);

    /* hostile scrypt limits in a key file: refused at parse time, before any scrypt */
    pp_seckey raw;
    memcpy(&raw, sk, sizeof raw);
    memcpy(raw.kdf_alg, "Sc", 2);
    memset(raw.kdf_memlimit_le, 0, 8);
    raw.kdf_memlimit_le[5] = 1; /* 2^40 bytes */
    char line[400];
    int k = snprintf(line, sizeof line, "untrusted comment: x\n");
    sodium_bin2base64(line + k, sizeof line - (size_t)k, (const unsigned char *)&raw, sizeof raw,
                      sodium_base64_VARIANT_ORIGINAL);
    pp_error_clear(&e);
    rc = pp_seckey_parse((const uint8_t *)line, strlen(line), "huge.key", &back, &e);
    CHECKF(rc == PP_E_SIGNATURE && strstr(e.msg, "scrypt limits"), "huge memlimit: %s", e.msg);
    sodium_memzero(&raw, sizeof raw);
    *out_sk = sk;
    *out_pk = pk;
}

/* A signed message and its .minisig text. */
static char *make_sig(const pp_seckey *sk, const uint8_t *msg, size_t len, const char *name,
                      size_t *siglen)
{
    pp_error e;
    pp_error_clear(&e);
    uint8_t d[64];
    pp_b2_buf(msg, len, d);
    char tc[512];
    size_t tcl = 0;
    CHECK(pp_trusted_comment(tc, sizeof tc, 1795608496u, name, len, PP_PURPOSE_FILE, NULL, &tcl,
                             &e) == PP_OK);
    pp_sigfile *s = malloc(sizeof *s);
    CHECK(s && pp_sign_digest(sk, d, tc, tcl, s, &e) == PP_OK);
    char *text = NULL;
    CHECK(pp_sig_format(s, NULL, &text, siglen, &e) == PP_OK);
    free(s);
    return text;
}

static pp_sig_status verify(const uint8_t *msg, size_t len, const char *name, const pp_pubkey *pk,
                            size_t nk, const char *sig, size_t siglen, unsigned flags,
                            pp_sig_result *r)
{
    pp_error e;
    pp_error_clear(&e);
    pp_err rc =
        pp_verify_buffer(msg, len, name, pk, nk, (const uint8_t *)sig, siglen, flags, r, &e);
    CHECKF(rc == PP_OK, "verify_buffer returns a verdict: %s", e.msg);
    return r->status;
}

static void test_sign_verify(const pp_seckey *sk, const pp_pubkey *pk)
{
    static uint8_t msg[10000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    size_t sl = 0;
    char *sig = make_sig(sk, msg, sizeof msg, "m.pkl", &sl);
    pp_sig_result *r = malloc(sizeof *r);
    CHECK(verify(msg, sizeof msg, "m.pkl", pk, 1, sig, sl, 0, r) == PP_SIG_VALID);
    CHECKF(strstr(r->trusted_comment, "purpose:pickleproof-file/v1\tsize:10000") != NULL,
           "trusted comment %s", r->trusted_comment);
    CHECK(verify(msg, sizeof msg, "m.pkl", pk, 1, NULL, 0, 0, r) == PP_SIG_UNSIGNED);
    CHECK(verify(msg, sizeof msg, "other.pkl", pk, 1, sig, sl, 0, r) == PP_SIG_BAD);
    CHECKF(strstr(r->reason, "m.pkl") != NULL && r->trusted_comment[0] == 0, "%s", r->reason);
    CHECK(verify(msg, sizeof msg, "other.pkl", pk, 1, sig, sl, PP_VERIFY_NO_NAME, r) ==
          PP_SIG_VALID);
    CHECK(verify(msg, sizeof msg, "m.pkl", pk, 1, sig, sl, PP_VERIFY_MANIFEST, r) == PP_SIG_BAD);
    msg[9999] ^= 1;
    CHECK(verify(msg, sizeof msg, "m.pkl", pk, 1, sig, sl, 0, r) == PP_SIG_BAD);
    msg[9999] ^= 1;

    /* wrong key: both ids in the reason */
    pp_pubkey other = *pk;
    other.keynum[0] ^= 1;
    CHECK(verify(msg, sizeof msg, "m.pkl", &other, 1, sig, sl, 0, r) == PP_SIG_BAD);
    char a[17], b[17];
    pp_keyid_format(pk->keynum, a);
    pp_keyid_format(other.keynum, b);
    CHECKF(strstr(r->reason, a) && strstr(r->reason, b), "%s", r->reason);
    /* two keys with one id: refused, not "first wins" */
    pp_pubkey two[2] = {*pk, *pk};
    two[0].pk[0] ^= 1;
    CHECK(verify(msg, sizeof msg, "m.pkl", two, 2, sig, sl, 0, r) == PP_SIG_BAD);

    /* every bit flip of the signature file: never VALID, except inside the untrusted comment */
    size_t c1 = 0;
    while (c1 < sl && sig[c1] != '\n')
        c1++;
    size_t bad = 0, flips = 0;
    for (size_t i = 0; i < sl; i++)
        for (int bit = 0; bit < 8; bit++) {
            sig[i] ^= (char)(1 << bit);
            pp_sig_status st = verify(msg, sizeof msg, "m.pkl", pk, 1, sig, sl, 0, r);
            sig[i] ^= (char)(1 << bit);
            flips++;
            if (st == PP_SIG_VALID && !(i >= sizeof "untrusted comment: " - 1 && i < c1)) {
                bad++;
                fprintf(stderr, "# flip at %zu bit %d of %zu accepted\n", i, bit, sl);
            }
            if (st != PP_SIG_VALID && r->trusted_comment[0]) bad++;
        }
    CHECKF(bad == 0, "%zu of %zu bit flips accepted", bad, flips);
    /* every truncation except dropping the final newline */
    bad = 0;
    for (size_t n = 0; n + 1 < sl; n++)
        if (verify(msg, sizeof msg, "m.pkl", pk, 1, sig, n, 0, r) == PP_SIG_VALID) bad++;
    CHECKF(bad == 0, "%zu truncations accepted", bad);
    CHECK(verify(msg, sizeof msg, "m.pkl", pk, 1, sig, sl - 1, 0, r) == PP_SIG_VALID);

    /* relabelled legacy: the prehashed signature over a 64-byte "file" holding the digest */
    pp_sigfile *sf = malloc(sizeof *sf);
    pp_error e;
    pp_error_clear(&e);
    CHECK(pp_sig_parse((const uint8_t *)sig, sl, "m.pkl.minisig", sf, &e) == PP_OK);
    memcpy(sf->alg, "Ed", 2);
    uint8_t d[64];
    pp_b2_buf(msg, sizeof msg, d);
    CHECK(pp_verify_digest(sf, d, d, 64, "m.pkl", pk, 1, 0, r) == PP_OK &&
          r->status == PP_SIG_BAD && strstr(r->reason, "legacy"));
    /* opted in, the cryptography passes but our size: field does not */
    CHECK(pp_verify_digest(sf, d, d, 64, "m.pkl", pk, 1, PP_VERIFY_ALLOW_LEGACY, r) == PP_OK &&
          r->status == PP_SIG_BAD && strstr(r->reason, "size"));
    free(sf);
    free(sig);

    /* a duplicated field in a (validly signed) trusted comment is ambiguous: refused */
    pp_sigfile *s2 = malloc(sizeof *s2);
    const char *tc = "timestamp:1\tfile:m.pkl\tfile:x.pkl";
    CHECK(pp_sign_digest(sk, d, tc, strlen(tc), s2, &e) == PP_OK);
    CHECK(pp_verify_digest(s2, d, NULL, sizeof msg, "m.pkl", pk, 1, 0, r) == PP_OK &&
          r->status == PP_SIG_BAD);
    tc = "timestamp:1\tfile:m.pkl\tsize:010000";
    CHECK(pp_sign_digest(sk, d, tc, strlen(tc), s2, &e) == PP_OK);
    CHECK(pp_verify_digest(s2, d, NULL, sizeof msg, "m.pkl", pk, 1, 0, r) == PP_OK &&
          r->status == PP_SIG_BAD);
    /* minisign's own comment (no size, no purpose) verifies */
    tc = "timestamp:1\tfile:m.pkl\thashed";
    CHECK(pp_sign_digest(sk, d, tc, strlen(tc), s2, &e) == PP_OK);
    CHECK(pp_verify_digest(s2, d, NULL, sizeof msg, "m.pkl", pk, 1, 0, r) == PP_OK &&
          r->status == PP_SIG_VALID);
    free(s2);
    free(r);
}

static void test_manifest(void)
{
    static const struct {
        const char *p;
        int ok;
    } paths[] = {
        {"a", 1},     {"a/b.pkl", 1}, {"dir with space/x", 1},
        {"..a", 1},   {"", 0},        {"/a", 0},
        {"a/", 0},    {"a//b", 0},    {"./a", 0},
        {"a/./b", 0}, {"../a", 0},    {"a/..", 0},
        {"a\\b", 0},  {"a\tb", 0},    {"a\nb", 0},
        {"\x7f", 0},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        pp_error e;
        pp_error_clear(&e);
        pp_err rc = pp_manifest_path_check(paths[i].p, strlen(paths[i].p), "t", &e);
        CHECKF((rc == PP_OK) == paths[i].ok, "path '%s' %s", paths[i].p, e.msg);
    }
    char h[129];
    memset(h, 'a', 128);
    h[128] = 0;
    char text[1024];
    snprintf(text, sizeof text,
             "# pickleproof-manifest/v1 blake2b-512 directory\n# size 3\n%s  a\n"
             "# size 0\n%s  b/c\n",
             h, h);
    pp_manifest m;
    pp_error e;
    pp_error_clear(&e);
    pp_err rc = pp_manifest_parse((const uint8_t *)text, strlen(text), "M", &m, &e);
    CHECKF(rc == PP_OK && m.n == 2 && m.directory && m.e[0].size == 3, "manifest: %s",
           parse_err(rc, &e));
    char *out = NULL;
    size_t ol = 0;
    CHECK(pp_manifest_format(&m, &out, &ol, &e) == PP_OK && ol == strlen(text) &&
          memcmp(out, text, ol) == 0);
    free(out);
    pp_manifest_free(&m);
    static const char *const bad[] = {
        "# pickleproof-manifest/v1 blake2b-512 directory\n# size 3\n%s  b\n# size 0\n%s  a\n",
        "# pickleproof-manifest/v1 blake2b-512 directory\n# size 3\n%s  a\n# size 0\n%s  a\n",
        "# pickleproof-manifest/v1 blake2b-512 directory\n# size 3\n%s  a\n# size 0\n%s  a/b\n",
        "# pickleproof-manifest/v1 blake2b-512 everything\n# size 3\n%s  a\n# size 0\n%s  b\n",
        "# pickleproof-manifest/v1 blake2b-512 files\n# size 03\n%s  a\n# size 0\n%s  b\n",
        "# pickleproof-manifest/v1 blake2b-512 files\n# size 3\n%s a\n# size 0\n%s  b\n",
        "# pickleproof-manifest/v1 blake2b-512 files\n# size 3\n%s  a\n# size 0\n%s  b",
        "# pickleproof-manifest/v1 blake2b-512 files\n# size 3\n%s  ../a\n# size 0\n%s  b\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(text, sizeof text, bad[i], h, h); /* the table's templates, not input */
#pragma GCC diagnostic pop
        pp_error_clear(&e);
        rc = pp_manifest_parse((const uint8_t *)text, strlen(text), "M", &m, &e);
        CHECKF(rc == PP_E_SIGNATURE && m.n == 0, "bad manifest %zu: %s", i, e.msg);
    }
    /* uppercase hex is not canonical */
    snprintf(text, sizeof text, "# pickleproof-manifest/v1 blake2b-512 files\n# size 3\n%s  a\n",
             h);
    text[60] = 'A';
    pp_error_clear(&e);
    CHECK(pp_manifest_parse((const uint8_t *)text, strlen(text), "M", &m, &e) == PP_E_SIGNATURE);
}

int main(void)
{
    CHECK(sodium_init() >= 0);
    test_keyid();
    pp_seckey *sk = NULL;
    pp_pubkey pk;
    test_seckey_roundtrip(&sk, &pk);
    if (sk) {
        test_sign_verify(sk, &pk);
        pp_seckey_free(sk);
    }
    test_manifest();
    CHECK(strcmp(pp_errname(PP_E_SIGNATURE), "signature-error") == 0);
    return tap_done();
}
