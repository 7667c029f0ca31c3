/* Signatures: minisign-compatible Ed25519 keys and detached signatures (libsodium), and signed
 * manifests for multi-file models.
 *
 * Formats (byte-compatible with minisign 0.11; see ../shared/reference/sign-sandbox.md part A):
 *   public key  "untrusted comment: ...\n" + base64("Ed" | keynum[8] | pk[32]) + "\n"
 *   secret key  "untrusted comment: ...\n" + base64(158-byte struct, see pp_seckey) + "\n"
 *   signature   "untrusted comment: ...\n" + base64("ED" | keynum[8] | sig[64]) + "\n"
 *               "trusted comment: TEXT\n" + base64(global_sig[64]) + "\n"
 * where sig = Ed25519(BLAKE2b-512(file)) ("ED", prehashed) and global_sig = Ed25519(sig | TEXT).
 * Pure Ed25519 over the digest (crypto_sign_detached), never libsodium's Ed25519ph API.
 *
 * Our trusted comment: "timestamp:T\tfile:BASENAME\thashed\tpurpose:P\tsize:N". The verifier
 * checks file, size and purpose when present (minisign's own signatures carry only file).
 *
 * Ownership: parsers copy what they keep; nothing returned points into the input. Secret keys
 * live in sodium_malloc memory (guard pages, locked, wiped by pp_seckey_free). Every function
 * initialises libsodium itself; PP_E_INTERNAL if that fails.
 *
 * Limits: a signature file is at most PP_SIG_FILE_MAX bytes, an untrusted comment line at most
 * 1024 bytes and a trusted comment at most PP_SIG_TC_MAX bytes (minisign's buffers); key and
 * signature lines must decode to their exact sizes. A manifest holds at most PP_MANIFEST_MAX_FILES
 * files, paths of at most PP_MANIFEST_MAX_PATH bytes, PP_MANIFEST_MAX_DEPTH directories deep.
 */
#ifndef PP_SIGN_H
#define PP_SIGN_H

#include "pickleproof.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PP_KEYNUM_BYTES 8
#define PP_KEYID_CHARS 16 /* "%016" PRIX64 of the little-endian key number */
#define PP_SIG_TC_MAX 8192
#define PP_SIG_COMMENT_MAX 1024
#define PP_SIG_FILE_MAX 16384
#define PP_PUBKEY_FILE_MAX 4096
#define PP_SECKEY_FILE_MAX 4096

#define PP_PURPOSE_FILE "pickleproof-file/v1"
#define PP_PURPOSE_MANIFEST "pickleproof-manifest/v1"

/* ---- keys ----------------------------------------------------------------------------------- */

typedef struct pp_pubkey {
    uint8_t keynum[PP_KEYNUM_BYTES];
    uint8_t pk[32];
} pp_pubkey;

/* minisign's SeckeyStruct, byte for byte (158 bytes; all fields are byte arrays, no padding).
 * keynum, sk and chk are XORed with an scrypt stream when kdf_alg is "Sc"; "\0\0" = clear. */
typedef struct pp_seckey {
    uint8_t sig_alg[2];
    uint8_t kdf_alg[2];
    uint8_t chk_alg[2];
    uint8_t kdf_salt[32];
    uint8_t kdf_opslimit_le[8];
    uint8_t kdf_memlimit_le[8];
    uint8_t keynum[PP_KEYNUM_BYTES];
    uint8_t sk[64];
    uint8_t chk[32];
} pp_seckey;

/* "%016" PRIX64 of the key number read as a little-endian u64, as minisign prints it. */
void pp_keyid_format(const uint8_t keynum[PP_KEYNUM_BYTES], char out[PP_KEYID_CHARS + 1]);

/* Parses a public key: a minisign .pub file (comment line, then the base64 line), or the bare
 * 56-character base64 string (what minisign -P takes), with or without a final newline.
 * `origin` names the source in errors (PP_E_SIGNATURE). */
pp_err pp_pubkey_parse(const uint8_t *text, size_t len, const char *origin, pp_pubkey *out,
                       pp_error *err);
/* The .pub file text into out (at least 128 bytes); returns the length, or 0 if cap is short. */
size_t pp_pubkey_format(const pp_pubkey *pk, char *out, size_t cap);

/* Parses a secret key file into *out (sodium_malloc'd; free with pp_seckey_free). The key is
 * still encrypted when pp_seckey_encrypted() says so. */
pp_err pp_seckey_parse(const uint8_t *text, size_t len, const char *origin, pp_seckey **out,
                       pp_error *err);
