/* SARIF 2.1.0 writer. Everything a file can influence (paths, globals, messages) goes through
 * pp_buf_json_str; URIs are percent-encoded so a hostile file name stays one valid URI. */
#include "report_sarif.h"

#include "b2.h"
#include "buf.h"
#include "report.h"

#include <inttypes.h>
#include <string.h>

/* Where people read about the tool (SARIF informationUri); packagers may point it elsewhere. */
#ifndef PP_HOMEPAGE
#define PP_HOMEPAGE "https://github.com/pickleproof/pickleproof"
#endif

#define POLICY_HELP                                                                                \
    "Loading this file would run code the policy does not allow. Do not load it. If the file "     \
    "comes from a source you trust and the global is harmless, add the exact name to a team "      \
    "policy (pickleproof policy learn can write one from trusted samples) and scan with "          \
    "--policy default --policy team.policy."
#define MALFORMED_HELP                                                                             \
    "The file is not a pickle CPython would read exactly as written. A loader would fail or "      \
    "could be made to disagree with this scanner, so it is rejected. Re-export the model from "    \
    "its source."
#define LIMIT_HELP                                                                                 \
    "A named budget tripped before the file was fully read, so no verdict about its content "      \
    "could be reached. If the file is legitimately large, raise the limit named in the message "   \
    "with --limit NAME=VALUE or [limits] in pickleproof.toml."
#define ERROR_HELP                                                                                 \
    "The file could not be scanned (it could not be read, or the sandbox failed). Nothing is "     \
    "known about its content; treat it as rejected and check the message."
#define CONTAINER_HELP                                                                             \
    "The container around the pickle is not what its loader expects. Re-export the model with "    \
    "the library that made it, or inspect the named member."

