/* --help texts. Kept in one place so the overview, each subcommand and docs/pickleproof.1 can be
 * checked against each other (tests/python/test_cli_help.py). */
#include "cli.h"

#include <string.h>

#define SCAN_OPTIONS                                                                               \
    "  --policy NAME|FILE     policy to apply; repeatable (default: default)\n"                    \
    "  --limit NAME=VALUE     change a limit (K/M/G suffixes); repeatable\n"                       \
    "  --flavor c|py          read as pickle.load (c, default) or pickle._Unpickler (py)\n"        \
    "  --encoding ENC         ascii (default), latin1, utf-8 or bytes: protocol-0/1 str "          \
    "payloads\n"                                                                                   \
    "  --sandbox LEVEL        require (default), auto, process or off; also PICKLEPROOF_SANDBOX\n" \
    "  --no-sandbox           the same as --sandbox=off (debugging, valgrind)\n"                   \
    "  --key FILE             trusted minisign public key or keyring; repeatable\n"                \
    "  --signature FILE       detached signature of the one file scanned (default FILE.minisig)\n" \
    "  --require-signature    reject files without a valid signature (verdict unsigned)\n"         \
    "  --config FILE          read settings from FILE instead of the discovered "                  \
    "pickleproof.toml\n"                                                                           \
    "  --no-config            ignore pickleproof.toml\n"

#define LIMITS_TEXT                                                                                \
    "limits: input-bytes opcodes stack-depth marks memo-entries nesting-depth payload-bytes\n"     \
    "        graph-memory streams inflated-bytes inflate-ratio zip-entries archive-depth\n"        \
    "        cpu-seconds deadline-ms sandbox-memory hash-work\n"

static const char overview[] =
    "usage: pickleproof COMMAND [OPTIONS] [ARGS...]\n"
    "\n"
    "Scan, verify and explain Python model files (pickle, joblib, numpy, PyTorch) without\n"
    "running the code in them.\n"
    "\n"
    "commands:\n"
    "  scan PATH...         judge files and directories against the policy; print verdicts\n"
    "  explain FILE         show what loading the file would do, as pseudo-Python\n"
    "  dump --json FILE...  print the canonical graph of each file (one JSON per line)\n"
    "  keygen               make a minisign-compatible key pair\n"
    "  sign FILE...         sign files, or a manifest of a directory\n"
    "  verify FILE...       check signatures, or a signed manifest\n"
    "  policy list|show|learn  list or print policies; learn one from trusted samples\n"
    "  version              print the version\n"
    "  help [COMMAND]       this overview, or the help of COMMAND\n"
    "\n"
    "Run 'pickleproof COMMAND --help' for the options of a command; 'man pickleproof' for all.\n"
    "exit status: 0 all files safe, 1 any file rejected, 2 usage or operational error\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof scan model.pkl\n"
    "  pickleproof scan --format sarif -o results.sarif models/\n"
    "  pickleproof explain suspicious.pkl\n";

static const char scan_help[] =
    "usage: pickleproof scan [OPTIONS] PATH...\n"
    "\n"
    "Judge each file against the policy and print a verdict per file: safe, unsafe, malformed,\n"
    "limit, unsigned, bad-signature or error. A directory is walked recursively in sorted order;\n"
    "every regular file a loader could read is scanned whatever its name (detected from its\n"
    "first bytes), others are counted as skipped. '-' reads standard input.\n"
    "\n"
    "output:\n"
    "  --format FMT           text (default), json (one document), jsonl (one object per file,\n"
    "                         streamed) or sarif (SARIF 2.1.0 for code scanning)\n"
    "  -o, --output FILE      write results to FILE instead of standard output\n"
    "  --color WHEN           auto (default: a terminal and NO_COLOR unset), always or never\n"
    "  -v, --verbose          list resolved globals in text output\n"
    "  -q, --quiet            no summary and no progress bar on stderr\n"
    "\n"
    "files:\n"
    "  --include GLOB         scan only walked files matching GLOB; repeatable\n"
    "  --exclude GLOB         leave out walked files and directories matching GLOB; repeatable\n"
    "                         (globs match the path below the argument and the base name)\n"
    "  --follow-symlinks      follow symbolic links found while walking (default: skip them)\n"
    "  -j, --jobs N           files scanned in parallel (default: the number of CPUs)\n"
    "\n"
    "checks:\n" SCAN_OPTIONS "\n" LIMITS_TEXT
    "exit status: 0 all files safe, 1 any file rejected, 2 usage or operational error\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof scan model.pkl\n"
    "  pickleproof scan -j 4 --exclude '*.txt' models/\n"
    "  pickleproof scan --format json --policy default --policy sklearn model.joblib\n"
    "  pickleproof scan --format sarif -o results.sarif models/\n"
    "  pickleproof scan --key team.pub --require-signature model.pkl\n"
    "  cat model.pkl | pickleproof scan -\n";

static const char explain_help[] =
    "usage: pickleproof explain [OPTIONS] FILE\n"
    "\n"
    "Show what loading FILE would import, call and build, as pseudo-Python, then its verdict.\n"
    "explain parses in this process (it needs the whole graph), not in the sandbox.\n"
    "\n"
    "options:\n" SCAN_OPTIONS "  --color WHEN           auto (default), always or never\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof explain suspicious.pkl\n"
    "  pickleproof explain --policy sklearn model.joblib\n";