bool pp_seckey_encrypted(const pp_seckey *sk);
/* Decrypts in place with scrypt at the limits stored in the key; a wrong password is
 * PP_E_SIGNATURE "wrong password". No-op for an unencrypted key. */
pp_err pp_seckey_decrypt(pp_seckey *sk, const char *password, size_t pwlen, const char *origin,
                         pp_error *err);
/* A fresh key pair with a random key number (unencrypted in memory). */
pp_err pp_seckey_generate(pp_seckey **out, pp_pubkey *pub, pp_error *err);
/* The secret key file text, encrypted with password (scrypt, opslimit/memlimit) or in clear if
 * password is NULL. *out is sodium_malloc'd and NUL-terminated; free it with pp_secret_free. */
pp_err pp_seckey_format(const pp_seckey *sk, const char *password, size_t pwlen, uint64_t opslimit,
                        uint64_t memlimit, char **out, size_t *outlen, pp_error *err);
void pp_seckey_pubkey(const pp_seckey *sk, pp_pubkey *out);
void pp_seckey_free(pp_seckey *sk);
void pp_secret_free(void *p);

/* ---- signatures ----------------------------------------------------------------------------- */

typedef struct pp_sigfile {
    uint8_t alg[2]; /* "ED" prehashed, "Ed" legacy */
    uint8_t keynum[PP_KEYNUM_BYTES];
    uint8_t sig[64];
    uint8_t global_sig[64];
    size_t tc_len;
    char tc[PP_SIG_TC_MAX + 1]; /* the trusted comment without its prefix, NUL-terminated */
} pp_sigfile;

/* Parses a .minisig file: exactly four lines (a CR before each LF is tolerated, as minisign
 * trims it), prefixes mandatory, exact decoded sizes, no control characters but TAB in the
 * trusted comment, nothing after the fourth line. PP_E_SIGNATURE names the line and reason. */
pp_err pp_sig_parse(const uint8_t *text, size_t len, const char *origin, pp_sigfile *out,
                    pp_error *err);
/* The .minisig text (malloc'd, NUL-terminated). untrusted may be NULL. */
pp_err pp_sig_format(const pp_sigfile *s, const char *untrusted, char **out, size_t *outlen,
                     pp_error *err);

/* Builds our trusted comment; file names with control characters are refused (PP_E_USAGE).
 * `note` (may be NULL) is appended as "\tnote:NOTE". Returns the length. */
pp_err pp_trusted_comment(char *out, size_t cap, uint64_t timestamp, const char *basename,
                          uint64_t size, const char *purpose, const char *note, size_t *len,
                          pp_error *err);

/* Signs a 64-byte BLAKE2b-512 digest ("ED") and the trusted comment into *out. */
pp_err pp_sign_digest(const pp_seckey *sk, const uint8_t digest[64], const char *tc, size_t tclen,
                      pp_sigfile *out, pp_error *err);

/* ---- verification --------------------------------------------------------------------------- */

typedef enum pp_sig_status {
    PP_SIG_VALID = 0,
    PP_SIG_UNSIGNED = 1, /* no signature given */
    PP_SIG_BAD = 2       /* malformed, wrong key, wrong algorithm, or does not verify */
} pp_sig_status;

#define PP_VERIFY_ALLOW_LEGACY 1u /* accept "Ed" (the whole message signed) */
#define PP_VERIFY_MANIFEST 2u     /* the signed file is a manifest: purpose must say so */
#define PP_VERIFY_NO_NAME 4u      /* do not check the trusted comment's file: field */

typedef struct pp_sig_result {
    pp_sig_status status;
    bool legacy;
    char keyid[PP_KEYID_CHARS + 1];          /* the signature's key id, once the file parsed */
    char reason[320];                        /* why BAD or UNSIGNED; empty when VALID */
    char trusted_comment[PP_SIG_TC_MAX + 1]; /* set only when VALID (after both signatures) */
} pp_sig_result;

/* The checks that need no message: the algorithm ("ED" only, unless PP_VERIFY_ALLOW_LEGACY)
 * and the key id (exactly one key in keys must carry it; both ids in the reason otherwise).
 * Returns that key, or NULL with a BAD verdict in *out. Lets a caller refuse before hashing. */
const pp_pubkey *pp_sig_key(const pp_sigfile *sig, const pp_pubkey *keys, size_t nkeys,
                            unsigned flags, pp_sig_result *out);

