/* pickleproof keygen | sign | verify: minisign-compatible keys and signatures (validator/sign.h).
 * Each entry point takes argv[0] = the subcommand name. Exit codes: 0 valid (or done), 1 a
 * signature rejected (bad-signature, wrong key, unsigned, manifest mismatch), 2 usage or
 * operational error. Verdicts go to stdout, diagnostics to stderr. */
#include "pickleproof.h"

#include "b2.h"
#include "err.h"
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int pp_cli_keygen(int argc, char **argv);
int pp_cli_sign(int argc, char **argv);
int pp_cli_verify(int argc, char **argv);

enum { EXIT_VALID = 0, EXIT_REJECTED = 1, EXIT_USAGE = 2 };

#define PW_MAX 1024
#define MANIFEST_FILE_MAX ((size_t)256 << 20)
#define MAX_KEYS 64

static int fail(const char *fmt, ...) PP_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pickleproof: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* ---- options -------------------------------------------------------------------------------- */

typedef struct opts {
    const char *pub_files[MAX_KEYS];
    size_t npub_files;
    const char *pub_strings[MAX_KEYS];
    size_t npub_strings;
    const char *seckey, *sig, *comment, *note, *out, *dir, *kdf;
    int password_fd;
    bool unencrypted, force, allow_legacy, quiet, manifest;
    const char **files;
    size_t nfiles;
} opts;

/* A decimal fd number: digits only, no sign, no base prefix. */
static bool parse_fd(const char *s, int *fd)
{
    long v = 0;
    if (!*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 65535) return false;
        v = v * 10 + (*s - '0');
    }
    if (v > 65535) return false;
    *fd = (int)v;
    return true;
}

