/* PyTorch checkpoints: the zip format (torch >= 1.6), the legacy stacked-pickle format and the
 * legacy tar format, read as torch.load (1.13 semantics, formats.md §4) reads them.
 *
 * Storages are the one thing a torch pickle may load through persistent_load. A persistent id is
 * accepted (pp_policy_hooks.persid_allowed) only when it has the exact shape
 *     ('storage', <storage class the policy allows>, key: str, location: str, numel: int)
 * (legacy: a sixth item, None) and its key names bytes that exist: a `<prefix>/data/<key>` record
 * of at least numel x element size bytes (zip), or a storage of exactly numel elements in the
 * legacy storage list. The first persistent id of a key defines the storage, as in torch's
 * `loaded_storages`; a later one with a different class or numel is refused. Every accepted
 * storage is reported as an array region.
 *
 * After the streams ran, every `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor` call in
 * them is checked: a storage from an accepted persistent id, an int offset and int tuples of
 * sizes and strides, all >= 0, whose largest element index stays inside the storage
 * (overflow-checked), and empty backward hooks. Violations are findings, never crashes:
 *   tensor-bad-metadata       arguments of the wrong type or shape
 *   tensor-out-of-bounds      the view reaches past its storage
 *   tensor-backward-hooks     non-empty backward hooks (callables run during backward)
 *   torch-storage-invalid     a persistent id refused, with the reason (also persistent-id)
 *   torchscript               a TorchScript archive (torch.load hands it to torch.jit.load)
 *   torch-extra-pickle        (info) a member that is not part of the format, scanned anyway
 */
#ifndef PP_TORCH_H
#define PP_TORCH_H

#include "container.h"
#include "zip.h"

/* Reads an opened archive as torch.load does: the prefix is the first entry's name up to its
 * first '/', every entry must be under it, member lookup is ASCII case-insensitive (miniz), so
 * names equal but for case are ambiguous and refused. Scans `<prefix>/data.pkl` (C unpickler,
 * encoding utf-8, persistent ids), checks `version`/`.data/version` and `byteorder`, and scans
 * every member that is not a known record (other pickles, nested archives). Handles the whole
 * archive: the caller does nothing more with it. Returns PP_E_NOMEM only. */
pp_err pp_container_torch_zip(pp_scan_ctx *c, const pp_zip *z);

/* true when torch.load would read this archive as a PyTorch checkpoint (or TorchScript): some
 * entry's last path component is data.pkl or constants.pkl, ignoring ASCII case. For the zip
 * container's dispatch. */
bool pp_torch_zip_detect(const pp_zip *z);

/* ---- shared by torch.c, torch_legacy.c, tar.c ------------------------------------------- */

/* A legacy typed-storage class as torch's find_class maps it (StorageType(name), module
 * ignored), or UntypedStorage (uint8). */
typedef struct pp_torch_stype {
    const char *name;  /* "FloatStorage" */
    uint32_t elsize;   /* bytes per element */
    const char *dtype; /* numpy spelling for array regions ("<f4"); "bfloat16" has none */
} pp_torch_stype;

/* The storage class of a global node, or NULL: the name must be a known storage class and the
 * policy must allow the global as a reference. */
const pp_torch_stype *pp_torch_stype_of(const pp_policy *p, const pp_node *global);

typedef struct pp_torch pp_torch;

/* A checker for one torch container. `legacy` selects 6-tuple persistent ids. */
pp_err pp_torch_new(pp_scan_ctx *c, bool legacy, pp_torch **out);
void pp_torch_free(pp_torch *t);

/* Runs a pickle stream into the shared graph (C unpickler, encoding utf-8); with `persid` its
 * PERSID events and tensor calls are judged by this checker. `single`: exactly one pickle (the
 * rest belongs to the container), else stacked pickles and trailing bytes are scanned and
 * reported as pp_ctx_stream does. *end_out as for pp_ctx_stream. */
pp_err pp_torch_stream(pp_torch *t, const uint8_t *data, size_t len, uint64_t base,
                       const char *name, bool persid, bool single, size_t *end_out);

/* The value of a small plain pickle (magic number, protocol, storage keys): the stream is run
 * again in a private graph that lives until pp_torch_free. Judge it with pp_torch_stream first.
 * Returns the VM's error code (recorded in the context by the judged run already). */
pp_err pp_torch_eval(pp_torch *t, const uint8_t *data, size_t len, uint64_t base, pp_val *root);

/* A storage record `key` of `nbytes` bytes (not read), located at `offset` within `where`
 * (file_offset PP_NO_OFFSET when compressed). PP_E_BAD_VALUE (nothing recorded) when the key
 * already has a record. */
pp_err pp_torch_add_record(pp_torch *t, const uint8_t *key, size_t keylen, uint64_t nbytes,
                           uint64_t offset, uint64_t file_offset, const char *where);
/* Parses the persistent ids of the persid streams run so far, declaring their storages (first
 * one wins). Call once, after the object pickle. */
pp_err pp_torch_declare(pp_torch *t);

/* Legacy: the storage key `key` is next in the storage list. Returns its element size and
 * declared numel, or false (with the reason recorded as an error) when it was never declared. */
bool pp_torch_declared(pp_torch *t, const uint8_t *key, size_t keylen, uint32_t *elsize,
                       uint64_t *numel, const pp_torch_stype **type);

/* The container stopped before it located every storage, with an error recorded (so the
 * file is refused anyway): persistent ids of a well-formed shape whose storage was never
 * located are then neither reported nor turned into regions. */
void pp_torch_broken(pp_torch *t);

/* Judges the persistent ids (a record must exist for each), records array regions, checks
 * tensor calls, and installs the policy hook. Call once, last. The hook accepts exactly the
 * PERSID events this checker accepted; the context holds one hook, so when one input holds two
 * torch containers (a checkpoint nested in an archive next to another) the persistent ids of
 * the earlier one are refused: a false rejection, never an acceptance. */
pp_err pp_torch_finish(pp_torch *t);

#endif
