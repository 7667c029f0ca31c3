/* Protocol-0 text arguments, parsed with CPython 3.11's exact grammar (C and pure-Python flavours),
 * and the string decoders the binary opcodes need. Every function takes the line without its
 * '\n' (s[0..n), which may hold NUL bytes: the C flavour, like _pickle.c, stops at the first NUL
 * where CPython hands a C string to a C parser; the Py flavour refuses them where Python does).
 * Results that need new bytes are allocated in the arena; nothing else allocates. Results may
 * borrow from s (STRING/UNICODE without escapes, ASCII/UTF-8 payloads).
 *
 * Return codes (the VM sets the message, since it knows the offset):
 *   PP_E_BAD_ARG    CPython raises ValueError/OverflowError/UnpicklingError;
 *   PP_E_DECODE     CPython raises UnicodeDecodeError;
 *   PP_E_LIMIT      more than 4300 decimal digits (int_max_str_digits: CPython raises ValueError,
 *                   so callers report it as bad-argument), or a Py-flavour memo index beyond int64
 *                   (valid in CPython, beyond what we model);
 *   PP_E_TRUNCATED  C flavour, empty line where _pickle.c calls bad_readline ("pickle data was
 *                   truncated"): INT, LONG, FLOAT, GET/PUT;
 *   PP_E_NOMEM      the arena refused (cap or malloc: pp_arena_over_cap tells which). */
#ifndef PP_TEXTARG_H
#define PP_TEXTARG_H

#include <stdbool.h>

#include "arena.h"
#include "graph.h"
#include "pickleproof.h"

/* INT. C: glibc strtol(line, 0) (leading whitespace, sign, 0x, C octal "010" = 8); on overflow or
 * leftover characters, PyLong_FromString(line, 0) (Python literal rules). When strtol took the
 * whole line, a 2-byte line reading 0 or 1 is a bool ("00", "+1", "-0", " 1", "1\0"). Py: exactly
 * "00"/"01" are bools, else int(line, 0). PP_V_BOOL, PP_V_INT, or PP_V_BIGINT (minimal little-
 * endian two's complement in the arena) beyond int64. */
pp_err pp_text_int(pp_arena *a, pp_flavor fl, const uint8_t *s, size_t n, pp_val *out);
/* LONG: one trailing 'L' dropped, then int(x, 0). The flavours differ only on embedded NULs and on
 * which exception a non-UTF-8 line raises. PP_V_INT or PP_V_BIGINT. */
pp_err pp_text_long_fl(pp_arena *a, pp_flavor fl, const uint8_t *s, size_t n, pp_val *out);
/* pp_text_long_fl(a, PP_FLAVOR_C, ...): kept for existing callers; prefer the flavoured form. */
pp_err pp_text_long(pp_arena *a, const uint8_t *s, size_t n, pp_val *out);
/* FLOAT. C: PyOS_string_to_double on the whole line: no surrounding spaces, no underscores,
 * [+-]inf/infinity/nan in any case, no hex, 1e400 is an error. Py: float(bytes): surrounding
 * whitespace and digit-separating underscores allowed, 1e400 is inf. Bit-identical to CPython
 * (correctly rounded; "nan" is 0x7ff8000000000000, "-nan" has the sign bit). Assumes the
 * default floating-point rounding mode. */
pp_err pp_text_float(pp_flavor fl, const uint8_t *s, size_t n, double *out);
/* GET/PUT index: int(x, 10) (whitespace, sign, leading zeros, underscores). C: beyond int64 is
 * PP_E_BAD_ARG (OverflowError). Py: beyond int64 is PP_E_LIMIT when positive, INT64_MIN when
 * negative (every negative index fails the same way in Py). Negative results are the caller's to
 * judge (negative PUT: ValueError; negative GET: not found). */
pp_err pp_text_index_fl(pp_flavor fl, const uint8_t *s, size_t n, int64_t *out);
/* pp_text_index_fl(PP_FLAVOR_C, ...): kept for existing callers; prefer the flavoured form. */
pp_err pp_text_index(const uint8_t *s, size_t n, int64_t *out);
/* STRING: quoted (first == last, ' or ", n >= 2; inner quotes unchecked), body decoded with
 * bytes-literal escapes (codecs.escape_decode, strict). Output bytes, borrowed when the body has
 * no backslash. Both flavours. */
pp_err pp_text_string(pp_arena *a, const uint8_t *s, size_t n, const uint8_t **out, size_t *outn);
/* UNICODE: raw-unicode-escape to UTF-8; lone surrogates kept as 3-byte sequences (a \ud83d\ude00
 * pair stays two code points, as in CPython). Borrowed when ASCII without backslashes. */
pp_err pp_text_unicode(pp_arena *a, const uint8_t *s, size_t n, const uint8_t **out, size_t *outn);
/* true if s is UTF-8 as Python's strict decoder accepts it (no overlongs, nothing above U+10FFFF,
 * no truncation); surrogatepass also accepts ED A0..BF xx. ASCII runs go 32 bytes a step. */
bool pp_utf8_valid(const uint8_t *s, size_t n, bool surrogatepass);
/* Decodes Python-2 str payload bytes with the unpickler's encoding (errors="strict"): ASCII and
 * UTF-8 give a borrowed PP_V_STR, LATIN1 transcodes into the arena (borrowed when ASCII), BYTES
 * gives a borrowed PP_V_BYTES. */
pp_err pp_decode_py2str(pp_arena *a, pp_encoding enc, const uint8_t *s, size_t n, pp_val *out);

#endif
