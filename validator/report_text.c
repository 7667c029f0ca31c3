/* Text reports for people. Names, paths and messages can hold any bytes a file chose, so every
 * one of them goes through pp_report_put_escaped: a pickle must not be able to move the cursor,
 * recolor the terminal, or reorder what is shown with bidirectional overrides. */
#include "report.h"

#include "vm.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

/* Length of the UTF-8 sequence at s and its code point, or 0 when invalid. Surrogates (CPython's
 * surrogatepass) decode so that they can be shown as \udXXX rather than as bytes. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t min, v;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
        v = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
        v = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
        v = c & 0x07u;
    } else {
        return 0;
    }
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff) return 0;
    *cp = v;
    return len;
}

/* Code points a terminal would not show as themselves: C1 controls (some terminals act on them),
 * non-ASCII spaces and invisible format characters (they hide or fake text), bidirectional
 * controls (they reorder what is shown), surrogates, tags and interlinear annotations. */
static int unshowable(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0xa0) || cp == 0xad || cp == 0x034f || cp == 0x061c ||
           cp == 0x115f || cp == 0x1160 || cp == 0x180e || (cp >= 0x2000 && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 ||
           cp == 0x3164 || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfeff || cp == 0xffa0 ||
           (cp >= 0xfff0 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe0fff);
}

void pp_report_put_escaped(pp_buf *b, const char *str, size_t n, char quote)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '\\' &&
               s[run] != (uint8_t)quote)
            run++;
        if (run > i) {
            pp_buf_put(b, s + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = s[i];
        uint32_t cp = 0;
        size_t l;
        if (c == '\\' || (quote && c == (uint8_t)quote)) {
            char e[2] = {'\\', (char)c};
            pp_buf_put(b, e, 2);
            i++;
        } else if (c == '\n') {
            pp_buf_puts(b, "\\n");
            i++;
        } else if (c == '\r') {
            pp_buf_puts(b, "\\r");
            i++;
        } else if (c == '\t') {
            pp_buf_puts(b, "\\t");
            i++;
        } else if (c < 0x80 || (l = utf8_next(s + i, n - i, &cp)) == 0) {
            pp_buf_printf(b, "\\x%02x", c);
            i++;
        } else {
            if (cp <= 0xff && unshowable(cp))
                pp_buf_printf(b, "\\x%02x", (unsigned)cp);
            else if (cp <= 0xffff && unshowable(cp))
                pp_buf_printf(b, "\\u%04x", (unsigned)cp);
            else if (unshowable(cp))
                pp_buf_printf(b, "\\U%08x", (unsigned)cp);
            else
                pp_buf_put(b, s + i, l);
            i += l;
        }
    }
}

static void put_safe(pp_buf *b, const char *s)
{
    if (s) pp_report_put_escaped(b, s, strlen(s), 0);
}

#define RESET "\x1b[0m"

static const char *verdict_color(pp_verdict v)
{
    switch (v) {
    case PP_VERDICT_SAFE:
        return "\x1b[32m";
    case PP_VERDICT_UNSAFE:
        return "\x1b[1;31m";
    case PP_VERDICT_MALFORMED:
    case PP_VERDICT_LIMIT:
        return "\x1b[33m";
    default:
        return "\x1b[1;35m";
    }
}

static const char *severity_color(const char *sev)
{
    if (!sev) return "";
    if (strcmp(sev, "critical") == 0 || strcmp(sev, "high") == 0) return "\x1b[31m";
    if (strcmp(sev, "medium") == 0) return "\x1b[33m";
    return "\x1b[2m";
}

