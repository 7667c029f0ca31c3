/* The sandbox (DESIGN.md "Sandbox", issue 4): untrusted bytes are parsed by pickleproof-sandbox,
 * a helper spawned per input (posix_spawn, so a multi-threaded host never forks), which confines
 * itself (no-new-privs, rlimits, a seccomp allowlist with kill-process as the default) before it
 * touches the bytes and writes back one framed result. The parent enforces the deadline, caps
 * and decodes the result as hostile input, re-checks every global against the policy and checks
 * every array region against the input it holds.
 *
 * Library-internal: pp_scan_file calls pp_sandbox_scan when opt->sandbox != PP_SANDBOX_OFF. */
#ifndef PP_SANDBOX_H
#define PP_SANDBOX_H

#include "pickleproof.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Scans data[0..len) in the sandbox level opt->sandbox asks for. Like pp_scan_buffer: on PP_OK
 * *out is a report (a sandbox failure is a report with verdict error and error
 * "sandbox-violation" or "sandbox-error"; CPU, deadline and memory give verdict limit naming
 * cpu-seconds, deadline-ms or sandbox-memory). report->sandbox names the level used: "seccomp",
 * "seccomp-relaxed" (sanitizer builds), "process" or "off". Returns PP_E_NOMEM or PP_E_USAGE
 * (no policy) otherwise. The bytes are copied into a sealed memfd: later writes to the caller's
 * mapping cannot reach the child. */
pp_err pp_sandbox_scan(const uint8_t *data, size_t len, const pp_scan_options *opt,
                       pp_report **out);
/* The same, but the child maps the first len bytes of `infd` (a regular file open read-only,
 * whose mapping the caller's `data` is) instead of a copy: no pass over the bytes in the parent.
 * A writer changing the file meanwhile changes what the child parses, so callers that verified
 * the bytes (signatures) use pp_sandbox_scan. A file truncated under the child kills it
 * (SIGBUS): a sandbox-error, never "safe". infd < 0 is pp_sandbox_scan. */
pp_err pp_sandbox_scan_fd(const uint8_t *data, size_t len, int infd, const pp_scan_options *opt,
                          pp_report **out);

/* Runs the probe child once per process (a real child with the production filter: an outer
 * filter may forbid seccomp() while libseccomp reports support) and returns whether the seccomp
 * level works here. `why` (may be NULL) receives the reason when it does not. Thread-safe. */
bool pp_sandbox_seccomp_available(const char **why);

/* The path of the helper this library spawns: the one set below, else
 * $PICKLEPROOF_SANDBOX_HELPER in test builds, else the build-tree helper when running from the
 * build tree, else ../libexec/pickleproof/pickleproof-sandbox relative to the running program's
 * directory when it is there (an installed CLI, wherever its tree was installed or moved), else
 * the configured install path. */
const char *pp_sandbox_helper_path(void);
/* Sets the helper explicitly (a Python wheel ships it inside the package); NULL restores the
 * default. Call before scanning starts: it is not synchronized with running scans. */
pp_err pp_sandbox_set_helper_path(const char *path);

/* The loaded policy written out as one self-contained policy text (no includes), so the child
 * judges with exactly the parent's table. *out is pp_malloc'd. */
pp_err pp_sandbox_policy_text(const pp_policy *p, char **out, size_t *outn);

/* ---- shared with the helper (request format, exit codes) ---------------------------------- */

/* Request (trusted, parent -> child), at offset 0 of the memfd on fd 3:
 *   "PPSQ" u16 version u16 0 u32 header_len
 *   u8 flavor u8 encoding u8 mode u8 test_hook u32 nlimits u64 limits[nlimits]
 *   u64 address_space (0 = none) u64 input_offset u64 input_len
 *   str path  str policy_text        (str = u32 length + bytes)
 * The input follows at input_offset (page aligned) so the child maps it where it is. */
#define PP_SBX_REQ_VERSION 1
#define PP_SBX_REQ_EXTERNAL 1u /* request flag: the input is the file on fd 0 */
#define PP_SBX_MAX_SIDES PP_MAX_SIDES /* side files one request may carry */
#define PP_SBX_IN_FD 3
#define PP_SBX_OUT_FD 4

enum pp_sbx_mode {
    PP_SBX_MODE_SECCOMP = 0, /* full allowlist, kill-process default */
    PP_SBX_MODE_RELAXED = 1, /* sanitizer builds: the allowlist plus what the runtimes need */
    PP_SBX_MODE_PROCESS = 2  /* rlimits only */
};

/* What the child attempts after confinement when a test asks for it (test builds only). */
enum pp_sbx_hook {
    PP_SBX_HOOK_NONE = 0,
    PP_SBX_HOOK_OPEN,
    PP_SBX_HOOK_EXECVE,
    PP_SBX_HOOK_SOCKET,
    PP_SBX_HOOK_PTRACE,
    PP_SBX_HOOK_MPROTECT_EXEC,
    PP_SBX_HOOK_MMAP_EXEC,
    PP_SBX_HOOK_WRITE_FD,
    PP_SBX_HOOK_I386,
    PP_SBX_HOOK_X32,
    PP_SBX_HOOK_SPIN,
    PP_SBX_HOOK_MEMBOMB,
    PP_SBX_HOOK_GARBAGE,
    PP_SBX_HOOK_HUGE,
    PP_SBX_HOOK_LIE,
    PP_SBX_HOOK__COUNT
};
/* Names for PICKLEPROOF_SANDBOX_TEST, indexed by enum pp_sbx_hook. */
extern const char *const pp_sbx_hook_names[PP_SBX_HOOK__COUNT];

/* Child exit codes the parent distinguishes. */
#define PP_SBX_EXIT_OK 0
#define PP_SBX_EXIT_SETUP 125   /* confinement failed (seccomp() refused, rlimit, ...) */
#define PP_SBX_EXIT_REQUEST 124 /* the request was unusable (version skew between the two) */
#define PP_SBX_EXIT_WRITE 123   /* the result could not be encoded or written */

/* Child side (filter.c): rlimits, no-new-privs and (for the seccomp modes) the filter, in that
 * order. address_space 0 means no RLIMIT_AS. Returns 0 or -1 (errno-style reason in *why). */
int pp_sbx_confine(int mode, uint64_t address_space, uint64_t cpu_seconds, const char **why);

#endif
