/* BLAKE2b-512 (unkeyed, 64-byte output: the digest b2sum prints and minisign prehashes) over a
 * buffer or a file descriptor. */
#ifndef PP_B2_H
#define PP_B2_H

#include "pickleproof.h"

#include <stddef.h>
#include <stdint.h>

#define PP_B2_BYTES 64

/* Hashes len bytes of data (data may be NULL when len is 0). */
void pp_b2_buf(const uint8_t *data, size_t len, uint8_t out[PP_B2_BYTES]);

/* Hashes everything readable from fd (a regular file is mapped read-only and hashed in large
 * chunks; anything else is read). *nbytes gets the number of bytes hashed. `origin` names the
 * file in errors (PP_E_IO). The bytes hashed are the file's bytes at the time of reading: a caller
 * that must parse exactly the verified bytes hashes a buffer it owns instead. */
pp_err pp_b2_fd(int fd, const char *origin, uint8_t out[PP_B2_BYTES], uint64_t *nbytes,
                pp_error *err);

/* Lowercase hex of a digest into out[2 * PP_B2_BYTES + 1]. */
void pp_b2_hex(const uint8_t d[PP_B2_BYTES], char out[2 * PP_B2_BYTES + 1]);

#endif
