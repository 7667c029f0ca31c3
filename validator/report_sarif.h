/* SARIF 2.1.0 output (`scan --format sarif`) in the shape GitHub code scanning ingests: one run,
 * tool.driver with one rule per finding kind (help text, default level, security-severity),
 * one result per finding with the file as a relative URI and the bytes as a region, stable
 * partial fingerprints, and one verdict-level result per file rejected as malformed, limit or
 * error. Written as files are scanned: the rules are static, so nothing is buffered. */
#ifndef PP_REPORT_SARIF_H
#define PP_REPORT_SARIF_H

#include "pickleproof.h"

#include <stddef.h>
#include <stdio.h>

typedef struct pp_sarif_rule {
    const char *id;
    const char *name;              /* PascalCase, as SARIF viewers show it */
    const char *brief;             /* shortDescription */
    const char *full;              /* fullDescription */
    const char *help;              /* what to do about it */
    const char *level;             /* "error" | "warning" | "note" */
    const char *security_severity; /* GitHub's 0.0-10.0 score, as a string */
} pp_sarif_rule;

/* Every rule id the library reports (finding rules, error names, verdict-level rules), in a
 * fixed order; *n receives the count. */
const pp_sarif_rule *pp_sarif_rules(size_t *n);
/* The rule for an id, or NULL (a result with an unknown id still carries it, without index). */
const pp_sarif_rule *pp_sarif_rule_find(const char *id, size_t *index);

/* Errors are sticky; pp_sarif_end returns the first (PP_E_IO or PP_E_NOMEM). */
typedef struct pp_sarif {
    FILE *f;
    size_t nresults;
    pp_err err;
} pp_sarif;

void pp_sarif_begin(pp_sarif *s, FILE *f);
/* Appends the results for one report (none for a safe file with no findings). */
pp_err pp_sarif_add(pp_sarif *s, const pp_report *r);
/* Closes the document; exit_code and success go into the run's invocation. */
pp_err pp_sarif_end(pp_sarif *s, int exit_code, bool success);

#endif
