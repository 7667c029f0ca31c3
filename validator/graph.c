#include "graph.h"

#include <math.h>
#include <string.h>

bool pp_val_unhashable(const pp_val *v)
{
    return v->kind == PP_V_NODE && (v->u.node->flags & PP_NF_UNHASHABLE);
}

static bool is_number(const pp_val *v)
{
    return v->kind == PP_V_BOOL || v->kind == PP_V_INT || v->kind == PP_V_BIGINT ||
           v->kind == PP_V_FLOAT;
}

/* Exact comparison of an int64 with a double, as Python compares int and float. */
static bool int_eq_float(int64_t i, double f)
{
    if (!isfinite(f) || f != floor(f))
        return false;
    if (f < -9223372036854775808.0 || f >= 9223372036854775808.0)
        return false;
    return (int64_t)f == i;
}

/* A big int (more than 8 significant bytes) equals a float only if the float is integral and
 * has the same bytes; such floats are beyond 2^63, so compare through the float's mantissa. */
static bool bigint_eq_float(const uint8_t *p, size_t n, double f)
{
    if (!isfinite(f) || f != floor(f))
        return false;
    bool neg = p[n - 1] & 0x80;
    if (neg != (f < 0))
        return false;
    int exp;
    double m = frexp(fabs(f), &exp); /* f = m * 2^exp, 0.5 <= m < 1 */
    uint64_t mant = (uint64_t)ldexp(m, 53); /* 53-bit integer mantissa */
    int shift = exp - 53;                    /* |f| = mant << shift, shift >= 0 here */
    if (shift < 0)
        return false;
    /* |value| as little-endian magnitude */
    uint8_t mag[160];
    if (n > sizeof mag)
        return false; /* |value| >= 2^1272 exceeds every finite float */
    unsigned carry = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned b = neg ? (unsigned)(uint8_t)~p[i] + carry : p[i];
        mag[i] = (uint8_t)b;
        carry = neg ? b >> 8 : 0;
    }
    size_t total_bits = (size_t)shift + 53;
    size_t need = (total_bits + 7) / 8;
    for (size_t i = 0; i < n || i < need; i++) {
        uint8_t want = 0;
        for (int bit = 0; bit < 8; bit++) {
            long pos = (long)(i * 8 + (size_t)bit) - shift;
            if (pos >= 0 && pos < 53 && ((mant >> pos) & 1))
                want |= (uint8_t)(1u << bit);
        }
        uint8_t have = i < n ? mag[i] : 0;
        if (have != want)
            return false;
    }
    return true;
}

static bool bigint_eq(const pp_val *a, const pp_val *b)
{
    return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
}

static int num_equal(const pp_val *a, const pp_val *b)
{
    if (a->kind == PP_V_FLOAT && b->kind == PP_V_FLOAT) {
        if (isnan(a->u.f) && isnan(b->u.f))
            return a->tag != 0 && a->tag == b->tag; /* `is` before `==` in dicts and sets */
        return a->u.f == b->u.f;
    }
    if (a->kind == PP_V_BIGINT || b->kind == PP_V_BIGINT) {
        if (a->kind == PP_V_BIGINT && b->kind == PP_V_BIGINT)
            return bigint_eq(a, b);
        const pp_val *big = a->kind == PP_V_BIGINT ? a : b;
        const pp_val *o = a->kind == PP_V_BIGINT ? b : a;
        if (o->kind == PP_V_FLOAT)
            return bigint_eq_float(big->u.s.p, big->u.s.n, o->u.f);
        return 0; /* a big int never fits int64 */
    }
    if (a->kind == PP_V_FLOAT)
        return int_eq_float(b->u.i, a->u.f);
    if (b->kind == PP_V_FLOAT)
        return int_eq_float(a->u.i, b->u.f);
    return a->u.i == b->u.i;
}

static int seq_contains(const pp_node *s, const pp_val *x, unsigned depth)
{
    for (size_t i = 0; i < s->u.seq.n; i++) {
        int r = pp_val_equal(&s->u.seq.v[i], x, depth);
        if (r != 0)
            return r;
    }
    return 0;
}

int pp_val_equal(const pp_val *a, const pp_val *b, unsigned depth)
{
    if (depth == 0)
        return -1;
    if (is_number(a) && is_number(b))
        return num_equal(a, b);
    if (a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case PP_V_NONE: return 1;
    case PP_V_STR:
    case PP_V_BYTES:
        return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    case PP_V_NODE: break;
    default: return 0;
    }
    const pp_node *x = a->u.node, *y = b->u.node;
    if (x == y)
        return 1;
    if (x->kind != y->kind)
        return 0;
    if (x->kind == PP_N_TUPLE) {
        if (x->u.seq.n != y->u.seq.n)
            return 0;
        for (size_t i = 0; i < x->u.seq.n; i++) {
            int r = pp_val_equal(&x->u.seq.v[i], &y->u.seq.v[i], depth - 1);
            if (r != 1)
                return r;
        }
        return 1;
    }
    if (x->kind == PP_N_FROZENSET) {
        /* set equality: every element of each is in the other (duplicates allowed in storage) */
        for (size_t i = 0; i < x->u.seq.n; i++) {
            int r = seq_contains(y, &x->u.seq.v[i], depth - 1);
            if (r != 1)
                return r;
        }
        for (size_t i = 0; i < y->u.seq.n; i++) {
            int r = seq_contains(x, &y->u.seq.v[i], depth - 1);
            if (r != 1)
                return r;
        }
        return 1;
    }
    return 0; /* other nodes compare by identity */
}
