/* A bounds-checked reader over an untrusted byte span. Every getter consumes only on success;
 * bounds are written as `n <= len - pos` so they cannot wrap. `base` is the file offset of
 * byte 0, so offsets in errors are file offsets. */
#ifndef PP_CURSOR_H
#define PP_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pp_cursor {
    const uint8_t *p;
    size_t len;
    size_t pos;
    uint64_t base;
} pp_cursor;

static inline void pp_cursor_init(pp_cursor *c, const uint8_t *p, size_t len, uint64_t base)
{
    c->p = p;
    c->len = len;
    c->pos = 0;
    c->base = base;
}
static inline size_t pp_cursor_left(const pp_cursor *c)
{
    return c->len - c->pos;
}
static inline uint64_t pp_cursor_offset(const pp_cursor *c)
{
    return c->base + c->pos;
}
static inline bool pp_cursor_u8(pp_cursor *c, uint8_t *v)
{
    if (c->pos >= c->len)
        return false;
    *v = c->p[c->pos++];
    return true;
}
static inline bool pp_cursor_le(pp_cursor *c, size_t n, uint64_t *v)
{
    if (n > c->len - c->pos)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)c->p[c->pos + i] << (8 * i);
    c->pos += n;
    *v = x;
    return true;
}
static inline bool pp_cursor_be(pp_cursor *c, size_t n, uint64_t *v)
{
    if (n > c->len - c->pos)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | (uint64_t)c->p[c->pos + i];
    c->pos += n;
    *v = x;
    return true;
}
/* Borrows n bytes (zero copy). */
static inline bool pp_cursor_take(pp_cursor *c, uint64_t n, const uint8_t **out)
{
    if (n > (uint64_t)(c->len - c->pos))
        return false;
    *out = c->p + c->pos;
    c->pos += (size_t)n;
    return true;
}
/* Borrows a line up to and including '\n'; *n excludes the newline. */
static inline bool pp_cursor_line(pp_cursor *c, const uint8_t **out, size_t *n)
{
    const uint8_t *s = c->p + c->pos;
    size_t left = c->len - c->pos;
    const uint8_t *nl = left ? memchr(s, '\n', left) : NULL;
    if (!nl)
        return false;
    *out = s;
    *n = (size_t)(nl - s);
    c->pos += *n + 1;
    return true;
}

#endif
