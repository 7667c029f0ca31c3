/* Signature-file parsers: every input goes through the public key, secret key (parse only; no
 * scrypt), signature and manifest parsers, and a parsed signature through the verifier with a
 * fixed key (key id, both signatures, the trusted comment's fields). Seeds in fuzz/corpus/sign/:
 * a key pair, signatures (ours, minisign's, legacy) and manifests. */
#include "sign.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pp_error err;
    pp_pubkey pk;
    pp_error_clear(&err);
    (void)pp_pubkey_parse(data, size, "fuzz.pub", &pk, &err);

    pp_seckey *sk = NULL;
    pp_error_clear(&err);
    if (pp_seckey_parse(data, size, "fuzz.key", &sk, &err) == PP_OK) pp_seckey_free(sk);

    pp_manifest m;
    pp_error_clear(&err);
    if (pp_manifest_parse(data, size, "fuzz.manifest", &m, &err) == PP_OK) pp_manifest_free(&m);

    /* the key of the seed signatures (fuzz/corpus/sign/our.pub), so mutations of a seed reach
     * the signature and trusted-comment checks */
    static const char pub[] = "RWSgyWMGJ/0wu8GVyAqmMAhZcGgJM8UgVO5CR9exjR5EPwP7DSJFpLe8";
    pp_error_clear(&err);
    if (pp_pubkey_parse((const uint8_t *)pub, sizeof pub - 1, "seed", &pk, &err) != PP_OK) abort();
    pp_sig_result *r = malloc(sizeof *r);
    if (!r) return 0;
    static const uint8_t msg[] = "hello\n";
    pp_error_clear(&err);
    (void)pp_verify_buffer(msg, sizeof msg - 1, "hello.txt", &pk, 1, data, size,
                           PP_VERIFY_ALLOW_LEGACY, r, &err);
    if (r->status == PP_SIG_VALID && r->trusted_comment[0] == 0 && size > 300)
        abort(); /* a valid verdict always carries its trusted comment */
    free(r);
    return 0;
}