static const pp_sarif_rule rules[] = {
    /* policy findings */
    {"global-not-allowed", "GlobalNotAllowed", "A global the policy does not allow",
     "The pickle imports a module attribute (GLOBAL, STACK_GLOBAL, INST or OBJ) that is not in "
     "the policy. Importing alone runs module code, and an imported callable is usually called "
     "next.",
     POLICY_HELP, "error", "9.8"},
    {"call-not-allowed", "CallNotAllowed", "A call the policy does not allow",
     "The pickle calls a callable (REDUCE, NEWOBJ, copyreg helpers) that the policy allows at "
     "most as a reference.",
     POLICY_HELP, "error", "9.8"},
    {"argument-not-allowed", "ArgumentNotAllowed", "A call with arguments the policy refuses",
     "The callable is allowed only with certain arguments, and this call's arguments do not "
     "match any of them.",
     POLICY_HELP, "error", "9.0"},
    {"construct-not-allowed", "ConstructNotAllowed", "An object construction the policy refuses",
     "The pickle creates an instance of a class (NEWOBJ, copyreg._reconstructor) that the "
     "policy does not allow to be constructed.",
     POLICY_HELP, "error", "9.0"},
    {"build-not-allowed", "BuildNotAllowed", "State given to an object that may not receive it",
     "BUILD sets state (calls __setstate__ or updates __dict__) on an object that was not made "
     "by an allowed construct or call, such as a module, function or class.",
     POLICY_HELP, "error", "9.0"},
    {"dunder-state", "DunderState", "State with a double-underscore key",
     "BUILD state names a dunder attribute (such as __class__ or __reduce__), which reaches "
     "interpreter machinery.",
     POLICY_HELP, "error", "9.0"},
    {"mutation-not-allowed", "MutationNotAllowed", "A container mutation on a non-builtin object",
     "APPEND(S), SETITEM(S) or ADDITEMS on something that is not a genuine list, dict or set "
     "calls that object's methods.",
     POLICY_HELP, "error", "9.0"},
    {"persistent-id", "PersistentId", "A persistent id outside a known container shape",
     "PERSID/BINPERSID hand a value to the loader's persistent_load, which can do anything; "
     "only PyTorch storages of the exact expected shape are accepted.",
     POLICY_HELP, "error", "8.8"},
    {"extension-code", "ExtensionCode", "An extension registry code (EXT1/EXT2/EXT4)",
     "EXT opcodes resolve a global through copyreg's extension registry, which this scanner "
     "cannot see; they are rejected.",
     POLICY_HELP, "error", "8.8"},
    {"sandbox-policy-mismatch", "SandboxPolicyMismatch",
     "The sandboxed parser reported globals the policy refuses without rejecting them",
     "The confined parser's answer disagrees with the parent's policy check. The parser may "
     "have been subverted by the file.",
     "Treat the file as an attack and do not load it.", "error", "9.8"},
    {"sandbox-violation", "SandboxViolation", "The parser attempted a forbidden system call",
     "The confined parser was killed by the seccomp filter while reading this file. Parsing "
     "alone should never do that.",
     "Treat the file as an attack, do not load it, and report it to the pickleproof authors.",
     "error", "10.0"},
    /* containers */
    {"trailing-data", "TrailingData", "Bytes after the end of the pickle",
     "Bytes follow STOP that are not another pickle. Some loaders read past STOP, so data "
     "hidden there is rejected.",
     MALFORMED_HELP, "warning", "5.0"},
    {"joblib-pickle-divergence", "JoblibPickleDivergence",
     "pickle.load and joblib's unpickler would read this file differently",
     "The C and the pure-Python unpicklers would disagree about what this stream does, which "
     "lets a file pass one scanner and attack another loader.",
     MALFORMED_HELP, "error", "8.0"},
    {"joblib-sibling-escape", "JoblibSiblingEscape", "A joblib side file outside its directory",
     "An old multi-file joblib names a side file with a path that leaves the model's directory.",
     "Do not load the file: joblib would read a file the model does not own.", "error", "9.0"},
    {"joblib-sibling-file", "JoblibSiblingFile", "A joblib side file was read",
     "The old joblib multi-file format stores arrays in side files next to the pickle; the "
     "named side file was scanned with it.",
     "Informational. Sign such models through a manifest (pickleproof sign --manifest).", "note",
     "0.0"},
    {"side-file-needed", "SideFileNeeded", "A side file the confined parser asked for",
     "The sandboxed parser needs a side file of an old multi-file joblib model, which the "
     "parent reads for it.",
     "Informational.", "note", "0.0"},
    {"polyglot", "Polyglot", "The file is valid as two formats",
     "The file reads as a zip archive and as something else (a pickle at offset 0), so "
     "different loaders would see different content.",
     CONTAINER_HELP, "error", "8.0"},
    {"torch-extra-pickle", "TorchExtraPickle", "An extra pickle in a PyTorch archive",
     "The archive holds a pickle torch.load does not read; it was scanned too.", "Informational.",
     "note", "0.0"},
    {"torchscript", "TorchScript", "A TorchScript archive",
     "TorchScript archives carry code that torch.jit.load runs; they are refused.",
     "Load TorchScript only from sources you trust, outside this tool.", "error", "9.0"},
    {"unsupported-compression", "UnsupportedCompression", "A compressor this build cannot read",
     "The file uses a compression this build of pickleproof was built without, so its content "
     "could not be checked.",
     "Rebuild pickleproof with the compressor's library, or recompress the model.", "warning",
     "5.0"},
    {"zip-crc-mismatch", "ZipCrcMismatch", "A zip member whose CRC does not match",
     "A member's bytes do not match the checksum in the archive: the archive was altered or "
     "damaged.",
     CONTAINER_HELP, "warning", "5.0"},
    {"zip-data-before-archive", "ZipDataBeforeArchive", "Bytes in front of a zip archive",
     "The archive starts after other bytes, which another reader may interpret.", CONTAINER_HELP,
     "warning", "5.0"},
    {"torch-storage-invalid", "TorchStorageInvalid", "A PyTorch storage that does not match",
     "A storage named by the pickle is missing from the archive or has the wrong size.",
     CONTAINER_HELP, "error", "7.0"},
    {"tensor-bad-metadata", "TensorBadMetadata", "A tensor with impossible metadata",
     "A tensor's dtype, sizes, strides or offset are not what torch would accept.", CONTAINER_HELP,
     "error", "7.0"},
    {"tensor-out-of-bounds", "TensorOutOfBounds", "A tensor view outside its storage",
     "A tensor reads bytes beyond the end of its storage.", CONTAINER_HELP, "error", "8.0"},
    {"tensor-backward-hooks", "TensorBackwardHooks", "A tensor with backward hooks",
     "Backward hooks are callables attached to a tensor; they are refused.", POLICY_HELP, "error",
     "9.0"},
    {"findings-truncated", "FindingsTruncated", "More findings than are listed",
     "The report keeps a bounded number of findings per rule; the rest were counted, not kept.",
     "Informational: fix the listed findings first.", "note", "0.0"},
    /* signatures */
    {"unsigned", "Unsigned", "No signature by a trusted key",
     "A signature was required (--require-signature) and the file has none.",
     "Sign the file with pickleproof sign (or minisign) and ship FILE.minisig beside it.", "error",
     "7.5"},
    {"bad-signature", "BadSignature", "A signature that does not verify",
     "The detached signature does not match the file's bytes or was made by an untrusted key. "
     "The file was not parsed.",
     "Do not load the file: it is not what the key holder signed.", "error", "9.0"},
    /* errors (pp_errname) */
    {"truncated", "Truncated", "The input ends inside an opcode or before STOP",
     "The stream ends early: a loader would fail.", MALFORMED_HELP, "warning", "5.0"},
    {"invalid-opcode", "InvalidOpcode", "A byte that is not a pickle opcode",
     "The stream holds a byte that no unpickler accepts as an opcode.", MALFORMED_HELP, "warning",
     "5.0"},
    {"stack-underflow", "StackUnderflow", "An opcode pops more than the stack holds",
     "An opcode pops below the mark fence or from an empty stack.", MALFORMED_HELP, "warning",
     "5.0"},
    {"mark-error", "MarkError", "No MARK where one is needed",
     "An opcode needs a MARK on the stack and there is none.", MALFORMED_HELP, "warning", "5.0"},
    {"memo-missing", "MemoMissing", "A memo index that was never stored",
     "GET of an index never PUT, or a bad PUT index.", MALFORMED_HELP, "warning", "5.0"},
    {"bad-argument", "BadArgument", "An opcode argument CPython would not parse",
     "A text argument (protocol 0/1 integers, floats, strings) that CPython refuses.",
     MALFORMED_HELP, "warning", "5.0"},
    {"bad-value", "BadValue", "An operand CPython would refuse",
     "An operand of the wrong type or an unhashable key.", MALFORMED_HELP, "warning", "5.0"},
    {"frame-error", "FrameError", "An opcode crossing a frame, or a frame in a frame",
     "Framing the two CPython unpicklers treat differently.", MALFORMED_HELP, "warning", "6.0"},
    {"unsupported-protocol", "UnsupportedProtocol", "A pickle protocol above 5",
     "PROTO names a protocol CPython does not know.", MALFORMED_HELP, "warning", "5.0"},
    {"limit-exceeded", "LimitExceeded", "A named budget tripped",
     "Reading the file needed more of a budget (input bytes, opcodes, memory, depth, time) than "
     "the limit allows.",
     LIMIT_HELP, "warning", "5.0"},
    {"unsupported", "Unsupported", "Valid for CPython, but outside what is modelled",
     "The file uses a feature this scanner does not model, so it cannot vouch for it.",
     MALFORMED_HELP, "warning", "5.0"},
    {"io-error", "IoError", "The file could not be read",
     "Opening, mapping or reading the file failed.", ERROR_HELP, "error", "5.0"},
    {"usage", "Usage", "A usage error", "The scan was asked for something it cannot do.",
     ERROR_HELP, "error", "5.0"},
    {"policy-error", "PolicyError", "A policy file that cannot be used",
     "A policy file could not be read or parsed.", ERROR_HELP, "error", "5.0"},
    {"decode-error", "DecodeError", "A string that does not decode",
     "Invalid UTF-8, ASCII or escape in a string payload.", MALFORMED_HELP, "warning", "5.0"},
    {"internal", "Internal", "An internal error", "A check that cannot fail failed.", ERROR_HELP,
     "error", "5.0"},
    {"out-of-memory", "OutOfMemory", "Out of memory", "The scanner ran out of memory.", ERROR_HELP,
     "error", "5.0"},
    {"signature-error", "SignatureError", "A key, signature or manifest that cannot be used",
     "A key, signature or manifest file is unreadable or malformed.", ERROR_HELP, "error", "7.0"},
    {"sandbox-error", "SandboxError", "The sandbox could not run or answered badly",
     "The confined parser could not start, crashed, or wrote an answer the parent rejects.",
     ERROR_HELP, "error", "7.0"},
    /* verdicts */
    {"file-malformed", "FileMalformed", "The file was rejected as malformed",
     "The file is not exactly what its loader reads; the findings say where.", MALFORMED_HELP,
     "error", "5.0"},
    {"file-limit", "FileLimit", "The file was rejected because a limit tripped",
     "A named budget tripped before the file was fully read.", LIMIT_HELP, "error", "5.0"},
    {"file-error", "FileError", "The file could not be scanned",
     "An operational error stopped the scan of this file.", ERROR_HELP, "error", "5.0"},
};

