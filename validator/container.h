/* Containers: the formats model files come in (raw pickle, joblib, numpy, PyTorch, zip). Each
 * container reads its input the way its real loader does and hands every pickle stream to the
 * scan context, which runs the VM into one shared graph; the policy then judges the whole graph
 * once. Detection is by content only, never by file name.
 *
 * A container module provides one entry point
 *     pp_err pp_container_NAME(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
 *                              const char *where);
 * where `data` is the container's bytes (the input, or a buffer it decoded and handed to
 * pp_ctx_keep), `base` the file offset of data[0] (PP_NO_OFFSET when data is decoded), and `where`
 * its container path for reports ("m.joblib", "m.pt!archive/data.pkl", "m.joblib(zlib)").
 * Return PP_E_NOMEM only for allocation failure; a malformed or hostile container is reported
 * with pp_ctx_error (and pp_ctx_finding), and the function returns PP_OK so that what was already
 * found is judged. */
#ifndef PP_CONTAINER_H
#define PP_CONTAINER_H

#include "err.h"
#include "policy.h"
#include "vm.h"

#define PP_MAX_WHERE 256

typedef enum pp_container_kind {
    PP_CT_UNKNOWN = 0,
    PP_CT_PICKLE,
    PP_CT_JOBLIB,       /* a pickle stream holding joblib array wrappers, or compressed */
    PP_CT_COMPRESSED,   /* zlib/gzip/bz2/xz/lzma/lz4 prefix (joblib's detection order) */
    PP_CT_JOBLIB_ZF,    /* joblib < 0.10 "ZF" zfile */
    PP_CT_NPY,
    PP_CT_ZIP,          /* npz, PyTorch zip, or another archive */
    PP_CT_TORCH_LEGACY, /* stacked pickles starting with PyTorch's magic number */
    PP_CT_TAR
} pp_container_kind;

/* What the bytes are, from their content. */
pp_container_kind pp_detect(const uint8_t *data, size_t len);
const char *pp_container_kind_name(pp_container_kind k);

typedef struct pp_scan_ctx pp_scan_ctx;

const pp_scan_options *pp_ctx_options(const pp_scan_ctx *c);
pp_report *pp_ctx_report(pp_scan_ctx *c);
/* The shared graph (for container checks over events, e.g. tensor bounds). */
pp_graph *pp_ctx_graph(pp_scan_ctx *c);
/* The whole input, for containers that must look at it (polyglot checks). */
const uint8_t *pp_ctx_input(const pp_scan_ctx *c, size_t *len);

/* Options for one pickle stream. */
typedef struct pp_stream_opts {
    pp_flavor flavor;
    pp_encoding encoding;
    bool persistent_ids;      /* the loader defines persistent_load */
    const pp_vm_hooks *hooks; /* e.g. joblib array wrappers */
    bool single;              /* read exactly one pickle (no further streams after STOP) */
    bool allow_trailing;      /* bytes after STOP belong to the container (joblib arrays...) */
} pp_stream_opts;

/* Never call this from a VM hook: the stream table may move while a stream runs.
 * Runs the VM over one pickle stream at data[0..len) into the shared graph. The bytes must stay
 * valid until the scan ends (the input, or a buffer given to pp_ctx_keep). `name` is its
 * container path. *end_out (may be NULL) receives the offset within data just past STOP. Errors
 * of the stream are recorded in the context (first wins) and returned, so a container can stop
 * or go on; PP_E_NOMEM means give up. */
pp_err pp_ctx_stream(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                     const char *name, const pp_stream_opts *so, size_t *end_out);

/* Hands a heap buffer (pp_malloc) to the scan; it is freed when the scan ends. */
pp_err pp_ctx_keep(pp_scan_ctx *c, void *buf);
/* Records an array region; *index receives its index (for PP_N_ARRAY nodes). */
pp_err pp_ctx_region(pp_scan_ctx *c, const pp_array_region *r, uint64_t *index);
/* The same, also keeping where the bytes are (valid until the scan ends: the input or a kept
 * buffer) and a storage key (copied; may be NULL), which loading uses. */
pp_err pp_ctx_region_ex(pp_scan_ctx *c, const pp_array_region *r, const uint8_t *bytes,
                        const char *key, size_t keylen, uint64_t *index);
/* A container-level finding (e.g. "zip-crc-mismatch", "polyglot", "torchscript"). */
pp_err pp_ctx_finding(pp_scan_ctx *c, const char *rule, const char *severity, uint64_t offset,
                      const char *where, const char *fmt, ...) PP_PRINTF(6, 7);
/* A malformation or limit of the container (first error wins), e.g. PP_E_TRUNCATED at a zip
 * record, or pp_ctx_limit for inflated-bytes. */
pp_err pp_ctx_error(pp_scan_ctx *c, pp_err code, uint64_t offset, const char *where,
                    const char *fmt, ...) PP_PRINTF(5, 6);
pp_err pp_ctx_limit(pp_scan_ctx *c, pp_limit_id id, uint64_t offset, const char *where);
/* Sets the report's container description, e.g. "joblib/zlib", "pytorch/zip". The first call
 * wins, so the outermost container names the file. */
pp_err pp_ctx_set_container(pp_scan_ctx *c, const char *desc);
/* Persistent-id judgement for the policy (PyTorch storages). */
void pp_ctx_set_policy_hooks(pp_scan_ctx *c, const pp_policy_hooks *hooks);

/* Budgets shared by every container of one input: decompressed bytes so far and nesting. Returns
 * PP_E_LIMIT (recorded) when adding n inflated bytes would pass inflated-bytes. */
pp_err pp_ctx_inflated(pp_scan_ctx *c, uint64_t n, const char *where);
/* Reads a side file a container names (joblib's old multi-file format): `name` must be a plain
 * file name, opened in the directory of the scanned file without following links, a regular
 * file within input-bytes. The bytes are kept until the scan ends. Errors are recorded under
 * `where` (and returned): PP_E_UNSUPPORTED when the scan has no file path (a memory buffer,
 * stdin, or the sandbox, where the parser cannot open files), PP_E_IO when it cannot be read. */
pp_err pp_ctx_open_sibling(pp_scan_ctx *c, const char *name, const char *where,
                           const uint8_t **data, size_t *len);
/* The finding a scan that may not open side files leaves for each one it needs (its message is
 * the name): the sandbox's parent reads those and runs the scan again with them. */
#define PP_SIDE_FILE_NEEDED "side-file-needed"
/* Scans nested content (an archive member) by detection, one level deeper: limit archive-depth. */
pp_err pp_ctx_scan_any(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                       const char *where);

/* The containers, each in its own file. */
/* A raw pickle as pickle.load reads it (C flavour), further stacked pickles, trailing data. */
pp_err pp_container_pickle(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                           const char *where);
/* joblib.c: raw pickles (joblib reads them too: array wrappers and the bytes after their BUILD),
 * every compressor prefix, the "ZF" format and multi-file side files. */
pp_err pp_container_joblib(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                           const char *where);
/* npy.c: .npy v1/v2/v3; object arrays hold a pickle. */
pp_err pp_container_npy(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                        const char *where);
/* zip.c: hardened zip (central directory is the truth): .npz, PyTorch zip, polyglots. */
pp_err pp_container_zip(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                        const char *where);
/* torch_legacy.c: PyTorch's stacked-pickle format (magic number, protocol, sys info, object,
 * storage keys, raw storages). */
pp_err pp_container_torch_legacy(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                                 const char *where);
/* tar.c: PyTorch's legacy tar format. */
pp_err pp_container_tar(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                        const char *where);

#endif
