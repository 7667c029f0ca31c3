/* Trusted public keys for scans: one minisign key per file, or a keyring of base64 lines. */
#include "arena.h"
#include "err.h"
#include "sign.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct pp_keyring {
    pp_pubkey *keys;
    size_t n, cap;
};

pp_err pp_keyring_new(pp_keyring **out)
{
    *out = pp_calloc(1, sizeof **out);
    return *out ? PP_OK : PP_E_NOMEM;
}

void pp_keyring_free(pp_keyring *k)
{
    if (!k)
        return;
    pp_free(k->keys);
    pp_free(k);
}

size_t pp_keyring_count(const pp_keyring *k)
{
    return k ? k->n : 0;
}

const pp_pubkey *pp_keyring_keys(const pp_keyring *k, size_t *n)
{
    *n = k ? k->n : 0;
    return k ? k->keys : NULL;
}

static pp_err add(pp_keyring *k, const pp_pubkey *pk)
{
    /* the same key twice (two --key flags, a repeated keyring line) is one key: two entries
     * with one key id would make every signature by it ambiguous */
    for (size_t i = 0; i < k->n; i++)
        if (memcmp(&k->keys[i], pk, sizeof *pk) == 0)
            return PP_OK;
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 4;
        pp_pubkey *nk = pp_realloc(k->keys, nc * sizeof *nk);
        if (!nk)
            return PP_E_NOMEM;
        k->keys = nk;
        k->cap = nc;
    }
    k->keys[k->n++] = *pk;
    return PP_OK;
}

pp_err pp_keyring_add_file(pp_keyring *k, const char *path, pp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pp_fail(err, PP_E_IO, 0, -1, "cannot open key file %s: %s", path, strerror(errno));
    /* a keyring is small; anything bigger is not one */
    enum { MAX = 65536 };
    char *buf = pp_malloc(MAX);
    if (!buf) {
        fclose(f);
        return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, MAX, f);
    int bad = ferror(f);
    int big = !bad && n == MAX && fgetc(f) != EOF;
    fclose(f);
    if (bad) {
        pp_free(buf);
        return pp_fail(err, PP_E_IO, 0, -1, "cannot read key file %s", path);
    }
    if (big) {
        pp_free(buf);
        return pp_fail(err, PP_E_SIGNATURE, 0, -1, "key file %s is larger than 64 KiB", path);
    }
    pp_err rc = pp_keyring_add_text(k, buf, n, path, err);
    pp_free(buf);
    return rc;
}

pp_err pp_keyring_add_text(pp_keyring *k, const char *buf, size_t n, const char *path,
                           pp_error *err)
{
    size_t parsed = 0;
    size_t pos = 0;
    unsigned lineno = 0;
    while (pos < n) {
        size_t end = pos;
        while (end < n && buf[end] != '\n')
            end++;
        lineno++;
        size_t len = end - pos;
        if (len && buf[pos + len - 1] == '\r')
            len--;
        const char *line = buf + pos;
        pos = end + 1;
        if (len == 0 || line[0] == '#' || (len >= 18 && memcmp(line, "untrusted comment:", 18) == 0))
            continue;
        char origin[512];
        snprintf(origin, sizeof origin, "%s:%u", path, lineno);
        pp_pubkey pk;
        pp_err rc = pp_pubkey_parse((const uint8_t *)line, len, origin, &pk, err);
        if (rc)
            return rc;
        if (add(k, &pk))
            return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory reading %s", path);
        parsed++;
    }
    if (parsed == 0)
        return pp_fail(err, PP_E_SIGNATURE, 0, -1, "no public key in %s", path);
    return PP_OK;
}
