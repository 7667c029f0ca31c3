#!/usr/bin/python3
"""Asks CPython for the expected result of every protocol-0 text-argument case in
tests/unit/test_textarg.c and writes them as C initializers.

Run with Debian's interpreter (the oracle): /usr/bin/python3 tools/gen_textarg_cases.py --update
tests/unit/test_textarg.c rewrites the region between the GENERATED markers; without --update the
table goes to stdout. Every case is loaded with pickle.loads (C, "c") and pickle._loads (Py, "p").
Output is deterministic (fixed random seed).
"""
import codecs
import decimal
import pickle
import random
import struct
import sys
import warnings

warnings.simplefilter("ignore")  # \q and \777 in STRING are DeprecationWarnings only

BEGIN = "/* BEGIN GENERATED: tools/gen_textarg_cases.py (do not edit by hand) */"
END = "/* END GENERATED */"
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
HEX_MAX = 256  # longer expected payloads are compared by length and FNV-1a only


class Rep:
    """pre + rep * count + post, so 4301-digit inputs stay short in the C source."""

    def __init__(self, pre, rep, count, post=b""):
        assert rep
        self.pre, self.rep, self.count, self.post = pre, rep, count, post

    def full(self):
        return self.pre + self.rep * self.count + self.post


def parts(x):
    return (x.pre, x.rep, x.count, x.post) if isinstance(x, Rep) else (x, b"", 0, b"")


def full(x):
    return x.full() if isinstance(x, Rep) else x


def fnv(b):
    h = 0xCBF29CE484222325
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def twos(v):
    n = ((v if v >= 0 else ~v).bit_length() + 8) // 8
    return v.to_bytes(n, "little", signed=True)


# ---- expected results ---------------------------------------------------------------------------
# ("e", "PP_E_...") | ("b", 0/1) | ("i", v) | ("B", bytes) | ("f", bits) | ("s", bytes)


def load(fl, data, **kw):
    return (pickle.loads if fl == "c" else pickle._loads)(data, **kw)


def int_error(e, line_for_limit=None):
    msg = str(e)
    if "truncated" in msg:
        return ("e", "PP_E_TRUNCATED")
    if isinstance(e, UnicodeDecodeError):
        return ("e", "PP_E_DECODE")
    if "Exceeds the limit" in msg:
        return ("e", "PP_E_LIMIT")
    if line_for_limit is not None and msg == "could not convert string to int":
        # C load_int hides the fallback's error: ask the fallback (the line as a C string).
        try:
            int(line_for_limit.split(b"\0")[0] + b"\n", 0)
        except ValueError as e2:
            if "Exceeds the limit" in str(e2):
                return ("e", "PP_E_LIMIT")
    assert isinstance(e, (ValueError, OverflowError, pickle.UnpicklingError)), repr(e)
    return ("e", "PP_E_BAD_ARG")


def int_result(v):
    if isinstance(v, bool):
        return ("b", int(v))
    assert type(v) is int
    if INT64_MIN <= v <= INT64_MAX:
        return ("i", v)
    return ("B", twos(v))


def expect_int(op, fl, line):
    try:
        v = load(fl, op + line + b"\n.")
    except Exception as e:
        return int_error(e, line if (op == b"I" and fl == "c") else None)
    return int_result(v)


def expect_float(fl, line):
    try:
        v = load(fl, b"F" + line + b"\n.")
    except Exception as e:
        if "truncated" in str(e):
            return ("e", "PP_E_TRUNCATED")
        assert isinstance(e, (ValueError, OverflowError)), repr(e)
        return ("e", "PP_E_BAD_ARG")
    return ("f", struct.unpack("<Q", struct.pack("<d", v))[0])


def expect_index(fl, line):
    try:
        load(fl, b"g" + line + b"\n.")
    except Exception as e:
        msg = str(e)
        pfx = "Memo value not found at index "
        if msg.startswith(pfx):
            i = int(msg[len(pfx):])
            if i > INT64_MAX:
                assert fl == "p"
                return ("e", "PP_E_LIMIT")
            return ("i", max(i, INT64_MIN))
        return int_error(e)
    raise AssertionError("GET on an empty memo succeeded")


