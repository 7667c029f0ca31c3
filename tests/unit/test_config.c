/* pickleproof.toml parser (cli/config.c): values and paths it yields, errors it refuses, and a
 * sweep over every truncation and byte flip of a full config (no crash, no leak under ASan,
 * every result either parsed or refused). */
#include "config.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char full[] = "# project\n"
                           "policies = [\"default\", 'team.policy', \"/abs/x.policy\"]\n"
                           "keys = [\n"
                           "  \"k.pub\",   # ours\n"
                           "  \"\\u00e9.pub\",\n"
                           "]\n"
                           "require-signature = true\n"
                           "exclude = [\"*.txt\"]\r\n"
                           "include = []\n"
                           "jobs = 1_2\n"
                           "format = \"sarif\"\n"
                           "color = 'never'\n"
                           "sandbox = \"process\"  # comment\n"
                           "\n"
                           "[limits]\n"
                           "graph-memory = \"512M\"\n"
                           "opcodes = 1000\n";

static int parse(const char *text, pp_config *c)
{
    pp_config_init(c);
    return pp_config_parse("t.toml", "/proj", text, strlen(text), c);
}

static int quiet_parse(const char *text, size_t n, pp_config *c)
{
    pp_config_init(c);
    return pp_config_parse("t.toml", "/proj", text, n, c);
}

int main(void)
{
    pp_config c;
    CHECK(parse(full, &c) == 0);
    CHECK(c.policies.n == 3 && strcmp(c.policies.v[0], "default") == 0);
    CHECK(strcmp(c.policies.v[1], "/proj/team.policy") == 0);
    CHECK(strcmp(c.policies.v[2], "/abs/x.policy") == 0);
    CHECK(c.keys.n == 2 && strcmp(c.keys.v[0], "/proj/k.pub") == 0);
    CHECK(strcmp(c.keys.v[1], "/proj/\xc3\xa9.pub") == 0);
    CHECK(c.require_signature == 1 && c.jobs == 12);
    CHECK(c.exclude.n == 1 && c.include.given && c.include.n == 0);
    CHECK(strcmp(c.format, "sarif") == 0 && strcmp(c.color, "never") == 0);
    CHECK(strcmp(c.sandbox, "process") == 0);
    CHECK(c.limits.n == 2 && strcmp(c.limits.v[0], "graph-memory=512M") == 0);
    pp_config_free(&c);

    /* refused, whatever the reason (the messages are checked by tests/python/test_cli_scan.py) */
    static const char *const bad[] = {
        "jobs = 0\n",
        "jobs = 99999999999999999999\n",
        "jobs = 1__2\n",
        "jobs = _1\n",
        "format = \"json\" \"x\"\n",
        "= 3\n",
        "[limits\n",
        "[limits]\n[limits]\n",
        "policies = \"default\"\n",
        "policies = [\"\"]\n",
        "keys = [\"a\" \"b\"]\n",
        "x = \"\\q\"\n",
        "color = \"\\u0000\"\n",
        "format = \"js\x01on\"\n",
        "require-signature = 1\n",
        "format\n",
        "[limits]\nopcodes = true\n",
        "sandbox = \"\\ud800\"\n",
    };
    /* keep stderr quiet during the negative cases */
    fflush(stderr);
    int saved = dup(2);
    FILE *null = freopen("/dev/null", "w", stderr);
    (void)null;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = quiet_parse(bad[i], strlen(bad[i]), &c);
        CHECKF(rc != 0, "accepted: %s", bad[i]);
        pp_config_free(&c);
    }
    /* NUL bytes are refused */
    CHECK(quiet_parse("jobs = 1\0", 9, &c) != 0);
    pp_config_free(&c);

    /* every truncation and every single-byte change of the full config */
    size_t n = strlen(full);
    char *buf = malloc(n + 1);
    size_t parsed = 0, refused = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        memcpy(buf, full, cut);
        int rc = quiet_parse(buf, cut, &c);
        rc == 0 ? parsed++ : refused++;
        pp_config_free(&c);
    }
    static const char flips[] = {'"', '\'', '[', ']', '=', '\n', '#', ',', '\\', 'x', '0', ' '};
    for (size_t at = 0; at < n; at++)
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(buf, full, n);
            buf[at] = flips[k];
            int rc = quiet_parse(buf, n, &c);
            rc == 0 ? parsed++ : refused++;
            pp_config_free(&c);
        }
    free(buf);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECKF(parsed > 0 && refused > 0, "parsed %zu refused %zu", parsed, refused);
    return tap_done();
}
