/* minisign-compatible keys and signatures, and the trusted comment's fields. Every file is
 * parsed with exact lengths: a base64 line must have exactly the characters of its structure and
 * decode to exactly its bytes (libsodium also refuses non-zero padding bits, so one structure has
 * one encoding). Manifests are in manifest.c-style code at the end of this file. */
#include "sign.h"

#include "b2.h"
#include "cursor.h"
#include "err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMMENT_PREFIX "untrusted comment: "
#define TC_PREFIX "trusted comment: "
/* minisign reads the trusted comment line with fgets into 8192 bytes including the prefix, the
 * newline and the NUL: a longer one would be split by minisign, so we refuse it. */
#define TC_TEXT_MAX (PP_SIG_TC_MAX - (sizeof TC_PREFIX - 1) - 2)
/* Same for the untrusted comment's 1024-byte buffer. */
#define COMMENT_LINE_MAX (PP_SIG_COMMENT_MAX - 2)

#define PUBKEY_BYTES 42
#define SIGSTRUCT_BYTES 74
#define SECKEY_BYTES 158
#define KEYBLOCK_BYTES 104 /* keynum | sk | chk: the part scrypt encrypts */

/* hostile limits for scrypt parameters read from a key file: minisign's SENSITIVE values are
 * 2^25 and 2^30 (1 GiB); anything far above is a corrupt or hostile file, not a key. */
#define OPSLIMIT_MAX ((uint64_t)1 << 32)
#define MEMLIMIT_MAX ((uint64_t)1 << 32)

_Static_assert(sizeof(pp_seckey) == SECKEY_BYTES, "pp_seckey must match minisign's layout");

static pp_err sodium_ready(pp_error *err)
{
    /* 1 means already initialised; only < 0 is a failure. */
    if (sodium_init() < 0)
        return pp_fail(err, PP_E_INTERNAL, 0, -1, "libsodium failed to initialise");
    return PP_OK;
}

static uint64_t le64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | (uint64_t)b[i];
    return v;
}