const pp_sarif_rule *pp_sarif_rules(size_t *n)
{
    *n = sizeof rules / sizeof rules[0];
    return rules;
}

const pp_sarif_rule *pp_sarif_rule_find(const char *id, size_t *index)
{
    for (size_t i = 0; id && i < sizeof rules / sizeof rules[0]; i++)
        if (strcmp(rules[i].id, id) == 0) {
            if (index) *index = i;
            return &rules[i];
        }
    return NULL;
}

/* ---- writing --------------------------------------------------------------------------------- */

static void str(pp_buf *b, const char *s)
{
    pp_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void text_obj(pp_buf *b, const char *key, const char *s)
{
    pp_buf_printf(b, "\"%s\":{\"text\":", key);
    str(b, s);
    pp_buf_putc(b, '}');
}

static void flush(pp_sarif *s, pp_buf *b)
{
    if (!pp_buf_ok(b)) {
        if (!s->err) s->err = PP_E_NOMEM;
    } else if (b->n && fwrite(b->p, 1, b->n, s->f) != b->n) {
        if (!s->err) s->err = PP_E_IO;
    }
    pp_buf_free(b);
}

void pp_sarif_begin(pp_sarif *s, FILE *f)
{
    memset(s, 0, sizeof *s);
    s->f = f;
    pp_buf b;
    pp_buf_init(&b);
    pp_buf_puts(&b, "{\"$schema\":\"https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/"
                    "schemas/sarif-schema-2.1.0.json\",\"version\":\"2.1.0\",\"runs\":[{"
                    "\"tool\":{\"driver\":{\"name\":\"pickleproof\",");
    pp_buf_printf(&b, "\"version\":\"%s\",\"semanticVersion\":\"%s\",", PP_VERSION, PP_VERSION);
    pp_buf_puts(&b, "\"informationUri\":\"" PP_HOMEPAGE "\",\"rules\":[");
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const pp_sarif_rule *r = &rules[i];
        pp_buf_puts(&b, i ? ",\n{" : "\n{");
        pp_buf_puts(&b, "\"id\":");
        str(&b, r->id);
        pp_buf_puts(&b, ",\"name\":");
        str(&b, r->name);
        pp_buf_putc(&b, ',');
        text_obj(&b, "shortDescription", r->brief);
        pp_buf_putc(&b, ',');
        text_obj(&b, "fullDescription", r->full);
        pp_buf_puts(&b, ",\"help\":{\"text\":");
        str(&b, r->help);
        pp_buf_puts(&b, ",\"markdown\":");
        pp_buf b2;
        pp_buf_init(&b2);
        pp_buf_printf(&b2, "**%s**\n\n%s\n\n%s", r->brief, r->full, r->help);
        str(&b, pp_buf_ok(&b2) ? b2.p : "");
        pp_buf_free(&b2);
        pp_buf_puts(&b, "},\"defaultConfiguration\":{\"level\":");
        str(&b, r->level);
        pp_buf_puts(&b, "},\"properties\":{\"tags\":[\"security\"],\"precision\":\"very-high\","
                        "\"security-severity\":");
        str(&b, r->security_severity);
        pp_buf_puts(&b, "}}");
    }
    pp_buf_puts(&b, "]}},\"columnKind\":\"unicodeCodePoints\",\"results\":[");
    flush(s, &b);
}

