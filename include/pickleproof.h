/*
 * pickleproof: decide what loading a Python pickle would import, call and build, without
 * importing or calling anything, and judge it against an allowlist policy.
 *
 * The memory-buffer entry points come first; file helpers wrap them. Every fallible function
 * returns a pp_err and fills a pp_error with the byte offset, opcode, stream and reason.
 *
 * Ownership: reports and policies are owned by the caller and freed with their _free function.
 * Strings inside a report belong to the report. Input buffers are borrowed for the duration of
 * a call only; nothing returned points into them.
 */
#ifndef PICKLEPROOF_H
#define PICKLEPROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PP_VERSION "0.1.0"

/* Stable, numbered error codes: append, never renumber. pp_errname() gives the JSON name. */
typedef enum pp_err {
    PP_OK = 0,
    PP_E_NOMEM = 1,          /* "out-of-memory" */
    PP_E_TRUNCATED = 2,      /* "truncated": input ended inside an opcode or before STOP */
    PP_E_BAD_OPCODE = 3,     /* "invalid-opcode" */
    PP_E_UNDERFLOW = 4,      /* "stack-underflow": pop below the mark fence or empty stack */
    PP_E_MARK = 5,           /* "mark-error": no MARK where one is needed */
    PP_E_MEMO = 6,           /* "memo-missing": GET of an index never PUT, or bad PUT index */
    PP_E_BAD_ARG = 7,        /* "bad-argument": a text argument CPython would not parse */
    PP_E_BAD_VALUE = 8,      /* "bad-value": an operand CPython would refuse (type, hashability) */
    PP_E_FRAME = 9,          /* "frame-error": an opcode crossing a FRAME, or a frame in a frame */
    PP_E_PROTOCOL = 10,      /* "unsupported-protocol" */
    PP_E_LIMIT = 11,         /* "limit-exceeded": a named budget tripped */
    PP_E_UNSUPPORTED = 12,   /* "unsupported": valid for CPython, but outside what we model */
    PP_E_IO = 13,            /* "io-error" */
    PP_E_USAGE = 14,         /* "usage" */
    PP_E_POLICY = 15,        /* "policy-error": a policy file we cannot read */
    PP_E_DECODE = 16,        /* "decode-error": invalid UTF-8 / ASCII / escape in a string */
    PP_E_INTERNAL = 17,      /* "internal" */
    PP_E_TRAILING = 18,      /* "trailing-data": bytes after STOP that are not another pickle */
    PP_E_SIGNATURE = 19,     /* "signature-error": a key, signature or manifest file we cannot use */
    PP_E_SANDBOX = 20,       /* "sandbox-violation": the sandboxed parser was killed by seccomp */
    PP_E_SANDBOX_ERROR = 21, /* "sandbox-error": the sandbox could not run, crashed, or answered
                                with output the parent rejects */
    PP_E__COUNT
} pp_err;

const char *pp_errname(pp_err e);

/* Per-file verdicts, in DESIGN.md order. */
typedef enum pp_verdict {
    PP_VERDICT_SAFE = 0,
    PP_VERDICT_UNSAFE = 1,
    PP_VERDICT_MALFORMED = 2,
    PP_VERDICT_LIMIT = 3,
    PP_VERDICT_UNSIGNED = 4,
    PP_VERDICT_BAD_SIGNATURE = 5,
    PP_VERDICT_ERROR = 6
} pp_verdict;

const char *pp_verdict_name(pp_verdict v);

/* Named budgets. Tripping one gives PP_E_LIMIT with the limit named in pp_error.limit. */
typedef enum pp_limit_id {
    PP_LIMIT_INPUT_BYTES = 0, /* "input-bytes": size of one input */
    PP_LIMIT_OPCODES,         /* "opcodes": opcodes executed per input */
    PP_LIMIT_STACK,           /* "stack-depth": items on the object stack */
    PP_LIMIT_MARKS,           /* "marks": open MARKs */
    PP_LIMIT_MEMO,            /* "memo-entries": memo entries, and the largest memo index */
    PP_LIMIT_NESTING,         /* "nesting-depth": depth of any walk over the graph */
    PP_LIMIT_PAYLOAD,         /* "payload-bytes": one string/bytes payload */
    PP_LIMIT_GRAPH_MEMORY,    /* "graph-memory": bytes of graph nodes in the arena */
    PP_LIMIT_STREAMS,         /* "streams": pickles stacked in one input */
    PP_LIMIT_INFLATED_BYTES,  /* "inflated-bytes": total bytes decompressed from one input */
    PP_LIMIT_INFLATE_RATIO,   /* "inflate-ratio": decompressed / compressed bytes of a member */
    PP_LIMIT_ZIP_ENTRIES,     /* "zip-entries": entries in one archive */
    PP_LIMIT_ARCHIVE_DEPTH,   /* "archive-depth": containers nested in containers */
    PP_LIMIT_CPU_SECONDS,     /* "cpu-seconds": CPU time of the sandboxed parser (RLIMIT_CPU) */
    PP_LIMIT_DEADLINE_MS,     /* "deadline-ms": wall-clock time the parent waits for the sandbox */
    PP_LIMIT_SANDBOX_MEMORY,  /* "sandbox-memory": address space of the sandboxed parser beyond
                                 its input (RLIMIT_AS); 0 = graph-memory + inflated-bytes + 256M */
    PP_LIMIT_HASH_WORK,       /* "hash-work": tuple elements hashed for dict keys and set elements
                                 per stream (CPython does not cache a tuple's hash: a shared tuple
                                 DAG used as a key costs its expanded size, 2^60 for 180 bytes) */
    PP_LIMIT__COUNT
} pp_limit_id;

