/* Protocol-0 text arguments with CPython 3.11's exact grammar. Nothing here calls strtol or atoi on
 * input: the libc and CPython parsers CPython uses (glibc strtol, PyLong_FromString, _Py_dg_strtod,
 * PyBytes_DecodeEscape, the raw-unicode-escape and UTF-8 decoders) are re-implemented over bounded
 * (pointer, length) input. The only libc conversion is strtod on a short digits-and-exponent string
 * we build ourselves, for its correct rounding. */
#include "textarg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sys.get_int_max_str_digits() default: longer decimal literals are refused, hex is not. */
#define INT_MAX_STR_DIGITS 4300
/* Enough 32-bit limbs for INT_MAX_STR_DIGITS decimal digits (4300 * log2(10) / 32 = 446.4). */
#define DEC_LIMBS 450
/* Python/dtoa.c refuses mantissas of more digits and clamps larger exponents. */
#define DTOA_MAX_DIGITS 1000000000
#define DTOA_MAX_ABS_EXP 1100000000
/* Significant digits handed to strtod; a sticky digit stands for the rest (see py_strtod). */
#define STRTOD_DIGITS 800
/* PyLong_FromString quotes at most this many bytes of the input in its error message. */
#define ERRMSG_QUOTE 200

/* ---- character classes --------------------------------------------------------------------- */

/* Py_ISSPACE and glibc isspace() in the C locale agree: space and \t \n \v \f \r. */
static bool is_space(uint8_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* _PyLong_DigitValue: 0-9, then letters of either case from 10; 37 for everything else. */
static unsigned digit_value(uint8_t c)
{
    if (c >= '0' && c <= '9') return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'z') return (unsigned)(c - 'a') + 10u;
    if (c >= 'A' && c <= 'Z') return (unsigned)(c - 'A') + 10u;
    return 37;
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* CPython hands C parsers a NUL-terminated copy of the line, so they stop at an embedded NUL. */
static size_t cstr_len(const uint8_t *s, size_t n)
{
    const uint8_t *z = memchr(s, 0, n);
    return z ? (size_t)(z - s) : n;
}

static pp_val val_int(int64_t i)
{
    pp_val v = {0};
    v.kind = PP_V_INT;
    v.u.i = i;
    return v;
}

/* ---- integers: magnitude to pp_val -------------------------------------------------------- */

/* buf holds the magnitude little-endian in m bytes (top byte nonzero, or m == 0 for zero) and has
 * room for one more byte. Gives PP_V_INT when it fits int64, else a minimal two's complement
 * PP_V_BIGINT in the arena (buf is reused when it already lives there). */
static pp_err emit_magnitude(pp_arena *a, bool neg, uint8_t *buf, size_t m, bool in_arena,
                             pp_val *out)
{
    if (m <= 8) {
        uint64_t u = 0;
        for (size_t i = m; i-- > 0;)
            u = (u << 8) | buf[i];
        if (!neg && u <= (uint64_t)INT64_MAX) {
            *out = val_int((int64_t)u);
            return PP_OK;
        }
        if (neg && u <= (uint64_t)INT64_MAX + 1u) {
            /* cast before negating: -(int64_t)2^63 is undefined */
            *out = val_int(u == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)u);
            return PP_OK;
        }
    }
    uint8_t *p = buf;
    if (!in_arena) {
        p = pp_arena_alloc(a, m + 1);
        if (!p) return PP_E_NOMEM;
        memcpy(p, buf, m);
    }
    if (!neg) {
        if (p[m - 1] & 0x80) p[m++] = 0;
    } else {
        unsigned carry = 1;
        for (size_t i = 0; i < m; i++) {
            unsigned x = (unsigned)(uint8_t)~p[i] + carry;
            p[i] = (uint8_t)x;
            carry = x >> 8;
        }
        /* magnitude above 2^(8m-1) needs a sign byte */
        if (!(p[m - 1] & 0x80)) p[m++] = 0xff;
    }
    pp_val v = {0};
    v.kind = PP_V_BIGINT;
    v.u.s.p = p;
    v.u.s.n = m;
    *out = v;
    return PP_OK;
}

/* ---- PyLong_FromString ------------------------------------------------------------------- */

typedef struct pyint {
    bool neg;
    unsigned base;
    const uint8_t *d, *dend; /* the digits, underscores included */
} pyint;

/* PyLong_FromString(s, NULL, base) syntax over s[0..n), which holds no NUL (callers cut there).
 * base is 0 or 10. PP_E_LIMIT is decided where CPython decides it: after the digit scan, before
 * the zero-for-octal and trailing-character checks. */
