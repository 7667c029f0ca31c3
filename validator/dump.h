/* The canonical JSON form of a graph, compared against CPython's recording unpickler by the
 * differential test. The format is specified in tests/differential/CANONICAL.md. */
#ifndef PP_DUMP_H
#define PP_DUMP_H

#include "buf.h"
#include "vm.h"

/* Output beyond this many bytes is a graph-memory limit: canonical JSON writes shared immutable
 * values in full, so a memo bomb would otherwise expand exponentially. */
#define PP_DUMP_MAX_OUTPUT ((size_t)64 << 20)

/* Returns PP_E_LIMIT (with the limit in *err when the VM had no error) for nesting or size. */
pp_err pp_dump_json(const pp_graph *g, const pp_stream_result *streams, size_t nstreams,
                    uint64_t depth_limit, pp_buf *out, pp_error *err);

#endif
