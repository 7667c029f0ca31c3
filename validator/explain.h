/* `pickleproof explain`: what loading would do, as readable pseudo-Python, one statement per
 * effect, each policy violation marked on its line. */
#ifndef PP_EXPLAIN_H
#define PP_EXPLAIN_H

#include "buf.h"
#include "vm.h"

/* Renders every event of g in stream order, then the returned object of each stream. Findings
 * in r (matched by offset and opcode) are marked on the statement they concern. */
pp_err pp_explain(const pp_graph *g, const pp_stream_result *streams, size_t nstreams,
                  const pp_report *r, uint64_t depth_limit, pp_buf *out, int color);

#endif