static pp_err pylong_scan(const uint8_t *s, size_t n, unsigned base, pyint *r)
{
    size_t i = 0;
    while (i < n && is_space(s[i]))
        i++;
    r->neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) r->neg = s[i++] == '-';
    bool error_if_nonzero = false;
    uint8_t c0 = i < n ? s[i] : 0, c1 = i + 1 < n ? lower(s[i + 1]) : 0;
    if (base == 0) {
        if (c0 != '0')
            base = 10;
        else if (c1 == 'x')
            base = 16;
        else if (c1 == 'o')
            base = 8;
        else if (c1 == 'b')
            base = 2;
        else {
            /* "old" C-style octal: only zero is still valid ("00", "0_0") */
            error_if_nonzero = true;
            base = 10;
        }
    }
    if (c0 == '0' &&
        ((base == 16 && c1 == 'x') || (base == 8 && c1 == 'o') || (base == 2 && c1 == 'b'))) {
        i += 2;
        if (i < n && s[i] == '_') /* one underscore allowed after the prefix */
            i++;
    }
    if (i < n && s[i] == '_') return PP_E_BAD_ARG;
    size_t start = i, digits = 0;
    uint8_t prev = 0;
    while (i < n && (digit_value(s[i]) < base || s[i] == '_')) {
        if (s[i] == '_') {
            if (prev == '_') return PP_E_BAD_ARG;
        } else {
            digits++;
        }
        prev = s[i++];
    }
    if (prev == '_') return PP_E_BAD_ARG;
    /* hostile: int_max_str_digits bounds the quadratic decimal conversion, as in CPython */
    if (base == 10 && digits > INT_MAX_STR_DIGITS) return PP_E_LIMIT;
    r->base = base;
    r->d = s + start;
    r->dend = s + i;
    if (error_if_nonzero) {
        for (const uint8_t *p = r->d; p < r->dend; p++)
            if (*p != '0' && *p != '_') return PP_E_BAD_ARG;
    }
    if (i == start) return PP_E_BAD_ARG;
    while (i < n && is_space(s[i]))
        i++;
    return i == n ? PP_OK : PP_E_BAD_ARG;
}

static pp_err dec_value(pp_arena *a, bool neg, const uint8_t *d, const uint8_t *dend, pp_val *out)
{
    static const uint32_t pow10[10] = {1,      10,      100,      1000,      10000,
                                       100000, 1000000, 10000000, 100000000, 1000000000};
    uint32_t limb[DEC_LIMBS];
    size_t nl = 0;
    uint32_t chunk = 0;
    unsigned k = 0;
    for (const uint8_t *p = d;; p++) {
        bool end = p == dend;
        if (!end && *p == '_') continue;
        if (!end) {
            chunk = chunk * 10u + (uint32_t)(*p - '0');
            k++;
        }
        if (k == 9 || (end && k)) {
            uint64_t carry = chunk;
            for (size_t j = 0; j < nl; j++) {
                uint64_t x = (uint64_t)limb[j] * pow10[k] + carry;
                limb[j] = (uint32_t)x;
                carry = x >> 32;
            }
            if (carry) {
                /* hostile: cannot happen below INT_MAX_STR_DIGITS digits; never write past */
                if (nl == DEC_LIMBS) return PP_E_INTERNAL;
                limb[nl++] = (uint32_t)carry;
            }
            chunk = 0;
            k = 0;
        }
        if (end) break;
    }
    uint8_t buf[DEC_LIMBS * 4 + 1];
    size_t m = 0;
    for (size_t j = 0; j < nl; j++)
        for (unsigned b = 0; b < 4; b++)
            buf[m++] = (uint8_t)(limb[j] >> (8 * b));
    while (m && !buf[m - 1])
        m--;
    return emit_magnitude(a, neg, buf, m, false, out);
}

