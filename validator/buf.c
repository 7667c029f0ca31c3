#include "buf.h"

#include "arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pp_buf_init(pp_buf *b)
{
    memset(b, 0, sizeof *b);
}

void pp_buf_free(pp_buf *b)
{
    pp_free(b->p);
    memset(b, 0, sizeof *b);
}

bool pp_buf_ok(const pp_buf *b)
{
    return !b->failed;
}

static bool reserve(pp_buf *b, size_t n)
{
    if (b->failed)
        return false;
    if (n < b->cap - b->n && b->p)
        return true;
    if (n > SIZE_MAX / 2 - b->n) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n <= n)
        cap *= 2;
    char *p = pp_realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void pp_buf_put(pp_buf *b, const void *s, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void pp_buf_puts(pp_buf *b, const char *s)
{
    pp_buf_put(b, s, strlen(s));
}

void pp_buf_putc(pp_buf *b, char c)
{
    pp_buf_put(b, &c, 1);
}

void pp_buf_printf(pp_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        pp_buf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* Length of a valid UTF-8 sequence at s (strict, no surrogates), or 0. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t min;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void pp_buf_json_str(pp_buf *b, const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    pp_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            pp_buf_put(b, s + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            pp_buf_put(b, e, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            pp_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            size_t l = utf8_seq(s + i, n - i);
            if (l) {
                pp_buf_put(b, s + i, l);
                i += l;
            } else {
                pp_buf_printf(b, "\\u%04x", c);
                i++;
            }
        }
    }
    pp_buf_putc(b, '"');
}

void pp_buf_hex(pp_buf *b, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n > SIZE_MAX / 2 || !reserve(b, 2 * n))
        return;
    char *o = b->p + b->n;
    for (size_t i = 0; i < n; i++) {
        o[2 * i] = hex[s[i] >> 4];
        o[2 * i + 1] = hex[s[i] & 15];
    }
    b->n += 2 * n;
    b->p[b->n] = 0;
}

char *pp_buf_take(pp_buf *b)
{
    if (b->failed) {
        pp_buf_free(b);
        return NULL;
    }
    if (!b->p && !reserve(b, 1))
        return NULL;
    char *p = b->p;
    memset(b, 0, sizeof *b);
    return p;
}
