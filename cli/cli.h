/* Shared pieces of the pickleproof command: exit codes, usage errors, help, and the subcommands
 * (each takes argv with argv[0] = its own name). */
#ifndef PP_CLI_H
#define PP_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* DESIGN.md: 0 every file safe, 1 any file rejected, 2 usage or operational error. */
enum { PP_EXIT_SAFE = 0, PP_EXIT_REJECTED = 1, PP_EXIT_USAGE = 2 };

/* "pickleproof: MSG[: ARG]" and a pointer to `pickleproof CMD --help`; returns PP_EXIT_USAGE. */
int pp_cli_usage_error(const char *cmd, const char *msg, const char *arg);

/* help.c: the help of one subcommand (NULL: the overview) on f. Returns 0, or PP_EXIT_USAGE for
 * an unknown subcommand. */
int pp_cli_help(const char *cmd, FILE *f);
/* Whether -h/--help appears among argv[1..] before a "--". */
bool pp_cli_wants_help(int argc, char **argv);

/* scan_cmd.c */
int pp_cli_scan(int argc, char **argv);
int pp_cli_explain(int argc, char **argv);
int pp_cli_dump(int argc, char **argv);

/* sign_cmd.c */
int pp_cli_keygen(int argc, char **argv);
int pp_cli_sign(int argc, char **argv);
int pp_cli_verify(int argc, char **argv);

/* main.c: `policy list|show NAME` (argv[0] = "policy") */
int pp_cli_policy(int argc, char **argv);

#endif
