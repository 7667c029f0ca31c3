/* Learning a policy from trusted samples: the smallest set of reference/call/construct entries
 * that, added to the included policies, makes every sample scan `safe`.
 *
 * The samples are scanned exactly as `scan` scans them (any container, the sandbox, the
 * limits): what the library knows about a use is what the policy check reports about it, so
 * learning reads the findings of scans under the policy learned so far and adds, for each, the
 * one permission that answers it. That repeats until every sample is safe, or a pass learns
 * nothing (a finding no entry can answer: dunder state, extension codes, calls of call results,
 * arguments an included policy pins), or a learned global is on the denylist of known-dangerous
 * globals and dangerous entries were not asked for. The policy only ever grows, so a sample
 * that is safe stays safe, and every entry answers a finding that nothing else answered: take
 * one away and the sample it came from is unsafe again. */
#ifndef PP_LEARN_H
#define PP_LEARN_H

#include "buf.h"
#include "pickleproof.h"

/* What the samples did with a global. */
enum {
    PP_LEARN_REFERENCE = 1u << 0, /* looked up */
    PP_LEARN_CALL = 1u << 1,      /* REDUCE of it */
    PP_LEARN_SELF = 1u << 2,      /* its call result was given BUILD state or mutated */
    PP_LEARN_CONSTRUCT = 1u << 3  /* NEWOBJ/INST/OBJ of it, a helper's class argument, BUILD */
};

typedef struct pp_learn_entry {
    char *module, *qualname; /* the exact split, as the entry is written */
    unsigned uses;           /* PP_LEARN_* */
    /* where the first use was seen */
    char *file;
    char *stream;
    uint64_t offset;
    char opcode[24];
    uint64_t count;     /* findings this entry answered, over every pass and sample */
    const char *danger; /* why it is on the denylist, or NULL */
} pp_learn_entry;

typedef enum pp_learn_status {
    PP_LEARNED = 0,         /* every sample scans safe with the learned policy */
    PP_LEARN_DANGEROUS = 1, /* a learned global is on the denylist (see diag) */
    PP_LEARN_STUCK = 2,     /* a finding no entry can answer (see diag) */
    PP_LEARN_INPUT = 3      /* a sample is malformed, over a limit, or unreadable (see diag) */
} pp_learn_status;

typedef struct pp_learn_options {
    pp_scan_options scan;          /* limits, flavor, sandbox; the policy is set per pass */
    const char *const *includes;   /* what the learned policy includes (built-ins or files) */
    size_t nincludes;
    bool allow_dangerous;          /* learn denylisted globals (rendered with a warning) */
} pp_learn_options;

typedef struct pp_learn {
    pp_learn_status status;
    pp_learn_entry *entries;
    size_t n, cap;
    char *diag; /* why the status is not PP_LEARNED: one line per problem */
    unsigned passes;
} pp_learn;

void pp_learn_options_init(pp_learn_options *o);

/* Learns from the files. Returns PP_E_NOMEM, or PP_E_POLICY (err filled) when an include
 * cannot be loaded; anything about the samples is in (*out)->status. */
pp_err pp_learn_files(const char *const *paths, size_t npaths, const pp_learn_options *o,
                      pp_learn **out, pp_error *err);

/* The learned policy: `policy NAME`, the includes, then the entries grouped by top-level
 * module, each group sorted, each entry under a comment saying where it was first seen. With
 * comments false, the entries alone (what the passes load). */
void pp_learn_render(const pp_learn *l, const char *name, const char *const *includes,
                     size_t nincludes, bool comments, pp_buf *b);

/* Why (module, qualname) is on the denylist of known-dangerous globals, or NULL. */
const char *pp_learn_danger(const char *module, const char *qualname);

void pp_learn_free(pp_learn *l);

#endif