/* Bases 2, 8, 16: bits are placed directly, so any length costs linear time. */
static pp_err bin_value(pp_arena *a, bool neg, unsigned base, const uint8_t *d, const uint8_t *dend,
                        pp_val *out)
{
    unsigned bpc = base == 16 ? 4 : base == 8 ? 3 : 1;
    while (d < dend && (*d == '0' || *d == '_'))
        d++;
    size_t sig = 0;
    for (const uint8_t *p = d; p < dend; p++)
        sig += *p != '_';
    if (!sig) {
        *out = val_int(0);
        return PP_OK;
    }
    /* hostile: a line longer than SIZE_MAX / 8 digits cannot be sized */
    if (sig > SIZE_MAX / 8) return PP_E_NOMEM;
    unsigned top = digit_value(*d), topbits = 0;
    while (top >> topbits)
        topbits++;
    size_t bits = (sig - 1) * bpc + topbits;
    size_t m = (bits + 7) / 8;
    uint8_t small[64];
    uint8_t *buf = small;
    bool in_arena = m + 1 > sizeof small;
    if (in_arena) {
        buf = pp_arena_alloc(a, m + 1);
        if (!buf) return PP_E_NOMEM;
    }
    memset(buf, 0, m + 1);
    size_t bit = 0;
    for (const uint8_t *p = dend; p > d;) {
        uint8_t c = *--p;
        if (c == '_') continue;
        unsigned v = digit_value(c);
        for (unsigned b = 0; b < bpc && bit < bits; b++, bit++)
            if (v >> b & 1u) buf[bit / 8] |= (uint8_t)(1u << (bit % 8));
    }
    return emit_magnitude(a, neg, buf, m, in_arena, out);
}

/* The value when it fits int64; no allocation, and it stops at the first overflow. */
static bool pyint_small(const pyint *r, int64_t *x)
{
    const uint8_t *d = r->d;
    while (d < r->dend && (*d == '0' || *d == '_'))
        d++;
    uint64_t u = 0;
    for (; d < r->dend; d++) {
        if (*d == '_') continue;
        unsigned v = digit_value(*d);
        if (u > (UINT64_MAX - v) / r->base) return false;
        u = u * r->base + v;
    }
    if (u > (uint64_t)INT64_MAX + (r->neg ? 1u : 0u)) return false;
    *x = r->neg ? (u == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)u) : (int64_t)u;
    return true;
}

static pp_err pyint_value(pp_arena *a, const pyint *r, pp_val *out)
{
    int64_t x;
    if (pyint_small(r, &x)) {
        *out = val_int(x);
        return PP_OK;
    }
    if (r->base == 10) return dec_value(a, r->neg, r->d, r->dend, out);
    return bin_value(a, r->neg, r->base, r->d, r->dend, out);
}

/* PyLong_FromString(s, NULL, base) on a NUL-terminated copy of s[0..n): C flavour. */
static pp_err scan_cstr(const uint8_t *s, size_t n, unsigned base, pyint *r)
{
    return pylong_scan(s, cstr_len(s, n), base, r);
}

/* int(bytes, base) (_PyLong_FromBytes): Py flavour. An embedded NUL always fails there, after
 * PyLong_FromString has had its say (so a limit error still wins). */
static pp_err scan_bytes(const uint8_t *s, size_t n, unsigned base, pyint *r)
{
    size_t m = cstr_len(s, n);
    pp_err e = pylong_scan(s, m, base, r);
    return e ? e : m == n ? PP_OK : PP_E_BAD_ARG;
}

static pp_err pylong_cstr(pp_arena *a, const uint8_t *s, size_t n, unsigned base, pp_val *out)
{
    pyint r;
    pp_err e = scan_cstr(s, n, base, &r);
    return e ? e : pyint_value(a, &r, out);
}

static pp_err pylong_bytes(pp_arena *a, const uint8_t *s, size_t n, unsigned base, pp_val *out)
{
    pyint r;
    pp_err e = scan_bytes(s, n, base, &r);
    return e ? e : pyint_value(a, &r, out);
}

/* When PyLong_FromString fails it quotes the first 200 bytes of its C string, decoded as strict
 * UTF-8; if that decoding fails the exception becomes UnicodeDecodeError (C LONG, GET and PUT). */
static pp_err pylong_cstr_error(pp_err e, const uint8_t *cs, size_t clen)
{
    if (e != PP_E_BAD_ARG) return e;
    return pp_utf8_valid(cs, clen < ERRMSG_QUOTE ? clen : ERRMSG_QUOTE, false) ? e : PP_E_DECODE;
}

/* ---- INT --------------------------------------------------------------------------------- */

/* glibc strtol(s, &end, 0) on the C string s[0..m) + "\n": true when it neither overflowed nor
 * stopped before the end, i.e. when CPython's `errno || (*end != '\n' && *end)` test passes.
 * Whitespace is the C/UTF-8 locale's (a single-byte locale could make 0xa0 a space there). */