/* Flags taking a value accept "-x V", "--flag V" and "--flag=V". Returns 0 or EXIT_USAGE. */
static int parse_opts(int argc, char **argv, const char *allowed, opts *o)
{
    memset(o, 0, sizeof *o);
    o->password_fd = -1;
    o->files = calloc((size_t)argc + 1, sizeof *o->files);
    if (!o->files) return fail("out of memory");
    bool dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            o->files[o->nfiles++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        static const struct {
            const char *s, *l;
            char id;
            bool val;
        } table[] = {
            {"-p", "--pubkey", 'p', true},        {"-P", "--pubkey-string", 'P', true},
            {"-s", "--seckey", 's', true},        {"-x", "--sig", 'x', true},
            {"-c", "--comment", 'c', true},       {NULL, "--note", 'n', true},
            {"-o", "--output", 'o', true},        {NULL, "--dir", 'd', true},
            {NULL, "--password-fd", 'F', true},   {NULL, "--kdf", 'k', true},
            {"-W", "--unencrypted", 'W', false},  {"-f", "--force", 'f', false},
            {NULL, "--allow-legacy", 'L', false}, {"-q", "--quiet", 'q', false},
            {"-m", "--manifest", 'M', false},     {"-h", "--help", 'h', false},
        };
        const char *val = NULL;
        char id = 0;
        for (size_t t = 0; t < sizeof table / sizeof table[0] && !id; t++) {
            size_t ll = strlen(table[t].l);
            if ((table[t].s && strcmp(a, table[t].s) == 0) || strcmp(a, table[t].l) == 0) {
                id = table[t].id;
                if (table[t].val) {
                    if (i + 1 >= argc) return fail("%s needs a value", a);
                    val = argv[++i];
                }
            } else if (table[t].val && strncmp(a, table[t].l, ll) == 0 && a[ll] == '=') {
                id = table[t].id;
                val = a + ll + 1;
            }
        }
        if (!id || (id != 'h' && !strchr(allowed, id)))
            return fail("%s: unknown option %s (try 'pickleproof %s --help')", argv[0], a, argv[0]);
        switch (id) {
        case 'p':
            if (o->npub_files == MAX_KEYS) return fail("at most %d public keys", MAX_KEYS);
            o->pub_files[o->npub_files++] = val;
            break;
        case 'P':
            if (o->npub_strings == MAX_KEYS) return fail("at most %d public keys", MAX_KEYS);
            o->pub_strings[o->npub_strings++] = val;
            break;
        case 's':
            o->seckey = val;
            break;
        case 'x':
            o->sig = val;
            break;
        case 'c':
            o->comment = val;
            break;
        case 'n':
            o->note = val;
            break;
        case 'o':
            o->out = val;
            break;
        case 'd':
            o->dir = val;
            break;
        case 'k':
            o->kdf = val;
            break;
        case 'F':
            if (!parse_fd(val, &o->password_fd))
                return fail("--password-fd takes a file descriptor number: %s", val);
            break;
        case 'W':
            o->unencrypted = true;
            break;
        case 'f':
            o->force = true;
            break;
        case 'L':
            o->allow_legacy = true;
            break;
        case 'q':
            o->quiet = true;
            break;
        case 'M':
            o->manifest = true;
            break;
        case 'h':
            return -1;
        }
    }
    return 0;
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Reads a whole small file (at most max bytes) into malloc or, for secrets, sodium_malloc
 * memory. *missing is set when it does not exist. Returns 0 or prints the error and returns 2. */
static int read_small(const char *path, size_t max, bool secret, uint8_t **out, size_t *len,
                      bool *missing)
{
    *out = NULL;
    *len = 0;
    if (missing) *missing = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (missing && errno == ENOENT) {
            *missing = true;
            return EXIT_USAGE;
        }
        return fail("%s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail("%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return fail("%s: too large (%lld bytes; at most %zu)", path, (long long)st.st_size, max);
    }
    size_t cap = (size_t)st.st_size + 1;
    uint8_t *buf = secret ? sodium_malloc(cap) : malloc(cap);
    if (!buf) {
        close(fd);
        return fail("%s: out of memory", path);
    }
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            close(fd);
            secret ? sodium_free(buf) : free(buf);
            return fail("%s: read: %s", path, strerror(e));
        }
        if (k == 0) break;
        n += (size_t)k;
        if (n == cap) { /* grew since fstat */
            close(fd);
            secret ? sodium_free(buf) : free(buf);
            return fail("%s: file changed while reading", path);
        }
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode, bool excl)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), mode);
    if (fd < 0) {
        if (errno == EEXIST) return fail("%s: already exists (use -f to overwrite)", path);
        return fail("%s: %s", path, strerror(errno));
    }
    const uint8_t *p = data;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            close(fd);
            return fail("%s: write: %s", path, strerror(e));
        }
        p += k;
        len -= (size_t)k;
    }
    if (close(fd) != 0) return fail("%s: close: %s", path, strerror(errno));
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* "dir/file" -> "dir", "file" -> "." (into buf). */
static const char *dir_name(const char *path, char *buf, size_t cap)
{
    const char *s = strrchr(path, '/');
    if (!s) return ".";
    size_t n = (size_t)(s - path);
    if (n == 0) return "/";
    if (n >= cap) n = cap - 1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return buf;
}

/* ---- passwords ------------------------------------------------------------------------------ */

/* One line from fd, byte by byte so nothing after the newline is consumed. */
static int read_pw_line(int fd, char *pw, size_t *len)
{
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t k = read(fd, &ch, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return fail("password: read: %s", strerror(errno));
        if (k == 0 || ch == '\n') break;
        if (n + 1 >= PW_MAX) return fail("password longer than %d bytes", PW_MAX - 1);
        pw[n++] = ch;
    }
    if (n && pw[n - 1] == '\r') n--;
    pw[n] = 0;
    *len = n;
    return 0;
}

static int tty_prompt(int tty, const char *prompt, char *pw, size_t *len)
{
    struct termios old, quiet;
    bool restore = tcgetattr(tty, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(tty, TCSAFLUSH, &quiet);
    }
    if (write(tty, prompt, strlen(prompt)) < 0) {
        /* nothing to do: the read below still works */
    }
    int rc = read_pw_line(tty, pw, len);
    if (restore) tcsetattr(tty, TCSAFLUSH, &old);
    if (write(tty, "\n", 1) < 0) {
        /* cosmetic only */
    }
    return rc;
}