static const char dump_help[] =
    "usage: pickleproof dump --json [OPTIONS] FILE...\n"
    "\n"
    "Print the canonical object graph of each file, one JSON document per line (the format of\n"
    "tests/python/CANONICAL.md). Parses in this process; no signatures.\n"
    "\n"
    "options:\n"
    "  --json                 required: the output format\n"
    "  --limit NAME=VALUE     change a limit; repeatable\n"
    "  --flavor c|py          read as pickle.load (c) or pickle._Unpickler (py)\n"
    "  --encoding ENC         ascii, latin1, utf-8 or bytes\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof dump --json model.pkl\n";

static const char keygen_help[] =
    "usage: pickleproof keygen [-p PUBKEY] [-s SECKEY] [-W] [-f] [--password-fd N]\n"
    "                          [--kdf sensitive|interactive]\n"
    "\n"
    "Write a minisign-compatible Ed25519 key pair (default pickleproof.pub, pickleproof.key).\n"
    "The secret key is encrypted with scrypt unless -W/--unencrypted (for CI). Password:\n"
    "--password-fd N, else $PICKLEPROOF_PASSWORD, else a prompt on the terminal. -f overwrites.\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof keygen -W -p team.pub -s team.key\n";

static const char sign_help[] =
    "usage: pickleproof sign -s SECKEY [-x SIG] [-c COMMENT] [--note TEXT] FILE...\n"
    "       pickleproof sign -s SECKEY --manifest [-o MANIFEST] DIR\n"
    "       pickleproof sign -s SECKEY --manifest [-o MANIFEST] [--dir DIR] FILE...\n"
    "\n"
    "Write FILE.minisig (prehashed Ed25519, verifiable with minisign -Vm FILE). --manifest\n"
    "writes a canonical manifest of relative paths, sizes and digests and signs that.\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof sign -s team.key model.pkl\n"
    "  pickleproof sign -s team.key --manifest checkpoint/\n";

static const char verify_help[] =
    "usage: pickleproof verify -p PUBKEY [-p PUBKEY...] [-P BASE64] [-x SIG]\n"
    "                          [--allow-legacy] [-q] FILE...\n"
    "       pickleproof verify -p PUBKEY --manifest MANIFEST|DIR [-x SIG] [--dir DIR]\n"
    "\n"
    "Check FILE against FILE.minisig (or SIG): prehashed signatures only unless --allow-legacy,\n"
    "the key id first, then the trusted comment's file name, size and purpose. A manifest is\n"
    "checked file by file: missing, added, renamed or changed files are rejected.\n"
    "exit status: 0 valid, 1 signature rejected or missing, 2 usage or operational error\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof verify -p team.pub model.pkl\n"
    "  pickleproof verify -p team.pub --manifest checkpoint/\n";

static const char policy_help[] =
    "usage: pickleproof policy list\n"
    "       pickleproof policy show NAME|FILE\n"
    "       pickleproof policy learn [OPTIONS] FILE... > team.policy\n"
    "\n"
    "List the built-in policies, or print one (to start a team policy from). learn scans each\n"
    "trusted sample (in the sandbox, like scan) and prints the smallest policy that makes every\n"
    "one of them safe, each entry commented with where it was first seen; it refuses known-\n"
    "dangerous globals (os.system, builtins.eval, ...) unless --allow-dangerous.\n"
    "\n"
    "learn options: --name NAME, --include NAME|FILE (repeatable; default: default),\n"
    "  --no-include-default, --allow-dangerous, --limit NAME=VALUE, --sandbox LEVEL, --no-sandbox\n"
    "\n"
    "EXAMPLES\n"
    "  pickleproof policy list\n"
    "  pickleproof policy show default\n"
    "  pickleproof policy learn --name team trusted/*.joblib > team.policy\n"
    "  pickleproof scan --policy team.policy new_model.joblib\n";

static const char version_help[] = "usage: pickleproof version\n"
                                   "\n"
                                   "Print the version.\n"
                                   "\n"
                                   "EXAMPLES\n"
                                   "  pickleproof version\n";

static const char help_help[] = "usage: pickleproof help [COMMAND]\n"
                                "\n"
                                "Print the overview, or the help of COMMAND.\n"
                                "\n"
                                "EXAMPLES\n"
                                "  pickleproof help scan\n";

static const struct {
    const char *cmd, *text;
} helps[] = {
    {"scan", scan_help},     {"explain", explain_help}, {"dump", dump_help},
    {"keygen", keygen_help}, {"sign", sign_help},       {"verify", verify_help},
    {"policy", policy_help}, {"version", version_help}, {"help", help_help},
};

int pp_cli_help(const char *cmd, FILE *f)
{
    if (!cmd) {
        fputs(overview, f);
        return PP_EXIT_SAFE;
    }
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
        if (strcmp(helps[i].cmd, cmd) == 0) {
            fputs(helps[i].text, f);
            return PP_EXIT_SAFE;
        }
    return pp_cli_usage_error(NULL, "no such command", cmd);
}

bool pp_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
    }
    return false;
}

int pp_cli_usage_error(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "pickleproof: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    if (cmd)
        fprintf(stderr, "try 'pickleproof %s --help'\n", cmd);
    else
        fprintf(stderr, "try 'pickleproof --help'\n");
    return PP_EXIT_USAGE;
}
