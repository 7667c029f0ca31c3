"""Deterministic pickle corpus for the differential test.

    PYTHONHASHSEED=0 /usr/bin/python3 gen_pickles.py OUTDIR [--base N] [--mutants N] [--seed S]

writes OUTDIR/bNNNNN_<kind>.pkl (generated) and OUTDIR/mNNNNN_<how>.pkl (mutated) files:

* real `pickle.dumps` / `pickle._dumps` output, protocols 0-5, of random nested builtin structures
  (big/negative ints, nan/inf/-0.0 and NaN payloads, non-ASCII and lone-surrogate str, bytes,
  bytearray, containers, shared and self-referencing objects), stdlib objects (OrderedDict,
  datetime, Decimal, defaultdict, partial, ...), instances of the small classes below (copyreg
  _reconstructor, NEWOBJ, NEWOBJ_EX, __getstate__/slots state, __setstate__, 5- and 6-tuple
  __reduce__ results, list/dict subclasses), and numpy arrays/dtypes/scalars when numpy imports;
* hand-assembled streams for what Python 3 picklers never write: INST/OBJ, every protocol-0 text
  form (INT, LONG, FLOAT, STRING escapes, UNICODE escapes), STACK_GLOBAL operand tricks, memo
  forms, FRAME rules, PROTO switching, Python-2 names, mutation opcodes on odd targets, BUILD
  variants, dict/set key equality corner cases, and random stack-aware opcode programs;
* mutants of those: byte flips, bit flips, insertions, deletions, truncations, interesting length
  values, and opcode-level splices/insertions/deletions/duplications.

Everything is derived from one seed. Set PYTHONHASHSEED=0: pickles of sets of str depend on the
hash seed. The classes live in this module, so their globals read `gen_pickles.Plain` etc.; the
recorders never import them.
"""

import collections
import copyreg
import datetime
import decimal
import enum
import fractions
import functools
import os
import pickle
import pickletools
import random
import struct
import sys
import types
import uuid

DEFAULT_SEED = 0x9E3779B9

# ---------------------------------------------------------------------------------------------
# Small local classes pickled through every reduce path.


class Plain:
    def __init__(self, a=None, b=None):
        self.a = a
        self.b = b


class Empty:
    pass


class Slotted:
    __slots__ = ("x", "y")

    def __init__(self, x=1):
        self.x = x

    def __getstate__(self):  # 3.11 refuses slots without __getstate__ at proto < 2
        return (None, {"x": self.x})

    def __setstate__(self, st):
        for k, v in st[1].items():
            setattr(self, k, v)


class SlotsDefault:
    __slots__ = ("x", "y")

    def __init__(self, x=1, y=None):
        self.x = x
        if y is not None:
            self.y = y


class SlotsAndDict:
    __slots__ = ("x", "__dict__")

    def __init__(self, x=1):
        self.x = x
        self.extra = [x]


class GetSetState:
    def __init__(self, v=0):
        self.v = v

    def __getstate__(self):
        return ("state", self.v)

    def __setstate__(self, st):
        self.v = st[1]


class FalsyState:
    def __init__(self, which=0):
        self.which = which

    def __getstate__(self):
        return [0, "", [], (), False, b"", 0.0][self.which % 7]

    def __setstate__(self, st):
        pass


class NoneState:
    def __getstate__(self):
        return None


class ReduceCall:
    def __init__(self, v=1):
        self.v = v

    def __reduce__(self):
        return (Plain, (self.v, [self.v]))


class ReduceGlobalName:
    def __reduce__(self):
        return "SINGLETON"


SINGLETON = ReduceGlobalName()


class ListSub(list):
    pass


class DictSub(dict):
    pass


class SetSub(set):
    pass


class TupleSub(tuple):
    pass


class IntSub(int):
    pass


class StrSub(str):
    pass


class BytesSub(bytes):
    pass


class Reduce5:
    def __init__(self, n=2):
        self.n = n

    def __reduce__(self):
        return (ListSub, (), {"n": self.n}, iter(range(self.n)),
                iter([("k%d" % i, i) for i in range(self.n)]))


def _state_setter(obj, state):
    obj.__dict__.update(state)


class Reduce6:
    def __init__(self, v=1):
        self.v = v

    def __reduce__(self):
        return (Plain, (), {"v": self.v}, None, None, _state_setter)


class Reduce5Dict:
    def __reduce__(self):
        return (DictSub, (), None, None, iter([(1, "one"), ((2,), [2])]))


class KwOnly:
    def __new__(cls, *, a=1, b=None):
        o = object.__new__(cls)
        o.a = a
        o.b = b
        return o

    def __getnewargs_ex__(self):
        return ((), {"a": self.a, "b": self.b})


class NewArgs:
    def __new__(cls, x=0, y=0):
        o = object.__new__(cls)
        o.x, o.y = x, y
        return o

    def __getnewargs__(self):
        return (self.x, self.y)


class NewArgsEx:
    def __new__(cls, *args, **kw):
        o = object.__new__(cls)
        o.args, o.kw = args, kw
        return o

    def __getnewargs_ex__(self):
        return (self.args, self.kw)


class ReduceEx:
    def __init__(self, v=0):
        self.v = v

    def __reduce_ex__(self, proto):
        if proto < 2:
            return (Plain, (proto, self.v))
        return (copyreg.__newobj__, (NewArgs, proto, self.v), {"v": self.v})


class Outer:
    class Inner:
        def __init__(self, v=0):
            self.v = v


class Cyclic:
    def __init__(self):
        self.me = self
        self.items = [self]


class Color(enum.Enum):
    RED = 1
    GREEN = "g"


class Flags(enum.IntFlag):
    A = 1
    B = 2


def module_function(x):
    return x


CLASS_FACTORIES = [
    lambda r: Plain(r.randrange(100), "b"),
    lambda r: Empty(),
    lambda r: Slotted(r.randrange(10)),
    lambda r: SlotsDefault(r.randrange(10), r.choice([None, 2])),
    lambda r: SlotsAndDict(r.randrange(10)),
    lambda r: GetSetState(r.randrange(10)),
    lambda r: FalsyState(r.randrange(7)),
    lambda r: NoneState(),
    lambda r: ReduceCall(r.randrange(10)),
    lambda r: SINGLETON,
    lambda r: ListSub([1, "x", None][: r.randrange(4)]),
    lambda r: DictSub({"k": r.randrange(5)}),
    lambda r: SetSub({1, 2}),
    lambda r: TupleSub((1, 2)),
    lambda r: IntSub(r.randrange(-5, 5)),
    lambda r: StrSub("s"),
    lambda r: BytesSub(b"bb"),
    lambda r: Reduce5(r.randrange(4)),
    lambda r: Reduce6(r.randrange(4)),
    lambda r: Reduce5Dict(),
    lambda r: KwOnly(a=r.randrange(5), b="q"),
    lambda r: NewArgs(r.randrange(5), -1),
    lambda r: NewArgsEx(1, 2, k="v"),
    lambda r: ReduceEx(r.randrange(5)),
    lambda r: Outer.Inner(r.randrange(3)),
    lambda r: Cyclic(),
    lambda r: Color.RED,
    lambda r: Color.GREEN,
    lambda r: Flags.A | Flags.B,
    lambda r: module_function,
    lambda r: Plain,
    lambda r: Outer.Inner,
    lambda r: collections.OrderedDict([("a", 1), ("b", [2])]),
    lambda r: collections.deque([1, 2], maxlen=r.choice([None, 5])),
    lambda r: collections.Counter("abca"),
    lambda r: collections.defaultdict(list, {"k": [1]}),
    lambda r: datetime.datetime(2020, 1, 2, 3, 4, 5, r.randrange(10**6)),
    lambda r: datetime.date(1999, 12, 31),
    lambda r: datetime.timedelta(days=r.randrange(-5, 5), seconds=7),
    lambda r: datetime.datetime(2021, 5, 6, tzinfo=datetime.timezone.utc),
    lambda r: datetime.timezone(datetime.timedelta(hours=2), "X"),
    lambda r: decimal.Decimal("-1.50E+3"),
    lambda r: decimal.Decimal("NaN"),
    lambda r: fractions.Fraction(r.randrange(1, 9), 7),
    lambda r: complex(1.5, -r.random()),
    lambda r: range(0, r.randrange(10), 2),
    lambda r: slice(1, None, 2),
    lambda r: functools.partial(module_function, 1),
    lambda r: types.SimpleNamespace(a=1, b=[2]),
    lambda r: uuid.UUID(int=r.getrandbits(128)),
    lambda r: NotImplemented,
    lambda r: Ellipsis,
    lambda r: type(None),
    lambda r: len,
    lambda r: int,
]

