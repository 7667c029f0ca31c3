/* Tables over the opcode table: every opcode on an empty stack, after a lone MARK, and truncated
 * at every byte of its argument; plus memo, frame and stack-discipline cases. */
#include "tap.h"

#include "err.h"
#include "vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pp_limits lim;

typedef struct res {
    pp_err code;
    uint64_t offset;
    bool stopped;
    size_t nevents;
    pp_stream_result sr;
} res;

static res run_fl(const void *p, size_t n, pp_flavor fl)
{
    pp_graph g;
    pp_graph_init(&g, lim.v[PP_LIMIT_GRAPH_MEMORY]);
    pp_vm_options o = {.flavor = fl, .limits = &lim, .stream_name = "t"};
    pp_error e;
    pp_error_clear(&e);
    res r;
    memset(&r, 0, sizeof r);
    r.code = pp_vm_run(&g, p, n, 0, &o, &r.sr, &e);
    r.offset = e.offset;
    r.stopped = r.sr.stopped;
    r.nevents = g.nevents;
    if (r.code != e.code)
        r.code = PP_E_INTERNAL; /* return code and recorded error must agree */
    pp_graph_free(&g);
    return r;
}

static res run(const void *p, size_t n)
{
    return run_fl(p, n, PP_FLAVOR_C);
}

/* A valid argument for each argument kind. */
static size_t valid_arg(uint8_t op, uint8_t *out)
{
    const pp_opdef *d = pp_vm_opdef(op);
    switch (d->argkind) {
    case PP_ARG_NONE: return 0;
    case PP_ARG_U1: out[0] = op == 0x80 ? 2 : 1; return 1;
    case PP_ARG_U2: out[0] = 1; out[1] = 0; return 2;
    case PP_ARG_I4:
    case PP_ARG_U4: memcpy(out, "\x01\0\0\0", 4); return 4;
    case PP_ARG_U8: memset(out, 0, 8); return 8; /* FRAME 0 */
    case PP_ARG_F8: memcpy(out, "\x3f\xf0\0\0\0\0\0\0", 8); return 8;
    case PP_ARG_LINE:
        if (op == 'S') {
            memcpy(out, "'a'\n", 4);
            return 4;
        }
        memcpy(out, "1\n", 2);
        return 2;
    case PP_ARG_LINE2: memcpy(out, "builtins\nint\n", 13); return 13;
    case PP_ARG_LEN1: out[0] = 1; out[1] = 'a'; return 2;
    case PP_ARG_LEN4: memcpy(out, "\x01\0\0\0a", 5); return 5;
    case PP_ARG_LEN8: memcpy(out, "\x01\0\0\0\0\0\0\0a", 9); return 9;
    default: return 0;
    }
}

/* What an opcode does with an empty stack: 'u' underflow, 'm' needs a MARK, 'p' pushes,
 * 'g' memo miss, 'v' bad value regardless of stack, 'n' no stack effect. */
static char empty_class(uint8_t op)
{
    switch (op) {
    case '.': case '0': case '2': case 'Q': case 'R': case 'a': case 'b': case 'p': case 'q':
    case 'r': case 's': case 0x81: case 0x85: case 0x86: case 0x87: case 0x92: case 0x93:
    case 0x94: case 0x98:
        return 'u';
    case '1': case 'd': case 'e': case 'i': case 'l': case 'o': case 't': case 'u': case 0x90:
    case 0x91:
        return 'm';
    case 'g': case 'h': case 'j': return 'g';
    case 'P': case 0x82: case 0x83: case 0x84: case 0x97: return 'v';
    case 0x80: case 0x95: case '(': return 'n';
    default: return 'p';
    }
}