static bool c_strtol_whole(const uint8_t *s, size_t m, int64_t *x)
{
    size_t i = 0;
    *x = 0;
    while (i < m && is_space(s[i]))
        i++;
    /* no digits: strtol sets end = start, which passes only for an empty string */
    if (i == m) return m == 0;
    bool neg = false;
    if (s[i] == '+' || s[i] == '-') neg = s[i++] == '-';
    unsigned base = 10;
    if (i < m && s[i] == '0') {
        if (i + 1 < m && lower(s[i + 1]) == 'x') {
            base = 16;
            i += 2; /* "0x" without a hex digit ends at the 'x': never the whole string */
        } else {
            base = 8;
        }
    }
    size_t start = i;
    uint64_t u = 0;
    bool overflow = false;
    for (; i < m && digit_value(s[i]) < base; i++) {
        unsigned d = digit_value(s[i]);
        if (u > (UINT64_MAX - d) / base)
            overflow = true;
        else
            u = u * base + d;
    }
    if (i == start || i != m) return false;
    if (overflow || u > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) return false; /* ERANGE */
    *x = neg ? (u == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)u) : (int64_t)u;
    return true;
}

pp_err pp_text_int(pp_arena *a, pp_flavor fl, const uint8_t *s, size_t n, pp_val *out)
{
    if (fl == PP_FLAVOR_PY) {
        /* load_int compares the line with b'00\n' / b'01\n' before int(line, 0) */
        if (n == 2 && s[0] == '0' && (s[1] == '0' || s[1] == '1')) {
            pp_val v = {0};
            v.kind = PP_V_BOOL;
            v.u.i = s[1] == '1';
            *out = v;
            return PP_OK;
        }
        return pylong_bytes(a, s, n, 0, out);
    }
    if (n == 0) return PP_E_TRUNCATED; /* bad_readline */
    int64_t x;
    if (c_strtol_whole(s, cstr_len(s, n), &x)) {
        /* the bool test counts the whole line, NULs included, against strtol's value */
        if (n == 2 && (x == 0 || x == 1)) {
            pp_val v = {0};
            v.kind = PP_V_BOOL;
            v.u.i = x;
            *out = v;
        } else {
            *out = val_int(x);
        }
        return PP_OK;
    }
    /* load_int replaces every fallback error with ValueError, so no UnicodeDecodeError here */
    return pylong_cstr(a, s, n, 0, out);
}

/* ---- LONG -------------------------------------------------------------------------------- */

pp_err pp_text_long_fl(pp_arena *a, pp_flavor fl, const uint8_t *s, size_t n, pp_val *out)
{
    if (fl == PP_FLAVOR_PY) {
        if (n && s[n - 1] == 'L') n--;
        return pylong_bytes(a, s, n, 0, out);
    }
    if (n == 0) return PP_E_TRUNCATED; /* bad_readline */
    /* load_long overwrites the 'L' with NUL, cutting the C string there */
    size_t m = cstr_len(s, s[n - 1] == 'L' ? n - 1 : n);
    pp_err e = pylong_cstr(a, s, m, 0, out);
    return pylong_cstr_error(e, s, m);
}

pp_err pp_text_long(pp_arena *a, const uint8_t *s, size_t n, pp_val *out)
{
    return pp_text_long_fl(a, PP_FLAVOR_C, s, n, out);
}

/* ---- GET / PUT --------------------------------------------------------------------------- */

pp_err pp_text_index_fl(pp_flavor fl, const uint8_t *s, size_t n, int64_t *out)
{
    pyint r;
    pp_err e;
    if (fl == PP_FLAVOR_C) {
        if (n == 0) return PP_E_TRUNCATED; /* bad_readline */
        e = pylong_cstr_error(scan_cstr(s, n, 10, &r), s, cstr_len(s, n));
    } else {
        e = scan_bytes(s, n, 10, &r);
    }
    if (e) return e;
    if (pyint_small(&r, out)) return PP_OK;
    if (fl == PP_FLAVOR_C) return PP_E_BAD_ARG; /* PyLong_AsSsize_t: OverflowError */
    if (!r.neg) return PP_E_LIMIT;              /* Py: a valid dict key, but beyond what we model */
    *out = INT64_MIN; /* Py: every negative index fails alike (PUT and GET) */
    return PP_OK;
}

pp_err pp_text_index(const uint8_t *s, size_t n, int64_t *out)
{
    return pp_text_index_fl(PP_FLAVOR_C, s, n, out);
}

/* ---- FLOAT ------------------------------------------------------------------------------- */

