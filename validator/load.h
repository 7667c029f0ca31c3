/* Loading (the Python extension, issue 6): the bytes an object graph is materialized from are the
 * bytes that were judged, twice.
 *
 * 1. With a signature to verify, the file is read once into a sealed memfd and verified there
 *    before anything parses it. Without one it is mapped, as numpy.memmap maps it.
 * 2. The sandboxed parser judges those bytes (the child maps the memfd or the file).
 * 3. Only when it says safe does this process parse them itself, from memory no other writer can
 *    change (the sealed copy; or a private copy of everything but the array payloads the child
 *    located, read from the file), judge its own graph with the same policy, and require the
 *    same verdict and the same array regions as the child. Only then is the callback given the
 *    graph. Array payloads are data: a writer changing them meanwhile changes numbers, never
 *    what is imported or called.
 *
 * So nothing is materialized that this process did not judge itself from bytes it owns, and a
 * parser bug that only the sandbox survives is still caught there first. */
#ifndef PP_LOAD_H
#define PP_LOAD_H

#include "scan.h"

/* What the callback may build from. Everything is valid during the callback only, except array
 * bytes inside the map handed out by pp_load_file (see `map`). */
typedef struct pp_load_view {
    const pp_scan_state *st; /* the graph and streams this process parsed and judged */
    const pp_report *r;      /* its report (verdict safe); r->arrays[i] is region i */
    const uint8_t **region;  /* region i's bytes, NULL when they are not in memory */
    /* region bytes that lie inside [map_lo, map_hi) stay valid after the load when the caller
     * took the map (pp_load_file with map_arrays) */
    const uint8_t *map_lo, *map_hi;
    /* the file itself, when region bytes with file offsets are in a map of it that a writer could
     * shrink: copies then read them with pread (a short read is an error, where touching a
     * truncated map would kill the process); -1 otherwise */
    int fd;
} pp_load_view;

/* Returns PP_OK, or any code to stop the load with it (the caller knows why). */
typedef pp_err (*pp_load_fn)(void *arg, const pp_load_view *v);

typedef struct pp_load_map {
    void *p; /* munmap(p, n) when no array uses it any more */
    size_t n;
} pp_load_map;

/* Loads a file: on PP_OK *out is the deciding report. fn was called only when *out says safe; a
 * code fn returned is returned. With map_arrays, region bytes that are in the file are left in a
 * read-only mapping that is handed to *map (p NULL when there is none): of the file itself without
 * a signature (as numpy.memmap: later writes to the file show), of the verified copy with one. */
pp_err pp_load_file(const char *path, const pp_scan_options *opt, bool map_arrays, pp_load_fn fn,
                    void *arg, pp_load_map *map, pp_report **out);

/* The same for bytes in memory (copied into a sealed memfd first; the caller may change its
 * buffer afterwards). */
pp_err pp_load_buffer(const uint8_t *data, size_t len, const pp_scan_options *opt, pp_load_fn fn,
                      void *arg, pp_report **out);

#endif