/* The password, in order: --password-fd N, $PICKLEPROOF_PASSWORD, a prompt on /dev/tty (twice
 * when confirming). *out is sodium_malloc'd; free with sodium_free. */
static int get_password(const opts *o, bool confirm, char **out, size_t *len)
{
    char *pw = sodium_malloc(PW_MAX);
    *out = NULL;
    if (!pw) return fail("cannot allocate secure memory");
    int rc = 0;
    const char *env = getenv("PICKLEPROOF_PASSWORD");
    if (o->password_fd >= 0) {
        rc = read_pw_line(o->password_fd, pw, len);
    } else if (env) {
        size_t n = strlen(env);
        if (n >= PW_MAX) rc = fail("PICKLEPROOF_PASSWORD longer than %d bytes", PW_MAX - 1);
        memcpy(pw, env, n < PW_MAX ? n + 1 : 1);
        *len = n;
    } else {
        int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (tty < 0) {
            sodium_free(pw);
            return fail("a password is needed and there is no terminal: set "
                        "PICKLEPROOF_PASSWORD or pass --password-fd N");
        }
        rc = tty_prompt(tty, "Password: ", pw, len);
        if (!rc && confirm) {
            char *again = sodium_malloc(PW_MAX);
            size_t alen = 0;
            if (!again)
                rc = fail("cannot allocate secure memory");
            else if (!(rc = tty_prompt(tty, "Password (again): ", again, &alen)) &&
                     (alen != *len || sodium_memcmp(again, pw, alen) != 0))
                rc = fail("the passwords do not match");
            sodium_free(again);
        }
        close(tty);
    }
    if (rc) {
        sodium_free(pw);
        return rc;
    }
    *out = pw;
    return 0;
}

/* ---- keygen --------------------------------------------------------------------------------- */

static void usage_keygen(FILE *f)
{
    fputs("usage: pickleproof keygen [-p PUBKEY] [-s SECKEY] [-W] [-f] [--password-fd N]\n"
          "                          [--kdf sensitive|interactive]\n"
          "  writes a minisign-compatible key pair (default pickleproof.pub, pickleproof.key).\n"
          "  The secret key is encrypted with scrypt unless -W/--unencrypted (for CI).\n"
          "  password: --password-fd N, else $PICKLEPROOF_PASSWORD, else a prompt on the tty.\n"
          "  --kdf interactive uses cheaper scrypt limits (16 MiB) than minisign's default.\n",
          f);
}

int pp_cli_keygen(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "psWfFk", &o);
    if (rc < 0) {
        usage_keygen(stdout);
        free(o.files);
        return EXIT_VALID;
    }
    if (rc || o.nfiles) {
        free(o.files);
        return rc ? rc : fail("keygen takes no file arguments");
    }
    free(o.files);
    const char *pubp = o.pub_files[0] ? o.pub_files[0] : "pickleproof.pub";
    const char *secp = o.seckey ? o.seckey : "pickleproof.key";
    uint64_t ops = crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE;
    uint64_t mem = crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE;
    if (o.kdf && strcmp(o.kdf, "interactive") == 0) {
        ops = crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_INTERACTIVE;
        mem = crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_INTERACTIVE;
    } else if (o.kdf && strcmp(o.kdf, "sensitive") != 0) {
        return fail("--kdf takes sensitive or interactive: %s", o.kdf);
    }
    if (sodium_init() < 0) return fail("libsodium failed to initialise");
    if (!o.force) {
        struct stat st;
        if (stat(secp, &st) == 0 || stat(pubp, &st) == 0)
            return fail("%s or %s already exists (use -f to overwrite)", secp, pubp);
    }
    char *pw = NULL;
    size_t pwlen = 0;
    if (!o.unencrypted) {
        if ((rc = get_password(&o, true, &pw, &pwlen)) != 0) return rc;
        if (pwlen == 0) {
            sodium_free(pw);
            return fail("empty password; use -W/--unencrypted for a key without one");
        }
    }
    pp_error err;
    pp_error_clear(&err);
    pp_seckey *sk = NULL;
    pp_pubkey pk;
    char *text = NULL;
    size_t tlen = 0;
    if (pp_seckey_generate(&sk, &pk, &err) != PP_OK ||
        pp_seckey_format(sk, pw, pwlen, ops, mem, &text, &tlen, &err) != PP_OK) {
        pp_seckey_free(sk);
        sodium_free(pw);
        return fail("keygen: %s", err.msg);
    }
    pp_seckey_free(sk);
    sodium_free(pw);
    rc = write_file(secp, text, tlen, 0600, !o.force);
    pp_secret_free(text);
    if (rc) return rc;
    char pubtext[256];
    size_t pl = pp_pubkey_format(&pk, pubtext, sizeof pubtext);
    if ((rc = write_file(pubp, pubtext, pl, 0644, !o.force)) != 0) return rc;
    char id[PP_KEYID_CHARS + 1];
    pp_keyid_format(pk.keynum, id);
    printf("key id %s\nsecret key: %s%s\npublic key: %s\n", id, secp,
           o.unencrypted ? " (not encrypted)" : "", pubp);
    return EXIT_VALID;
}