def expect_string(fl, line):
    try:
        v = load(fl, b"S" + line + b"\n.", encoding="bytes")
    except Exception as e:
        assert isinstance(e, (ValueError, pickle.UnpicklingError)), repr(e)
        return ("e", "PP_E_BAD_ARG")
    return ("s", v)


def expect_unicode(fl, line):
    try:
        v = load(fl, b"V" + line + b"\n.")
    except UnicodeDecodeError:
        return ("e", "PP_E_DECODE")
    return ("s", v.encode("utf-8", "surrogatepass"))


def expect_escape(body):
    # Bodies holding '\n' cannot be a pickle line; ask codecs.escape_decode, what load_string uses.
    try:
        return ("s", codecs.escape_decode(body)[0])
    except ValueError:
        return ("e", "PP_E_BAD_ARG")


# ---- the inputs ---------------------------------------------------------------------------------

D4300 = Rep(b"", b"1", 4300)

INT_LINES = [
    # formats.md 1.4 and 1.12
    b"01", b"00", b"1", b"+1", b" 1", b"-0", b"010", b"02", b" 01", b"0x10", b"1_000", b"01 ",
    b"1\r", b"99999999999999999999",
    Rep(b"", b"1", 4300), Rep(b"", b"1", 4301), Rep(b"-", b"9", 4300), Rep(b"-", b"9", 4301),
    # strtol vs PyLong_FromString
    b"", b"0", b"-1", b"+0", b"-1 ", b"1 ", b" 1 ", b"\t1", b"\x0b1", b"\x0c0", b"\r1", b"\n"[:0],
    b"\x1c1", b"\xa01", b"1\xa0", b"0x", b"0X1f", b"0xg", b"0x_1", b"0x__1", b"0x1_", b"0x1__2",
    b"0o17", b"0O17", b"0o", b"0o8", b"0b101", b"0B1", b"0b2", b"0b", b"0b_1", b"017", b"08",
    b"09", b"0_0", b"0_1", b"000", b"0777", b"-010", b"+010", b"- 1", b"+-1", b"--1", b"1__0",
    b"_1", b"1_", b"1e3", b"1.0", b"1L", b"0L", b"+", b"-", b" ", b"  ", b"0 ", b"1 1",
    b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
    b"-9223372036854775809", b"18446744073709551615", b"18446744073709551616",
    b"-18446744073709551616", b"0x7fffffffffffffff", b"0x8000000000000000",
    b"-0x8000000000000000", b"-0x8000000000000001", b"0xffffffffffffffff",
    b"0x10000000000000000", b"-0x10000000000000000", b"0777777777777777777777",
    b"01000000000000000000000", b"-01000000000000000000000", b"01777777777777777777777",
    b"02000000000000000000000", b"0o1777777777777777777777", b"0o2000000000000000000000",
    b"-0o1000000000000000000000", b"0b" + b"1" * 63, b"0b" + b"1" * 64, b"-0b1" + b"0" * 63,
    b"0x_ffff_ffff_ffff_ffff", b"1_2_3_4_5_6_7_8_9_0_1_2_3_4_5_6_7_8_9_0", b"0_0_0", b"00_0",
    b"0x80", b"-0x80", b"0x7f", b"-0x81", b"128", b"-128", b"-129", b"255", b"256", b"-256",
    b"0xff00", b"-65536", b"-0x8000", b"-4294967296", b"4294967295",
    # embedded NULs: C stops there, and the bool test counts the whole line
    b"\x00", b"\x00\x00", b"\x00a", b"0\x00", b"1\x00", b"1\x002", b"1_0\x00x", b" \x00",
    b"+\x00", b"2\x00", b"-1\x00", b"\x001", b"0x\x00", b"99999999999999999999\x00",
    # long inputs
    Rep(b"0x", b"f", 10000), Rep(b"-0x", b"f", 10000), Rep(b"0x", b"0", 10000, b"1"),
    Rep(b"0o", b"7", 5000), Rep(b"-0b", b"1", 20000), Rep(b"", b"0", 4301),
    Rep(b"", b"0", 4300, b"1"), Rep(b"", b"0", 4299, b"1"), Rep(b"-", b"0", 4300, b"1"),
    Rep(b"", b"9", 4301, b"x"), Rep(b"", b"1", 5000, b"__1"), Rep(b" ", b"9", 4300, b" "),
    Rep(b"", b"9", 4300, b"\x00junk"), Rep(b"+", b"1", 4299, b"_2"),
    Rep(b"1", b"_1", 4300), Rep(b"1", b"_1", 4299), Rep(b"0x1", b"_f", 3000),
    Rep(b"0", b"7", 30), Rep(b"0", b"7", 21), Rep(b"0x", b"f", 16), Rep(b"0x", b"f", 15),
]