/* Correctly rounded digits * 10^exp10 (digits: a nonzero-led decimal string of at most
 * STRTOD_DIGITS + 1 digits). strtod only ever sees "DDDeX": no decimal point, so the locale's
 * LC_NUMERIC cannot matter. Assumes the default round-to-nearest mode, as CPython's dtoa does. */
static double dec_to_double(const char *digits, size_t k, int64_t exp10)
{
    char buf[STRTOD_DIGITS + 32];
    int len = snprintf(buf, sizeof buf, "%.*se%lld", (int)k, digits, (long long)exp10);
    if (len < 0 || (size_t)len >= sizeof buf)
        return NAN; /* cannot happen: k and exp10 are bounded by the caller */
    return strtod(buf, NULL);
}

typedef struct fparse {
    size_t end; /* index after the last byte consumed; 0 when nothing parsed */
    double v;
    bool erange; /* dtoa set ERANGE with |v| >= 1: the C flavour's OverflowError */
} fparse;

static bool match_ci(const uint8_t *s, size_t n, size_t i, const char *word)
{
    for (; *word; word++, i++)
        if (i >= n || lower(s[i]) != (uint8_t)*word) return false;
    return true;
}

/* _PyOS_ascii_strtod over s[0..n): _Py_dg_strtod's grammar (no leading space, no hex, no
 * underscores unless `us`, which lets '_' sit inside digit runs the caller already validated),
 * then _Py_parse_inf_or_nan when no digit was found. */
static fparse py_strtod(const uint8_t *s, size_t n, bool us)
{
    fparse r = {0, 0.0, false};
    size_t nsig = 0; /* significant digits without trailing zeros */
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';

    char dig[STRTOD_DIGITS + 2];
    size_t k = 0; /* digits kept in dig */
    bool sticky = false;
    size_t nd_int = 0, ndigits = 0, fraclen = 0, fz = 0;
    bool lz = false;
#define TAKE(c)                                                                                    \
    do {                                                                                           \
        if (k < STRTOD_DIGITS)                                                                     \
            dig[k++] = (char)(c);                                                                  \
        else if ((c) != '0')                                                                       \
            sticky = true;                                                                         \
    } while (0)

    while (i < n && (s[i] == '0' || (us && s[i] == '_'))) {
        lz = true;
        i++;
    }
    for (; i < n && (is_digit(s[i]) || (us && s[i] == '_')); i++) {
        if (s[i] == '_') continue;
        TAKE(s[i]);
        nd_int++;
        if (s[i] != '0') nsig = nd_int;
    }
    ndigits = nd_int;
    if (i < n && s[i] == '.') {
        i++;
        if (!ndigits) {
            for (; i < n && (s[i] == '0' || (us && s[i] == '_')); i++) {
                if (s[i] == '0') {
                    lz = true;
                    fz++;
                }
            }
            fraclen = fz;
        }
        for (; i < n && (is_digit(s[i]) || (us && s[i] == '_')); i++) {
            if (s[i] == '_') continue;
            TAKE(s[i]);
            ndigits++;
            fraclen++;
            if (s[i] != '0') nsig = ndigits;
        }
    }
#undef TAKE
    if ((!ndigits && !lz) || ndigits > DTOA_MAX_DIGITS || fraclen > DTOA_MAX_DIGITS) {
        /* not a number (or one dtoa refuses as too long): try "inf", "infinity", "nan" */
        i = (n && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
        if (match_ci(s, n, i, "inf")) {
            i += 3;
            if (match_ci(s, n, i, "inity")) i += 5;
            r.v = neg ? -INFINITY : INFINITY;
            r.end = i;
        } else if (match_ci(s, n, i, "nan")) {
            /* _Py_dg_stdnan: the quiet NaN 0x7ff8..., sign bit from the sign */
            uint64_t bits = 0x7ff8000000000000u | (neg ? 0x8000000000000000u : 0);
            memcpy(&r.v, &bits, sizeof r.v);
            r.end = i + 3;
        }
        return r;
    }

    int64_t e = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t save = i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        bool elz = false;
        for (; i < n && (s[i] == '0' || (us && s[i] == '_')); i++)
            elz = true;
        size_t edigits = 0;
        uint64_t abs_exp = 0;
        for (; i < n && (is_digit(s[i]) || (us && s[i] == '_')); i++) {
            if (s[i] == '_') continue;
            if (abs_exp <= DTOA_MAX_ABS_EXP) abs_exp = abs_exp * 10 + (uint64_t)(s[i] - '0');
            edigits++;
        }
        /* dtoa clamps: more than 9 significant exponent digits, or above MAX_ABS_EXP */
        e = (edigits > 9 || abs_exp > DTOA_MAX_ABS_EXP) ? DTOA_MAX_ABS_EXP : (int64_t)abs_exp;
        if (eneg) e = -e;
        if (!edigits && !elz) {
            i = save; /* "1e", "1e+": the exponent is not part of the number */
            e = 0;
        }
    }
    r.end = i;
    if (!ndigits) {
        r.v = neg ? -0.0 : 0.0;
        return r;
    }
    /* decimal exponent of the leading significant digit */
    int64_t pos = nd_int ? (int64_t)nd_int - 1 : -(int64_t)fz - 1;
    int64_t lead = pos + e;
    double v;
    if (lead > 400) {
        v = INFINITY;
    } else if (lead < -400) {
        v = 0.0;
    } else {
        /* Why a sticky '1' is exact: every double and every midpoint between two doubles has at
         * most 768 significant decimal digits, so truncating after 800 digits and marking the
         * rest nonzero never moves the value across a rounding boundary. */
        if (sticky) dig[k++] = '1';
        while (k > 1 && dig[k - 1] == '0')
            k--;
        v = dec_to_double(dig, k, lead + 1 - (int64_t)k);
    }
    /* dtoa reports ERANGE when it overflows on its way to the answer, which is not every
     * literal that rounds to infinity: with more than 40 significant digits it first rounds the
     * value truncated to 18 digits, and when those are 179769313486231580e291 (below DBL_MAX +
     * half an ulp) its final bigcomp step steps past DBL_MAX to inf without setting ERANGE.
     * Verified on 20000 literals around the threshold. */
    r.erange = isinf(v) && !(nsig > 40 && lead == 308 && !memcmp(dig, "179769313486231580", 18));
    r.v = neg ? -v : v;
    return r;
}

