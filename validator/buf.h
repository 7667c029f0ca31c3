/* A growable output buffer for writers (JSON, dump, explain). Errors are sticky: after a failed
 * append every later append is a no-op and pp_buf_ok() is false. */
#ifndef PP_BUF_H
#define PP_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pp_buf {
    char *p;
    size_t n;
    size_t cap;
    bool failed;
} pp_buf;

void pp_buf_init(pp_buf *b);
void pp_buf_free(pp_buf *b);
bool pp_buf_ok(const pp_buf *b);
void pp_buf_put(pp_buf *b, const void *s, size_t n);
void pp_buf_puts(pp_buf *b, const char *s);
void pp_buf_putc(pp_buf *b, char c);
void pp_buf_printf(pp_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A JSON string literal (with quotes) of s[0..n); invalid UTF-8 bytes are written as \u00XX of the
 * byte value so output is always valid JSON. */
void pp_buf_json_str(pp_buf *b, const char *s, size_t n);
void pp_buf_hex(pp_buf *b, const uint8_t *s, size_t n);
/* Takes ownership of the NUL-terminated contents; the buffer is reset. NULL if failed. */
char *pp_buf_take(pp_buf *b);

#endif
