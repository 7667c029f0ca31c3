/* Scanning glue: runs every stream of an input through the VM into one graph, then judges it.
 * Containers (joblib, zip, torch) will yield streams through the same entry. */
#ifndef PP_SCAN_H
#define PP_SCAN_H

#include "vm.h"

#define PP_MAX_STREAM_NAME 256

/* Everything scanning an input produced; the graph borrows from the input bytes. */
typedef struct pp_scan_state {
    pp_graph graph;
    pp_stream_result *streams;
    char (*names)[PP_MAX_STREAM_NAME];
    size_t nstreams;
    pp_error error; /* first malformation or limit, if any */
    bool trailing;  /* bytes after the last stream that are not a pickle */
    uint64_t trailing_offset;
    /* per array region (the report's arrays, same index), for loading: where its bytes are while
     * the scan lasts (NULL when no container kept them), and the storage key a container gave it
     * (PyTorch), or NULL */
    const uint8_t **region_bytes;
    char **region_keys;
    size_t region_cap;
} pp_scan_state;

/* Runs the VM over a raw pickle input: stream 0 from offset 0, then (unless `single`, which
 * reads exactly what one pickle.load reads) further streams while the bytes after STOP parse as
 * a pickle. Returns PP_E_NOMEM only for allocation failure of the bookkeeping itself; stream
 * errors are in st->error. */
pp_err pp_scan_streams(const uint8_t *data, size_t len, const pp_scan_options *opt, bool single,
                       pp_scan_state *st);
void pp_scan_state_free(pp_scan_state *st);

/* Scans like pp_scan_buffer and, before the graph is freed, calls fn with the streams the
 * containers produced (for `explain`). */
typedef void (*pp_explain_fn)(void *arg, const pp_scan_state *st, const pp_report *r);
pp_err pp_scan_explain(const uint8_t *data, size_t len, const pp_scan_options *opt,
                       pp_explain_fn fn, void *arg, pp_report **out);

/* pp_scan_file (signature check first, when keys are given) with an explain callback. */
pp_err pp_scan_file_explain(const char *path, const pp_scan_options *opt, pp_explain_fn fn,
                            void *arg, pp_report **out);

/* The signature step of pp_scan_file over bytes this process owns: with no key and no
 * requirement it does nothing. *out is NULL when parsing may go on (*sr says what was found, to
 * be put into the final report), else the final report (bad-signature, unsigned, error). */
struct pp_sig_result;
pp_err pp_scan_verify(const char *path, const pp_scan_options *opt, const uint8_t *data,
                      size_t len, struct pp_sig_result *sr, pp_report **out);

/* Maps a file read-only (or reads stdin for "-"). */
typedef struct pp_input {
    const uint8_t *data;
    size_t len;
    void *map;
    size_t maplen;
    uint8_t *heap;
    int fd; /* the mapped regular file, kept open for the sandbox; -1 otherwise */
} pp_input;

pp_err pp_input_open(const char *path, uint64_t max_bytes, pp_input *in, pp_error *err);
/* Reads the whole file into memory this process owns (no mapping another writer could change):
 * what signature checks verify and then parse. */
pp_err pp_input_read(const char *path, uint64_t max_bytes, pp_input *in, pp_error *err);
void pp_input_close(pp_input *in);

/* A report of verdict error (or limit) for a file that could not be read. NULL: no memory. */
pp_report *pp_scan_error_report(const char *path, const pp_error *err);
/* After a sandboxed scan of `in`: when the confined parser asked for side files (old joblib),
 * reads them as pp_ctx_open_sibling would and runs it once more with them, replacing *out. */
pp_err pp_scan_sides(const pp_input *in, pp_scan_options *o, pp_report **out);

#endif