static void put_le64(uint8_t b[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

void pp_keyid_format(const uint8_t keynum[PP_KEYNUM_BYTES], char out[PP_KEYID_CHARS + 1])
{
    snprintf(out, PP_KEYID_CHARS + 1, "%016" PRIX64, le64(keynum));
}

/* Characters of the base64 (standard alphabet, padded) of n bytes. */
static size_t b64_chars(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* hostile: exact character count, full consumption and exact decoded size. */
static bool b64_exact(const uint8_t *s, size_t n, uint8_t *out, size_t outlen)
{
    if (n != b64_chars(outlen)) return false;
    /* libsodium 1.0.18 decodes some bytes >= 0x80 as if they were ASCII ('/' | 0x80 as '/'):
     * allow the alphabet only, '=' only as padding at the end. */
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = s[i];
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
        if (!alpha && !(ch == '=' && i + 2 >= n)) return false;
    }
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, outlen, (const char *)s, n, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    return got == outlen && end == (const char *)s + n;
}

/* Next line without its LF (and one CR before it, which minisign trims too). The last line of a
 * file may lack its LF when last_ok. */
static bool next_line(pp_cursor *c, const uint8_t **s, size_t *n, bool last_ok)
{
    if (!pp_cursor_line(c, s, n)) {
        if (!last_ok || pp_cursor_left(c) == 0) return false;
        *s = c->p + c->pos;
        *n = pp_cursor_left(c);
        c->pos = c->len;
    }
    if (*n && (*s)[*n - 1] == '\r') (*n)--;
    return true;
}

static bool has_prefix(const uint8_t *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

/* A comment may hold any byte but NUL, CR and LF (those would split or cut it); the trusted
 * comment is stricter because we print it: no control character but TAB. */
static bool clean_text(const uint8_t *s, size_t n, bool trusted)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = s[i];
        if (b == 0 || b == '\r' || b == '\n') return false;
        if (trusted && ((b < 0x20 && b != '\t') || b == 0x7f)) return false;
    }
    return true;
}

static pp_err bad(pp_error *err, const char *origin, uint64_t off, const char *what)
{
    return pp_fail(err, PP_E_SIGNATURE, off, -1, "%s: %s", origin ? origin : "(input)", what);
}

/* ---- public keys ---------------------------------------------------------------------------- */

static pp_err pubkey_decode(const uint8_t *s, size_t n, const char *origin, uint64_t off,
                            pp_pubkey *out, pp_error *err)
{
    uint8_t raw[PUBKEY_BYTES];
    if (n != b64_chars(PUBKEY_BYTES))
        return bad(err, origin, off, "public key line is not 56 base64 characters");
    if (!b64_exact(s, n, raw, sizeof raw))
        return bad(err, origin, off, "public key line is not valid base64");
    if (memcmp(raw, "Ed", 2) != 0)
        return bad(err, origin, off, "unsupported public key algorithm (not Ed)");
    memcpy(out->keynum, raw + 2, PP_KEYNUM_BYTES);
    memcpy(out->pk, raw + 10, 32);
    return PP_OK;
}

pp_err pp_pubkey_parse(const uint8_t *text, size_t len, const char *origin, pp_pubkey *out,
                       pp_error *err)
{
    pp_err rc = sodium_ready(err);
    if (rc) return rc;
    if (len > PP_PUBKEY_FILE_MAX) return bad(err, origin, 0, "public key file is too large");
    pp_cursor c;
    pp_cursor_init(&c, text, len, 0);
    const uint8_t *s;
    size_t n;
    if (!next_line(&c, &s, &n, true)) return bad(err, origin, 0, "empty public key");
    if (!has_prefix(s, n, COMMENT_PREFIX)) {
        /* the bare base64 form (minisign -P) */
        if (pp_cursor_left(&c) != 0)
            return bad(err, origin, 0, "public key file must start with \"" COMMENT_PREFIX "\"");
        return pubkey_decode(s, n, origin, 0, out, err);
    }
    if (n > COMMENT_LINE_MAX || !clean_text(s, n, false))
        return bad(err, origin, 0, "untrusted comment line too long or not text");
    uint64_t off = pp_cursor_offset(&c);
    if (!next_line(&c, &s, &n, true)) return bad(err, origin, off, "public key line missing");
    rc = pubkey_decode(s, n, origin, off, out, err);
    if (rc) return rc;
    if (pp_cursor_left(&c) != 0)
        return bad(err, origin, pp_cursor_offset(&c), "data after the public key line");
    return PP_OK;
}

size_t pp_pubkey_format(const pp_pubkey *pk, char *out, size_t cap)
{
    uint8_t raw[PUBKEY_BYTES];
    char b64[64];
    char id[PP_KEYID_CHARS + 1];
    memcpy(raw, "Ed", 2);
    memcpy(raw + 2, pk->keynum, PP_KEYNUM_BYTES);
    memcpy(raw + 10, pk->pk, 32);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    pp_keyid_format(pk->keynum, id);
    int k = snprintf(out, cap, COMMENT_PREFIX "minisign public key %s\n%s\n", id, b64);
    return k < 0 || (size_t)k >= cap ? 0 : (size_t)k;
}

/* ---- secret keys ---------------------------------------------------------------------------- */

static void seckey_chk(const pp_seckey *sk, uint8_t chk[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, sk->sig_alg, sizeof sk->sig_alg);
    crypto_generichash_update(&st, sk->keynum, sizeof sk->keynum);
    crypto_generichash_update(&st, sk->sk, sizeof sk->sk);
    crypto_generichash_final(&st, chk, 32);
}

/* The public half stored in sk[32..64] must be what the seed derives: a cheap integrity check
 * for unencrypted keys, whose checksum minisign may leave zero. */
static bool seckey_consistent(const pp_seckey *sk)
{
    uint8_t pk[32];
    uint8_t *tmp = sodium_malloc(64);
    if (!tmp) return false;
    crypto_sign_seed_keypair(pk, tmp, sk->sk);
    sodium_free(tmp);
    return sodium_memcmp(pk, sk->sk + 32, 32) == 0;
}

bool pp_seckey_encrypted(const pp_seckey *sk)
{
    return memcmp(sk->kdf_alg, "Sc", 2) == 0;
}

void pp_seckey_free(pp_seckey *sk)
{
    sodium_free(sk); /* sodium_free wipes the memory */
}

void pp_secret_free(void *p)
{
    sodium_free(p);
}

void pp_seckey_pubkey(const pp_seckey *sk, pp_pubkey *out)
{
    memcpy(out->keynum, sk->keynum, PP_KEYNUM_BYTES);
    memcpy(out->pk, sk->sk + 32, 32);
}

pp_err pp_seckey_parse(const uint8_t *text, size_t len, const char *origin, pp_seckey **out,
                       pp_error *err)
{
    *out = NULL;
    pp_err rc = sodium_ready(err);
    if (rc) return rc;
    if (len > PP_SECKEY_FILE_MAX) return bad(err, origin, 0, "secret key file is too large");
    pp_cursor c;
    pp_cursor_init(&c, text, len, 0);
    const uint8_t *s;
    size_t n;
    if (!next_line(&c, &s, &n, false) || !has_prefix(s, n, COMMENT_PREFIX))
        return bad(err, origin, 0, "secret key file must start with \"" COMMENT_PREFIX "\"");
    if (n > COMMENT_LINE_MAX) return bad(err, origin, 0, "untrusted comment line too long");
    uint64_t off = pp_cursor_offset(&c);
    if (!next_line(&c, &s, &n, true)) return bad(err, origin, off, "secret key line missing");
    if (n != b64_chars(SECKEY_BYTES))
        return bad(err, origin, off, "secret key line is not 212 base64 characters");
    if (pp_cursor_left(&c) != 0)
        return bad(err, origin, pp_cursor_offset(&c), "data after the secret key line");
    pp_seckey *sk = sodium_malloc(sizeof *sk);
    if (!sk) return pp_fail(err, PP_E_NOMEM, 0, -1, "%s: cannot allocate secure memory", origin);
    if (!b64_exact(s, n, (uint8_t *)sk, sizeof *sk)) {
        sodium_free(sk);
        return bad(err, origin, off, "secret key line is not valid base64");
    }
    const char *why = NULL;
    if (memcmp(sk->sig_alg, "Ed", 2) != 0)
        why = "unsupported signature algorithm (not Ed)";
    else if (memcmp(sk->chk_alg, "B2", 2) != 0)
        why = "unsupported checksum algorithm (not B2)";
    else if (!pp_seckey_encrypted(sk) && memcmp(sk->kdf_alg, "\0\0", 2) != 0)
        why = "unsupported key derivation function (not Sc or none)";
    else if (pp_seckey_encrypted(sk) &&
             (le64(sk->kdf_opslimit_le) > OPSLIMIT_MAX || le64(sk->kdf_memlimit_le) > MEMLIMIT_MAX))
        why = "scrypt limits out of range";
    else if (!pp_seckey_encrypted(sk) && !seckey_consistent(sk))
        why = "corrupt secret key (its public half does not match its seed)";
    if (why) {
        sodium_free(sk);
        return bad(err, origin, off, why);
    }
    *out = sk;
    return PP_OK;
}

pp_err pp_seckey_decrypt(pp_seckey *sk, const char *password, size_t pwlen, const char *origin,
                         pp_error *err)
{
    pp_err rc = sodium_ready(err);
    if (rc || !pp_seckey_encrypted(sk)) return rc;
    uint8_t *stream = sodium_malloc(KEYBLOCK_BYTES);
    if (!stream)
        return pp_fail(err, PP_E_NOMEM, 0, -1, "%s: cannot allocate secure memory", origin);
    uint64_t ops = le64(sk->kdf_opslimit_le), mem = le64(sk->kdf_memlimit_le);
    if (crypto_pwhash_scryptsalsa208sha256(stream, KEYBLOCK_BYTES, password, pwlen, sk->kdf_salt,
                                           ops, (size_t)mem) != 0) {
        sodium_free(stream);
        return pp_fail(err, PP_E_NOMEM, 0, -1,
                       "%s: scrypt failed (opslimit %" PRIu64 ", memlimit %" PRIu64 ")", origin,
                       ops, mem);
    }
    uint8_t *block = sk->keynum; /* keynum, sk and chk are contiguous (static assert above) */
    for (size_t i = 0; i < KEYBLOCK_BYTES; i++)
        block[i] ^= stream[i];
    uint8_t chk[32];
    seckey_chk(sk, chk);
    bool ok = sodium_memcmp(chk, sk->chk, 32) == 0 && seckey_consistent(sk);
    sodium_memzero(chk, sizeof chk);
    if (!ok) {
        /* leave the key as it was, still encrypted */
        for (size_t i = 0; i < KEYBLOCK_BYTES; i++)
            block[i] ^= stream[i];
        sodium_free(stream);
        return bad(err, origin, 0, "wrong password for this secret key");
    }
    sodium_free(stream);
    memset(sk->kdf_alg, 0, 2); /* decrypted in memory */
    return PP_OK;
}

pp_err pp_seckey_generate(pp_seckey **out, pp_pubkey *pub, pp_error *err)
{
    *out = NULL;
    pp_err rc = sodium_ready(err);
    if (rc) return rc;
    pp_seckey *sk = sodium_malloc(sizeof *sk);
    if (!sk) return pp_fail(err, PP_E_NOMEM, 0, -1, "cannot allocate secure memory");
    memset(sk, 0, sizeof *sk);
    memcpy(sk->sig_alg, "Ed", 2);
    memcpy(sk->chk_alg, "B2", 2);
    uint8_t pk[32];
    crypto_sign_keypair(pk, sk->sk);
    randombytes_buf(sk->keynum, sizeof sk->keynum);
    seckey_chk(sk, sk->chk);
    pp_seckey_pubkey(sk, pub);
    *out = sk;
    return PP_OK;
}

pp_err pp_seckey_format(const pp_seckey *sk, const char *password, size_t pwlen, uint64_t opslimit,
                        uint64_t memlimit, char **out, size_t *outlen, pp_error *err)
{
    *out = NULL;
    pp_err rc = sodium_ready(err);
    if (rc) return rc;
    if (pp_seckey_encrypted(sk))
        return pp_fail(err, PP_E_USAGE, 0, -1, "secret key is still encrypted");
    pp_seckey *t = sodium_malloc(sizeof *t);
    uint8_t *stream = sodium_malloc(KEYBLOCK_BYTES);
    size_t cap = sizeof COMMENT_PREFIX + 64 + b64_chars(SECKEY_BYTES) + 4;
    char *text = sodium_malloc(cap);
    if (!t || !stream || !text) {
        sodium_free(t);
        sodium_free(stream);
        sodium_free(text);
        return pp_fail(err, PP_E_NOMEM, 0, -1, "cannot allocate secure memory");
    }
    memcpy(t, sk, sizeof *t);
    seckey_chk(t, t->chk);
    if (password) {
        memcpy(t->kdf_alg, "Sc", 2);
        randombytes_buf(t->kdf_salt, sizeof t->kdf_salt);
        /* as minisign: halve the memory limit while scrypt cannot allocate it */
        for (;;) {
            if (crypto_pwhash_scryptsalsa208sha256(stream, KEYBLOCK_BYTES, password, pwlen,
                                                   t->kdf_salt, opslimit, (size_t)memlimit) == 0)
                break;
            if (memlimit / 2 < crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_INTERACTIVE) {
                sodium_free(t);
                sodium_free(stream);
                sodium_free(text);
                return pp_fail(err, PP_E_NOMEM, 0, -1, "scrypt failed (memlimit %" PRIu64 ")",
                               memlimit);
            }
            memlimit /= 2;
        }
        put_le64(t->kdf_opslimit_le, opslimit);
        put_le64(t->kdf_memlimit_le, memlimit);
        uint8_t *block = t->keynum;
        for (size_t i = 0; i < KEYBLOCK_BYTES; i++)
            block[i] ^= stream[i];
    } else {
        memset(t->kdf_alg, 0, 2);
        memset(t->kdf_salt, 0, sizeof t->kdf_salt);
        memset(t->kdf_opslimit_le, 0, 8);
        memset(t->kdf_memlimit_le, 0, 8);
    }
    size_t k = (size_t)snprintf(text, cap, COMMENT_PREFIX "%s\n",
                                password ? "minisign encrypted secret key"
                                         : "minisign secret key (not encrypted)");
    sodium_bin2base64(text + k, cap - k, (const unsigned char *)t, sizeof *t,
                      sodium_base64_VARIANT_ORIGINAL);
    k += strlen(text + k);
    text[k++] = '\n';
    text[k] = 0;
    sodium_free(t);
    sodium_free(stream);
    *out = text;
    *outlen = k;
    return PP_OK;
}

/* ---- signatures ----------------------------------------------------------------------------- */

pp_err pp_sig_parse(const uint8_t *text, size_t len, const char *origin, pp_sigfile *out,
                    pp_error *err)
{
    pp_err rc = sodium_ready(err);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    if (len > PP_SIG_FILE_MAX) return bad(err, origin, 0, "signature file is too large");
    pp_cursor c;
    pp_cursor_init(&c, text, len, 0);
    const uint8_t *s;
    size_t n;
    uint64_t off = 0;
    if (!next_line(&c, &s, &n, false) || !has_prefix(s, n, COMMENT_PREFIX))
        return bad(err, origin, off, "line 1 must start with \"" COMMENT_PREFIX "\"");
    if (n > COMMENT_LINE_MAX || !clean_text(s, n, false))
        return bad(err, origin, off, "line 1 (untrusted comment) too long or not text");

    off = pp_cursor_offset(&c);
    uint8_t raw[SIGSTRUCT_BYTES];
    if (!next_line(&c, &s, &n, false)) return bad(err, origin, off, "line 2 (signature) missing");
    if (n != b64_chars(SIGSTRUCT_BYTES))
        return bad(err, origin, off, "line 2 (signature) is not 100 base64 characters");
    if (!b64_exact(s, n, raw, sizeof raw))
        return bad(err, origin, off, "line 2 (signature) is not valid base64");
    if (memcmp(raw, "ED", 2) != 0 && memcmp(raw, "Ed", 2) != 0) {
        char m[80];
        snprintf(m, sizeof m, "unsupported signature algorithm 0x%02x%02x (not ED or Ed)", raw[0],
                 raw[1]);
        return bad(err, origin, off, m);
    }
    memcpy(out->alg, raw, 2);
    memcpy(out->keynum, raw + 2, PP_KEYNUM_BYTES);
    memcpy(out->sig, raw + 10, 64);

    off = pp_cursor_offset(&c);
    if (!next_line(&c, &s, &n, false) || !has_prefix(s, n, TC_PREFIX))
        return bad(err, origin, off, "line 3 must start with \"" TC_PREFIX "\"");
    s += sizeof TC_PREFIX - 1;
    n -= sizeof TC_PREFIX - 1;
    if (n > TC_TEXT_MAX) return bad(err, origin, off, "trusted comment too long");
    if (!clean_text(s, n, true))
        return bad(err, origin, off, "trusted comment holds a control character");
    memcpy(out->tc, s, n);
    out->tc[n] = 0;
    out->tc_len = n;

    off = pp_cursor_offset(&c);
    if (!next_line(&c, &s, &n, true))
        return bad(err, origin, off, "line 4 (global signature) missing");
    if (n != b64_chars(64) || !b64_exact(s, n, out->global_sig, 64))
        return bad(err, origin, off, "line 4 (global signature) is not 88 base64 characters");
    if (pp_cursor_left(&c) != 0) return bad(err, origin, pp_cursor_offset(&c), "data after line 4");
    return PP_OK;
}

pp_err pp_sig_format(const pp_sigfile *s, const char *untrusted, char **out, size_t *outlen,
                     pp_error *err)
{
    *out = NULL;
    if (!untrusted) untrusted = "signature from pickleproof secret key";
    size_t ul = strlen(untrusted);
    if (ul + sizeof COMMENT_PREFIX - 1 > COMMENT_LINE_MAX ||
        !clean_text((const uint8_t *)untrusted, ul, false))
        return pp_fail(err, PP_E_USAGE, 0, -1, "untrusted comment too long or not one line");
    uint8_t raw[SIGSTRUCT_BYTES];
    memcpy(raw, s->alg, 2);
    memcpy(raw + 2, s->keynum, PP_KEYNUM_BYTES);
    memcpy(raw + 10, s->sig, 64);
    char b1[104], b2[96]; /* 100 and 88 characters, NUL */
    sodium_bin2base64(b1, sizeof b1, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b2, sizeof b2, s->global_sig, 64, sodium_base64_VARIANT_ORIGINAL);
    size_t cap =
        sizeof COMMENT_PREFIX + ul + sizeof b1 + sizeof TC_PREFIX + s->tc_len + sizeof b2 + 8;
    char *t = malloc(cap);
    if (!t) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory");
    int k = snprintf(t, cap, COMMENT_PREFIX "%s\n%s\n" TC_PREFIX "%.*s\n%s\n", untrusted, b1,
                     (int)s->tc_len, s->tc, b2);
    if (k < 0 || (size_t)k >= cap) {
        free(t);
        return pp_fail(err, PP_E_INTERNAL, 0, -1, "signature text overflow");
    }
    *out = t;
    *outlen = (size_t)k;
    return PP_OK;
}

pp_err pp_trusted_comment(char *out, size_t cap, uint64_t timestamp, const char *basename,
                          uint64_t size, const char *purpose, const char *note, size_t *len,
                          pp_error *err)
{
    /* a tab in a name or note would forge a field; a control character would break the line */
    if (!clean_text((const uint8_t *)basename, strlen(basename), true) || strchr(basename, '\t'))
        return pp_fail(err, PP_E_USAGE, 0, -1, "file name holds a control character");
    if (note && (!clean_text((const uint8_t *)note, strlen(note), true) || strchr(note, '\t')))
        return pp_fail(err, PP_E_USAGE, 0, -1, "note holds a control character");
    int k = snprintf(out, cap,
                     "timestamp:%" PRIu64 "\tfile:%s\thashed\tpurpose:%s\tsize:%" PRIu64 "%s%s",
                     timestamp, basename, purpose, size, note ? "\tnote:" : "", note ? note : "");
    if (k < 0 || (size_t)k >= cap || (size_t)k > TC_TEXT_MAX)
        return pp_fail(err, PP_E_USAGE, 0, -1, "trusted comment too long (at most %zu bytes)",
                       (size_t)TC_TEXT_MAX);
    *len = (size_t)k;
    return PP_OK;
}

pp_err pp_sign_digest(const pp_seckey *sk, const uint8_t digest[64], const char *tc, size_t tclen,
                      pp_sigfile *out, pp_error *err)
{
    pp_err rc = sodium_ready(err);
    if (rc) return rc;
    if (pp_seckey_encrypted(sk))
        return pp_fail(err, PP_E_USAGE, 0, -1, "secret key is still encrypted");
    if (tclen > TC_TEXT_MAX || !clean_text((const uint8_t *)tc, tclen, true))
        return pp_fail(err, PP_E_USAGE, 0, -1, "trusted comment too long or not text");
    memset(out, 0, sizeof *out);
    memcpy(out->alg, "ED", 2);
    memcpy(out->keynum, sk->keynum, PP_KEYNUM_BYTES);
    /* Pure Ed25519 over the 64-byte digest, as minisign: not crypto_sign_init/update/final
     * (Ed25519ph, another scheme). */
    crypto_sign_detached(out->sig, NULL, digest, 64, sk->sk);
    memcpy(out->tc, tc, tclen);
    out->tc[tclen] = 0;
    out->tc_len = tclen;
    uint8_t *m = malloc(64 + tclen);
    if (!m) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory");
    memcpy(m, out->sig, 64);
    memcpy(m + 64, tc, tclen);
    crypto_sign_detached(out->global_sig, NULL, m, 64 + tclen, sk->sk);
    free(m);
    return PP_OK;
}

/* ---- verification --------------------------------------------------------------------------- */

static pp_sig_status verdict(pp_sig_result *out, pp_sig_status st, const char *fmt, ...)
    PP_PRINTF(3, 4);
static pp_sig_status verdict(pp_sig_result *out, pp_sig_status st, const char *fmt, ...)
{
    out->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    return st;
}

/* The value of field `key` in a tab-separated trusted comment: 0 absent, 1 found once (into
 * *v, *vn), -1 stated twice (ambiguous: refuse). */
static int tc_field(const char *tc, size_t len, const char *key, const char **v, size_t *vn)
{
    size_t kl = strlen(key);
    int found = 0;
    for (size_t i = 0; i <= len;) {
        const char *f = tc + i;
        const char *tab = memchr(f, '\t', len - i);
        size_t fl = tab ? (size_t)(tab - f) : len - i;
        if (fl > kl && memcmp(f, key, kl) == 0 && f[kl] == ':') {
            if (found) return -1;
            found = 1;
            *v = f + kl + 1;
            *vn = fl - kl - 1;
        }
        i += fl + 1;
    }
    return found;
}

/* hostile: a decimal without sign, leading zero or overflow */
static bool parse_u64(const char *s, size_t n, uint64_t *v)
{
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

const pp_pubkey *pp_sig_key(const pp_sigfile *sig, const pp_pubkey *keys, size_t nkeys,
                            unsigned flags, pp_sig_result *out)
{
    memset(out, 0, sizeof *out);
    out->status = PP_SIG_BAD;
    pp_keyid_format(sig->keynum, out->keyid);
    bool legacy = memcmp(sig->alg, "Ed", 2) == 0;
    out->legacy = legacy;
    if (!legacy && memcmp(sig->alg, "ED", 2) != 0) {
        verdict(out, PP_SIG_BAD, "unsupported signature algorithm");
        return NULL;
    }
    /* hostile: "Ed" signs the message itself; relabelling a prehashed signature as "Ed" makes it
     * verify a 64-byte file holding the digest. Only an explicit opt-in accepts legacy. */
    if (legacy && !(flags & PP_VERIFY_ALLOW_LEGACY)) {
        verdict(out, PP_SIG_BAD,
                "legacy (Ed, not prehashed) signature refused; only ED is "
                "accepted without --allow-legacy");
        return NULL;
    }
    /* key id before any cryptography: a signature by another key is reported as such */
    const pp_pubkey *key = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < nkeys; i++)
        if (memcmp(keys[i].keynum, sig->keynum, PP_KEYNUM_BYTES) == 0) {
            key = key ? key : &keys[i];
            matches++;
        }
    if (matches > 1) {
        verdict(out, PP_SIG_BAD, "%zu public keys share key id %s", matches, out->keyid);
        return NULL;
    }
    if (!key) {
        char want[PP_KEYID_CHARS + 1] = "";
        if (nkeys) pp_keyid_format(keys[0].keynum, want);
        verdict(out, PP_SIG_BAD, "wrong key: signature key id is %s, public key id is %s%s",
                out->keyid, want, nkeys > 1 ? " (and others)" : "");
        return NULL;
    }
    return key;
}

pp_err pp_verify_digest(const pp_sigfile *sig, const uint8_t digest[64], const uint8_t *msg,
                        uint64_t size, const char *name, const pp_pubkey *keys, size_t nkeys,
                        unsigned flags, pp_sig_result *out)
{
    if (sodium_init() < 0) {
        memset(out, 0, sizeof *out);
        out->status = PP_SIG_BAD;
        return PP_E_INTERNAL;
    }
    const pp_pubkey *key = pp_sig_key(sig, keys, nkeys, flags, out);
    if (!key) return PP_OK;
    bool legacy = out->legacy;
    if (legacy && !msg && size) {
        verdict(out, PP_SIG_BAD, "legacy signature needs the whole message");
        return PP_OK;
    }
    int v = legacy ? crypto_sign_verify_detached(sig->sig, msg ? msg : (const uint8_t *)"", size,
                                                 key->pk)
                   : crypto_sign_verify_detached(sig->sig, digest, 64, key->pk);
    if (v != 0) {
        verdict(out, PP_SIG_BAD,
                "signature verification failed (the file or the signature "
                "was changed)");
        return PP_OK;
    }
    uint8_t *m = malloc(64 + sig->tc_len);
    if (!m) return PP_E_NOMEM;
    memcpy(m, sig->sig, 64);
    memcpy(m + 64, sig->tc, sig->tc_len);
    v = crypto_sign_verify_detached(sig->global_sig, m, 64 + sig->tc_len, key->pk);
    free(m);
    if (v != 0) {
        verdict(out, PP_SIG_BAD, "trusted comment signature verification failed");
        return PP_OK;
    }
    /* the trusted comment is authentic from here on: check what it states */
    const char *fv;
    size_t fn;
    int r = tc_field(sig->tc, sig->tc_len, "purpose", &fv, &fn);
    const char *want = (flags & PP_VERIFY_MANIFEST) ? PP_PURPOSE_MANIFEST : PP_PURPOSE_FILE;
    if (r < 0 || (r == 1 && (fn != strlen(want) || memcmp(fv, want, fn) != 0))) {
        verdict(out, PP_SIG_BAD, "trusted comment states purpose '%.*s', expected '%s'",
                r < 0 ? 1 : (int)fn, r < 0 ? "?" : fv, want);
        return PP_OK;
    }
    r = tc_field(sig->tc, sig->tc_len, "size", &fv, &fn);
    uint64_t stated;
    if (r < 0 || (r == 1 && !parse_u64(fv, fn, &stated))) {
        verdict(out, PP_SIG_BAD, "trusted comment states a malformed size");
        return PP_OK;
    }
    if (r == 1 && stated != size) {
        verdict(out, PP_SIG_BAD, "trusted comment states size %" PRIu64 ", file has %" PRIu64,
                stated, size);
        return PP_OK;
    }
    r = tc_field(sig->tc, sig->tc_len, "file", &fv, &fn);
    if (r < 0) {
        verdict(out, PP_SIG_BAD, "trusted comment states the file name twice");
        return PP_OK;
    }
    if (r == 1 && name && !(flags & PP_VERIFY_NO_NAME) &&
        (fn != strlen(name) || memcmp(fv, name, fn) != 0)) {
        verdict(out, PP_SIG_BAD, "trusted comment names file '%.*s', not '%s'",
                fn > 200 ? 200 : (int)fn, fv, name);
        return PP_OK;
    }
    out->status = PP_SIG_VALID;
    memcpy(out->trusted_comment, sig->tc, sig->tc_len + 1);
    return PP_OK;
}

pp_err pp_verify_buffer(const uint8_t *data, size_t len, const char *name, const pp_pubkey *keys,
                        size_t nkeys, const uint8_t *sig, size_t siglen, unsigned flags,
                        pp_sig_result *out, pp_error *err)
{
    memset(out, 0, sizeof *out);
    out->status = PP_SIG_BAD;
    pp_err rc = sodium_ready(err);
    if (rc) return rc;
    if (nkeys == 0) return pp_fail(err, PP_E_USAGE, 0, -1, "no public key to verify with");
    if (!sig) {
        verdict(out, PP_SIG_UNSIGNED, "no signature");
        return PP_OK;
    }
    pp_sigfile *sf = malloc(sizeof *sf);
    if (!sf) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory");
    pp_error perr;
    pp_error_clear(&perr);
    if (pp_sig_parse(sig, siglen, "signature", sf, &perr) != PP_OK) {
        free(sf);
        verdict(out, PP_SIG_BAD, "malformed %s", perr.msg);
        return PP_OK;
    }
    if (!pp_sig_key(sf, keys, nkeys, flags, out)) { /* refused before hashing */
        free(sf);
        return PP_OK;
    }
    uint8_t digest[64];
    if (memcmp(sf->alg, "ED", 2) == 0)
        pp_b2_buf(data, len, digest);
    else
        memset(digest, 0, sizeof digest);
    rc = pp_verify_digest(sf, digest, data, len, name, keys, nkeys, flags, out);
    free(sf);
    if (rc) return pp_fail(err, rc, 0, -1, "signature verification failed internally");
    return PP_OK;
}

/* ---- manifests ------------------------------------------------------------------------------ */

#define MANIFEST_HEADER "# pickleproof-manifest/v1 blake2b-512 "

pp_err pp_manifest_path_check(const char *p, size_t len, const char *origin, pp_error *err)
{
    if (len == 0) return bad(err, origin, 0, "empty path");
    if (len > PP_MANIFEST_MAX_PATH) return bad(err, origin, 0, "path too long");
    if (p[0] == '/') return bad(err, origin, 0, "absolute path");
    size_t comp = 0, depth = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '/') {
            const char *c = p + i - comp;
            if (comp == 0) return bad(err, origin, 0, "empty path component");
            if ((comp == 1 && c[0] == '.') || (comp == 2 && c[0] == '.' && c[1] == '.'))
                return bad(err, origin, 0, "path component . or .. (escapes or is not canonical)");
            if (++depth > PP_MANIFEST_MAX_DEPTH) return bad(err, origin, 0, "path too deep");
            comp = 0;
            continue;
        }
        uint8_t b = (uint8_t)p[i];
        if (b < 0x20 || b == 0x7f || b == '\\')
            return bad(err, origin, 0, "path holds a control character or backslash");
        comp++;
    }
    return PP_OK;
}

