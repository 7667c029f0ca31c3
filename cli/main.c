/* The pickleproof command: dispatch to the subcommands. Exit codes: 0 every file safe, 1 any
 * file rejected, 2 usage or operational error. Results go to stdout, diagnostics to stderr. */
#include "cli.h"
#include "learn_cmd.h"

#include "pickleproof.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"scan", pp_cli_scan},     {"explain", pp_cli_explain}, {"dump", pp_cli_dump},
    {"keygen", pp_cli_keygen}, {"sign", pp_cli_sign},       {"verify", pp_cli_verify},
    {"policy", pp_cli_policy},
};

int main(int argc, char **argv)
{
    /* With a standard descriptor closed, the next file opened would take its number: a scan of
     * "-" would read some other file's bytes, results could land in a file. */
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
            return PP_EXIT_USAGE;
    if (argc < 2) {
        pp_cli_help(NULL, stderr);
        return PP_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) return pp_cli_help(NULL, stdout);
    if (strcmp(cmd, "help") == 0) {
        if (pp_cli_wants_help(argc - 1, argv + 1)) return pp_cli_help("help", stdout);
        if (argc > 3) return pp_cli_usage_error("help", "help takes at most one command", NULL);
        return pp_cli_help(argc == 3 ? argv[2] : NULL, stdout);
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && pp_cli_wants_help(argc - 1, argv + 1))
            return pp_cli_help("version", stdout);
        printf("pickleproof %s\n", PP_VERSION);
        return PP_EXIT_SAFE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        if (pp_cli_wants_help(argc - 1, argv + 1)) return pp_cli_help(cmd, stdout);
        return commands[i].run(argc - 1, argv + 1);
    }
    return pp_cli_usage_error(NULL, "unknown command", cmd);
}
