/* What every harness shares: an invariant check that aborts (so libFuzzer and the replay driver
 * both report it) and a built-in policy loaded once per process. */
#ifndef PP_FUZZ_COMMON_H
#define PP_FUZZ_COMMON_H

#include "buf.h"
#include "pickleproof.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
    abort();
}
#define check(cond) ((cond) ? (void)0 : fuzz_fail(#cond, __FILE__, __LINE__))
/* in fuzz_same_report: say which field differs */
#define SAME(cond)                                                                                 \
    if (!(cond)) return fprintf(stderr, "reports differ: %s\n", #cond), 0

/* The built-in policy `name`, loaded on first use; aborts if it cannot be. */
static inline pp_policy *fuzz_policy(const char *name)
{
    static pp_policy *p;
    if (!p) {
        pp_error err;
        pp_error_clear(&err);
        if (pp_policy_new(&p) || pp_policy_add_builtin(p, name, &err))
            abort();
    }
    return p;
}

/* ---- a strict JSON reader for the report writer's output ------------------------------------ */

typedef struct fuzz_json {
    const unsigned char *p, *end;
} fuzz_json;

static inline void json_ws(fuzz_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static inline int json_lit(fuzz_json *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return 0;
    j->p += n;
    return 1;
}

/* A string: no raw control byte, only JSON's escapes, well-formed UTF-8. */
static inline int json_string(fuzz_json *j)
{
    if (j->p >= j->end || *j->p != '"') return 0;
    j->p++;
    while (j->p < j->end) {
        unsigned c = *j->p++;
        if (c == '"') return 1;
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (j->p >= j->end) return 0;
            c = *j->p++;
            if (c == 'u') {
                for (int k = 0; k < 4; k++)
                    if (j->p >= j->end || !strchr("0123456789abcdefABCDEF", *j->p++)) return 0;
            } else if (!strchr("\"\\/bfnrt", (int)c) || c == 0) {
                return 0;
            }
        } else if (c >= 0x80) {
            int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : -1;
            if (more < 0 || c > 0xf4) return 0;
            for (int k = 0; k < more; k++)
                if (j->p >= j->end || (*j->p++ & 0xc0) != 0x80) return 0;
        }
    }
    return 0;
}

static inline int json_value(fuzz_json *j, int depth)
{
    if (depth > 64) return 0;
    json_ws(j);
    if (j->p >= j->end) return 0;
    unsigned char c = *j->p;
    if (c == '"') return json_string(j);
    if (c == '{' || c == '[') {
        unsigned char close = c == '{' ? '}' : ']';
        j->p++;
        json_ws(j);
        if (j->p < j->end && *j->p == close) return j->p++, 1;
        for (;;) {
            if (c == '{') {
                json_ws(j);
                if (!json_string(j)) return 0;
                json_ws(j);
                if (j->p >= j->end || *j->p++ != ':') return 0;
            }
            if (!json_value(j, depth + 1)) return 0;
            json_ws(j);
            if (j->p >= j->end) return 0;
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            return *j->p++ == close;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if (c == '-') j->p++;
        const unsigned char *d = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
        if (j->p == d || (*d == '0' && j->p - d > 1)) return 0;
        return 1; /* the writer prints integers only */
    }
    return json_lit(j, "true") || json_lit(j, "false") || json_lit(j, "null");
}

/* The report's JSON object is one valid JSON object with nothing after it, and its text form
 * has no NUL and no control byte but newline and tab. */
static inline void fuzz_check_writers(const pp_report *r)
{
    pp_buf b;
    pp_buf_init(&b);
    if (pp_report_json(r, &b) == PP_OK && pp_buf_ok(&b)) {
        fuzz_json j = {(const unsigned char *)b.p, (const unsigned char *)b.p + b.n};
        check(b.n > 0 && b.p[0] == '{' && memchr(b.p, 0, b.n) == NULL);
        check(json_value(&j, 0));
        check(j.p == j.end);
    }
    pp_buf_free(&b);
    pp_buf_init(&b);
    if (pp_report_text(r, &b, 0) == PP_OK && pp_buf_ok(&b))
        for (size_t i = 0; i < b.n; i++)
            check((unsigned char)b.p[i] >= 0x20 || b.p[i] == '\n' || b.p[i] == '\t');
    pp_buf_free(&b);
}

static inline int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Two reports of the same bytes say the same thing: verdict, error, findings, globals, arrays. */
static inline int fuzz_same_report(const pp_report *a, const pp_report *b)
{
    SAME(a->verdict == b->verdict);
    SAME(a->nfindings == b->nfindings);
    SAME(a->nglobals == b->nglobals);
    SAME(a->narrays == b->narrays);
    SAME(a->nstreams == b->nstreams);
    SAME(a->bytes == b->bytes);
    SAME(str_eq(a->container, b->container));
    SAME(a->error.code == b->error.code && a->error.offset == b->error.offset);
    SAME(a->error.limit == b->error.limit && a->error.opcode == b->error.opcode);
    SAME(strcmp(a->error.msg, b->error.msg) == 0 && strcmp(a->error.stream, b->error.stream) == 0);
    for (size_t i = 0; i < a->nfindings; i++) {
        const pp_finding *x = &a->findings[i], *y = &b->findings[i];
        SAME(str_eq(x->rule, y->rule) && str_eq(x->severity, y->severity));
        SAME(str_eq(x->global, y->global) && str_eq(x->opcode, y->opcode));
        SAME(x->offset == y->offset && str_eq(x->stream, y->stream));
        SAME(str_eq(x->message, y->message));
    }
    for (size_t i = 0; i < a->nglobals; i++)
        SAME(str_eq(a->globals[i], b->globals[i]));
    for (size_t i = 0; i < a->narrays; i++) {
        const pp_array_region *x = &a->arrays[i], *y = &b->arrays[i];
        SAME(str_eq(x->where, y->where) && x->offset == y->offset);
        SAME(x->file_offset == y->file_offset && x->nbytes == y->nbytes);
        SAME(strcmp(x->dtype, y->dtype) == 0 && x->ndim == y->ndim && x->order == y->order);
        SAME(memcmp(x->shape, y->shape, x->ndim * sizeof x->shape[0]) == 0);
    }
    return 1;
}

/* Scans data as the file `path` with `policy` (small graph and inflate budgets) and checks what
 * holds for every container: a verdict from the table; a safe verdict has no error and no
 * critical or high finding; a malformed/limit verdict carries an error or a finding; every array
 * region is well-formed and, when it has a file offset, lies inside the input; the JSON and text
 * writers produce valid output; a safe verdict re-scans to the same report. Returns the
 * report for harness-specific checks (free it), or NULL when the scan ran out of memory. */
static inline pp_report *fuzz_scan(const uint8_t *data, size_t size, pp_policy *policy,
                                   const char *path)
{
    pp_scan_options o;
    pp_scan_options_init(&o, policy);
    o.path = path;
    o.limits.v[PP_LIMIT_GRAPH_MEMORY] = 64u << 20;
    o.limits.v[PP_LIMIT_INFLATED_BYTES] = 64u << 20;
    pp_report *r = NULL;
    if (pp_scan_buffer(data, size, &o, &r) != PP_OK)
        return NULL;
    fuzz_check_writers(r);
    if (r->verdict == PP_VERDICT_SAFE) {
        /* a safe verdict is a function of the bytes: the same scan again says the same */
        pp_report *again = NULL;
        if (pp_scan_buffer(data, size, &o, &again) == PP_OK) {
            check(fuzz_same_report(r, again));
            pp_report_free(again);
        }
    }
    check(r->verdict <= PP_VERDICT_ERROR);
    if (r->verdict == PP_VERDICT_SAFE) {
        check(r->error.code == PP_OK);
        for (size_t i = 0; i < r->nfindings; i++)
            check(strcmp(r->findings[i].severity, "critical") != 0 &&
                  strcmp(r->findings[i].severity, "high") != 0);
    }
    if (r->verdict == PP_VERDICT_MALFORMED || r->verdict == PP_VERDICT_LIMIT)
        check(r->error.code != PP_OK || r->nfindings > 0);
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *a = &r->arrays[i];
        check(a->where != NULL && a->ndim <= PP_MAX_NDIM && (a->order == 'C' || a->order == 'F'));
        if (a->file_offset != PP_NO_OFFSET)
            check(a->file_offset <= size && a->nbytes <= size - a->file_offset);
    }
    return r;
}

#endif