void pp_manifest_free(pp_manifest *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].path);
    free(m->e);
    m->e = NULL;
    m->n = m->cap = 0;
}

static pp_err manifest_push(pp_manifest *m, const char *path, size_t len, uint64_t size,
                            const uint8_t digest[64], pp_error *err)
{
    if (m->n >= PP_MANIFEST_MAX_FILES)
        return pp_fail(err, PP_E_SIGNATURE, 0, -1, "manifest: more than %d files",
                       PP_MANIFEST_MAX_FILES);
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 16;
        pp_manifest_entry *ne = realloc(m->e, nc * sizeof *ne);
        if (!ne) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory");
        m->e = ne;
        m->cap = nc;
    }
    char *p = malloc(len + 1);
    if (!p) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory");
    memcpy(p, path, len);
    p[len] = 0;
    m->e[m->n].path = p;
    m->e[m->n].size = size;
    memcpy(m->e[m->n].digest, digest, 64);
    m->n++;
    return PP_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const pp_manifest_entry *)a)->path, ((const pp_manifest_entry *)b)->path);
}

static bool manifest_has(const pp_manifest *m, const char *path)
{
    pp_manifest_entry key = {.path = (char *)path};
    return bsearch(&key, m->e, m->n, sizeof *m->e, cmp_entry) != NULL;
}