LONG_LINES = [
    b"1L", b"1", b"L", b"", b"LL", b" 7 L", b"0x10L", b"0x_1L", b"1 L", b"1LL", b"-5L", b"010L",
    b"00L", b"0L", b"l", b"1l", b"0xfL", b"0b11L", b"0o7L", b"1_000L", b"_1L", b"1_L",
    b"99999999999999999999L", b"-99999999999999999999L", b"9223372036854775808L",
    b"-9223372036854775808L", b"-9223372036854775809L", b"\tL", b" 1 ", b"+1L", b"++1L",
    b"1\x00xL", b"1\x00x", b"\x00L", b"\x001", b"1\x00", b"L\x00", b"\xa01", b"\xa0\x00",
    b"\x00\xa0", b"1\x00\xff", b"\xff\x00", b"x\xff", b"\xc3\xa9", b"1\xc3", b"L\xff",
    Rep(b"", b"1", 199, b"\xc3\xa9"), Rep(b"", b"1", 198, b"\xc3\xa9"),
    Rep(b"", b"1", 199, b"\xc3\xa9L"), Rep(b"", b"1", 198, b"\xc3\xa9\n"[:2] + b"L"),
    Rep(b"", b"\xa0", 300), Rep(b"", b"1", 300, b"\xff"), Rep(b"", b"1", 4301, b"L"),
    Rep(b"", b"9", 4300, b"L"), Rep(b"-", b"9", 4300, b"L"), Rep(b"0x", b"a", 9999, b"L"),
    Rep(b"-0x8", b"0", 31, b"L"), Rep(b"0x8", b"0", 31, b"L"),
]

FLOAT_LINES = [
    b"1.5", b"0", b"-0", b"-0.0", b"+0.0", b"1", b".5", b"5.", b".", b"-.5", b"+.5", b"-.",
    b"1e5", b"1E5", b"1e+5", b"1e-5", b"1e", b"1e+", b"1e-", b"e5", b"1.e5", b".e5", b".5e",
    b"1_0", b"1_0.0_1e1_0", b"1_.5", b"1._5", b"_1", b"1_", b"1__0", b"1e_5", b"1e5_",
    b"1_e5", b"0_0.0", b"0.0_0_1", b" 1.5", b"1.5 ", b"\t1.5\x0c", b" ", b"", b"\x0b1\x0b",
    b" 1_0 ", b"inf", b"-inf", b"+inf", b"INF", b"Infinity", b"-iNfInItY", b"infinit",
    b"infx", b"inf ", b" inf", b"in", b"nan", b"-nan", b"+nan", b"NaN", b"nanx", b"nan(1)",
    b" nan ", b"+-nan", b"-+1", b"++1", b"1e400", b"-1e400", b"1e308", b"1e309",
    b"1.7976931348623157e308", b"1.7976931348623158e308", b"1.7976931348623159e308",
    b"179769313486231580793728971405303415079934132710037826936173778980444968292764750946649"
    b"017977587207096330286416692887910946555547851940402630657488671505820681908902000708383"
    b"676273854845817711531764475730270069855571366959622842914819860834936475292719074168444"
    b"365510704342711559699508093042880177904174497791.9999999999",
    b"2.2250738585072011e-308", b"2.2250738585072012e-308", b"2.2250738585072014e-308",
    b"4.9e-324", b"5e-324", b"2.4703282292062328e-324", b"2.4703282292062327e-324",
    b"1e-400", b"-1e-400", b"1e-320", b"-1e-320", b"0e99999999999", b"1e99999999999",
    b"1e-99999999999", b"-0e-99999999999", b"1e0001", b"1e000000000000000000005",
    b"1e1234567890", b"0.0000e1234567890", b"1e-1234567890", b"1e999999999", b"1e1100000000",
    b"1e1100000001", b"0x1p3", b"0x10", b"0X1", b"1.5\x00x", b"\x00", b"1\x00", b"\x001",
    b"\xa0", b"1\xa0", b"1,5", b"1.5.5", b"1e5e5", b"1.5f", b"1.5d", b"\xd9\xa1",
    b"9007199254740993", b"9007199254740993.0000000000000000000000001", b"9007199254740995",
    b"9007199254740994.9999999999999999999999", b"0.1", b"0.2", b"0.3", b"123456789012345678901",
    b"1" * 40, b"0." + b"0" * 400 + b"1", b"1" * 400 + b"e-100", b"3.14159265358979323846264338",
    b"7.2057594037927933e16", b"8.98846567431158e307", b"2.225073858507201136057409796709e-308",
    Rep(b"1", b"0", 308), Rep(b"1", b"0", 309), Rep(b"0.", b"0", 323, b"1"),
    Rep(b"0.", b"0", 324, b"1"), Rep(b"9007199254740993.", b"0", 900, b"1"),
    Rep(b"9007199254740993.", b"0", 900), Rep(b"", b"1", 2000, b"e-1990"),
    Rep(b"", b"9", 5000, b"e-4700"), Rep(b"0.", b"0", 100000, b"1e100000"),
    Rep(b"1_", b"0", 10), Rep(b"1", b"_0", 400),
]


