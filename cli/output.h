/* Where `scan` results go: one writer per --format, fed reports in walk order, plus the summary
 * (inside the document for json, on stderr otherwise) and the progress bar. */
#ifndef PP_CLI_OUTPUT_H
#define PP_CLI_OUTPUT_H

#include "pickleproof.h"
#include "report.h"
#include "report_sarif.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum pp_out_format { PP_OUT_TEXT, PP_OUT_JSON, PP_OUT_JSONL, PP_OUT_SARIF } pp_out_format;

/* text|json|jsonl|sarif, or -1. */
int pp_out_format_parse(const char *s);

typedef struct pp_out {
    pp_out_format fmt;
    FILE *f;
    unsigned text_flags; /* PP_TEXT_COLOR, PP_TEXT_VERBOSE */
    bool quiet;          /* no summary, no progress */
    bool color_err;      /* color the stderr summary */
    pp_report_doc doc;
    pp_sarif sarif;
    size_t files, counts[PP_VERDICT_ERROR + 1];
    uint64_t bytes;
    bool write_failed;
    /* progress bar (stderr is a terminal) */
    bool progress_ok, progress_shown;
    double started, last_draw;
} pp_out;

void pp_out_begin(pp_out *o);
void pp_out_file(pp_out *o, const pp_report *r);
/* Closes the document and prints the summary. Returns false when writing failed. */
bool pp_out_end(pp_out *o, size_t skipped, size_t excluded, int exit_code);

/* Redraws the bar when the scan is long (over 1 s or 50 files), at most 10 times a second. */
void pp_out_progress(pp_out *o, size_t done, size_t total);

double pp_out_now(void);

#endif