/* Sorted input: strictly ascending, and no path is a directory of another. */
static pp_err manifest_check_sorted(const pp_manifest *m, const char *origin, pp_error *err)
{
    for (size_t i = 1; i < m->n; i++) {
        int c = strcmp(m->e[i - 1].path, m->e[i].path);
        if (c == 0) return bad(err, origin, 0, "duplicate path");
        if (c > 0) return bad(err, origin, 0, "paths not sorted");
    }
    char buf[PP_MANIFEST_MAX_PATH + 1];
    for (size_t i = 0; i < m->n; i++) {
        const char *p = m->e[i].path;
        for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
            size_t k = (size_t)(s - p);
            memcpy(buf, p, k);
            buf[k] = 0;
            if (manifest_has(m, buf))
                return bad(err, origin, 0, "a path is both a file and a directory");
        }
    }
    return PP_OK;
}

pp_err pp_manifest_finish(pp_manifest *m, const char *origin, pp_error *err)
{
    if (m->n) qsort(m->e, m->n, sizeof *m->e, cmp_entry);
    return manifest_check_sorted(m, origin, err);
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* uppercase is not canonical */
}

pp_err pp_manifest_parse(const uint8_t *text, size_t len, const char *origin, pp_manifest *out,
                         pp_error *err)
{
    memset(out, 0, sizeof *out);
    pp_cursor c;
    pp_cursor_init(&c, text, len, 0);
    const uint8_t *s;
    size_t n;
    if (!pp_cursor_line(&c, &s, &n) || !has_prefix(s, n, MANIFEST_HEADER))
        return bad(err, origin, 0, "not a pickleproof manifest (first line)");
    size_t hl = sizeof MANIFEST_HEADER - 1;
    if (n - hl == 9 && memcmp(s + hl, "directory", 9) == 0)
        out->directory = true;
    else if (!(n - hl == 5 && memcmp(s + hl, "files", 5) == 0))
        return bad(err, origin, 0, "manifest mode is not 'directory' or 'files'");
    pp_err rc = PP_OK;
    while (rc == PP_OK && pp_cursor_left(&c)) {
        uint64_t off = pp_cursor_offset(&c);
        uint64_t size;
        if (!pp_cursor_line(&c, &s, &n) || !has_prefix(s, n, "# size ") ||
            !parse_u64((const char *)s + 7, n - 7, &size)) {
            rc = bad(err, origin, off, "expected '# size N' line");
            break;
        }
        off = pp_cursor_offset(&c);
        if (!pp_cursor_line(&c, &s, &n) || n < 131 || s[128] != ' ' || s[129] != ' ') {
            rc = bad(err, origin, off, "expected '<128 hex>  <path>' line");
            break;
        }
        uint8_t d[64];
        for (size_t i = 0; i < 64; i++) {
            int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                rc = bad(err, origin, off, "digest is not 128 lowercase hex digits");
                break;
            }
            d[i] = (uint8_t)(hi << 4 | lo);
        }
        if (rc) break;
        const char *path = (const char *)s + 130;
        size_t pl = n - 130;
        if (memchr(path, 0, pl)) {
            rc = bad(err, origin, off, "path holds a NUL byte");
            break;
        }
        if ((rc = pp_manifest_path_check(path, pl, origin, err)) != PP_OK) break;
        rc = manifest_push(out, path, pl, size, d, err);
    }
    if (rc == PP_OK) rc = manifest_check_sorted(out, origin, err);
    if (rc != PP_OK) pp_manifest_free(out);
    return rc;
}

