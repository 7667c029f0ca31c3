/* The list of files one `scan` looks at: command-line paths expanded by a recursive walk in
 * sorted order, filtered by --include/--exclude globs, and (for files found by the walk, not
 * named) by content, so that no file is skipped for its name. */
#ifndef PP_CLI_WALK_H
#define PP_CLI_WALK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct pp_walk_entry {
    char *path;    /* what is opened and reported: the argument joined with the relative path */
    bool explicit; /* named on the command line: always scanned, never sniffed */
} pp_walk_entry;

typedef struct pp_walk_opts {
    const char *const *include; /* a walked file must match one of these (none: every file) */
    size_t ninclude;
    const char *const *exclude; /* a walked file or directory matching one is left out */
    size_t nexclude;
    bool follow_symlinks;
} pp_walk_opts;

typedef struct pp_walk_list {
    pp_walk_entry *v;
    size_t n, cap;
    size_t excluded; /* files left out by a glob or because they are links not followed */
    unsigned errors; /* directories that could not be read (reported on stderr) */
} pp_walk_list;

/* Adds `arg`: a file (explicit), "-" (stdin), or a directory walked recursively (entries sorted
 * by name, depth first; VCS metadata directories .git .hg .svn are not entered; symbolic links
 * below the argument are followed only with follow_symlinks, and a directory loop is an error).
 * Globs match, with fnmatch, the path relative to `arg` and the base name. A missing `arg` is
 * added as a file, so that its scan reports the error. Returns 0, or -2 out of memory. */
int pp_walk_add(pp_walk_list *l, const char *arg, const pp_walk_opts *o);
void pp_walk_free(pp_walk_list *l);

/* Whether a file found by a walk is something a loader could read: a container magic joblib,
 * numpy or torch recognise, a zip directory at the end, or a first byte that starts a pickle
 * which does something before it fails. 1 yes, 0 no, -1 unreadable (scan it: the scan reports
 * the error). Reads at most the first 512 and the last 64 KiB + 22 bytes; never parses. */
int pp_walk_sniff(const char *path);

/* fnmatch of a --include/--exclude glob against the relative path or the base name. */
bool pp_walk_glob_match(const char *glob, const char *relpath);

#endif