# ---------------------------------------------------------------------------------------------
# Random builtin structures.

INT_EDGES = [0, 1, -1, 127, 128, 255, 256, -128, -129, 32767, 32768, 65535, 65536, -32769,
             2**31 - 1, 2**31, -2**31, -2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -2**63,
             -2**63 - 1, 2**64 - 1, 2**64, 10**30, -10**30]

FLOAT_EDGES = [0.0, -0.0, 1.0, -1.5, float("inf"), float("-inf"), float("nan"), 1e308, 5e-324,
               2.2250738585072014e-308, 1e-310, 0.1, 1 / 3, 2.0**53, 2.0**53 + 2, 1e16, 123456789.125]

STR_PIECES = ["", "a", "abc", "h\u00e9llo", "\u00ff", "\u0100", "\u4e2d\u6587", "\U0001f600",
              "\ud800", "\udfff", "\ud83d\ude00", "\n", "\r\n", "\\", "\\u0041", "\x00", "\x1a",
              "'", '"', "it's", "a b", "\t", "\x7f", "\u2028", " ", "L", "0x10", "1_0"]


def rand_int(r):
    c = r.random()
    if c < 0.3:
        return r.choice(INT_EDGES)
    if c < 0.6:
        return r.randrange(-300, 300)
    if c < 0.85:
        bits = r.choice([8, 16, 31, 32, 33, 63, 64, 65, 100, 200])
        v = r.getrandbits(bits)
        return -v if r.random() < 0.5 else v
    bits = r.choice([500, 1000, 3000, 9000])
    v = r.getrandbits(bits)
    return -v if r.random() < 0.5 else v


def rand_float(r):
    c = r.random()
    if c < 0.4:
        return r.choice(FLOAT_EDGES)
    if c < 0.75:
        return r.uniform(-1e6, 1e6)
    if c < 0.9:
        return struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
    # NaN with a payload (kept bit-exact by BINFLOAT)
    return struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000000 | r.getrandbits(52) | 1
                                           | (r.getrandbits(1) << 63)))[0]