/* ---- sign ----------------------------------------------------------------------------------- */

static void usage_sign(FILE *f)
{
    fputs("usage: pickleproof sign -s SECKEY [-x SIG] [-c COMMENT] [--note TEXT] FILE...\n"
          "       pickleproof sign -s SECKEY --manifest [-o MANIFEST] DIR\n"
          "       pickleproof sign -s SECKEY --manifest [-o MANIFEST] [--dir DIR] FILE...\n"
          "  writes FILE.minisig (prehashed ED, verifiable with minisign -Vm FILE);\n"
          "  --manifest writes a canonical manifest (default DIR/" PP_MANIFEST_NAME ", b2sum -c\n"
          "  can check it) and signs it. Password as for keygen; -W for unencrypted keys.\n",
          f);
}

static int load_seckey(const opts *o, pp_seckey **sk)
{
    if (!o->seckey) return fail("sign needs -s SECKEY");
    uint8_t *text;
    size_t len;
    int rc = read_small(o->seckey, PP_SECKEY_FILE_MAX, true, &text, &len, NULL);
    if (rc) return rc;
    pp_error err;
    pp_error_clear(&err);
    pp_err e = pp_seckey_parse(text, len, o->seckey, sk, &err);
    sodium_free(text);
    if (e) return fail("%s", err.msg);
    if (!pp_seckey_encrypted(*sk)) return 0;
    if (o->unencrypted) {
        pp_seckey_free(*sk);
        return fail("%s: the key is encrypted but -W was given", o->seckey);
    }
    char *pw;
    size_t pwlen = 0;
    if ((rc = get_password(o, false, &pw, &pwlen)) != 0) {
        pp_seckey_free(*sk);
        return rc;
    }
    e = pp_seckey_decrypt(*sk, pw, pwlen, o->seckey, &err);
    sodium_free(pw);
    if (e) {
        pp_seckey_free(*sk);
        return fail("%s", err.msg);
    }
    return 0;
}

static uint64_t now(void)
{
    /* SOURCE_DATE_EPOCH makes signatures reproducible in builds */
    const char *s = getenv("SOURCE_DATE_EPOCH");
    if (s && *s && strlen(s) <= 18 && strspn(s, "0123456789") == strlen(s)) {
        uint64_t v = 0;
        for (; *s; s++)
            v = v * 10 + (uint64_t)(*s - '0');
        return v;
    }
    time_t t = time(NULL);
    return t < 0 ? 0 : (uint64_t)t;
}