pp_err pp_text_float(pp_flavor fl, const uint8_t *s, size_t n, double *out)
{
    if (fl == PP_FLAVOR_C) {
        if (n == 0) return PP_E_TRUNCATED; /* bad_readline */
        size_t m = cstr_len(s, n);
        fparse r = py_strtod(s, m, false);
        /* ValueError when nothing parsed or it stops early; OverflowError for 1e400 */
        if (r.end == 0 || r.end != m || r.erange) return PP_E_BAD_ARG;
        *out = r.v;
        return PP_OK;
    }
    /* float(bytes): embedded NUL never passes */
    if (memchr(s, 0, n)) return PP_E_BAD_ARG;
    bool us = memchr(s, '_', n) != NULL;
    if (us) {
        /* _Py_string_to_number_with_underscores: each '_' between two digits */
        for (size_t i = 0; i < n; i++)
            if (s[i] == '_' && (i == 0 || !is_digit(s[i - 1]) || i + 1 == n || !is_digit(s[i + 1])))
                return PP_E_BAD_ARG;
    }
    size_t i = 0, last = n;
    while (i < last && is_space(s[i]))
        i++;
    if (i == last) return PP_E_BAD_ARG;
    while (last - 1 > i && is_space(s[last - 1]))
        last--;
    fparse r = py_strtod(s + i, last - i, us);
    if (r.end == 0 || r.end != last - i) return PP_E_BAD_ARG;
    *out = r.v; /* overflow gives inf here */
    return PP_OK;
}

/* ---- STRING ------------------------------------------------------------------------------ */

/* _PyBytes_DecodeEscape (strict). Returns the decoded length, writing to out when non-NULL, or
 * SIZE_MAX for a trailing backslash or a bad \x escape. */
static size_t escape_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0, i = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (out) out[o] = (uint8_t)(c);                                                            \
        o++;                                                                                       \
    } while (0)
    while (i < n) {
        const uint8_t *bs = memchr(s + i, '\\', n - i);
        size_t lit = bs ? (size_t)(bs - (s + i)) : n - i;
        if (out) memcpy(out + o, s + i, lit);
        o += lit;
        i += lit;
        if (i == n) break;
        i++;                         /* the backslash */
        if (i == n) return SIZE_MAX; /* "Trailing \ in string" */
        uint8_t c = s[i++];
        switch (c) {
        case '\n':
            break; /* line continuation */
        case '\\':
        case '\'':
        case '"':
            PUT(c);
            break;
        case 'b':
            PUT('\b');
            break;
        case 'f':
            PUT('\f');
            break;
        case 't':
            PUT('\t');
            break;
        case 'n':
            PUT('\n');
            break;
        case 'r':
            PUT('\r');
            break;
        case 'v':
            PUT('\v');
            break;
        case 'a':
            PUT('\a');
            break;
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7': {
            unsigned v = (unsigned)(c - '0');
            for (int j = 0; j < 2 && i < n && s[i] >= '0' && s[i] <= '7'; j++)
                v = (v << 3) + (unsigned)(s[i++] - '0');
            PUT(v & 0xffu); /* > 0o377 wraps (a DeprecationWarning only) */
            break;
        }
        case 'x':
            /* hostile: exactly two hex digits must be present, else ValueError */
            if (n - i < 2 || digit_value(s[i]) >= 16 || digit_value(s[i + 1]) >= 16)
                return SIZE_MAX;
            PUT((digit_value(s[i]) << 4) | digit_value(s[i + 1]));
            i += 2;
            break;
        default:
            /* unknown escape: kept with its backslash (a DeprecationWarning only) */
            PUT('\\');
            i--;
            break;
        }
    }