static void test_opcode_table(void)
{
    int count = 0;
    for (int op = 0; op < 256; op++) {
        const pp_opdef *d = pp_vm_opdef((uint8_t)op);
        uint8_t buf[64];
        if (!d) {
            buf[0] = (uint8_t)op;
            res r = run(buf, 1);
            CHECKF(r.code == PP_E_BAD_OPCODE && r.offset == 0, "byte 0x%02x must be invalid", op);
            continue;
        }
        count++;
        buf[0] = (uint8_t)op;
        size_t n = 1 + valid_arg((uint8_t)op, buf + 1);

        /* on an empty stack */
        res r = run(buf, n);
        char cls = empty_class((uint8_t)op);
        pp_err want = cls == 'u' ? PP_E_UNDERFLOW
                      : cls == 'm' ? PP_E_MARK
                      : cls == 'g' ? PP_E_MEMO
                      : cls == 'v' ? PP_E_BAD_VALUE
                                   : PP_E_TRUNCATED;
        uint64_t want_off = (cls == 'p' || cls == 'n') ? n : 0;
        CHECKF(r.code == want && r.offset == want_off,
               "%s on empty stack: got %s at %llu, want %s at %llu", d->name, pp_errname(r.code),
               (unsigned long long)r.offset, pp_errname(want), (unsigned long long)want_off);

        /* after a lone MARK */
        uint8_t m[64];
        m[0] = '(';
        memcpy(m + 1, buf, n);
        r = run(m, n + 1);
        switch (op) {
        case '1': case 'd': case 'l': case 't': case 0x91: case '0': case 'i':
            want = PP_E_TRUNCATED; /* consumes the mark and pushes (or pops it) */
            want_off = n + 1;
            break;
        case 'e': case 'u': case 0x90: case 'o':
            want = PP_E_UNDERFLOW; /* the mark is taken, then no target below it */
            want_off = 1;
            break;
        default:
            if (cls == 'u') {
                want = PP_E_MARK; /* "unexpected MARK found" */
                want_off = 1;
            } else if (cls == 'g' || cls == 'v') {
                want = cls == 'g' ? PP_E_MEMO : PP_E_BAD_VALUE;
                want_off = 1;
            } else {
                want = PP_E_TRUNCATED;
                want_off = n + 1;
            }
        }
        CHECKF(r.code == want && r.offset == want_off,
               "%s after MARK: got %s at %llu, want %s at %llu", d->name, pp_errname(r.code),
               (unsigned long long)r.offset, pp_errname(want), (unsigned long long)want_off);

        /* truncated at every byte of its argument: always "truncated" at the opcode */
        for (size_t cut = 1; cut < n; cut++) {
            /* C's INST takes its MARK before reading the names */
            size_t pre = op == 'i' ? 1 : 0;
            r = op == 'i' ? run(m, cut + 1) : run(buf, cut);
            CHECKF(r.code == PP_E_TRUNCATED && r.offset == pre,
                   "%s truncated to %zu bytes: got %s at %llu", d->name, cut,
                   pp_errname(r.code), (unsigned long long)r.offset);
        }
    }
    CHECKF(count == 68, "opcode table has %d opcodes, want 68", count);
}

#define RUN(lit) run(lit, sizeof(lit) - 1)
#define RUNPY(lit) run_fl(lit, sizeof(lit) - 1, PP_FLAVOR_PY)

static void test_stack_discipline(void)
{
    CHECK(RUN("NK\x01.").stopped);                  /* leftover items are ignored */
    CHECK(RUN("N(K\x01.").stopped);                 /* open marks are ignored */
    CHECK(RUN(".").code == PP_E_UNDERFLOW);
    CHECK(RUN("(.").code == PP_E_MARK);
    CHECK(RUN("N(0.").stopped);                     /* POP takes the MARK first */
    CHECK(RUN("K\x01K\x02(\x86").code == PP_E_MARK); /* TUPLE2 across a mark */
    CHECK(RUN("NK\x01\x80\x03.").stopped);          /* PROTO anywhere */
    CHECK(RUN("\x80\x06N.").code == PP_E_PROTOCOL);
    CHECK(RUN("}K\x01K\x02K\x03u.").code == PP_E_MARK); /* SETITEMS without MARK */
    CHECK(RUN("}(K\x01K\x02K\x03u.").code == PP_E_BAD_VALUE); /* odd SETITEMS */
    CHECK(RUN("(K\x01" "d.").code == PP_E_BAD_VALUE);  /* odd DICT */
    CHECK(RUN("(]K\x01" "d.").code == PP_E_BAD_VALUE); /* unhashable key */
    CHECK(RUN("]K\x01" "a.").stopped);
    CHECK(RUN(")K\x01" "a.").code == PP_E_BAD_VALUE);  /* APPEND to a tuple */
    CHECK(RUN("](e.").stopped);                     /* empty APPENDS */
    CHECK(RUN("N(e.").stopped);                     /* C: empty APPENDS ignores the target */
    CHECK(RUNPY("N(e.").code == PP_E_BAD_VALUE);    /* Py looks up extend/append first */
    CHECK(RUN("\x8c\x01" "a\x8c\x01" "b\x93.").code == PP_OK);
    CHECK(RUN("C\x01" "aC\x01" "b\x93.").code == PP_E_BAD_VALUE); /* STACK_GLOBAL requires str */
}