static int sign_digest_to(const pp_seckey *sk, const opts *o, const uint8_t d[64], uint64_t size,
                          const char *name, const char *purpose, const char *sigpath)
{
    pp_error err;
    pp_error_clear(&err);
    char tc[PP_SIG_TC_MAX + 1];
    size_t tcl;
    pp_sigfile *s = malloc(sizeof *s);
    if (!s) return fail("out of memory");
    char *text = NULL;
    size_t tl = 0;
    if (pp_trusted_comment(tc, sizeof tc, now(), name, size, purpose, o->note, &tcl, &err) ||
        pp_sign_digest(sk, d, tc, tcl, s, &err) || pp_sig_format(s, o->comment, &text, &tl, &err)) {
        free(s);
        return fail("%s: %s", name, err.msg);
    }
    free(s);
    int rc = write_file(sigpath, text, tl, 0644, false);
    free(text);
    return rc;
}

/* "./a//b/./c" -> "a/b/c"; refuses absolute paths and "..": a manifest path never escapes. */
static int normalize(const char *in, char *out, size_t cap)
{
    if (in[0] == '/') return fail("%s: absolute path (manifest paths are relative to --dir)", in);
    size_t n = 0;
    const char *p = in;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if (cl == 2 && p[0] == '.' && p[1] == '.')
            return fail("%s: path escapes the directory", in);
        if (cl && !(cl == 1 && p[0] == '.')) {
            if (n + cl + 2 > cap) return fail("%s: path too long", in);
            if (n) out[n++] = '/';
            memcpy(out + n, p, cl);
            n += cl;
        }
        p += cl + (e ? 1 : 0);
    }
    out[n] = 0;
    if (!n) return fail("%s: not a file path", in);
    return 0;
}

static int sign_manifest(const pp_seckey *sk, const opts *o)
{
    struct stat st;
    bool dirmode = o->nfiles == 1 && stat(o->files[0], &st) == 0 && S_ISDIR(st.st_mode);
    if (dirmode && o->dir) return fail("give either a directory or --dir with files, not both");
    const char *base = dirmode ? o->files[0] : o->dir ? o->dir : ".";
    char outbuf[4096];
    const char *out = o->out;
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "%s/%s", base, PP_MANIFEST_NAME);
        out = outbuf;
    }
    char sigpath[4200];
    snprintf(sigpath, sizeof sigpath, "%s.minisig", o->sig ? o->sig : out);
    if (o->sig) snprintf(sigpath, sizeof sigpath, "%s", o->sig);
    char signame[4200];
    snprintf(signame, sizeof signame, "%s.minisig", base_name(out));
    const char *skip[] = {base_name(out), signame, base_name(sigpath), NULL};

    int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return fail("%s: %s", base, strerror(errno));
    pp_manifest m;
    memset(&m, 0, sizeof m);
    m.directory = dirmode;
    pp_error err;
    pp_error_clear(&err);
    int rc = 0;
    if (dirmode) {
        if (pp_manifest_add_dir(&m, dfd, skip, &err) != PP_OK) rc = fail("%s: %s", base, err.msg);
    } else {
        for (size_t i = 0; i < o->nfiles && !rc; i++) {
            char norm[PP_MANIFEST_MAX_PATH + 1];
            if ((rc = normalize(o->files[i], norm, sizeof norm)) != 0) break;
            if (pp_manifest_add_file(&m, dfd, norm, &err) != PP_OK)
                rc = fail("%s: %s", base, err.msg);
        }
    }
    close(dfd);
    char *text = NULL;
    size_t tl = 0;
    if (!rc && (pp_manifest_finish(&m, out, &err) || pp_manifest_format(&m, &text, &tl, &err)))
        rc = fail("%s", err.msg);
    size_t nfiles = m.n;
    pp_manifest_free(&m);
    if (!rc) rc = write_file(out, text, tl, 0644, false);
    if (!rc) {
        /* sign the bytes we wrote, from memory */
        uint8_t d[64];
        pp_b2_buf((const uint8_t *)text, tl, d);
        rc = sign_digest_to(sk, o, d, tl, base_name(out), PP_PURPOSE_MANIFEST, sigpath);
    }
    free(text);
    if (!rc && !o->quiet) printf("%s: manifest of %zu files, signature %s\n", out, nfiles, sigpath);
    return rc;
}