/* RFC 3986: unreserved characters and '/' stay, everything else is %XX. An absolute path becomes
 * a file: URI; a relative one stays relative (to the checkout, as code scanning expects). */
static void uri(pp_buf *b, const char *path)
{
    pp_buf tmp;
    pp_buf_init(&tmp);
    if (strcmp(path, "-") == 0) {
        pp_buf_puts(&tmp, "stdin");
    } else {
        if (path[0] == '/')
            pp_buf_puts(&tmp, "file://");
        else
            while (path[0] == '.' && path[1] == '/')
                path += 2;
        for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
            unsigned c = *p;
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~' || c == '/')
                pp_buf_putc(&tmp, (char)c);
            else
                pp_buf_printf(&tmp, "%%%02X", c);
        }
    }
    if (pp_buf_ok(&tmp))
        pp_buf_json_str(b, tmp.p ? tmp.p : "", tmp.n);
    else
        pp_buf_puts(b, "\"\""); /* the caller's buffer fails on its own next append */
    pp_buf_free(&tmp);
}

static const char *level_of(const char *severity)
{
    if (!severity) return "note";
    if (strcmp(severity, "critical") == 0 || strcmp(severity, "high") == 0) return "error";
    if (strcmp(severity, "medium") == 0) return "warning";
    return "note";
}

