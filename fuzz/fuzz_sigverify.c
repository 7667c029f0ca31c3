/* Signing and verification as a pair: the input is the message. It is signed with a fixed key
 * (fuzz/corpus/sign/our.key), and then
 *   - the signature verifies (VALID, with its trusted comment);
 *   - the message with one bit flipped, one byte more or one byte less never verifies;
 *   - the signature with one byte of its trusted comment changed, or one bit of either Ed25519
 *     signature flipped, never verifies;
 *   - the signature checked under another file name never verifies.
 * The first bytes of the input choose which bit and byte are changed. */
#include "b2.h"
#include "fuzz_common.h"
#include "sign.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char seckey[] =
    "untrusted comment: minisign secret key (not encrypted)\n"
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAoMljBif9MLsmkjwd+LdR"
    "842ssh+Mjg14uJ4wajwiRL49iHcKljsSFsGVyAqmMAhZcGgJM8UgVO5CR9exjR5EPwP7DSJFpLe8rWfeZyoXanW3DKKo"
    "FH2E9gUmmL8FUsbUbzowVFaTPBg=\n";

static pp_sig_status verify(const uint8_t *msg, size_t n, const char *name, const pp_pubkey *pk,
                            const pp_sigfile *s)
{
    char *text = NULL;
    size_t len = 0;
    pp_error err;
    pp_error_clear(&err);
    check(pp_sig_format(s, NULL, &text, &len, &err) == PP_OK);
    pp_sig_result *r = malloc(sizeof *r);
    check(r != NULL);
    pp_error_clear(&err);
    check(pp_verify_buffer(msg, n, name, pk, 1, (const uint8_t *)text, len, 0, r, &err) == PP_OK);
    pp_sig_status st = r->status;
    if (st == PP_SIG_VALID) check(strcmp(r->trusted_comment, s->tc) == 0);
    free(r);
    free(text);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pp_seckey *sk;
    static pp_pubkey pk;
    pp_error err;
    if (!sk) {
        pp_error_clear(&err);
        check(pp_seckey_parse((const uint8_t *)seckey, sizeof seckey - 1, "fuzz", &sk, &err) ==
              PP_OK);
        pp_seckey_pubkey(sk, &pk);
    }
    uint8_t d[64];
    pp_b2_buf(data, size, d);
    char tc[512];
    size_t tcl;
    pp_error_clear(&err);
    check(pp_trusted_comment(tc, sizeof tc, 1795615594, "m.bin", size, PP_PURPOSE_FILE, NULL, &tcl,
                             &err) == PP_OK);
    pp_sigfile *s = malloc(sizeof *s), *t = malloc(sizeof *t);
    uint8_t *m = malloc(size + 1);
    check(s && t && m);
    check(pp_sign_digest(sk, d, tc, tcl, s, &err) == PP_OK);
    check(verify(data, size, "m.bin", &pk, s) == PP_SIG_VALID);

    size_t pick = size ? (size_t)data[0] * 131u + (size > 1 ? data[1] : 0u) : 0;
    if (size) {
        memcpy(m, data, size);
        m[pick % size] ^= (uint8_t)(1u << (pick % 8));
        check(verify(m, size, "m.bin", &pk, s) == PP_SIG_BAD);
        check(verify(data, size - 1, "m.bin", &pk, s) == PP_SIG_BAD);
    }
    memcpy(m, data, size);
    m[size] = (uint8_t)pick;
    check(verify(m, size + 1, "m.bin", &pk, s) == PP_SIG_BAD);
    check(verify(data, size, "n.bin", &pk, s) == PP_SIG_BAD);

    *t = *s;
    size_t i = pick % t->tc_len;
    t->tc[i] = t->tc[i] == 'x' ? 'y' : 'x';
    check(verify(data, size, "m.bin", &pk, t) == PP_SIG_BAD);
    *t = *s;
    t->sig[pick % 64] ^= (uint8_t)(1u << (pick % 8));
    check(verify(data, size, "m.bin", &pk, t) == PP_SIG_BAD);
    *t = *s;
    t->global_sig[pick % 64] ^= (uint8_t)(1u << (pick % 8));
    check(verify(data, size, "m.bin", &pk, t) == PP_SIG_BAD);
    free(s);
    free(t);
    free(m);
    return 0;
}