pp_err pp_manifest_format(const pp_manifest *m, char **out, size_t *outlen, pp_error *err)
{
    size_t cap = sizeof MANIFEST_HEADER + 16;
    for (size_t i = 0; i < m->n; i++)
        cap += 32 + 130 + strlen(m->e[i].path) + 1;
    char *t = malloc(cap);
    if (!t) return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory");
    size_t k =
        (size_t)snprintf(t, cap, MANIFEST_HEADER "%s\n", m->directory ? "directory" : "files");
    for (size_t i = 0; i < m->n; i++) {
        char hex[129];
        pp_b2_hex(m->e[i].digest, hex);
        k += (size_t)snprintf(t + k, cap - k, "# size %" PRIu64 "\n%s  %s\n", m->e[i].size, hex,
                              m->e[i].path);
    }
    *out = t;
    *outlen = k;
    return PP_OK;
}

/* Opens relpath under dirfd one component at a time with O_NOFOLLOW, so neither a symlinked
 * directory nor a symlinked file is followed. Returns the fd, or -1 with *why set. */
static int open_beneath(int dirfd, const char *relpath, const char **why)
{
    char buf[PP_MANIFEST_MAX_PATH + 1];
    size_t len = strlen(relpath);
    if (len > PP_MANIFEST_MAX_PATH) {
        *why = "path too long";
        return -1;
    }
    memcpy(buf, relpath, len + 1);
    int cur = dirfd;
    char *comp = buf;
    for (;;) {
        char *slash = strchr(comp, '/');
        if (slash) *slash = 0;
        int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (slash ? O_DIRECTORY : O_NONBLOCK);
        int fd = openat(cur, comp, flags);
        int e = errno;
        if (fd < 0) {
            struct stat st;
            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                *why = "symlink in path (links are not followed)";
            else if (e == ENOENT)
                *why = "missing";
            else if (e == ENOTDIR)
                *why = "a path component is not a directory";
            else
                *why = "cannot open";
        }
        if (cur != dirfd) close(cur);
        if (fd < 0) return -1;
        if (!slash) {
            struct stat st;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                *why = "not a regular file";
                return -1;
            }
            return fd;
        }
        cur = fd;
        comp = slash + 1;
    }
}