def exact_decimal(num, den_pow2):
    with decimal.localcontext() as ctx:
        ctx.prec = 3000
        return format(decimal.Decimal(num) / (decimal.Decimal(2) ** den_pow2), "f").encode()


# Halfway points: ties to even, and a hair above or below them.
_tiny_half = exact_decimal(1, 1075)  # half the smallest subnormal: ties to 0
_big_half = exact_decimal((1 << 1024) - (1 << 970), 0)  # DBL_MAX + half ulp: ties to inf
_sub_half3 = exact_decimal(3, 1075)  # 1.5 * 2^-1074: ties to 2 * 2^-1074
FLOAT_LINES += [
    _tiny_half, _tiny_half + b"0" * 50 + b"1", _tiny_half[:-1], _big_half,
    _big_half.split(b".")[0][:-1] + b"7", _big_half + b"0" * 100 + b"1", _sub_half3,
    _sub_half3 + b"0" * 30 + b"1", _sub_half3[:-1] + b"4",
    exact_decimal((1 << 53) + 1, 0), exact_decimal((1 << 54) + 3, 1),
    exact_decimal((1 << 53) + 1, 1100),
    # dtoa's overflow quirk: past DBL_MAX + half an ulp with more than 40 significant digits
    # whose first 18 are 179769313486231580, C returns inf instead of raising OverflowError.
    b"1.79769313486231580" + b"9" * 30 + b"e308", b"-1.79769313486231580" + b"9" * 30 + b"e308",
    b"1.7976931348623158079" + b"4" * 30 + b"e308", b"1.7976931348623158079" + b"3" * 30 + b"e308",
    b"1797693134862315809" + b"9" * 21 + b"e269", b"1797693134862315809" + b"9" * 22 + b"e268",
    b"1797693134862315809" + b"9" * 21 + b"0" * 5 + b"e264", b"1.79769313486231581" + b"0" * 30
    + b"1e308", b"1.7976931348623159" + b"0" * 30 + b"1e308", b"0.179769313486231580" + b"9" * 30
    + b"e309", b"17976931348623158099" + b"9" * 30 + b"e259",
]