static void test_memo(void)
{
    CHECK(RUN("Nr\xff\xff\xff\xffj\xff\xff\xff\xff.").stopped); /* sparse, no huge allocation */
    CHECK(RUN("Nq\x05K\x07\x94h\x01.").stopped); /* MEMOIZE index = number of entries */
    CHECK(RUN("Nq\x05K\x07\x94h\x02.").code == PP_E_MEMO);
    CHECK(RUN("h\x00.").code == PP_E_MEMO);
    CHECK(RUN("Np-1\n.").code == PP_E_BAD_VALUE); /* negative PUT */
    CHECK(RUN("Np 5\ng05\n.").stopped);            /* int(x, 10) rules */
    CHECK(RUN("(q\x00").code == PP_E_MARK);
    /* a memo that grows densely and then far away */
    uint8_t buf[5000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++) {
        buf[n++] = 'N';
        buf[n++] = 0x94;
    }
    memcpy(buf + n, "Nr\x00\x00\x00\x40j\x00\x00\x00\x40j\xe7\x03\x00\x00.", 17);
    n += 17;
    CHECK(run(buf, n).stopped);
}

static void test_frames(void)
{
    /* FRAME 3 holding "K\x01." */
    CHECK(RUN("\x80\x04\x95\x03\0\0\0\0\0\0\0K\x01.").stopped);
    /* BININT's argument straddles the frame end */
    res r = RUN("\x80\x04\x95\x02\0\0\0\0\0\0\0J\x01\0\0\0.");
    CHECK(r.code == PP_E_FRAME && r.offset == 11);
    /* an exhausted frame hands the argument read over to the file */
    CHECK(RUN("\x80\x04\x95\x01\0\0\0\0\0\0\0K\x01.").stopped);
    /* the frame ends exactly after an opcode byte: its argument comes from the file (Py rule) */
    CHECK(RUN("\x80\x04\x95\x02\0\0\0\0\0\0\0NK\x01.").stopped);
    /* a frame inside a frame */
    r = RUN("\x80\x04\x95\x0a\0\0\0\0\0\0\0\x95\x01\0\0\0\0\0\0\0N.");
    CHECK(r.code == PP_E_FRAME && r.offset == 11);
    /* a frame longer than the input */
    CHECK(RUN("\x95\xff\0\0\0\0\0\0\0N.").code == PP_E_TRUNCATED);
    /* a text line crossing the frame end */
    CHECK(RUN("\x95\x02\0\0\0\0\0\0\0I1\n.").code == PP_E_FRAME);
}

static void test_lengths(void)
{
    CHECK(RUN("\x8e\0\0\0\0\0\0\0\x80N.").code == PP_E_TRUNCATED); /* 2^63 */
    CHECK(RUN("\x8d\xff\xff\xff\xff\xff\xff\xff\xffN.").code == PP_E_TRUNCATED);
    CHECK(RUN("\x8b\xff\xff\xff\xff.").code == PP_E_BAD_VALUE); /* negative LONG4 */
    CHECK(RUN("T\xff\xff\xff\xff.").code == PP_E_TRUNCATED);    /* C: unsigned */
    CHECK(RUNPY("T\xff\xff\xff\xff.").code == PP_E_BAD_VALUE);  /* Py: negative */
    CHECK(RUN("X\x02\0\0\0\xed\xa0.").code == PP_E_DECODE);
    CHECK(RUN("X\x05\0\0\0ab.").code == PP_E_TRUNCATED);
    CHECK(RUN("X\x03\0\0\0\xed\xa0\x80.").stopped); /* lone surrogate, surrogatepass */
    CHECK(RUN("X\x01\0\0\0\xff.").code == PP_E_DECODE);
}