pp_err pp_manifest_add_file(pp_manifest *m, int dirfd, const char *relpath, pp_error *err)
{
    pp_err rc = pp_manifest_path_check(relpath, strlen(relpath), relpath, err);
    if (rc) return rc;
    const char *why = NULL;
    int fd = open_beneath(dirfd, relpath, &why);
    if (fd < 0) return pp_fail(err, PP_E_SIGNATURE, 0, -1, "%s: %s", relpath, why);
    uint8_t d[64];
    uint64_t size = 0;
    rc = pp_b2_fd(fd, relpath, d, &size, err);
    close(fd);
    if (rc) return rc;
    return manifest_push(m, relpath, strlen(relpath), size, d, err);
}

static bool skipped(const char *name, const char *const *skip)
{
    for (; skip && *skip; skip++)
        if (strcmp(name, *skip) == 0) return true;
    return false;
}

/* Visits every entry under dirfd (depth-first); visit returns nonzero to stop. kind: 'f' regular
 * file, 'l' symlink, 'o' anything else; directories are descended into. */
typedef int (*visit_fn)(void *ctx, const char *path, char kind);

static pp_err walk(int dirfd, char *path, size_t plen, int depth, const char *const *skip,
                   visit_fn visit, void *ctx, pp_error *err)
{
    if (depth > PP_MANIFEST_MAX_DEPTH)
        return pp_fail(err, PP_E_SIGNATURE, 0, -1, "%s: directories nested too deep", path);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return pp_fail(err, PP_E_IO, 0, -1, "%s: cannot read directory: %s", plen ? path : ".",
                       strerror(errno));
    }
    pp_err rc = PP_OK;
    struct dirent *e;
    while (rc == PP_OK && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0) continue;
        if (depth == 0 && skipped(nm, skip)) continue;
        size_t nl = strlen(nm);
        if (plen + 1 + nl > PP_MANIFEST_MAX_PATH) {
            rc = pp_fail(err, PP_E_SIGNATURE, 0, -1, "%s/%s: path too long", path, nm);
            break;
        }
        size_t np = plen;
        if (plen) path[np++] = '/';
        memcpy(path + np, nm, nl + 1);
        np += nl;
        struct stat st;
        if (fstatat(dirfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = pp_fail(err, PP_E_IO, 0, -1, "%s: stat: %s", path, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, nm, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = pp_fail(err, PP_E_IO, 0, -1, "%s: cannot open directory: %s", path,
                             strerror(errno));
            } else {
                rc = walk(sub, path, np, depth + 1, skip, visit, ctx, err);
                close(sub);
            }
        } else if (visit(ctx, path, S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' : 'o')) {
            rc = err && err->code ? err->code : PP_E_SIGNATURE;
        }
        path[plen] = 0;
    }
    closedir(d);
    return rc;
}

