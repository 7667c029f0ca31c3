#!/usr/bin/python3
"""Writes tests/data/bad/NAME.pkl and NAME.expect ("verdict error-name offset") golden files.
The expected names and offsets are ours; tests/python/test_bad_golden.py checks them, and that
CPython also fails to load every one of them."""
import os

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "bad")
cases = {
    # name: (bytes, verdict, error name, offset)
    "empty": (b"", "malformed", "truncated", 0),
    "no_stop": (b"\x80\x04N", "malformed", "truncated", 3),
    "invalid_opcode": (b"\x80\x04N\xff.", "malformed", "invalid-opcode", 3),
    "binbytes8_2pow63": (b"\x80\x04\x8e" + (1 << 63).to_bytes(8, "little") + b".",
                         "malformed", "truncated", 2),
    "binunicode8_max": (b"\x8d" + b"\xff" * 8 + b".", "malformed", "truncated", 0),
    "long4_negative": (b"\x80\x02\x8b\xff\xff\xff\xff.", "malformed", "bad-value", 2),
    "binstring_ffffffff": (b"T\xff\xff\xff\xff.", "malformed", "truncated", 0),
    "odd_setitems": (b"}(K\x01K\x02K\x03u.", "malformed", "bad-value", 8),
    "odd_dict": (b"(K\x01d.", "malformed", "bad-value", 3),
    "memo_missing": (b"\x80\x02h\x07.", "malformed", "memo-missing", 2),
    "underflow_across_mark": (b"K\x01(\x85.", "malformed", "mark-error", 3),
    "underflow_empty": (b"\x80\x02R.", "malformed", "stack-underflow", 2),
    "stop_on_mark": (b"(.", "malformed", "mark-error", 1),
    "proto_6": (b"\x80\x06N.", "malformed", "unsupported-protocol", 0),
    "unhashable_key": (b"}]K\x01s.", "malformed", "bad-value", 4),
    "frame_straddle": (b"\x80\x04\x95\x02\0\0\0\0\0\0\0J\x01\0\0\0.", "malformed", "frame-error", 11),
    "frame_in_frame": (b"\x80\x04\x95\x0a\0\0\0\0\0\0\0\x95\x01\0\0\0\0\0\0\0N.",
                       "malformed", "frame-error", 11),
    "string_unquoted": (b"Sabc\n.", "malformed", "bad-argument", 0),
    "int_garbage": (b"I12x\n.", "malformed", "bad-argument", 0),
    "utf8_invalid": (b"X\x01\0\0\0\xff.", "malformed", "decode-error", 0),
    "stack_global_bytes": (b"\x80\x04C\x02osC\x06system\x93.", "malformed", "bad-value", 14),
    "trailing_garbage": (b"N.\xff\xfe", "malformed", "trailing-data", 2),
}


def main():
    os.makedirs(here, exist_ok=True)
    for name, (data, verdict, err, off) in cases.items():
        with open(os.path.join(here, name + ".pkl"), "wb") as f:
            f.write(data)
        with open(os.path.join(here, name + ".expect"), "w") as f:
            f.write("%s %s %d\n" % (verdict, err, off))


if __name__ == "__main__":
    main()