/* The fingerprint survives reruns and reordering: it hashes what identifies the finding, never
 * its position in the output or the message text. */
static void fingerprint(pp_buf *b, const char *path, const char *rule, const char *global,
                        uint64_t offset)
{
    pp_buf in;
    pp_buf_init(&in);
    pp_buf_puts(&in, "pickleproof/v1");
    pp_buf_putc(&in, 0);
    pp_buf_puts(&in, path ? path : "");
    pp_buf_putc(&in, 0);
    pp_buf_puts(&in, rule ? rule : "");
    pp_buf_putc(&in, 0);
    pp_buf_puts(&in, global ? global : "");
    pp_buf_printf(&in, "%c%" PRIu64, 0, offset);
    uint8_t d[PP_B2_BYTES];
    pp_b2_buf((const uint8_t *)in.p, pp_buf_ok(&in) ? in.n : 0, d);
    pp_buf_free(&in);
    pp_buf_puts(b, "\"partialFingerprints\":{\"pickleproof/v1\":\"");
    pp_buf_hex(b, d, 16);
    pp_buf_puts(b, "\"}");
}

static void result(pp_sarif *s, pp_buf *b, const pp_report *r, const char *rule, const char *level,
                   const char *global, uint64_t offset, bool has_offset, const char *stream,
                   const char *msg)
{
    const char *path = r->path ? r->path : "<memory>";
    pp_buf_puts(b, s->nresults ? ",\n{" : "\n{");
    s->nresults++;
    pp_buf_puts(b, "\"ruleId\":");
    str(b, rule);
    size_t idx;
    if (pp_sarif_rule_find(rule, &idx)) pp_buf_printf(b, ",\"ruleIndex\":%zu", idx);
    pp_buf_puts(b, ",\"level\":");
    str(b, level);
    pp_buf_puts(b, ",\"message\":{\"text\":");
    pp_buf tmp;
    pp_buf_init(&tmp);
    pp_buf_puts(&tmp, path);
    pp_buf_puts(&tmp, ": ");
    if (global) {
        pp_buf_puts(&tmp, global);
        pp_buf_puts(&tmp, ": ");
    }
    pp_buf_puts(&tmp, msg && *msg ? msg : rule);
    if (stream && *stream && strcmp(stream, "pickle") != 0) {
        pp_buf_puts(&tmp, " [");
        pp_buf_puts(&tmp, stream);
        pp_buf_putc(&tmp, ']');
    }
    if (pp_buf_ok(&tmp))
        pp_buf_json_str(b, tmp.p, tmp.n);
    else
        str(b, rule);
    pp_buf_free(&tmp);
    pp_buf_puts(b, "},\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":");
    uri(b, path);
    /* Code scanning places an alert by startLine and refuses regions without one; a model file
     * has no lines, so line 1 anchors the alert and the byte fields say where it really is. */
    pp_buf_puts(b, "},\"region\":{\"startLine\":1");
    if (has_offset) pp_buf_printf(b, ",\"byteOffset\":%" PRIu64 ",\"byteLength\":1", offset);
    pp_buf_puts(b, "}}}],");
    fingerprint(b, path, rule, global, offset);
    pp_buf_puts(b, ",\"properties\":{\"verdict\":");
    str(b, pp_verdict_name(r->verdict));
    if (stream && *stream) {
        pp_buf_puts(b, ",\"stream\":");
        str(b, stream);
    }
    pp_buf_puts(b, "}}");
}

pp_err pp_sarif_add(pp_sarif *s, const pp_report *r)
{
    pp_buf b;
    pp_buf_init(&b);
    for (size_t i = 0; i < r->nfindings; i++) {
        const pp_finding *f = &r->findings[i];
        result(s, &b, r, f->rule ? f->rule : "unknown", level_of(f->severity), f->global, f->offset,
               true, f->stream, f->message);
    }
    const char *vr = r->verdict == PP_VERDICT_MALFORMED ? "file-malformed"
                     : r->verdict == PP_VERDICT_LIMIT   ? "file-limit"
                     : r->verdict == PP_VERDICT_ERROR   ? "file-error"
                                                        : NULL;
    if (vr) {
        char msg[sizeof r->error.msg + 64];
        size_t n = strnlen(r->error.msg, sizeof r->error.msg);
        snprintf(msg, sizeof msg, "rejected (%s)%s%.*s", pp_verdict_name(r->verdict), n ? ": " : "",
                 (int)n, r->error.msg);
        size_t sn = strnlen(r->error.stream, sizeof r->error.stream);
        char stream[sizeof r->error.stream + 1];
        memcpy(stream, r->error.stream, sn);
        stream[sn] = 0;
        result(s, &b, r, vr, "error", NULL, r->error.offset, r->error.code != PP_OK, stream, msg);
    }
    flush(s, &b);
    return s->err;
}

pp_err pp_sarif_end(pp_sarif *s, int exit_code, bool success)
{
    pp_buf b;
    pp_buf_init(&b);
    pp_buf_printf(&b,
                  "%s],\"invocations\":[{\"executionSuccessful\":%s,\"exitCode\":%d}],"
                  "\"properties\":{\"results\":%zu}}]}\n",
                  s->nresults ? "\n" : "", success ? "true" : "false", exit_code, s->nresults);
    flush(s, &b);
    if (!s->err && fflush(s->f) != 0) s->err = PP_E_IO;
    return s->err;
}