typedef struct pp_limits {
    uint64_t v[PP_LIMIT__COUNT];
} pp_limits;

void pp_limits_default(pp_limits *l);
const char *pp_limit_name(pp_limit_id id);
/* Parses "NAME=VALUE" where VALUE is a decimal number with an optional K/M/G/T suffix (powers of
 * 1024). Returns PP_E_USAGE for an unknown name or a bad number. */
pp_err pp_limits_set(pp_limits *l, const char *assignment);

/* The first error wins and carries its context. */
typedef struct pp_error {
    pp_err code;
    uint64_t offset;  /* byte offset in the input (file offset, not stream-relative) */
    int opcode;       /* opcode byte, or -1 */
    int limit;        /* pp_limit_id when code == PP_E_LIMIT, else -1 */
    char stream[256]; /* container path of the stream, e.g. "m.pt!archive/data.pkl" */
    char msg[224];    /* lowercase, names the thing and the number */
} pp_error;

void pp_error_clear(pp_error *e);

/* Which CPython unpickler the stream is read by: pickle.load (C) or pickle._Unpickler (Py, joblib). */
typedef enum pp_flavor { PP_FLAVOR_C = 0, PP_FLAVOR_PY = 1 } pp_flavor;

/* How protocol-0/1 STRING payloads are decoded (the Unpickler's `encoding`). */
typedef enum pp_encoding {
    PP_ENC_ASCII = 0, /* pickle.load default */
    PP_ENC_LATIN1,
    PP_ENC_UTF8,
    PP_ENC_BYTES
} pp_encoding;

/* ---- policies ------------------------------------------------------------------------------ */

typedef struct pp_policy pp_policy;

pp_err pp_policy_new(pp_policy **out);
void pp_policy_free(pp_policy *p);
/* Adds a built-in policy ("default", ...) by name; its includes are followed. */
pp_err pp_policy_add_builtin(pp_policy *p, const char *name, pp_error *err);
/* Adds a policy: a plain word names a built-in ("default"); a name containing '/' or ending in
 * ".policy" is a file ("./default" is the file). A plain word that is no built-in is tried as a
 * file. */
pp_err pp_policy_add(pp_policy *p, const char *name_or_path, pp_error *err);
/* Adds policy text; `origin` names it in errors. */
pp_err pp_policy_add_text(pp_policy *p, const char *origin, const char *text, size_t len,
                          pp_error *err);
/* The names of the policies loaded so far, in load order. */
size_t pp_policy_names(const pp_policy *p, const char *const **names);
/* NULL-terminated list of built-in policy names. */
const char *const *pp_policy_builtin_names(void);
/* The text of a built-in policy, or NULL. */
const char *pp_policy_builtin_text(const char *name);

/* ---- scanning ------------------------------------------------------------------------------ */

typedef struct pp_finding {
    const char *rule;     /* stable id, e.g. "global-not-allowed" */
    const char *severity; /* "critical" | "high" | "medium" | "low" | "info" */
    char *global;         /* "module.qualname" or NULL */
    const char *opcode;   /* pickletools name or NULL */
    uint64_t offset;      /* byte offset in the input */
    char *stream;         /* stream name */
    char *message;
} pp_finding;

/* Where the raw bytes of one array live, proven inside their container. */
#define PP_NO_OFFSET UINT64_MAX
#define PP_MAX_NDIM 32
typedef struct pp_array_region {
    char *where;          /* container path of the decoded bytes, e.g. "m.pt!archive/data/0" */
    uint64_t offset;      /* offset of the first byte within `where` */
    uint64_t file_offset; /* absolute offset in the input file, PP_NO_OFFSET if compressed */
    uint64_t nbytes;
    char dtype[32];       /* numpy dtype string, e.g. "<f8" */
    uint32_t ndim;
    uint64_t shape[PP_MAX_NDIM];
    char order;           /* 'C' or 'F' */
} pp_array_region;