int pp_cli_sign(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "sxcnodFWMq", &o);
    if (rc < 0) {
        usage_sign(stdout);
        free(o.files);
        return EXIT_VALID;
    }
    if (!rc && o.nfiles == 0) rc = fail("sign needs at least one file");
    if (!rc && o.sig && o.nfiles > 1 && !o.manifest) rc = fail("-x takes one file to sign");
    if (!rc && o.out && !o.manifest) rc = fail("-o is for --manifest");
    if (!rc && sodium_init() < 0) rc = fail("libsodium failed to initialise");
    pp_seckey *sk = NULL;
    if (!rc) rc = load_seckey(&o, &sk);
    if (rc) {
        free(o.files);
        return rc;
    }
    if (o.manifest) {
        rc = sign_manifest(sk, &o);
    } else {
        for (size_t i = 0; i < o.nfiles && !rc; i++) {
            const char *f = o.files[i];
            int fd = open(f, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                rc = fail("%s: %s", f, strerror(errno));
                break;
            }
            uint8_t d[64];
            uint64_t size = 0;
            pp_error err;
            pp_error_clear(&err);
            pp_err e = pp_b2_fd(fd, f, d, &size, &err);
            close(fd);
            if (e) {
                rc = fail("%s", err.msg);
                break;
            }
            char sigpath[4200];
            snprintf(sigpath, sizeof sigpath, "%s%s", o.sig ? o.sig : f, o.sig ? "" : ".minisig");
            rc = sign_digest_to(sk, &o, d, size, base_name(f), PP_PURPOSE_FILE, sigpath);
            if (!rc && !o.quiet) printf("%s: signed, %s\n", f, sigpath);
        }
    }
    pp_seckey_free(sk);
    free(o.files);
    return rc;
}

/* ---- verify --------------------------------------------------------------------------------- */

static void usage_verify(FILE *f)
{
    fputs("usage: pickleproof verify -p PUBKEY [-p PUBKEY...] [-P BASE64] [-x SIG]\n"
          "                          [--allow-legacy] [-q] FILE...\n"
          "       pickleproof verify -p PUBKEY --manifest MANIFEST|DIR [-x SIG] [--dir DIR]\n"
          "  checks FILE against FILE.minisig (or SIG): only prehashed ED signatures unless\n"
          "  --allow-legacy; the key id first; the trusted comment's file, size and purpose.\n"
          "  A manifest is checked file by file: missing, added, renamed or changed files\n"
          "  and symlinks are rejected.\n"
          "exit status: 0 valid, 1 signature rejected or missing, 2 usage or operational error\n",
          f);
}

static int load_keys(const opts *o, pp_pubkey *keys, size_t *nkeys)
{
    *nkeys = 0;
    pp_error err;
    pp_error_clear(&err);
    for (size_t i = 0; i < o->npub_files; i++) {
        uint8_t *t;
        size_t n;
        int rc = read_small(o->pub_files[i], PP_PUBKEY_FILE_MAX, false, &t, &n, NULL);
        if (rc) return rc;
        pp_err e = pp_pubkey_parse(t, n, o->pub_files[i], &keys[(*nkeys)++], &err);
        free(t);
        if (e) return fail("%s", err.msg);
    }
    for (size_t i = 0; i < o->npub_strings; i++) {
        const char *s = o->pub_strings[i];
        if (pp_pubkey_parse((const uint8_t *)s, strlen(s), "-P", &keys[(*nkeys)++], &err))
            return fail("%s", err.msg);
    }
    if (!*nkeys) return fail("verify needs a public key (-p FILE or -P BASE64)");
    return 0;
}

static void print_result(const opts *o, const char *what, const pp_sig_result *r)
{
    if (r->status == PP_SIG_VALID) {
        if (!o->quiet)
            printf("%s: valid signature, key id %s%s\ntrusted comment: %s\n", what, r->keyid,
                   r->legacy ? " (legacy Ed)" : "", r->trusted_comment);
    } else {
        fprintf(stderr, "%s: %s: %s\n", what,
                r->status == PP_SIG_UNSIGNED ? "unsigned" : "bad-signature", r->reason);
    }
}

