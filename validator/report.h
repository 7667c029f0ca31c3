/* Building reports: findings, resolved globals, and the verdict they add up to. */
#ifndef PP_REPORT_H
#define PP_REPORT_H

#include "err.h"
#include "pickleproof.h"

pp_report *pp_report_new(const char *path);
/* Adds a finding; `global`, `stream` may be NULL; opcode -1 for none. Returns PP_E_NOMEM. */
pp_err pp_report_add_finding(pp_report *r, const char *rule, const char *severity,
                             const char *global, int opcode, uint64_t offset, const char *stream,
                             const char *fmt, ...) PP_PRINTF(8, 9);
/* Records a resolved global "module.qualname" once, in first-seen order. */
pp_err pp_report_add_global(pp_report *r, const char *module, size_t modlen, const char *name,
                            size_t namelen);
pp_err pp_report_set_container(pp_report *r, const char *container);
pp_err pp_report_set_policies(pp_report *r, const pp_policy *p);
/* Sets r->verdict from the findings and r->error: any critical/high policy finding -> unsafe;
 * else a limit error -> limit; else any other error or a trailing-data finding -> malformed. */
void pp_report_decide(pp_report *r);
struct pp_sig_result;
/* Records the signature check (status, key id, trusted comment when valid, reason). */
pp_err pp_report_set_signature(pp_report *r, const struct pp_sig_result *s);

/* ---- additions (report.c, report_json.c, report_text.c) ----------------------------------- */

/* Reports must come from pp_report_new: the pp_report is the head of a private struct holding
 * the array capacities and the keyed hash set that makes pp_report_add_global O(1) amortized.
 * A global whose name holds a NUL byte is stored with the NUL written as the 4 characters \x00
 * (deduplication uses the raw bytes). pp_report_decide also maps operational errors (out-of-memory,
 * io-error, usage, policy-error, internal) to PP_VERDICT_ERROR rather than malformed. */

#include "buf.h"

#include <stdbool.h>

/* Appends the report's JSON object (one line, no newline) to b. Every string is valid JSON
 * whatever bytes it holds (see pp_buf_json_str). Shape:
 *   {"path", "verdict", "container", "bytes", "streams",
 *    "findings": [{"rule", "severity", "global"|null, "opcode"|null, "offset", "stream"|null,
 *                  "message"}],
 *    "globals": [...], "error": null | {"name", "offset", "opcode"|null, "limit"|null,
 *                "stream"|null, "message"},
 *    "signature": {"status": "not-checked" | "missing" | "invalid"}, "sandbox",
 *    "policy": [...]}
 * The signature status follows the verdict until signature results are carried in reports. */
pp_err pp_report_json(const pp_report *r, pp_buf *b);
/* One object per line (--format jsonl). */
pp_err pp_report_write_jsonl(const pp_report *r, FILE *f);

/* The --format json document, written as files are scanned:
 *   {"tool": "pickleproof", "version": PP_VERSION, "files": [OBJECT, ...],
 *    "summary": {"files": N, "safe": N, "unsafe": N, "malformed": N, "limit": N,
 *                "unsigned": N, "bad-signature": N, "error": N}}
 * Errors are sticky; pp_report_doc_end returns the first (PP_E_IO or PP_E_NOMEM). */
typedef struct pp_report_doc {
    FILE *f;
    size_t nfiles;
    size_t counts[PP_VERDICT_ERROR + 1];
    pp_err err;
    uint64_t bytes; /* sum of the reports' bytes */
} pp_report_doc;

void pp_report_doc_begin(pp_report_doc *d, FILE *f);
pp_err pp_report_doc_add(pp_report_doc *d, const pp_report *r);
pp_err pp_report_doc_end(pp_report_doc *d);
/* The same, with what a directory scan adds to the summary after the verdict counts:
 *   "skipped": N (files a walk found and left out by content), "bytes": N, "seconds": T */
pp_err pp_report_doc_end_ex(pp_report_doc *d, size_t skipped, double seconds);
/* The whole document at once. */
pp_err pp_report_write_json_doc(const pp_report *const *reports, size_t n, FILE *f);

/* Text output flags. pp_report_write_text(r, f, color) is the _ex form with PP_TEXT_COLOR. */
#define PP_TEXT_COLOR 1u   /* ANSI colors: the caller decides (a TTY and NO_COLOR unset) */
#define PP_TEXT_VERBOSE 2u /* also list every resolved global */

pp_err pp_report_text(const pp_report *r, pp_buf *b, unsigned flags);
pp_err pp_report_write_text_ex(const pp_report *r, FILE *f, unsigned flags);

/* Appends s[0..n) so that it cannot change what a terminal shows beyond its own characters:
 * controls, DEL, C1 controls, non-ASCII spaces, bidirectional overrides and invisible format
 * characters, surrogates and invalid UTF-8 become \xNN / \uXXXX / \UXXXXXXXX escapes (\n \r \t by
 * name) and a backslash is doubled; other UTF-8 passes through. A nonzero `quote` (' or ") is
 * escaped too, which makes the result the inside of a Python-style string literal. */
void pp_report_put_escaped(pp_buf *b, const char *s, size_t n, char quote);

/* true when r->error is also a finding (rule = its pp_errname, same offset), as the scanner
 * records it; the text and explain writers then show it once. */
bool pp_report_error_shown(const pp_report *r);

#endif