typedef struct add_ctx {
    pp_manifest *m;
    int root;
    pp_error *err;
} add_ctx;

static int add_visit(void *vctx, const char *path, char kind)
{
    add_ctx *a = vctx;
    if (kind == 'l') {
        pp_fail(a->err, PP_E_SIGNATURE, 0, -1, "%s: symlink (links are not signed)", path);
        return 1;
    }
    if (kind == 'o') {
        pp_fail(a->err, PP_E_SIGNATURE, 0, -1, "%s: not a regular file", path);
        return 1;
    }
    return pp_manifest_add_file(a->m, a->root, path, a->err) != PP_OK;
}

pp_err pp_manifest_add_dir(pp_manifest *m, int dirfd, const char *const *skip, pp_error *err)
{
    char path[PP_MANIFEST_MAX_PATH + 2] = "";
    add_ctx a = {m, dirfd, err};
    return walk(dirfd, path, 0, 0, skip, add_visit, &a, err);
}

typedef struct check_ctx {
    const pp_manifest *m;
    void (*report)(void *ctx, const char *path, const char *problem);
    void *rctx;
    size_t problems;
} check_ctx;

static int check_visit(void *vctx, const char *path, char kind)
{
    check_ctx *c = vctx;
    if (kind == 'l') {
        c->report(c->rctx, path, "symlink (links are not followed)");
        c->problems++;
    } else if (kind == 'o') {
        c->report(c->rctx, path, "not a regular file");
        c->problems++;
    } else if (!manifest_has(c->m, path)) {
        c->report(c->rctx, path, "not listed in the manifest (added or renamed)");
        c->problems++;
    }
    return 0;
}