/* Reads a signature file; a missing file is "unsigned", not an operational error. */
static int read_sig(const char *path, uint8_t **sig, size_t *len, pp_sig_result *r)
{
    bool missing = false;
    memset(r, 0, sizeof *r);
    int rc = read_small(path, PP_SIG_FILE_MAX, false, sig, len, &missing);
    if (missing) {
        r->status = PP_SIG_UNSIGNED;
        snprintf(r->reason, sizeof r->reason, "no signature file %s", path);
        return EXIT_REJECTED;
    }
    if (rc && access(path, R_OK) == 0) {
        /* present but oversized or not a regular file: the signature is what is wrong */
        r->status = PP_SIG_BAD;
        snprintf(r->reason, sizeof r->reason, "malformed signature file %s", path);
        return EXIT_REJECTED;
    }
    return rc;
}

static int verify_one(const opts *o, const char *file, const pp_pubkey *keys, size_t nkeys)
{
    char sigbuf[4200];
    const char *sigpath = o->sig;
    if (!sigpath) {
        snprintf(sigbuf, sizeof sigbuf, "%s.minisig", file);
        sigpath = sigbuf;
    }
    pp_sig_result *r = malloc(sizeof *r);
    pp_sigfile *s = malloc(sizeof *s);
    if (!r || !s) {
        free(r);
        free(s);
        return fail("out of memory");
    }
    uint8_t *sig = NULL;
    size_t siglen = 0;
    int rc = read_sig(sigpath, &sig, &siglen, r);
    pp_error err;
    pp_error_clear(&err);
    if (rc == EXIT_REJECTED) {
        print_result(o, file, r);
    } else if (!rc && pp_sig_parse(sig, siglen, sigpath, s, &err) != PP_OK) {
        fprintf(stderr, "%s: bad-signature: malformed %s\n", file, err.msg);
        rc = EXIT_REJECTED;
    } else if (!rc &&
               !pp_sig_key(s, keys, nkeys, o->allow_legacy ? PP_VERIFY_ALLOW_LEGACY : 0, r)) {
        /* wrong algorithm or key: refused before hashing a byte */
        print_result(o, file, r);
        rc = EXIT_REJECTED;
    } else if (!rc) {
        /* hash the file (the legacy mode needs all of it in memory: only when opted in) */
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        uint8_t d[64];
        uint64_t size = 0;
        uint8_t *msg = NULL;
        bool legacy = memcmp(s->alg, "Ed", 2) == 0 && o->allow_legacy;
        if (fd < 0) {
            rc = fail("%s: %s", file, strerror(errno));
        } else if (legacy) {
            size_t n = 0;
            bool missing;
            close(fd);
            fd = -1;
            rc = read_small(file, (size_t)1 << 30, false, &msg, &n, &missing);
            size = n;
        } else if (pp_b2_fd(fd, file, d, &size, &err) != PP_OK) {
            rc = fail("%s", err.msg);
        }
        if (fd >= 0) close(fd);
        if (!rc) {
            if (pp_verify_digest(s, d, msg, size, base_name(file), keys, nkeys,
                                 o->allow_legacy ? PP_VERIFY_ALLOW_LEGACY : 0, r) != PP_OK)
                rc = fail("%s: verification failed internally", file);
            else {
                print_result(o, file, r);
                rc = r->status == PP_SIG_VALID ? EXIT_VALID : EXIT_REJECTED;
            }
        }
        free(msg);
    }
    free(sig);
    free(s);
    free(r);
    return rc;
}

static void report_problem(void *ctx, const char *path, const char *problem)
{
    fprintf(stderr, "%s: %s: %s\n", (const char *)ctx, path, problem);
}