static void test_limits(void)
{
    pp_limits saved = lim;
    lim.v[PP_LIMIT_MARKS] = 1000;
    uint8_t *buf = malloc(2000);
    memset(buf, '(', 2000);
    res r = run(buf, 2000);
    CHECK(r.code == PP_E_LIMIT);
    lim = saved;

    /* 10^6 nested lists: ] ] ] ... a a a : linear, no recursion */
    size_t n = 2000001;
    uint8_t *deep = malloc(n + 1);
    memset(deep, ']', 1000000);
    memset(deep + 1000000, 'a', 999999);
    deep[1999999] = '.';
    clock_t t0 = clock();
    r = run(deep, 2000000);
    CHECK(r.stopped);
    CHECKF((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0, "nested lists took too long");
    free(deep);

    /* billion laughs: 60 rounds of DUP+TUPLE2+MEMOIZE stay linear */
    size_t k = 0;
    buf[k++] = 0x80;
    buf[k++] = 4;
    buf[k++] = 'N';
    for (int i = 0; i < 60; i++) {
        buf[k++] = '2';
        buf[k++] = 0x86;
        buf[k++] = 0x94;
    }
    buf[k++] = '.';
    r = run(buf, k);
    CHECK(r.stopped);

    lim.v[PP_LIMIT_OPCODES] = 10;
    r = RUN("NNNNNNNNNNNNNNNN.");
    CHECK(r.code == PP_E_LIMIT);
    lim = saved;
    free(buf);
}

/* A key or set element is hashed by CPython on every use, and a tuple's hash is not cached:
 * its cost is the expanded size of the tuple DAG, budgeted by hash-work. */
static void test_hash_work(void)
{
    uint8_t buf[256];
    for (int levels = 10; levels <= 60; levels += 50) {
        for (int form = 0; form < 3; form++) {
            size_t k = 0;
            buf[k++] = 0x80;
            buf[k++] = 4;
            if (form == 0) buf[k++] = '}'; /* dict key */
            if (form == 1) buf[k++] = 0x8f, buf[k++] = '('; /* set element */
            if (form == 2) buf[k++] = '(';                 /* frozenset element */
            buf[k++] = 'N';
            for (int i = 0; i < levels; i++)
                buf[k++] = '2', buf[k++] = 0x86, buf[k++] = 0x94;
            if (form == 0) buf[k++] = 'N', buf[k++] = 's';
            if (form == 1) buf[k++] = 0x90;
            if (form == 2) buf[k++] = 0x91;
            buf[k++] = '.';
            res r = run(buf, k);
            if (levels == 10)
                CHECKF(r.code == PP_OK && r.stopped, "2^10 key, form %d", form);
            else
                CHECKF(r.code == PP_E_LIMIT, "2^60 key, form %d: %d", form, (int)r.code);
        }
    }
    /* the same small key used many times adds up */
    pp_limits saved = lim;
    lim.v[PP_LIMIT_HASH_WORK] = 1000;
    uint8_t *p = malloc(2 + 3 * 600 + 2);
    for (int pairs = 400; pairs <= 600; pairs += 200) {
        size_t k = 0;
        p[k++] = '}';
        p[k++] = '(';
        for (int i = 0; i < pairs; i++) /* key (None,): 2 elements hashed, value None */
            p[k++] = 'N', p[k++] = 0x85, p[k++] = 'N';
        p[k++] = 'u';
        p[k++] = '.';
        res r = run(p, k);
        CHECKF(r.code == (pairs == 400 ? PP_OK : PP_E_LIMIT), "%d tuple keys", pairs);
    }
    free(p);
    lim = saved;
}

static void test_events(void)
{
    /* a call followed by a malformed tail keeps the call */
    res r = RUN("cposix\nsystem\n(S'x'\ntR\xff");
    CHECK(r.code == PP_E_BAD_OPCODE && r.nevents == 2);
    /* protocol-2 rename: __builtin__ -> builtins at proto < 3 */
    r = RUN("\x80\x02" "c__builtin__\neval\n.");
    CHECK(r.stopped && r.nevents == 1);
    /* dotted names need protocol 4 */
    CHECK(RUN("\x80\x03\x8c\x02os\x8c\x0bpath.system\x93.").code == PP_E_BAD_VALUE);
    CHECK(RUN("\x80\x04\x8c\x02os\x8c\x0bpath.system\x93.").stopped);
    CHECK(RUN("\x80\x04\x8c\x02os\x8c\x0a" "a.<locals>\x93.").code != PP_OK);
    /* BUILD on a list with state: no __dict__ */
    CHECK(RUN("]}b.").code == PP_E_BAD_VALUE);
    CHECK(RUN("]Nb.").stopped);
    CHECK(RUNPY("]}b.").stopped); /* Py ignores falsy state */
    /* EXT codes */
    CHECK(RUN("\x82\x01.").code == PP_E_BAD_VALUE);
    CHECK(RUN("\x84\0\0\0\0.").code == PP_E_BAD_VALUE);
    /* PERSID without persistent_load */
    CHECK(RUN("Pabc\n.").code == PP_E_BAD_VALUE);
}

int main(void)
{
    pp_limits_default(&lim);
    test_opcode_table();
    test_stack_discipline();
    test_memo();
    test_frames();
    test_lengths();
    test_limits();
    test_hash_work();
    test_events();
    return tap_done();
}