INDEX_LINES = [
    b"0", b"5", b"05", b" 5", b"5 ", b"+5", b"-5", b"1_0", b"_1", b"1_", b"1__0", b"0x1", b"0o1",
    b"", b" ", b"\x00", b"\x005", b"5\x00x", b"\xa0", b"\xa05", b"5\xff", b"-1", b"-0", b"00",
    b"\t7\r", b"+-1", b"1.0", b"1e3", b"9223372036854775807", b"9223372036854775808",
    b"-9223372036854775808", b"-9223372036854775809", b"9" * 30, b"-" + b"9" * 30,
    b"18446744073709551616", Rep(b"", b"0", 4300, b"5"), Rep(b"", b"0", 4299, b"5"),
    Rep(b"", b"1", 199, b"\xc3\xa9"), Rep(b"", b"1", 198, b"\xc3\xa9"),
    Rep(b"", b"1", 199, b"\xc3"), Rep(b"", b"\xa0", 300), Rep(b"-", b"0", 4300),
]

STRING_LINES = [
    b"''", b'""', b"'", b'"', b"'a\"", b"\"a'", b"'it's'", b"a", b"'a", b"a'", b"", b"'abc'",
    b"'\\\\'", b"'\\'", b"'\\x4'", b"'\\x4g'", b"'\\x41'", b"'\\xG1'", b"'\\xAf'", b"'\\xaF0'",
    b"'\\x0'", b"'\\x'", b"'a\\x'", b"'\\777'", b"'\\400'", b"'\\0'", b"'\\08'", b"'\\1234'",
    b"'\\1'", b"'\\12'", b"'\\123'", b"'\\8'", b"'\\9'", b"'\\q'", b"'\\\r'", b"'\\N{DASH}'",
    b"'\\u0041'", b"'\\U00000041'", b"'\xc3\xa9'", b"'\xff'",
    b"'\\a\\b\\f\\n\\r\\t\\v\\'\\\"'", b"'\x00'", b"'\\\x00'", b"'\\\xff'", b"'\\ '",
    b"'\\\\\\'", b"'\\\\\\\\'", b"'a\\'b'", b"\"\\\"\"", b"'''", b"'\\''", b"'\\7\\77\\777'",
    b"'\\3777'", b"'\\xff\\x00\\x7f'", b"'\\X41'", b"'\\e'", b"'\\z\\d'",
    Rep(b"'", b"\\", 1000, b"'"), Rep(b"'", b"\\", 1001, b"'"), Rep(b"'", b"a", 5000, b"\\n'"),
]

ESCAPE_BODIES = [b"a\\\nb", b"\\\n", b"\\\n\\\n", b"\n", b"a\\\\\nb"]

UNICODE_LINES = [
    b"", b"abc", b"\xff", b"\xc3\xa9", b"\x80", b"\\u00e9", b"\\u20ac", b"\\U0001F600",
    b"\\U0010FFFF", b"\\U00110000", b"\\UFFFFFFFF", b"\\ud800", b"\\udfff", b"\\ud83d\\ude00",
    b"\\uD83D", b"\\u12", b"\\u12g4", b"\\U0001f60", b"\\\\u0041", b"\\\\\\u0041",
    b"\\\\\\\\u0041", b"\\x41", b"\\n", b"\\", b"a\\", b"\\\\", b"\\\xff", b"\\\x00", b"\x00",
    b"\r", b"\\u0000", b"\\u005c", b"\\U0000005C", b"\\u005c\\u0041", b"\\u004", b"\\u004g",
    b"\\U", b"\\u", b"\\U0000d800", b"\\U00000000", b"\\u0080", b"\\u07ff", b"\\u0800",
    b"\\uffff", b"\\U00010000", b"\\u+123", b"\\u 123", b"\\u00E9\\u00e9", b"\x1a", b"\\N{DASH}",
    b"\\\\\\", b"\\u0041\\", b"\\\\\\\\", Rep(b"", b"\xe9", 3000), Rep(b"\\u0041", b"\\", 1),
]


def random_lines(rng, alphabet, count, maxlen):
    out = []
    for _ in range(count):
        n = rng.randint(1, maxlen)
        out.append(bytes(rng.choice(alphabet) for _ in range(n)))
    return out


