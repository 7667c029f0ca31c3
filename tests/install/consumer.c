/* A program outside the project, written as a user of the installed library would: built by
 * tests/python/test_install.py against an installed tree (through pkg-config and through
 * find_package) and run on pickles made at test time.
 *
 *   consumer POLICY FILE...
 *
 * Every file is scanned twice through the public API: from memory (pp_scan_buffer, in this
 * process) and by path with default options (pp_scan_file, which spawns the installed sandbox
 * helper). Prints "FILE MEMORY-VERDICT FILE-VERDICT SANDBOX FINDINGS" per file. Exit status: 0
 * every file safe, 1 any file rejected, 2 an operational failure or the two scans disagreeing. */
#include <pickleproof.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *nb = realloc(b, cap * 2);
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    if (b && ferror(f)) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: consumer POLICY FILE...\n");
        return 2;
    }
    pp_policy *policy = NULL;
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&policy) != PP_OK) return 2;
    if (pp_policy_add_builtin(policy, argv[1], &err) != PP_OK) {
        fprintf(stderr, "consumer: policy %s: %s: %s\n", argv[1], pp_errname(err.code), err.msg);
        pp_policy_free(policy);
        return 2;
    }
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        pp_scan_options o;
        pp_scan_options_init(&o, policy);
        o.path = argv[i];
        size_t len = 0;
        unsigned char *data = slurp(argv[i], &len);
        pp_report *mem = NULL, *file = NULL;
        if (!data || pp_scan_buffer(data, len, &o, &mem) != PP_OK ||
            pp_scan_file(argv[i], &o, &file) != PP_OK) {
            fprintf(stderr, "consumer: %s: scan failed\n", argv[i]);
            rc = 2;
        } else {
            printf("%s %s %s %s %zu\n", argv[i], pp_verdict_name(mem->verdict),
                   pp_verdict_name(file->verdict), file->sandbox, file->nfindings);
            for (size_t k = 0; k < file->nfindings; k++)
                printf("  %s %s\n", file->findings[k].rule,
                       file->findings[k].global ? file->findings[k].global : "-");
            if (mem->verdict != file->verdict)
                rc = 2;
            else if (file->verdict != PP_VERDICT_SAFE && rc == 0)
                rc = 1;
        }
        pp_report_free(mem);
        pp_report_free(file);
        free(data);
    }
    pp_policy_free(policy);
    return rc;
}