def rand_str(r):
    n = r.choice([0, 1, 2, 3, 5, 10, 40, 300])
    return "".join(r.choice(STR_PIECES) for _ in range(max(1, n // 3)))[:n * 3]


def rand_bytes(r):
    n = r.choice([0, 1, 2, 7, 30, 255, 256, 300])
    return bytes(r.getrandbits(8) for _ in range(n))


def rand_scalar(r):
    c = r.randrange(12)
    if c == 0:
        return r.choice([None, True, False])
    if c <= 3:
        return rand_int(r)
    if c <= 5:
        return rand_float(r)
    if c <= 8:
        return rand_str(r)
    if c <= 10:
        return rand_bytes(r)
    return complex(rand_float(r), rand_float(r)) if r.random() < 0.2 else r.choice([None, 0, ""])


def _no_nan(v):
    # hash(nan) is id()-based since 3.10: a set holding NaNs pickles in an address-dependent
    # order, which would make the corpus irreproducible (NaN keys and elements are hand cases)
    if isinstance(v, float) and v != v:
        return 0.25
    if isinstance(v, complex) and (v.real != v.real or v.imag != v.imag):
        return 0.5j
    return v


def rand_hashable(r, depth):
    if depth <= 0 or r.random() < 0.75:
        return _no_nan(rand_scalar(r))
    if r.random() < 0.6:
        return tuple(rand_hashable(r, depth - 1) for _ in range(r.randrange(4)))
    return frozenset(rand_hashable(r, depth - 1) for _ in range(r.randrange(4)))


def rand_obj(r, depth, pool, with_classes):
    if depth <= 0 or r.random() < 0.3:
        if pool and r.random() < 0.15:
            return r.choice(pool)  # shared reference
        if with_classes and r.random() < 0.12:
            return r.choice(CLASS_FACTORIES)(r)
        return rand_scalar(r)
    kind = r.randrange(8)
    n = r.choice([0, 1, 2, 3, 5, 8, 20])
    if kind <= 1:
        v = [rand_obj(r, depth - 1, pool, with_classes) for _ in range(n)]
        pool.append(v)
        if r.random() < 0.08:
            v.append(v)  # recursive list
    elif kind == 2:
        v = tuple(rand_obj(r, depth - 1, pool, with_classes) for _ in range(min(n, 6)))
        if r.random() < 0.1:
            inner = []
            v = (inner,) + v
            inner.append(v)  # tuple reachable from itself through a list
    elif kind <= 4:
        v = {}
        for _ in range(n):
            v[rand_hashable(r, 2)] = rand_obj(r, depth - 1, pool, with_classes)
        pool.append(v)
        if r.random() < 0.08:
            v["self"] = v
    elif kind == 5:
        v = {rand_hashable(r, 2) for _ in range(n)}
        pool.append(v)
    elif kind == 6:
        v = frozenset(rand_hashable(r, 2) for _ in range(n))
    else:
        v = bytearray(rand_bytes(r))
        pool.append(v)
    return v


def dumps(obj, proto, r):
    if r.random() < 0.2:
        return pickle._dumps(obj, protocol=proto)
    return pickle.dumps(obj, protocol=proto)


# ---------------------------------------------------------------------------------------------
# An assembler for hand-made streams.

def u8(v):
    return struct.pack("<B", v)


def u16(v):
    return struct.pack("<H", v)


def i32(v):
    return struct.pack("<i", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def PROTO(p):
    return b"\x80" + u8(p)


def FRAME(n):
    return b"\x95" + u64(n)


def sbu(s):  # SHORT_BINUNICODE
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return b"\x8c" + u8(len(b)) + b


def bu(s):  # BINUNICODE
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return b"X" + u32(len(b)) + b


def bu8(s):
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    return b"\x8d" + u64(len(b)) + b


def uni(s):  # UNICODE, escaped as the pickler does
    if isinstance(s, str):
        s = (s.replace("\\", "\\u005c").replace("\0", "\\u0000").replace("\n", "\\u000a")
             .replace("\r", "\\u000d").replace("\x1a", "\\u001a"))
        s = s.encode("raw-unicode-escape")
    return b"V" + s + b"\n"


def sbs(b):  # SHORT_BINSTRING
    return b"U" + u8(len(b)) + b


def bs(b):  # BINSTRING
    return b"T" + u32(len(b)) + b


def sbb(b):  # SHORT_BINBYTES
    return b"C" + u8(len(b)) + b


def bb(b):
    return b"B" + u32(len(b)) + b


def glob(m, n):
    return b"c" + m + b"\n" + n + b"\n"


def inst(m, n):
    return b"i" + m + b"\n" + n + b"\n"


def K(v):
    return b"K" + u8(v)


def J(v):
    return b"J" + i32(v)


def G(v):
    return b"G" + struct.pack(">d", v)


def BINPUT(i):
    return b"q" + u8(i)


def BINGET(i):
    return b"h" + u8(i)


def framed(body, proto=4):
    return PROTO(proto) + FRAME(len(body)) + body


MARK, STOP, POP, POP_MARK, DUP = b"(", b".", b"0", b"1", b"2"
TUPLE, TUPLE1, TUPLE2, TUPLE3, EMPTY_TUPLE = b"t", b"\x85", b"\x86", b"\x87", b")"
LIST, EMPTY_LIST, DICT, EMPTY_DICT, EMPTY_SET = b"l", b"]", b"d", b"}", b"\x8f"
APPEND, APPENDS, SETITEM, SETITEMS, ADDITEMS = b"a", b"e", b"s", b"u", b"\x90"
FROZENSET, REDUCE, BUILD, NEWOBJ, NEWOBJ_EX = b"\x91", b"R", b"b", b"\x81", b"\x92"
STACK_GLOBAL, MEMOIZE, OBJ, NONE = b"\x93", b"\x94", b"o", b"N"
NEWTRUE, NEWFALSE, READONLY_BUFFER, NEXT_BUFFER = b"\x88", b"\x89", b"\x98", b"\x97"


def hand_cases():
    """Fixed hand-assembled streams: (kind, bytes)."""
    out = []

    def add(kind, data):
        out.append((kind, data))

    # -- protocol-0 INT text forms
    for s in [b"01", b"00", b"+1", b" 1", b"-0", b"010", b"02", b" 01", b"0x10", b"1_000",
              b"01 ", b"1\r", b"99999999999999999999", b"-5", b"0", b"1", b"", b"0o7", b"0b1",
              b"00000", b"+0", b"- 1", b"\xd9\xa3", b"1 ", b" ", b"0X1F", b"-0x10", b"2147483648",
              b"-2147483649", b"9223372036854775807", b"9223372036854775808", b"1__0", b"_1",
              b"0_0", b"+01", b"-1", b"-01", b"08", b"0x", b"1e3", b"\t1", b"1\t", b"1\x00",
              b"\x0b1", b"1" * 4301, b"1" * 4300, b"0x" + b"f" * 5000, b"00\r", b"01\r"]:
        add("int-text", b"I" + s + b"\n.")
        add("int-text-in-list", b"(I" + s + b"\nI1\nl.")
    # -- NUL inside text numbers: C parses a C string and stops there, Py does not
    for body in [b"I1\x00junk\n.", b"I\x00\n.", b"I1\x00\n.", b"I01\x00\n.", b"I0\x00\n.", b"I 1\x00\n.",
                 b"L12\x00x\n.", b"L12\x00L\n.", b"L\x00\n.", b"F1.5\x00x\n.", b"F\x00\n.", b"Fnan\x00\n.",
                 b"Np1\x00x\n0g1\x00y\n.", b"Np1\x00\n0g1\n.", b"Ng\x00\n.", b"I99999999999999999999\x00\n.",
                 b"I0x\x00\n.", b"I-\x00\n.", b"I0x1g\n.", b"I0x10\x00\n."]:
        add("text-nul", body)
    # -- LONG text forms
    for s in [b"1", b"1L", b"-1L", b"0x10L", b" 7 L", b"LL", b"L", b"", b"0L", b"00L", b"010L",
              b"1_0L", b"0o17", b"123456789012345678901234567890L", b"+5L", b"1 L", b"0b11L",
              b"1" * 4301 + b"L", b"1" * 4300 + b"L", b"-0L", b"\xd9\xa3L", b"1LL", b"l"]:
        add("long-text", b"L" + s + b"\n.")
    # -- FLOAT text forms
    for s in [b"1.5", b"1_0", b" 1.5", b"1.5 ", b"1e400", b"-1e400", b"inf", b"-inf", b"nan",
              b"-nan", b"1.", b".5", b"1e5", b"0x1p3", b"", b"infinity", b"INF", b"+1.0", b"1e-400",
              b"-0.0", b"1.7976931348623157e308", b"4.9e-324", b"1_000.5", b"1e", b"1.5\r", b"Nan",
              b"+nan", b"1.0L", b"1,5", b"\xd9\xa3", b"0", b"-0", b"00.5", b"1e+5", b"1E5"]:
        add("float-text", b"F" + s + b"\n.")
    # -- STRING forms (Python 2 str; ASCII-decoded by default)
    for s in [b"''", b"'a'", b'"a"', b"'it's'", b"'\\\\'", b"'\\''", b"'\\\"'", b"'\\a\\b\\f\\n'",
              b"'\\r\\t\\v'", b"'\\0'", b"'\\00'", b"'\\000'", b"'\\101'", b"'\\777'", b"'\\x41'",
              b"'\\x4'", b"'\\xzz'", b"'\\q'", b"'\\'", b"'abc\\'", b"'a", b"a'", b"'", b"abc",
              b"'\xc3\xa9'", b"'\\xc3\\xa9'", b"'\\x7f'", b"'\\x80'", b"'\"", b"\"'", b"'\\\n'",
              b"'\\N{DASH}'", b"'\\u0041'", b"'a\rb'", b"' '", b"'\\8'", b"'\\18'", b"'\\400'"]:
        add("string-text", b"S" + s + b"\n.")
    # -- UNICODE forms (raw-unicode-escape)
    for s in [b"", b"abc", b"\\u0041", b"\\U0001F600", b"\\U00110000", b"\\u12", b"\\x41",
              b"\xe9\xff", b"\\", b"\\\\", b"\\ud800", b"\\udc00\\ud800", b"\\u005c", b"a\rb",
              b"\\U0000004", b"\\u00e9\\u4e2d", b"\\n", b"\\U0010FFFF", b"\\uDFFF", b"\\u"]:
        add("unicode-text", b"V" + s + b"\n.")
    # -- binary strings
    for b in [b"", b"abc", b"\xc3\xa9", b"\x80", b"\xff" * 3]:
        add("short-binstring", sbs(b) + STOP)
        add("binstring", bs(b) + STOP)
    add("binstring-neg", b"T\xff\xff\xff\xffabc.")
    add("binstring-huge", b"T\x00\x00\x00\x80abc.")
    for b in [b"abc", b"\xed\xa0\x80", b"\xed\xb0\x80\xed\xa0\x80", b"\xc0\x80", b"\xe0\x80\x80",
              b"\xf4\x90\x80\x80", b"\xf0\x9f\x98\x80", b"\xff", b"\xc3", b"\xe4\xb8", b"a\x00b",
              b"\xed\xa0\xbd\xed\xb8\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]:
        add("binunicode", bu(b) + STOP)
        add("short-binunicode", PROTO(4) + sbu(b) + STOP)
        add("binunicode8", PROTO(4) + bu8(b) + STOP)
    for n in [2**63, 2**64 - 1, 2**62, 2**31, 100]:
        add("binunicode8-len", PROTO(4) + b"\x8d" + u64(n) + b"ab.")
        add("binbytes8-len", PROTO(4) + b"\x8e" + u64(n) + b"ab.")
        add("bytearray8-len", PROTO(5) + b"\x96" + u64(n) + b"ab.")
    add("binbytes-len", PROTO(3) + b"B\xff\xff\xff\xffab.")
    for b in [b"", b"abc", b"\x00" * 300]:
        add("binbytes8", PROTO(4) + b"\x8e" + u64(len(b)) + b + STOP)
        add("binbytes", PROTO(3) + bb(b) + STOP)
        add("bytearray8", PROTO(5) + b"\x96" + u64(len(b)) + b + STOP)
    add("binunicode-len", b"X\xff\xff\xff\xffab.")
    # -- LONG1/LONG4
    for body in [b"", b"\x00", b"\xff", b"\xff\x00", b"\x00\x80", b"\x01" * 9, b"\x00\x00\x00\x00"]:
        add("long1", PROTO(2) + b"\x8a" + u8(len(body)) + body + STOP)
        add("long4", PROTO(2) + b"\x8b" + i32(len(body)) + body + STOP)
    add("long4-neg", PROTO(2) + b"\x8b\xff\xff\xff\xff.")
    add("long4-short", PROTO(2) + b"\x8b\x05\x00\x00\x00ab.")
    # -- STOP / stack / mark semantics
    for body in [b".", b"(.", b"N(.", b"NK\x01.", b"N(K\x01.", b"N(0.", b"N(00.", b"0.", b"1.",
                 b"N1.", b"(1N.", b"((1N.", b"N2.", b"(2.", b"N(2.", b"K\x01K\x02(\x86.",
                 b"K\x01(\x85.", b"(K\x01\x85.", b"(K\x01K\x02\x86.", b"((K\x01t.", b"(t.", b"t.",
                 b"l.", b"(l.", b"(K\x01d.", b"(K\x01K\x02d.", b"}(K\x01u.", b"}(u.", b"}u.",
                 b"](e.", b"]e.", b"(](e.", b"]N(a.", b"](Na.", b"N)(b.", b"](\x90.",
                 b"\x8f(K\x01\x90.", b"(K\x01\x91.", b"(\x91.", b"\x91.", b"NN\x80\x03.",
                 b"\x80\x06N.", b"\x80\xffN.", b"\x80\x02\x80\x00N.", b"\x80", b"", b"N",
                 b"(N\x85.", b"NN(s.", b"}N(s.", b"}(NNs.", b"((.", b"(N(N1.", b"(((ll.",
                 b"N(\x87.", b"NNN\x87.", b"NN\x87.", b"(o.", b"N(o.", b"(No.", b"(NNo."]:
        add("stack", body)
    # -- memo
    for body in [b"Np0\n0g0\n.", b"Np05\n0g5\n.", b"Np 5\n0g5\n.", b"Np5 \n0g5\n.", b"Np+5\n0g5\n.",
                 b"Np1_0\n0g10\n.", b"Np-1\n.", b"Ng-1\n.", b"Ng0\n.", b"Np\n.", b"Npx\n.",
                 b"Np0x1\n.", b"N\x94K\x07\x94h\x01.", b"Nq\x05K\x07\x94h\x01.",
                 b"Nq\x05K\x07\x94h\x00.", b"Nq\x00K\x01q\x00h\x00.", b"Nr\x00\x00\x01\x00j\x00\x00\x01\x00.",
                 b"Nr\xff\xff\xff\x00j\xff\xff\xff\x00.", b"j\x00\x00\x00\x00.", b"h\x00.", b"q\x00.",
                 b"(q\x00.", b"(\x94.", b"\x94.", b"N\x94\x94\x94h\x02.", b"](\x94e.",
                 b"Np0\nK\x01p0\n0g0\n.", b"Np99999999999999999999\n.", b"Ng99999999999999999999\n.",
                 b"Np00000000000000000000001\n0h\x01.", b"N(p0\n.", b"Np0\n(g0\nt."]:
        add("memo", body)
    # -- shared and recursive structures by hand
    add("rec-list", b"]q\x00h\x00a.")
    add("rec-list2", b"(]q\x00h\x00ah\x00e.")
    add("rec-dict", b"}q\x00K\x01h\x00s.")
    add("rec-tuple-list", b"]q\x00h\x00\x85q\x01ah\x01.")
    add("shared", b"]q\x00h\x00h\x00\x86.")
    add("rec-set-frozenset", PROTO(4) + b"\x8f\x94(K\x01\x91\x94\x90h\x01.")
    add("bytearray-shared", PROTO(5) + b"\x96" + u64(2) + b"ab\x94h\x00\x98h\x00\x86.")
    # -- dict/set key equality
    one_keys = [K(1), b"I01\n", G(1.0), b"\x88", b"\x8a\x01\x01", b"L1\n", b"F1\n", b"I1\n"]
    for a in one_keys:
        for b in one_keys:
            add("key-eq", b"(" + a + sbs(b"x") + b + sbs(b"y") + b"d.")
            add("set-eq", PROTO(4) + b"\x8f(" + a + b + b"\x90.")
    nan = G(float("nan"))
    add("nan-keys", b"(" + nan + K(1) + nan + K(2) + b"d.")
    add("nan-key-memo", b"(" + nan + b"q\x00K\x01h\x00K\x02d.")
    add("nan-set-memo", PROTO(4) + b"(" + nan + b"\x94h\x00\x91.")
    add("nan-set", PROTO(4) + b"(" + nan + nan + b"\x91.")
    add("negzero-key", b"(" + G(0.0) + K(1) + G(-0.0) + K(2) + b"I00\nK\x03d.")
    add("bigint-float-key", b"(" + G(2.0**53) + K(1) + b"\x8a\x07\x01\x00\x00\x00\x00\x20\x00" + K(2) + b"d.")
    add("bigint-float-key2", b"(" + G(2.0**53) + K(1) + b"\x8a\x07\x00\x00\x00\x00\x00\x20\x00" + K(2) + b"d.")
    add("tuple-key-eq", b"((K\x01tK\x01(\x88tK\x02d.")
    add("frozenset-key-eq", PROTO(4) + b"((K\x01K\x02\x91K\x01(K\x02K\x01\x91K\x02d.")
    add("str-bytes-key", PROTO(3) + b"(" + sbu(b"a") + K(1) + sbb(b"a") + K(2) + b"d.")
    add("unhashable-key", b"(]K\x01d.")
    add("unhashable-key2", b"}]K\x01s.")
    add("unhashable-tuple-key", b"(]\x85K\x01d.")
    add("unhashable-set", PROTO(4) + b"\x8f(]\x90.")
    add("unhashable-frozenset", PROTO(4) + b"(}\x91.")
    add("bytearray-key", PROTO(5) + b"}\x96" + u64(1) + b"aK\x01s.")
    add("memoryview-key", PROTO(5) + b"}\x96" + u64(1) + b"a\x98K\x01s.")
    add("node-keys", b"(cm\nA\nK\x01cm\nA\nK\x02cm\nB\nK\x03d.")
    add("node-set", PROTO(4) + b"(cm\nA\ncm\nA\ncm\nB\n\x91.")
    add("setitem-dup", b"}(K\x01K\x02\x88K\x03u.")
    # NaN identity inside containers: tuples compare items by identity first
    add("nan-tuple-key-memo", b"(" + nan + b"q\x00\x85K\x01h\x00\x85K\x02d.")
    add("nan-tuple-key", b"(" + nan + b"\x85K\x01" + nan + b"\x85K\x02d.")
    add("nan-frozenset-key-memo", PROTO(4) + b"((" + nan + b"\x94\x91K\x01(h\x00\x91K\x02d.")
    add("nan-nested-memo", PROTO(4) + b"(" + nan + b"\x94\x85\x85K\x01h\x00\x85\x85K\x02d.")
    add("nan-in-set-twice", PROTO(4) + b"\x8f(" + nan + b"\x94h\x00\x90.")
    add("nan-additems-twice", PROTO(4) + b"\x8f(" + nan + b"\x94\x90(h\x00\x90.")
    add("nan-setitem-memo", b"}" + nan + b"q\x00K\x01sh\x00K\x02s.")
    # int/float equality at large magnitudes
    for f, i in [(1e308, int(1e308)), (2.0**63, 2**63), (-2.0**63, -2**63), (2.0**64, 2**64),
                 (2.0**53, 2**53 + 1), (1e16, 10**16), (-0.0, 0), (0.5, 0)]:
        lb = pickle.encode_long(i)
        add("int-float-key", PROTO(2) + b"(" + G(f) + K(1) + b"\x8a" + u8(len(lb)) + lb + K(2) + b"d.")
        add("int-float-set", PROTO(4) + b"(" + b"\x8a" + u8(len(lb)) + lb + G(f) + b"\x91.")
    # equal strings from different opcodes; bytes from different opcodes
    strs = [sbu("ab"), bu("ab"), uni("ab"), b"S'ab'\n", sbs(b"ab"), bs(b"ab"), bu8("ab")]
    for a in strs:
        for b in strs:
            add("str-key-eq", PROTO(4) + b"(" + a + K(1) + b + K(2) + b"d.")
    add("bytes-key-eq", PROTO(4) + b"(" + sbb(b"ab") + K(1) + bb(b"ab") + K(2) + b"\x8e" + u64(2) + b"ab" + K(3) + b"d.")
    # every _compat_pickle entry, with and without the renames
    import _compat_pickle
    for (m, n) in sorted(_compat_pickle.NAME_MAPPING):
        for p in (2, 3):
            add("compat-name", PROTO(p) + glob(m.encode(), n.encode()) + b".")
        add("compat-name-inst", b"(" + inst(m.encode(), n.encode()) + b".")
    for m in sorted(_compat_pickle.IMPORT_MAPPING):
        if m.startswith("__pp_"):
            continue
        for p in (1, 3):
            add("compat-module", (PROTO(p) if p > 1 else b"") + glob(m.encode(), b"x") + b".")
        add("compat-module-p4-stack", PROTO(4) + sbu(m) + sbu("x") + STACK_GLOBAL + PROTO(2)
            + sbu(m) + sbu("x") + STACK_GLOBAL + b"\x86.")
    add("dict-dup-order", b"(K\x01K\x01K\x02K\x02K\x01K\x03d.")
    # -- BUILD on real objects (C vs Py falsy-state divergence) and on stand-ins
    for state in [b"N", b"}", b"K\x00", b"]", b")", b"(N}\x86", b"N}\x86", b"N(S'a'\nK\x01d\x86",
                  b"(S'a'\nK\x01d", b"\x89", b"N]\x86", b"}]\x86", b"K\x01", b"(NN\x87",
                  b"N}}\x87", b"U\x00", b"(K\x01K\x02d}\x86", b"NN\x86", b"N\x89\x86", b"NK\x00\x86",
                  b"}N\x86", b"N)\x86"]:
        for target in [b"]", b"}", b"K\x01", b"N", b")", b"cmod\nCls\n", b"cmod\nCls\n)R",
                       b"cmod\nCls\n)\x81", PROTO(5) + b"\x96" + u64(0)]:
            add("build", PROTO(2) + target + state + b"b.")
    add("build-dunder", PROTO(2) + b"ccollections\nOrderedDict\n)R}X\x0c\x00\x00\x00__setstate__cbuiltins\nprint\nsbX\x0e\x00\x00\x00BUILD-SETSTATEb.")
    add("build-module", PROTO(4) + sbu("torch") + sbu("_utils") + STACK_GLOBAL + b"}" + sbu("x") + sbu("y") + b"sb.")
    # -- APPEND/APPENDS/SETITEM/SETITEMS/ADDITEMS on every kind of target
    targets = [b"]", b"}", b"\x8f", b")", b"K\x01", b"N", PROTO(5) + b"\x96" + u64(1) + b"a",
               b"cm\nG\n", b"cm\nG\n)R", b"cm\nG\n)\x81", b"(K\x01\x91", b"(K\x01l", b"Sx\n"]
    for t in targets:
        add("append", PROTO(4) + t + b"K\x41a.")
        add("appends", PROTO(4) + t + b"(K\x41K\x42e.")
        add("appends-empty", PROTO(4) + t + b"(e.")
        add("setitem", PROTO(4) + t + b"K\x00K\x41s.")
        add("setitems", PROTO(4) + t + b"(K\x00K\x41K\x01K\x42u.")
        add("setitems-empty", PROTO(4) + t + b"(u.")
        add("setitems-odd", PROTO(4) + t + b"(K\x00K\x41K\x01u.")
        add("additems", PROTO(4) + t + b"(K\x41K\x42\x90.")
        add("additems-empty", PROTO(4) + t + b"(\x90.")
        add("append-str", PROTO(4) + t + sbu("x") + b"a.")
    # -- REDUCE / NEWOBJ / NEWOBJ_EX / OBJ / INST argument types
    arg_forms = [b")", b"K\x01\x85", b"]", b"(K\x01K\x02l", b"C\x02ab", b"U\x02ab", b"}",
                 b"(K\x01K\x02d", b"\x8f(K\x01\x90", b"(K\x01\x91", b"N", b"K\x01", b"cm\nArgs\n",
                 b"\x8c\x00", b"(I01\nI00\nt", b"(]t"]
    for a in arg_forms:
        add("reduce-args", PROTO(4) + b"cm\nF\n" + a + REDUCE + STOP)
        add("newobj-args", PROTO(4) + b"cm\nC\n" + a + NEWOBJ + STOP)
        add("newobj-ex-args", PROTO(4) + b"cm\nC\n" + a + b"}" + NEWOBJ_EX + STOP)
        add("newobj-ex-kwargs", PROTO(4) + b"cm\nC\n)" + a + NEWOBJ_EX + STOP)
    for kw in [b"}", b"(S'a'\nK\x01d", b"(K\x01K\x01d", b"(S'cls'\nK\x01d", b"(S'self'\nK\x01S'x'\nK\x02d",
               b"(" + sbu("\ud800") + b"K\x01d", b"(" + sbb(b"a") + b"K\x01d"]:
        add("newobj-ex-kw", PROTO(4) + b"cm\nC\n(K\x01t" + kw + NEWOBJ_EX + STOP)
    for callee in [b"K\x01", b"N", b"]", b"S'x'\n", b"cm\nF\n)R", b"cm\nF\n)\x81", b"cm\nF\n2"]:
        add("reduce-callee", PROTO(2) + callee + b")R.")
        add("newobj-cls", PROTO(2) + callee + b")\x81.")
        add("obj-cls", b"(" + callee + b"o.")
        add("obj-cls-args", b"(" + callee + b"K\x01o.")
    add("chain", PROTO(2) + b"cm\nF\n)R)R)\x81)R.")
    add("newobj-newobj", PROTO(2) + b"cm\nF\n)\x81)\x81.")
    for mod, name in [(b"os", b"system"), (b"__builtin__", b"eval"), (b"copy_reg", b"_reconstructor"),
                      (b"m", b"a.b"), (b"m\xc3\xa9", b"x"), (b"m", b"\xc3\xa9")]:
        add("inst", b"(" + inst(mod, name) + b".")
        add("inst-args", b"(S'x'\n" + inst(mod, name) + b".")
        add("inst-p4", PROTO(4) + b"(" + inst(mod, name) + b".")
        add("obj", b"(" + glob(mod, name) + b"o.")
        add("obj-args", b"(" + glob(mod, name) + b"S'x'\no.")
    add("inst-nomark", inst(b"os", b"system") + b".")
    add("inst-empty-line", b"(i\nsystem\n.")
    add("inst-empty-name", b"(ios\n\n.")
    add("inst-trunc", b"(ios\nsys")
    add("obj-nomark", b"cos\nsystem\no.")
    add("obj-p1-reconstructor", b"(ccopy_reg\n_reconstructor\ncm\nC\nc__builtin__\nobject\nNo.")
    # -- GLOBAL name forms and renames at each protocol
    names = [(b"__builtin__", b"eval"), (b"__builtin__", b"set"), (b"__builtin__", b"xrange"),
             (b"__builtin__", b"reduce"), (b"__builtin__", b"unicode"), (b"copy_reg", b"_reconstructor"),
             (b"exceptions", b"ValueError"), (b"exceptions", b"StandardError"), (b"UserDict", b"UserDict"),
             (b"itertools", b"izip"), (b"urllib", b"urlopen"), (b"commands", b"getoutput"),
             (b"cPickle", b"loads"), (b"whichdb", b"whichdb"), (b"os", b"system"), (b"os", b"path.join"),
             (b"builtins", b"eval.__call__"), (b"pathlib", b"os.system"), (b"m", b"<locals>"),
             (b"m", b"a.<locals>.b"), (b"m", b"a..b"), (b"m", b".a"), (b"m", b"a."), (b"m", b"."),
             (b"os.path", b"join"), (b".os", b"x"), (b"m", b" x"), (b"m ", b"x"), (b"m\r", b"x"),
             (b"m", b"x\r"), (b"\xc3\xa9", b"\xc3\xa9"), (b"m", b"\xff"), (b"m", b"\xed\xa0\x80"),
             (b"builtins", b"getattr"), (b"_codecs", b"encode"), (b"numpy", b"core.multiarray._reconstruct"),
             (b"thread", b"start_new_thread"), (b"__builtin__", b"long"), (b"StringIO", b"StringIO")]
    for mod, name in names:
        for p in [None, 0, 1, 2, 3, 4, 5]:
            pre = b"" if p is None else PROTO(p)
            add("global", pre + glob(mod, name) + b".")
        add("global-proto-switch", PROTO(2) + glob(mod, name) + PROTO(4) + glob(mod, name) + b"\x86.")
    for body in [b"c\nx\n.", b"cm\n\n.", b"cm\n.", b"cm", b"c\n\n.", b"cm\nx", b"cm\nx\n"]:
        add("global-bad", body)
    # -- STACK_GLOBAL operand forms
    forms = {
        "sbu": lambda s: sbu(s), "bu": lambda s: bu(s), "bu8": lambda s: bu8(s),
        "uni": lambda s: uni(s), "string": lambda s: b"S'" + s.encode() + b"'\n",
        "sbs": lambda s: sbs(s.encode()), "bs": lambda s: bs(s.encode()),
        "sbb": lambda s: sbb(s.encode()), "int": lambda s: K(1),
        "memo": lambda s: sbu(s) + MEMOIZE + POP + BINGET(0),
    }
    for fa, fna in forms.items():
        for fb, fnb in forms.items():
            if fa == "memo" or fb == "memo":
                continue
            add("stack-global", PROTO(4) + fna("os") + fnb("system") + STACK_GLOBAL + b".")
    add("stack-global-memo", PROTO(4) + sbu("os") + BINPUT(2) + POP + sbu("system") + BINPUT(3) + POP
        + sbu("torch") + BINPUT(0) + POP + BINGET(2) + BINGET(3) + STACK_GLOBAL + b".")
    add("stack-global-p0", sbu("os") + sbu("path.join") + STACK_GLOBAL + b".")
    add("stack-global-p0b", uni("__builtin__") + uni("eval") + STACK_GLOBAL + b".")
    add("stack-global-p3", PROTO(3) + sbu("__builtin__") + sbu("eval") + STACK_GLOBAL + b".")
    add("stack-global-empty", PROTO(4) + sbu("") + sbu("x") + STACK_GLOBAL + b".")
    add("stack-global-emptyname", PROTO(4) + sbu("m") + sbu("") + STACK_GLOBAL + b".")
    add("stack-global-mark", PROTO(4) + sbu("m") + b"(" + sbu("x") + STACK_GLOBAL + b".")
    add("stack-global-decoys", PROTO(4) + sbu("os") + sbu("system") + sbu("torch._utils") + POP
        + sbu("_rebuild_tensor_v2") + POP + STACK_GLOBAL + b".")
    add("stack-global-from-call", PROTO(4) + b"cm\nF\n)R" + sbu("x") + STACK_GLOBAL + b".")
    # -- EXT / PERSID / buffers
    for body in [b"\x82\x01.", b"\x83\x01\x00.", b"\x84\x01\x00\x00\x00.", b"\x84\x00\x00\x00\x00.",
                 b"\x84\xff\xff\xff\xff.", b"\x82\x00.", b"P1\n.", b"P\n.", b"N\x51.", b"Q.",
                 b"P\xff\n.", b"\x97.", b"C\x01a\x98.", b"K\x01\x98.", b"\x98.", b"N\x98.",
                 b"\x96" + u64(1) + b"a\x98\x98.", b"]\x98.", b"\x80\x05\x96" + u64(0) + b"\x98."]:
        add("misc", body)
    # -- FRAME rules
    body = sbu("abc") + MEMOIZE + b"."
    add("frame-ok", framed(body))
    add("frame-p2", PROTO(2) + FRAME(len(body)) + body)
    add("frame-noproto", FRAME(len(body)) + body)
    add("frame-zero", PROTO(4) + FRAME(0) + body)
    add("frame-short", PROTO(4) + FRAME(len(body) + 5) + body)
    add("frame-long", PROTO(4) + FRAME(len(body) - 1) + body)
    add("frame-split-arg", PROTO(4) + FRAME(3) + body)
    add("frame-split-opcode-arg", PROTO(4) + FRAME(1) + body)
    add("frame-nested", PROTO(4) + FRAME(len(body) + 9) + FRAME(len(body)) + body)
    add("frame-nested-end", PROTO(4) + FRAME(2) + b"N0" + FRAME(len(body)) + body)
    add("frame-huge", PROTO(4) + FRAME(2**63) + body)
    add("frame-max", PROTO(4) + FRAME(2**64 - 1) + body)
    add("frame-two", PROTO(4) + FRAME(2) + b"N0" + FRAME(len(body)) + body)
    add("frame-after-stop", framed(b"N.") + b"garbage")
    add("frame-trailing-in-frame", PROTO(4) + FRAME(6) + b"N.abcd")
    add("frame-stop-outside", PROTO(4) + FRAME(1) + b"N" + b".")
    add("frame-line-split", PROTO(4) + FRAME(4) + b"Vabc" + b"\n.")
    add("frame-line-exact", PROTO(4) + FRAME(5) + b"Vabc\n" + b".")
    hidden = b"cbuiltins\nprint\nVid\n\x85R"
    add("frame-b3", PROTO(5) + b"N" + FRAME(2) + b"B\x07\x01\x00\x00" + b"\x00\x00"
        + (hidden + b"(").ljust(261, b"N") + b"1.")
    # -- trailing data / several pickles
    add("trailing", b"N.garbage\xff")
    add("two-pickles", pickle.dumps([1, 2], 2) + b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.")
    add("payload-then-bad", b"cbuiltins\nexec\n(X\x04\x00\x00\x00codetR\xff\xfe")
    add("payload-then-memo-error", b"\x80\x04cos\nsystem\nVecho pwned\n\x85R0\x8c\x02os\x94h\x03h\x00\x93K\x42.")
    add("b10", bytes.fromhex("80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275696c74696e735f5f93949468017d7d8c0573686170656803738662680168018c046576616c86528c1d5f5f696d706f72745f5f28226f7322292e73797374656d28226964222985522e"))
    add("c7", b"\x80\x04\x8c\x04code\x8c\x20InteractiveInterpreter.runsource\x93\x8c\x04code\x8c\x16InteractiveInterpreter\x93)R\x8c\x1dprint('ALL-SUSPICIOUS-CHAIN')\x86R.")
    add("b4", b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0g2\ng3\n\x93(Vcat flag.txt\ntR.")
    add("b5", b"S'os'\nS'system'\n\x93S'ls'\n\x85R.")
    add("b13", b"\x80\x02\x82\x42(S'id'\ntR.")
    # -- modest DUP/memo fan-out (tuples are written in full: keep 2**12)
    add("laughs-12", PROTO(2) + b"N" + b"2\x86" * 12 + b".")
    return out


# ---------------------------------------------------------------------------------------------
# Random stack-aware opcode programs: mostly valid streams that mix globals, calls, builds and
# mutations on stand-ins with memo traffic, at a random protocol.

PROG_NAMES = [("m", "A"), ("m", "B"), ("os", "system"), ("__builtin__", "set"), ("copy_reg", "_reconstructor"),
              ("collections", "OrderedDict"), ("numpy", "dtype"), ("builtins", "getattr"), ("exceptions", "IOError")]


def rand_program(r):
    proto = r.choice([0, 1, 2, 3, 4, 5])
    out = [] if proto == 0 and r.random() < 0.5 else [PROTO(proto)]
    stack = []  # abstract kinds: 's' scalar, 'str', 'L' list, 'D' dict, 'S' set, 'T' tuple, 'N' node, '(' mark
    memo = {}
    memo_n = 0

    def top_kinds():
        k = []
        for x in reversed(stack):
            if x == "(":
                break
            k.append(x)
        return k

    def push(kind, code):
        stack.append(kind)
        out.append(code)

    def pop(n):
        for _ in range(n):
            stack.pop()

    steps = r.randrange(3, 40)
    for _ in range(steps):
        above = top_kinds()
        c = r.randrange(30)
        if c < 3:
            push("s", r.choice([K(r.randrange(256)), J(r.randrange(-2**31, 2**31)), b"N", b"\x88", G(rand_float(r)),
                                b"I%d\n" % r.randrange(-9, 99), b"L%dL\n" % rand_int(r)]))
        elif c < 5:
            s = rand_str(r)[:20]
            push("str", r.choice([sbu(s), bu(s), uni(s)]))
        elif c < 7:
            m, n = r.choice(PROG_NAMES)
            if r.random() < 0.5 or proto < 4:
                push("N", glob(m.encode(), n.encode()))
            else:
                push("N", sbu(m) + sbu(n) + STACK_GLOBAL)
        elif c < 8:
            code, kind = r.choice([(b"]", "L"), (b"}", "D")] + ([(b"\x8f", "S")] if proto >= 4 else []))
            push(kind, code)
        elif c < 10:
            push("(", MARK)
        elif c < 11 and len(above) >= 2 and above[0] == "T" and above[1] == "N":
            out.append(REDUCE)
            pop(2)
            stack.append("N")
        elif c < 13 and len(above) >= 1 and above[0] == "N":
            args = r.choice([b")", K(1) + TUPLE1, b"(" + sbu("x") + b"K\x02t"])
            out.append(args)
            op = r.choice([REDUCE, NEWOBJ]) if proto >= 2 else REDUCE
            out.append(op)
            pop(1)
            stack.append("N")
        elif c < 14 and len(above) >= 1 and above[0] == "N":
            out.append(r.choice([b"}", b"N", b"(K\x01d}\x86", b"K\x00", b"]"]) + BUILD)
        elif c < 15 and above and above[0] in "LN":
            out.append(r.choice([K(7) + APPEND, b"(K\x01K\x02" + APPENDS, b"(" + APPENDS]))
        elif c < 16 and above and above[0] in "DN":
            out.append(r.choice([K(1) + K(2) + SETITEM, b"(K\x01K\x02" + SETITEMS]))
        elif c < 17 and above and above[0] in "SN" and proto >= 4:
            out.append(b"(K\x01" + ADDITEMS)
        elif c < 19 and "(" in stack:
            i = len(stack) - 1 - stack[::-1].index("(")
            items = stack[i + 1:]
            if r.random() < 0.3 and items and items[0] == "N":
                out.append(OBJ)
                del stack[i:]
                stack.append("N")
            else:
                if "L" in items or "D" in items or "S" in items:
                    op = r.choice([TUPLE, LIST])
                else:
                    op = r.choice([TUPLE, LIST, FROZENSET if proto >= 4 else TUPLE]
                                  + ([DICT] if len(items) % 2 == 0 else []))
                out.append(op)
                del stack[i:]
                stack.append({TUPLE: "T", LIST: "L", FROZENSET: "T", DICT: "D"}[op])
        elif c < 20 and "(" in stack and proto == 0:
            i = len(stack) - 1 - stack[::-1].index("(")
            out.append(inst(*[x.encode() for x in r.choice(PROG_NAMES)]))
            del stack[i:]
            stack.append("N")
        elif c < 22 and above:
            if proto >= 4 and r.random() < 0.5:
                out.append(MEMOIZE)
                memo[memo_n] = stack[-1]
                memo_n += 1
            else:
                i = r.randrange(6)
                out.append(BINPUT(i) if proto else b"p%d\n" % i)
                memo[i] = stack[-1]
        elif c < 24 and memo:
            i = r.choice(list(memo))
            push(memo[i], BINGET(i) if proto else b"g%d\n" % i)
        elif c < 25 and above:
            out.append(POP)
            stack.pop()
        elif c < 26 and len(above) >= 2 and proto >= 2:
            out.append(TUPLE2)
            pop(2)
            stack.append("T")
        elif c < 27 and above:
            out.append(DUP)
            stack.append(stack[-1])
    # make it end cleanly most of the time
    if r.random() < 0.85:
        while "(" in stack:
            i = len(stack) - 1 - stack[::-1].index("(")
            out.append(LIST)
            del stack[i:]
            stack.append("L")
        if not stack:
            out.append(NONE)
    out.append(STOP)
    data = b"".join(out)
    if proto >= 4 and r.random() < 0.5:
        body = data[2:]
        data = data[:2] + FRAME(len(body)) + body
    return data


# ---------------------------------------------------------------------------------------------
# numpy

def numpy_objects(r):
    try:
        import numpy as np
    except Exception:
        return []
    objs = []
    dts = ["?", "i1", "u1", "<i2", ">i2", "<i4", "<i8", ">u8", "<f2", "<f4", ">f8", "<c8", "<c16",
           "U5", "S3", "V4", "M8[s]", "m8[ns]", "O"]
    for dt in dts:
        for shape in [(), (0,), (3,), (2, 3)]:
            n = int(np.prod(shape)) if shape else 1
            if dt == "O":
                a = np.empty(shape, dtype=object)
                flat = a.reshape(-1) if shape else None
                vals = [1, "x", None, [1, 2], (3,), 2.5][:n] + [0] * max(0, n - 6)
                if shape:
                    for i in range(n):
                        flat[i] = vals[i]
                else:
                    a[()] = {"k": [1]}
            else:
                raw = bytes(r.getrandbits(8) for _ in range(n * np.dtype(dt).itemsize))
                a = np.frombuffer(raw, dtype=dt).reshape(shape).copy() if n else np.zeros(shape, dt)
            objs.append(a)
            if len(shape) == 2:
                objs.append(np.asfortranarray(a))
    objs.append(np.zeros((2, 2), dtype=[("a", "<i4"), ("b", "f8", (2,))]))
    objs.append(np.dtype([("x", "<u2"), ("y", ">f4")], align=True))
    for dt in dts[:-1]:
        objs.append(np.dtype(dt))
    for v in [np.float64(1.5), np.int32(-7), np.bool_(True), np.uint8(200), np.float16(0.5),
              np.complex64(1 + 2j), np.str_("s"), np.bytes_(b"b"), np.datetime64("2020-01-01"),
              np.float64("nan"), np.longlong(2**62)]:
        objs.append(v)
    objs.append({"w": np.arange(6, dtype="<f4").reshape(2, 3), "b": np.ones(3)})
    objs.append([np.arange(3), np.arange(3)[::-1], np.int64(3)])
    objs.append(np.random.RandomState(r.randrange(1000)))
    objs.append(np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]))
    objs.append(np.matrix([[1, 2], [3, 4]]))
    return objs


# ---------------------------------------------------------------------------------------------
# Python-2 style streams: str written as 8-bit STRING/BINSTRING/SHORT_BINSTRING payloads.

def _py2_escape(b):
    """Python 2's repr() body of an 8-bit str, as protocol 0 wrote it inside S'...'."""
    out = []
    for c in b:
        ch = chr(c)
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif 32 <= c < 127:
            out.append(ch)
        else:
            out.append("\\x%02x" % c)
    return ("'" + "".join(out) + "'").encode("ascii")


def py2ify(data, r):
    """Rewrites the unicode opcodes of a protocol 0-3 pickle into Python-2 str opcodes whose
    payload is the text encoded as UTF-8, latin-1 or ASCII (so encoding= decides what loads)."""
    out, last = bytearray(), 0
    for op, arg, pos in pickletools.genops(data):
        if op.name == "PROTO" and arg >= 4:
            return None
        if op.name not in ("UNICODE", "BINUNICODE", "SHORT_BINUNICODE"):
            continue
        end = pos + 1
        if op.name == "UNICODE":
            end = data.index(b"\n", pos) + 1
        elif op.name == "BINUNICODE":
            end = pos + 5 + int.from_bytes(data[pos + 1:pos + 5], "little")
        else:
            end = pos + 2 + data[pos + 1]
        c = r.random()
        try:
            b = arg.encode("latin-1") if c < 0.35 else arg.encode("ascii") if c < 0.5 else None
        except UnicodeEncodeError:
            b = None
        if b is None:
            b = arg.encode("utf-8", "surrogatepass")
        if op.name == "UNICODE" or data[:1] != b"\x80":
            new = b"S" + _py2_escape(b) + b"\n"
        elif len(b) < 256 and r.random() < 0.8:
            new = b"U" + bytes([len(b)]) + b
        else:
            new = b"T" + struct.pack("<i", len(b)) + b
        out += data[last:pos] + new
        last = end
    out += data[last:]
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Mutations.

INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               2**63 - 1, 2**63, 2**64 - 1]
OPCODE_BYTES = [o.code.encode("latin-1")[0] for o in pickletools.opcodes]


def opcode_spans(data):
    """[(start, end)] of the opcodes pickletools can parse (stops at the first error)."""
    spans = []
    try:
        last = None
        for op, arg, pos in pickletools.genops(data):
            if last is not None:
                spans.append((last, pos))
            last = pos
            if op.name == "STOP":
                spans.append((pos, pos + 1))
                last = None
                break
        if last is not None:
            spans.append((last, len(data)))
    except Exception:
        pass
    return spans


def mutate(r, data, donors):
    how = r.choice(["flip", "flip", "bitflip", "insert", "insert-op", "delete", "truncate",
                    "interesting", "splice", "op-insert", "op-delete", "op-dup", "op-swap",
                    "op-replace", "multi"])
    b = bytearray(data)
    if how == "multi":
        for _ in range(r.randrange(2, 5)):
            b = bytearray(mutate(r, bytes(b), donors)[1])
        return how, bytes(b)
    if not b and how not in ("insert", "insert-op", "op-insert"):
        how = "insert-op"
    if how == "flip":
        i = r.randrange(len(b))
        b[i] = r.randrange(256)
    elif how == "bitflip":
        i = r.randrange(len(b))
        b[i] ^= 1 << r.randrange(8)
    elif how == "insert":
        i = r.randrange(len(b) + 1)
        b[i:i] = bytes(r.randrange(256) for _ in range(r.choice([1, 1, 2, 4])))
    elif how == "insert-op":
        i = r.randrange(len(b) + 1)
        b[i:i] = bytes([r.choice(OPCODE_BYTES)])
    elif how == "delete":
        i = r.randrange(len(b))
        del b[i:i + r.choice([1, 1, 2, 3, 8])]
    elif how == "truncate":
        del b[r.randrange(len(b)):]
    elif how == "interesting":
        w = r.choice([1, 2, 4, 8])
        i = r.randrange(len(b))
        v = r.choice(INTERESTING) & ((1 << (8 * w)) - 1)
        b[i:i + w] = v.to_bytes(w, "little")
    else:
        spans = opcode_spans(data)
        if not spans:
            return mutate(r, data, donors)
        donor = r.choice(donors)
        dspans = opcode_spans(donor) or [(0, len(donor))]
        ds, de = r.choice(dspans)
        chunk = donor[ds:de]
        s, e = r.choice(spans)
        if how == "splice":
            ds2 = r.choice(dspans)[0]
            return how, data[:s] + donor[ds2:]
        if how == "op-insert":
            b[s:s] = chunk
        elif how == "op-delete":
            del b[s:e]
        elif how == "op-dup":
            b[e:e] = data[s:e]
        elif how == "op-swap":
            s2, e2 = r.choice(spans)
            if s2 > s:
                s, e, s2, e2 = s2, e2, s, e
            if e2 <= s:
                b = bytearray(data[:s2] + data[s:e] + data[e2:s] + data[s2:e2] + data[e:])
        elif how == "op-replace":
            b[s:e] = chunk
    return how, bytes(b)


# ---------------------------------------------------------------------------------------------

def generate(seed=DEFAULT_SEED, n_base=11000, n_mutants=11000):
    """Returns [(name, bytes)]: n_base generated then n_mutants mutated cases."""
    r = random.Random(seed)
    base = []

    def add(kind, data):
        base.append(("b%05d_%s" % (len(base), kind), data))

    for kind, data in hand_cases():
        add(kind, data)
    nps = numpy_objects(random.Random(seed + 1))
    for p in range(6):
        for o in nps:
            try:
                add("numpy-p%d" % p, dumps(o, p, r))
            except Exception:
                pass
    for p in range(6):
        for f in CLASS_FACTORIES:
            for _ in range(2):
                try:
                    add("class-p%d" % p, dumps(f(r), p, r))
                except Exception:
                    pass
    n_prog = max(0, (n_base - len(base)) // 4)
    for _ in range(n_prog):
        add("prog", rand_program(r))
    n_py2 = max(0, (n_base - len(base)) // 6)
    while n_py2 > 0:
        p = r.choice([0, 1, 2, 3])
        obj = rand_obj(r, r.choice([1, 2, 3]), [], with_classes=r.random() < 0.3)
        try:
            data = py2ify(dumps(obj, p, r), r)
        except Exception:
            continue
        if data is None or len(data) > 20000:
            continue
        add("py2-p%d" % p, data)
        n_py2 -= 1
    i = 0
    while len(base) < n_base:
        p = i % 6
        i += 1
        pool = []
        obj = rand_obj(r, r.choice([1, 2, 3, 4, 5]), pool, with_classes=r.random() < 0.4)
        try:
            data = dumps(obj, p, r)
        except Exception:
            continue
        if len(data) > 20000:
            continue
        add("struct-p%d" % p, data)

    donors = [d for _, d in base if len(d) <= 4096]
    mutants = []
    while len(mutants) < n_mutants:
        src = r.choice(donors)
        how, data = mutate(r, src, donors)
        if data == src:
            continue
        mutants.append(("m%05d_%s" % (len(mutants), how), data))
    return base + mutants


def write_corpus(outdir, seed=DEFAULT_SEED, n_base=11000, n_mutants=11000):
    os.makedirs(outdir, exist_ok=True)
    names = []
    for name, data in generate(seed, n_base, n_mutants):
        path = os.path.join(outdir, name + ".pkl")
        with open(path, "wb") as f:
            f.write(data)
        names.append(name + ".pkl")
    with open(os.path.join(outdir, "INDEX"), "w") as f:
        f.write("\n".join(names) + "\n")
    return names


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=lambda s: int(s, 0), default=DEFAULT_SEED)
    ap.add_argument("--base", type=int, default=11000)
    ap.add_argument("--mutants", type=int, default=11000)
    a = ap.parse_args(argv)
    if os.environ.get("PYTHONHASHSEED") != "0":
        print("warning: PYTHONHASHSEED is not 0; set pickles will not be reproducible", file=sys.stderr)
    names = write_corpus(a.outdir, a.seed, a.base, a.mutants)
    print("%d cases in %s" % (len(names), a.outdir))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen_pickles  # the classes must be gen_pickles.X, not __main__.X

    gen_pickles.main(sys.argv[1:])