def random_floats(rng, count):
    out = []
    for _ in range(count):
        k = rng.random()
        if k < 0.3:
            v = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            out.append(repr(v).encode())
        elif k < 0.6:
            mant = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
            dot = rng.randint(0, len(mant))
            out.append(
                (mant[:dot] + "." + mant[dot:] + "e" + str(rng.randint(-340, 320))).encode())
        elif k < 0.8:
            # round-trip neighbours of random doubles at 17 significant digits, +-1 in the last
            v = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(63)))[0]
            if v != v or v in (float("inf"),):
                v = 1.0
            s = "%.16e" % v
            m, e = s.split("e")
            digits = m.replace(".", "")
            d = int(digits) + rng.choice((-1, 0, 1))
            out.append(("%de%d" % (d, int(e) - 16)).encode())
        else:
            v = rng.uniform(-1e6, 1e6)
            out.append(("%.*f" % (rng.randint(0, 25), v)).encode())
    return out


def build_cases():
    rng = random.Random(20240601)
    cases = []  # (op, fl, input, expected)

    def add(op, x, fn, flavours=("c", "p")):
        line = full(x)
        assert b"\n" not in line or op == "E"
        for fl in flavours:
            cases.append((op, fl, x, fn(fl, line)))

    int_random = random_lines(rng, b"0123456789xXoObB_+- \t\x00aefL", 400, 8)
    for x in INT_LINES + int_random:
        add("I", x, lambda fl, line: expect_int(b"I", fl, line))
    for x in LONG_LINES + random_lines(rng, b"0123456789xXoObB_+- \tafL\x00", 200, 8):
        add("L", x, lambda fl, line: expect_int(b"L", fl, line))
    flt_random = random_lines(rng, b"0123456789.eE+-_ \tinfaINFAty\x00", 400, 8)
    for x in FLOAT_LINES + random_floats(rng, 600) + flt_random:
        add("F", x, expect_float)
    for x in INDEX_LINES + random_lines(rng, b"0123456789_+- \t\x00x", 200, 6):
        add("g", x, expect_index)
    str_random = [b"'" + s + b"'" for s in
                  random_lines(rng, b"\\\\\\abfnrtvx01234789'\"AFgq\xff\x00", 300, 8)]
    for x in STRING_LINES + str_random:
        add("S", x, expect_string)
    for body in ESCAPE_BODIES:
        cases.append(("S", "c", b"'" + body + b"'", expect_escape(body)))
    uni_random = random_lines(rng, b"\\\\\\uU0123456789abcdefABCDEFxg\xff\x00", 400, 12)
    for x in UNICODE_LINES + uni_random:
        add("V", x, expect_unicode)

    # STRING and UNICODE have no flavour in our API: CPython must agree with itself.
    seen = {}
    for op, fl, x, exp in cases:
        if op in "SV":
            key = (op, parts(x))
            assert seen.setdefault(key, exp) == exp, (op, x)
    return cases


def utf8_cases():
    rng = random.Random(7)
    special = [
        b"", b"a", b"\x7f", b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2\x80", b"\xdf\xbf",
        b"\xc2", b"\xc2\x7f", b"\xc2\xc0", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xe0\xa0\x80",
        b"\xe1\x80\x80", b"\xec\xbf\xbf", b"\xed\x80\x80", b"\xed\x9f\xbf", b"\xed\xa0\x80",
        b"\xed\xbf\xbf", b"\xed\xa0", b"\xed\xa0\xbd\xed\xb8\x80", b"\xee\x80\x80",
        b"\xef\xbf\xbf", b"\xef\xbf", b"\xe0\xa0", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf",
        b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
        b"\xf8\x88\x80\x80\x80", b"\xff", b"\xfe", b"\xf0\x90\x80", b"\xf0\x90", b"\xf0",
        b"\xf3\xbf\xbf\xbf", b"abc\xc3\xa9def", b"\xc3\xa9" * 20, b"a" * 31 + b"\xc3\xa9",
        b"a" * 32 + b"\xc3", b"a" * 63 + b"\xff" + b"a" * 40, b"\xe2\x82\xac" + b"x" * 70,
        b"x" * 100 + b"\xed\xb0\x80",
    ]
    alphabet = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
                0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff]
    rnd = [bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(1500)]
    rnd += [b"A" * rng.randint(0, 40) + s + b"B" * rng.randint(0, 40) for s in rnd[:300]]
    out = []
    for b in special + rnd:
        res = []
        for errors in ("strict", "surrogatepass"):
            try:
                b.decode("utf-8", errors)
                res.append(1)
            except UnicodeDecodeError:
                res.append(0)
        out.append((b, res[0], res[1]))
    return out