/* Verifies a parsed signature against a digest (and, for a legacy signature, the message
 * itself: msg may be NULL, then legacy signatures are BAD). size is the message length; name
 * the file's base name checked against "file:" unless PP_VERIFY_NO_NAME. Order: algorithm, key
 * id (both ids in the reason on a mismatch), signature, global signature, then the trusted
 * comment's fields. Returns PP_OK with a verdict in *out; an error only if libsodium fails. */
pp_err pp_verify_digest(const pp_sigfile *sig, const uint8_t digest[64], const uint8_t *msg,
                        uint64_t size, const char *name, const pp_pubkey *keys, size_t nkeys,
                        unsigned flags, pp_sig_result *out);

/* The whole check over bytes the caller owns: sig == NULL gives UNSIGNED; a signature file that
 * does not parse gives BAD with the parse error as the reason. Returns PP_OK with a verdict,
 * PP_E_USAGE when nkeys is 0. */
pp_err pp_verify_buffer(const uint8_t *data, size_t len, const char *name, const pp_pubkey *keys,
                        size_t nkeys, const uint8_t *sig, size_t siglen, unsigned flags,
                        pp_sig_result *out, pp_error *err);

/* Adds the keys of keyring text buf[0..n) (the format of pp_keyring_add_file; `path` names it
 * in errors). Needs at least one key. For the fuzz harness and tests: no file involved. */
pp_err pp_keyring_add_text(pp_keyring *k, const char *buf, size_t n, const char *path,
                           pp_error *err);
/* The keys of a keyring (validator/keyring.c). */
const pp_pubkey *pp_keyring_keys(const pp_keyring *k, size_t *n);

/* ---- manifests ------------------------------------------------------------------------------ */

/* Canonical text, b2sum-compatible (b2sum -c skips '#' lines):
 *   # pickleproof-manifest/v1 blake2b-512 directory|files
 *   # size N
 *   <128 lowercase hex>  <path>
 *   ... one size line and one digest line per file, sorted by path (bytewise) ...
 * Paths are relative, '/'-separated, with no empty, "." or ".." component, no backslash, no
 * control character. "directory" manifests cover every regular file under their directory
 * (minus the manifest and its signature); "files" manifests cover the listed files only. */
#define PP_MANIFEST_NAME "MANIFEST.pickleproof"
#define PP_MANIFEST_MAX_FILES 100000
#define PP_MANIFEST_MAX_PATH 4095
#define PP_MANIFEST_MAX_DEPTH 64

typedef struct pp_manifest_entry {
    char *path;
    uint64_t size;
    uint8_t digest[64];
} pp_manifest_entry;

typedef struct pp_manifest {
    pp_manifest_entry *e;
    size_t n, cap;
    bool directory;
} pp_manifest;

/* PP_OK if p is a canonical relative path; else PP_E_SIGNATURE with the reason. */
pp_err pp_manifest_path_check(const char *p, size_t len, const char *origin, pp_error *err);
pp_err pp_manifest_parse(const uint8_t *text, size_t len, const char *origin, pp_manifest *out,
                         pp_error *err);
/* Sorts, then rejects duplicates and a path that is also a directory of another path. */
pp_err pp_manifest_finish(pp_manifest *m, const char *origin, pp_error *err);
/* The canonical text (malloc'd, NUL-terminated); the manifest must be finished. */
pp_err pp_manifest_format(const pp_manifest *m, char **out, size_t *outlen, pp_error *err);
void pp_manifest_free(pp_manifest *m);

/* Adds the file at relpath under dirfd (opened component by component without following links:
 * a symlink anywhere in the path is PP_E_SIGNATURE), with its size and digest. */
pp_err pp_manifest_add_file(pp_manifest *m, int dirfd, const char *relpath, pp_error *err);
/* Adds every regular file under dirfd; a symlink, device, socket or FIFO is an error. Names in
 * `skip` (top-level only, NULL-terminated) are left out. */
pp_err pp_manifest_add_dir(pp_manifest *m, int dirfd, const char *const *skip, pp_error *err);

/* Checks the files under dirfd against m. report(ctx, path, problem) is called for each
 * problem ("missing", "changed", "size differs", "not listed", "symlink", ...). Returns the
 * number of problems (0 = every file matches); *err is set only for operational failures. */
size_t pp_manifest_check(const pp_manifest *m, int dirfd, const char *const *skip,
                         void (*report)(void *ctx, const char *path, const char *problem),
                         void *ctx, pp_error *err);

#endif