static void upper(pp_buf *b, const char *s)
{
    for (; *s; s++)
        pp_buf_putc(b, (*s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s);
}

static void text_finding(pp_buf *b, const pp_finding *f, bool color)
{
    pp_buf_printf(b, "  offset %" PRIu64 "  ", f->offset);
    if (f->opcode) {
        put_safe(b, f->opcode);
        pp_buf_puts(b, "  ");
    }
    if (color) pp_buf_puts(b, severity_color(f->severity));
    put_safe(b, f->rule ? f->rule : "unknown");
    pp_buf_puts(b, " (");
    put_safe(b, f->severity ? f->severity : "info");
    pp_buf_putc(b, ')');
    if (color) pp_buf_puts(b, RESET);
    pp_buf_puts(b, "  ");
    if (f->global) {
        put_safe(b, f->global);
        pp_buf_puts(b, ": ");
    }
    put_safe(b, f->message);
    /* stream names matter inside containers; a raw file has just "pickle" */
    if (f->stream && strcmp(f->stream, "pickle") != 0) {
        pp_buf_puts(b, " [");
        put_safe(b, f->stream);
        pp_buf_putc(b, ']');
    }
    pp_buf_putc(b, '\n');
}

static void text_error(pp_buf *b, const pp_error *e, bool color)
{
    pp_buf_printf(b, "  offset %" PRIu64 "  ", e->offset);
    const char *op = pp_vm_opname(e->opcode);
    if (op) {
        put_safe(b, op);
        pp_buf_puts(b, "  ");
    }
    if (color) pp_buf_puts(b, "\x1b[33m");
    pp_buf_puts(b, "error ");
    put_safe(b, pp_errname(e->code));
    if (e->code == PP_E_LIMIT && e->limit >= 0 && e->limit < PP_LIMIT__COUNT) {
        pp_buf_puts(b, " (");
        put_safe(b, pp_limit_name((pp_limit_id)e->limit));
        pp_buf_putc(b, ')');
    }
    if (color) pp_buf_puts(b, RESET);
    pp_buf_puts(b, ": ");
    pp_report_put_escaped(b, e->msg, strnlen(e->msg, sizeof e->msg), 0);
    size_t sn = strnlen(e->stream, sizeof e->stream);
    if (sn && !(sn == 6 && memcmp(e->stream, "pickle", 6) == 0)) {
        pp_buf_puts(b, " [");
        pp_report_put_escaped(b, e->stream, sn, 0);
        pp_buf_putc(b, ']');
    }
    pp_buf_putc(b, '\n');
}

pp_err pp_report_text(const pp_report *r, pp_buf *b, unsigned flags)
{
    bool color = flags & PP_TEXT_COLOR;
    put_safe(b, r->path ? r->path : "<memory>");
    pp_buf_puts(b, ": ");
    if (color) pp_buf_puts(b, verdict_color(r->verdict));
    upper(b, pp_verdict_name(r->verdict));
    if (color) pp_buf_puts(b, RESET);
    pp_buf_puts(b, " (");
    put_safe(b, r->container ? r->container : "pickle");
    pp_buf_printf(b, ", %" PRIu64 " bytes", r->bytes);
    if (r->nstreams > 1) pp_buf_printf(b, ", %zu streams", r->nstreams);
    pp_buf_puts(b, ", sandbox ");
    put_safe(b, r->sandbox ? r->sandbox : "off");
    pp_buf_puts(b, ")\n");
    for (size_t i = 0; i < r->nfindings; i++)
        text_finding(b, &r->findings[i], color);
    if (r->error.code != PP_OK && !pp_report_error_shown(r)) text_error(b, &r->error, color);
    if (r->sig_status) {
        pp_buf_puts(b, "  signature: ");
        put_safe(b, r->sig_status);
        if (r->sig_keyid[0]) {
            pp_buf_puts(b, ", key ");
            put_safe(b, r->sig_keyid);
        }
        if (r->sig_comment) {
            pp_buf_puts(b, ", trusted comment: ");
            put_safe(b, r->sig_comment);
        }
        pp_buf_putc(b, '\n');
    }
    if (flags & PP_TEXT_VERBOSE) {
        pp_buf_printf(b, "  globals: %zu\n", r->nglobals);
        for (size_t i = 0; i < r->nglobals; i++) {
            pp_buf_puts(b, "    ");
            put_safe(b, r->globals[i]);
            pp_buf_putc(b, '\n');
        }
        pp_buf_puts(b, "  policy:");
        for (size_t i = 0; i < r->npolicies; i++) {
            pp_buf_putc(b, ' ');
            put_safe(b, r->policies[i]);
        }
        pp_buf_puts(b, "\n  sandbox: ");
        put_safe(b, r->sandbox ? r->sandbox : "off");
        pp_buf_putc(b, '\n');
    }
    return pp_buf_ok(b) ? PP_OK : PP_E_NOMEM;
}

pp_err pp_report_write_text_ex(const pp_report *r, FILE *f, unsigned flags)
{
    pp_buf b;
    pp_buf_init(&b);
    pp_err e = pp_report_text(r, &b, flags);
    if (e == PP_OK && b.n && fwrite(b.p, 1, b.n, f) != b.n) e = PP_E_IO;
    pp_buf_free(&b);
    return e;
}

pp_err pp_report_write_text(const pp_report *r, FILE *f, int color)
{
    return pp_report_write_text_ex(r, f, color ? PP_TEXT_COLOR : 0);
}
