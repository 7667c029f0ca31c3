/* pickleproof.toml: project defaults for scan, explain and dump, found the way other linters find
 * theirs (the working directory, then each parent up to the root of a git checkout or of the
 * filesystem), or named with --config. Flags override it; a list given by flags replaces the
 * file's list.
 *
 * The file is a strict subset of TOML: `key = value` lines and `[limits]`, with basic ("...")
 * and literal ('...') strings, decimal integers, true/false, arrays of strings (may span lines),
 * and # comments. Unknown keys, tables, duplicates and wrong types are errors ("file:line:
 * reason"), so a typo never silently weakens a scan:
 *
 *   policies = ["default", "sklearn", "team.policy"]   # files relative to this file
 *   keys = ["team.pub"]
 *   require-signature = true
 *   exclude = ["*.txt", "docs"]
 *   include = ["*.pkl", "*.joblib"]
 *   jobs = 4
 *   format = "sarif"          # text | json | jsonl | sarif
 *   color = "auto"            # auto | always | never
 *   sandbox = "require"       # require | auto | process | off
 *   [limits]
 *   graph-memory = "512M"
 *   opcodes = 100000000
 */
#ifndef PP_CLI_CONFIG_H
#define PP_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pp_strlist {
    char **v;
    size_t n;
    bool given; /* the key was present (an empty list is then a value, not an absence) */
} pp_strlist;

typedef struct pp_config {
    char *path;          /* the file read; NULL when none */
    pp_strlist policies; /* names, or paths made relative to the working directory */
    pp_strlist limits;   /* "name=value", checked against the known limits */
    pp_strlist keys;     /* paths */
    pp_strlist exclude, include;
    int require_signature; /* -1 unset, else 0/1 */
    long jobs;             /* 0 unset */
    char *format, *color, *sandbox;
} pp_config;

void pp_config_init(pp_config *c);
void pp_config_free(pp_config *c);

/* Finds pickleproof.toml from the working directory upwards. Returns a malloc'd path or NULL. */
char *pp_config_discover(void);

/* Reads and checks a config file. 0 on success; -1 after printing "path:line: reason" on
 * stderr. Relative policy file and key paths are resolved against the file's directory. */
int pp_config_load(const char *path, pp_config *c);

/* The same over text in memory (tests and the fuzz-free parser core); `dir` resolves paths. */
int pp_config_parse(const char *origin, const char *dir, const char *text, size_t len,
                    pp_config *c);

#endif
