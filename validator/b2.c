/* BLAKE2b-512 through libsodium's crypto_generichash. Regular files are mapped and hashed in
 * 64 MiB windows: hashing from the page cache through a mapping avoids the copy read() makes, and
 * windows bound the address space used at once. A regular file truncated by another process
 * while it is mapped raises SIGBUS: callers that face hostile writers hash bytes they own. */
#include "b2.h"

#include "err.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WINDOW ((size_t)64 << 20)
#define UPDATE ((size_t)1 << 20)

void pp_b2_buf(const uint8_t *data, size_t len, uint8_t out[PP_B2_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, PP_B2_BYTES);
    /* libsodium takes an unsigned long long length; feed bounded pieces anyway so a huge buffer
     * never depends on that. */
    for (size_t off = 0; off < len;) {
        size_t n = len - off < UPDATE ? len - off : UPDATE;
        crypto_generichash_update(&st, data + off, n);
        off += n;
    }
    crypto_generichash_final(&st, out, PP_B2_BYTES);
}

static pp_err hash_read(int fd, const char *origin, crypto_generichash_state *st, uint64_t *n,
                        pp_error *err)
{
    uint8_t buf[1 << 16];
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return pp_fail(err, PP_E_IO, *n, -1, "%s: read: %s", origin, strerror(errno));
        if (k == 0) return PP_OK;
        crypto_generichash_update(st, buf, (unsigned long long)k);
        *n += (uint64_t)k;
    }
}

pp_err pp_b2_fd(int fd, const char *origin, uint8_t out[PP_B2_BYTES], uint64_t *nbytes,
                pp_error *err)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, PP_B2_BYTES);
    uint64_t n = 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return pp_fail(err, PP_E_IO, 0, -1, "%s: stat: %s", origin, strerror(errno));
    pp_err rc = PP_OK;
    if (S_ISREG(sb.st_mode)) {
        uint64_t size = (uint64_t)sb.st_size;
        while (n < size) {
            size_t w = size - n < WINDOW ? (size_t)(size - n) : WINDOW;
            void *m = mmap(NULL, w, PROT_READ, MAP_PRIVATE, fd, (off_t)n);
            if (m == MAP_FAILED)
                return pp_fail(err, PP_E_IO, n, -1, "%s: mmap: %s", origin, strerror(errno));
            (void)madvise(m, w, MADV_SEQUENTIAL);
            for (size_t off = 0; off < w; off += UPDATE)
                crypto_generichash_update(&st, (const uint8_t *)m + off,
                                          w - off < UPDATE ? w - off : UPDATE);
            munmap(m, w);
            n += w;
        }
        /* A file that grew while we hashed: the extra bytes count too (read from the current
         * offset after the mapped size), so the size we report is the size we hashed. */
        if (lseek(fd, (off_t)n, SEEK_SET) >= 0) rc = hash_read(fd, origin, &st, &n, err);
    } else {
        rc = hash_read(fd, origin, &st, &n, err);
    }
    if (rc != PP_OK) return rc;
    crypto_generichash_final(&st, out, PP_B2_BYTES);
    *nbytes = n;
    return PP_OK;
}

void pp_b2_hex(const uint8_t d[PP_B2_BYTES], char out[2 * PP_B2_BYTES + 1])
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < PP_B2_BYTES; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * PP_B2_BYTES] = 0;
}