static int verify_manifest(const opts *o, const pp_pubkey *keys, size_t nkeys)
{
    if (o->nfiles != 1) return fail("verify --manifest takes one manifest file or directory");
    const char *arg = o->files[0];
    struct stat st;
    char mbuf[4200], dbuf[4200];
    const char *mpath = arg, *dir = o->dir;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(mbuf, sizeof mbuf, "%s/%s", arg, PP_MANIFEST_NAME);
        mpath = mbuf;
        if (!dir) dir = arg;
    }
    if (!dir) dir = dir_name(mpath, dbuf, sizeof dbuf);
    char sigbuf[4300];
    const char *sigpath = o->sig;
    if (!sigpath) {
        snprintf(sigbuf, sizeof sigbuf, "%s.minisig", mpath);
        sigpath = sigbuf;
    }
    uint8_t *text = NULL, *sig = NULL;
    size_t tl = 0, siglen = 0;
    int rc = read_small(mpath, MANIFEST_FILE_MAX, false, &text, &tl, NULL);
    if (rc) return rc;
    pp_sig_result *r = calloc(1, sizeof *r);
    if (!r) {
        free(text);
        return fail("out of memory");
    }
    rc = read_sig(sigpath, &sig, &siglen, r);
    pp_error err;
    pp_error_clear(&err);
    if (rc == EXIT_REJECTED) {
        print_result(o, mpath, r);
    } else if (!rc) {
        /* the bytes verified are the bytes parsed: one buffer */
        unsigned fl = PP_VERIFY_MANIFEST | (o->allow_legacy ? PP_VERIFY_ALLOW_LEGACY : 0);
        if (pp_verify_buffer(text, tl, base_name(mpath), keys, nkeys, sig, siglen, fl, r, &err))
            rc = fail("%s: %s", mpath, err.msg);
        else if (r->status != PP_SIG_VALID) {
            print_result(o, mpath, r);
            rc = EXIT_REJECTED;
        }
    }
    if (!rc) {
        pp_manifest m;
        if (pp_manifest_parse(text, tl, mpath, &m, &err) != PP_OK) {
            fprintf(stderr, "%s: manifest rejected: %s\n", mpath, err.msg);
            rc = EXIT_REJECTED;
        } else {
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd < 0) {
                rc = fail("%s: %s", dir, strerror(errno));
            } else {
                char signame[4300];
                snprintf(signame, sizeof signame, "%s.minisig", base_name(mpath));
                const char *skip[] = {base_name(mpath), signame, base_name(sigpath), NULL};
                size_t problems =
                    pp_manifest_check(&m, dfd, skip, report_problem, (void *)mpath, &err);
                close(dfd);
                if (err.code)
                    rc = fail("%s: %s", dir, err.msg);
                else if (problems) {
                    fprintf(stderr, "%s: bad-signature: %zu file%s do not match the manifest\n",
                            mpath, problems, problems == 1 ? "" : "s");
                    rc = EXIT_REJECTED;
                } else {
                    if (!o->quiet)
                        printf("%s: valid signature, key id %s; %zu files match\n"
                               "trusted comment: %s\n",
                               mpath, r->keyid, m.n, r->trusted_comment);
                }
            }
            pp_manifest_free(&m);
        }
    }
    free(r);
    free(sig);
    free(text);
    return rc;
}

int pp_cli_verify(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, "pPxLqMd", &o);
    if (rc < 0) {
        usage_verify(stdout);
        free(o.files);
        return EXIT_VALID;
    }
    if (!rc && o.nfiles == 0) rc = fail("verify needs a file");
    if (!rc && o.sig && o.nfiles > 1) rc = fail("-x takes one file to verify");
    if (!rc && o.dir && !o.manifest) rc = fail("--dir is for --manifest");
    if (!rc && sodium_init() < 0) rc = fail("libsodium failed to initialise");
    pp_pubkey keys[2 * MAX_KEYS];
    size_t nkeys = 0;
    if (!rc) rc = load_keys(&o, keys, &nkeys);
    if (!rc) {
        if (o.manifest) {
            rc = verify_manifest(&o, keys, nkeys);
        } else {
            for (size_t i = 0; i < o.nfiles; i++) {
                int r = verify_one(&o, o.files[i], keys, nkeys);
                if (r > rc) rc = r;
            }
        }
    }
    free(o.files);
    return rc;
}