#undef PUT
    return o;
}

pp_err pp_text_string(pp_arena *a, const uint8_t *s, size_t n, const uint8_t **out, size_t *outn)
{
    if (n < 2 || s[0] != s[n - 1] || (s[0] != '\'' && s[0] != '"'))
        return PP_E_BAD_ARG; /* "the STRING opcode argument must be quoted" */
    const uint8_t *body = s + 1;
    size_t bn = n - 2;
    if (!memchr(body, '\\', bn)) {
        *out = body; /* borrowed: nothing to decode */
        *outn = bn;
        return PP_OK;
    }
    size_t len = escape_decode(body, bn, NULL);
    if (len == SIZE_MAX) return PP_E_BAD_ARG;
    uint8_t *p = pp_arena_alloc(a, len);
    if (!p) return PP_E_NOMEM;
    escape_decode(body, bn, p);
    *out = p;
    *outn = len;
    return PP_OK;
}

/* ---- UNICODE ----------------------------------------------------------------------------- */

static size_t put_utf8(uint8_t *out, size_t o, uint32_t ch)
{
    uint8_t b[4];
    size_t k;
    if (ch < 0x80) {
        b[0] = (uint8_t)ch;
        k = 1;
    } else if (ch < 0x800) {
        b[0] = (uint8_t)(0xc0 | ch >> 6);
        b[1] = (uint8_t)(0x80 | (ch & 0x3f));
        k = 2;
    } else if (ch < 0x10000) { /* surrogates too, as surrogatepass would encode them */
        b[0] = (uint8_t)(0xe0 | ch >> 12);
        b[1] = (uint8_t)(0x80 | (ch >> 6 & 0x3f));
        b[2] = (uint8_t)(0x80 | (ch & 0x3f));
        k = 3;
    } else {
        b[0] = (uint8_t)(0xf0 | ch >> 18);
        b[1] = (uint8_t)(0x80 | (ch >> 12 & 0x3f));
        b[2] = (uint8_t)(0x80 | (ch >> 6 & 0x3f));
        b[3] = (uint8_t)(0x80 | (ch & 0x3f));
        k = 4;
    }
    if (out) memcpy(out + o, b, k);
    return o + k;
}

/* raw-unicode-escape (strict) to UTF-8. Returns the output length, writing to out when non-NULL,
 * or SIZE_MAX for a truncated or out-of-range \u / \U escape. */
static size_t raw_unicode_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        uint8_t c = s[i++];
        /* a lone backslash at the end is literal */
        if (c != '\\' || i == n) {
            o = put_utf8(out, o, c);
            continue;
        }
        c = s[i++];
        unsigned count = c == 'u' ? 4 : c == 'U' ? 8 : 0;
        if (!count) {
            /* the pair is consumed: "\\\\u0041" is two backslashes then "u0041" */
            o = put_utf8(out, o, '\\');
            o = put_utf8(out, o, c);
            continue;
        }
        uint32_t ch = 0;
        for (; count; count--, i++) {
            /* hostile: truncated or non-hex escapes are UnicodeDecodeError */
            if (i == n || digit_value(s[i]) >= 16) return SIZE_MAX;
            ch = ch << 4 | digit_value(s[i]);
        }
        if (ch > 0x10ffff) return SIZE_MAX;
        o = put_utf8(out, o, ch);
    }
    return o;
}

static bool all_ascii(const uint8_t *s, size_t n);