def py2str_cases():
    inputs = [b"", b"abc", b"\xe9", b"caf\xc3\xa9", b"\xff\x00\x80", b"\xed\xa0\x80", b"a" * 40,
              b"a" * 40 + b"\xa0", b"\x00\x7f"]
    out = []
    for b in inputs:
        for enc, name in (("ascii", "PP_ENC_ASCII"), ("latin1", "PP_ENC_LATIN1"),
                          ("utf-8", "PP_ENC_UTF8"), ("bytes", "PP_ENC_BYTES")):
            data = b"U" + bytes([len(b)]) + b + b"."
            try:
                v = pickle.loads(data, encoding=enc)
                exp = ("s", v if enc == "bytes" else v.encode("utf-8"))
            except UnicodeDecodeError:
                exp = ("e", "PP_E_DECODE")
            try:
                v2 = pickle._loads(data, encoding=enc)
                exp2 = ("s", v2 if enc == "bytes" else v2.encode("utf-8"))
            except UnicodeDecodeError:
                exp2 = ("e", "PP_E_DECODE")
            assert exp == exp2
            out.append((b, name, exp))
    return out


# ---- C output -----------------------------------------------------------------------------------


def c_str(b):
    # Octal escapes are always 3 digits (a following digit cannot extend them); '?' is escaped
    # so -std=c11 trigraphs cannot form.
    out = []
    for c in b:
        ch = chr(c)
        if 0x20 <= c < 0x7F and ch not in '"\\?':
            out.append(ch)
        else:
            out.append("\\%03o" % c)
    return '"' + "".join(out) + '"'


def c_i64(v):
    if v == INT64_MIN:
        return "INT64_MIN"
    return "INT64_C(%d)" % v


def c_payload(b):
    hx = c_str(b.hex().encode()) if len(b) <= HEX_MAX else "NULL"
    return "%d, UINT64_C(0x%016x), %s" % (len(b), fnv(b), hx)


def c_expect(exp):
    kind, v = exp
    if kind == "e":
        return "'e', %s, 0, 0, 0, 0, NULL" % v
    if kind in "bi":
        return "'%s', PP_OK, %s, 0, 0, 0, NULL" % (kind, c_i64(v))
    if kind == "f":
        return "'f', PP_OK, 0, UINT64_C(0x%016x), %s" % (v, "0, 0, NULL")
    return "'%s', PP_OK, 0, 0, %s" % (kind, c_payload(v))


def emit():
    lines = [BEGIN]
    lines.append("static const tcase cases[] = {")
    for op, fl, x, exp in build_cases():
        pre, rep, count, post = parts(x)
        lines.append("    {'%s', '%s', S(%s), S(%s), %d, S(%s), %s}," % (
            op, fl, c_str(pre), c_str(rep), count, c_str(post), c_expect(exp)))
    lines.append("};")
    lines.append("")
    lines.append("static const ucase utf8_cases[] = {")
    for b, strict, sp in utf8_cases():
        lines.append("    {S(%s), %d, %d}," % (c_str(b), strict, sp))
    lines.append("};")
    lines.append("")
    lines.append("static const pcase py2str_cases[] = {")
    for b, enc, exp in py2str_cases():
        lines.append("    {S(%s), %s, %s}," % (c_str(b), enc, c_expect(exp)))
    lines.append("};")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main():
    text = emit()
    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        path = sys.argv[2]
        src = open(path, encoding="utf-8").read()
        a = src.index(BEGIN)
        b = src.index(END) + len(END) + 1
        open(path, "w", encoding="utf-8").write(src[:a] + text + src[b:])
    elif len(sys.argv) == 1:
        sys.stdout.write(text)
    else:
        sys.exit("usage: gen_textarg_cases.py [--update tests/unit/test_textarg.c]")


if __name__ == "__main__":
    main()