size_t pp_manifest_check(const pp_manifest *m, int dirfd, const char *const *skip,
                         void (*report)(void *ctx, const char *path, const char *problem),
                         void *ctx, pp_error *err)
{
    check_ctx c = {m, report, ctx, 0};
    for (size_t i = 0; i < m->n; i++) {
        const char *why = NULL;
        int fd = open_beneath(dirfd, m->e[i].path, &why);
        if (fd < 0) {
            report(ctx, m->e[i].path, why);
            c.problems++;
            continue;
        }
        uint8_t d[64];
        uint64_t size = 0;
        pp_error herr;
        pp_error_clear(&herr);
        pp_err rc = pp_b2_fd(fd, m->e[i].path, d, &size, &herr);
        close(fd);
        if (rc) {
            report(ctx, m->e[i].path, herr.msg);
            c.problems++;
        } else if (size != m->e[i].size) {
            report(ctx, m->e[i].path, "size differs from the manifest");
            c.problems++;
        } else if (sodium_memcmp(d, m->e[i].digest, 64) != 0) {
            report(ctx, m->e[i].path, "content changed (BLAKE2b-512 differs)");
            c.problems++;
        }
    }
    if (m->directory) {
        char path[PP_MANIFEST_MAX_PATH + 2] = "";
        if (walk(dirfd, path, 0, 0, skip, check_visit, &c, err) != PP_OK && c.problems == 0)
            c.problems++;
    }
    return c.problems;
}
