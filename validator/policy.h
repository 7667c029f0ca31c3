/* The policy engine: allowlists of exact post-rename globals with what each may do, and the
 * judgement of a VM graph against them. The public half (loading) is in pickleproof.h; the file
 * syntax is documented in policies/README.md. */
#ifndef PP_POLICY_H
#define PP_POLICY_H

#include "pickleproof.h"
#include "vm.h"

#include <stdbool.h>

enum {
    PP_PERM_REFERENCE = 1, /* may appear as a value (be imported) */
    PP_PERM_CALL = 2,      /* may be called (REDUCE) */
    PP_PERM_CONSTRUCT = 4  /* may be created (NEWOBJ, INST/OBJ, copyreg helpers) and given state
                              (BUILD) or mutated (APPEND, SETITEM, ...) */
};

/* The permission bits of an exact (module, qualname), 0 when not listed. O(1): one hash of the
 * two strings; names longer than any a policy can hold are rejected without hashing. */
unsigned pp_policy_lookup(const pp_policy *p, const char *module, size_t modlen, const char *name,
                          size_t namelen);

/* Judges every event in g (all streams) and adds findings to r. `stream_names[i]` names stream i.
 * Also records every resolved global in r (distinct, first-seen order). Linear in the number of
 * events and the size of the arguments the policy's patterns inspect; walks into values are
 * bounded by the pattern depth and the nesting-depth limit, so cyclic graphs are fine.
 * Returns PP_E_NOMEM or PP_E_INTERNAL (a malformed graph); policy violations are findings. */
pp_err pp_policy_check(const pp_policy *p, const pp_graph *g, const pp_limits *limits,
                       const char *const *stream_names, size_t nstreams, pp_report *r);

/* Extension points for containers. Persistent ids and extension codes are always rejected in
 * plain pickles; a container that defines their exact shape (PyTorch storages) passes hooks. */
typedef struct pp_policy_hooks {
    /* Returns true when the persistent id of this PP_EV_PERSID event has an allowed shape.
     * NULL rejects every persistent id. */
    bool (*persid_allowed)(void *ctx, const pp_event *ev);
    void *ctx;
} pp_policy_hooks;

/* pp_policy_check with hooks (NULL = none). */
pp_err pp_policy_check_ex(const pp_policy *p, const pp_graph *g, const pp_limits *limits,
                          const char *const *stream_names, size_t nstreams,
                          const pp_policy_hooks *hooks, pp_report *r);

#endif