typedef struct pp_report {
    pp_verdict verdict;
    char *path;      /* as given, or "<memory>" */
    char *container; /* "pickle" for raw streams */
    pp_finding *findings;
    size_t nfindings;
    char **globals; /* distinct "module.qualname" resolved, in first-seen order */
    size_t nglobals;
    size_t nstreams;
    uint64_t bytes;
    pp_error error; /* the malformation / limit / operational error, if any */
    char **policies;
    size_t npolicies;
    const char *sandbox; /* sandbox actually used: "off" until the sandbox lands */
    pp_array_region *arrays; /* array payloads found, in stream order (never read when scanning) */
    size_t narrays;
    /* signature: "not-checked" | "valid" | "unsigned" | "bad" */
    const char *sig_status;
    char sig_keyid[17];  /* the signature's key id, once its file parsed */
    char *sig_comment;   /* trusted comment, only when valid */
    char *sig_reason;    /* why unsigned or bad */
} pp_report;

/* ---- signatures ---------------------------------------------------------------------------- */

/* Trusted minisign public keys. A file holds one key (a minisign .pub file, or the bare base64
 * line) or, as a keyring, several: every line that is not blank, a '#' comment or an "untrusted
 * comment:" line is one base64 key. */
typedef struct pp_keyring pp_keyring;
pp_err pp_keyring_new(pp_keyring **out);
pp_err pp_keyring_add_file(pp_keyring *k, const char *path, pp_error *err);
size_t pp_keyring_count(const pp_keyring *k);
void pp_keyring_free(pp_keyring *k);

/* Where untrusted bytes are parsed. */
typedef enum pp_sandbox_level {
    PP_SANDBOX_REQUIRE = 0, /* a seccomp-confined helper process; fail closed without seccomp */
    PP_SANDBOX_AUTO,        /* seccomp when available, else a process with rlimits */
    PP_SANDBOX_PROCESS,     /* a separate process with rlimits only */
    PP_SANDBOX_OFF          /* in this process (debugging, valgrind) */
} pp_sandbox_level;

typedef struct pp_scan_options {
    const pp_policy *policy; /* required */
    pp_limits limits;
    pp_flavor flavor;
    pp_encoding encoding;
    const char *path; /* name used in the report */
    pp_sandbox_level sandbox; /* honoured by pp_scan_file; pp_scan_buffer parses in-process */
    /* Signatures (pp_scan_file): with keys, a detached signature (signature_path, default
     * PATH.minisig) is verified over the bytes before anything parses them, and the verified
     * bytes are the bytes parsed. A bad signature is verdict bad-signature; a missing one is
     * verdict unsigned when require_signature, else reported as "unsigned" and scanned. */
    const pp_keyring *keys;
    bool require_signature;
    const char *signature_path;
    /* set by pp_scan_file: side files (joblib's old multi-file format) may be read from the
     * scanned file's directory */
    bool allow_siblings;
    /* side files already read by the caller (the sandbox's parent reads those the confined
     * parser asked for); with sides_final, a side file not among them is missing */
    const struct pp_side_file *sides;
    size_t nsides;
    bool sides_final;
} pp_scan_options;

#define PP_MAX_SIDES 64 /* side files one scan may read */
typedef struct pp_side_file {
    const char *name; /* a plain file name */
    const uint8_t *data;
    size_t len;
} pp_side_file;

void pp_scan_options_init(pp_scan_options *o, const pp_policy *policy);

/* Scans a pickle held in memory. On PP_OK *out holds a report whose verdict says what was found
 * (malformed and limit verdicts are reports, not errors). Other return codes are operational
 * failures (PP_E_NOMEM, PP_E_USAGE) and *out is NULL. */
pp_err pp_scan_buffer(const uint8_t *data, size_t len, const pp_scan_options *opt, pp_report **out);
/* Reads the file (or "-" for stdin) and scans it; I/O errors give a report with verdict error. */
pp_err pp_scan_file(const char *path, const pp_scan_options *opt, pp_report **out);
void pp_report_free(pp_report *r);

/* Writers. JSON objects follow DESIGN.md; text is for people. */
pp_err pp_report_write_json(const pp_report *r, FILE *f);
pp_err pp_report_write_text(const pp_report *r, FILE *f, int color);

#ifdef __cplusplus
}
#endif
#endif