pp_err pp_text_unicode(pp_arena *a, const uint8_t *s, size_t n, const uint8_t **out, size_t *outn)
{
    if (!memchr(s, '\\', n) && all_ascii(s, n)) {
        *out = s; /* borrowed: ASCII without escapes is its own UTF-8 */
        *outn = n;
        return PP_OK;
    }
    size_t len = raw_unicode_decode(s, n, NULL);
    if (len == SIZE_MAX) return PP_E_DECODE;
    uint8_t *p = pp_arena_alloc(a, len);
    if (!p) return PP_E_NOMEM;
    raw_unicode_decode(s, n, p);
    *out = p;
    *outn = len;
    return PP_OK;
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

#define HIGH_BITS 0x8080808080808080u

static uint64_t load64(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* Index of the first byte >= 0x80 in s[i..n), or n. Most payloads are ASCII: 32 bytes a step. */
static size_t skip_ascii(const uint8_t *s, size_t n, size_t i)
{
    while (n - i >= 32) {
        if ((load64(s + i) | load64(s + i + 8) | load64(s + i + 16) | load64(s + i + 24)) &
            HIGH_BITS)
            break;
        i += 32;
    }
    while (n - i >= 8 && !(load64(s + i) & HIGH_BITS))
        i += 8;
    while (i < n && s[i] < 0x80)
        i++;
    return i;
}

static bool all_ascii(const uint8_t *s, size_t n)
{
    return skip_ascii(s, n, 0) == n;
}

bool pp_utf8_valid(const uint8_t *s, size_t n, bool surrogatepass)
{
    size_t i = 0;
    for (;;) {
        i = skip_ascii(s, n, i);
        /* multi-byte sequences, until ASCII resumes */
        while (i < n && s[i] >= 0x80) {
            uint8_t c = s[i];
            size_t left = n - i;
            if (c >= 0xc2 && c <= 0xdf) {
                if (left < 2 || (s[i + 1] & 0xc0) != 0x80) return false;
                i += 2;
            } else if (c >= 0xe0 && c <= 0xef) {
                /* E0: no overlongs (A0..BF); ED: no surrogates (80..9F) unless surrogatepass */
                uint8_t lo = c == 0xe0 ? 0xa0 : 0x80;
                uint8_t hi = (c == 0xed && !surrogatepass) ? 0x9f : 0xbf;
                if (left < 3 || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xc0) != 0x80)
                    return false;
                i += 3;
            } else if (c >= 0xf0 && c <= 0xf4) {
                /* F0: no overlongs (90..BF); F4: nothing above U+10FFFF (80..8F) */
                uint8_t lo = c == 0xf0 ? 0x90 : 0x80;
                uint8_t hi = c == 0xf4 ? 0x8f : 0xbf;
                if (left < 4 || s[i + 1] < lo || s[i + 1] > hi || (s[i + 2] & 0xc0) != 0x80 ||
                    (s[i + 3] & 0xc0) != 0x80)
                    return false;
                i += 4;
            } else {
                return false; /* continuation byte, C0/C1 overlong lead, F5..FF */
            }
        }
        if (i == n) return true;
    }
}

/* ---- Python-2 str payloads --------------------------------------------------------------- */

pp_err pp_decode_py2str(pp_arena *a, pp_encoding enc, const uint8_t *s, size_t n, pp_val *out)
{
    pp_val v = {0};
    v.kind = PP_V_STR;
    v.u.s.p = s;
    v.u.s.n = n;
    switch (enc) {
    case PP_ENC_BYTES:
        v.kind = PP_V_BYTES;
        break;
    case PP_ENC_ASCII:
        if (!all_ascii(s, n)) return PP_E_DECODE;
        break;
    case PP_ENC_UTF8:
        if (!pp_utf8_valid(s, n, false)) return PP_E_DECODE;
        break;
    case PP_ENC_LATIN1: {
        size_t i = skip_ascii(s, n, 0);
        if (i == n) break; /* ASCII is borrowed as is */
        size_t high = 0;
        for (size_t j = i; j < n; j++)
            high += s[j] >> 7;
        /* hostile: n + high cannot wrap for any real buffer, but check before sizing */
        if (high > SIZE_MAX - n) return PP_E_NOMEM;
        uint8_t *p = pp_arena_alloc(a, n + high);
        if (!p) return PP_E_NOMEM;
        memcpy(p, s, i);
        size_t o = i;
        for (size_t j = i; j < n; j++)
            o = put_utf8(p, o, s[j]);
        v.u.s.p = p;
        v.u.s.n = o;
        break;
    }
    default:
        return PP_E_INTERNAL;
    }
    *out = v;
    return PP_OK;
}
