/* Expanding scan arguments into files. The walk runs before any scan so that results can be
 * printed in one deterministic order whatever the number of workers. */
#include "walk.h"

#include "container.h"
#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper trees are refused rather than walked without a budget. */
#define MAX_DEPTH 256

typedef struct ancestor {
    dev_t dev;
    ino_t ino;
} ancestor;

static int push(pp_walk_list *l, const char *path, bool explicit)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        pp_walk_entry *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return -2;
        l->v = nv;
        l->cap = nc;
    }
    char *p = strdup(path);
    if (!p) return -2;
    l->v[l->n].path = p;
    l->v[l->n].explicit = explicit;
    l->n++;
    return 0;
}

void pp_walk_free(pp_walk_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

bool pp_walk_glob_match(const char *glob, const char *relpath)
{
    return fnmatch(glob, relpath, 0) == 0 || fnmatch(glob, base_name(relpath), 0) == 0;
}

static bool any_match(const char *const *globs, size_t n, const char *rel)
{
    for (size_t i = 0; i < n; i++)
        if (pp_walk_glob_match(globs[i], rel)) return true;
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *join(const char *dir, const char *name)
{
    size_t dn = strlen(dir), nn = strlen(name);
    bool slash = dn && dir[dn - 1] == '/';
    char *p = malloc(dn + nn + 2);
    if (!p) return NULL;
    memcpy(p, dir, dn);
    if (!slash) p[dn++] = '/';
    memcpy(p + dn, name, nn + 1);
    return p;
}

static int walk_dir(pp_walk_list *l, const char *dir, const char *rel, const pp_walk_opts *o,
                    ancestor *anc, unsigned depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "pickleproof: %s: cannot read directory: %s\n", dir, strerror(errno));
        l->errors++;
        return 0;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = -2;
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -2;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *path = join(dir, names[i]);
        char *r = rel ? join(rel, names[i]) : strdup(names[i]);
        if (!path || !r) {
            free(path);
            free(r);
            rc = -2;
            break;
        }
        struct stat sb;
        int sr = o->follow_symlinks ? stat(path, &sb) : lstat(path, &sb);
        if (sr != 0) {
            fprintf(stderr, "pickleproof: %s: %s\n", path, strerror(errno));
            l->errors++;
        } else if (S_ISLNK(sb.st_mode)) {
            l->excluded++; /* not followed: it may point anywhere */
        } else if (S_ISDIR(sb.st_mode)) {
            bool vcs = strcmp(names[i], ".git") == 0 || strcmp(names[i], ".hg") == 0 ||
                       strcmp(names[i], ".svn") == 0;
            bool loop = false;
            for (unsigned k = 0; k <= depth; k++)
                loop |= anc[k].dev == sb.st_dev && anc[k].ino == sb.st_ino;
            if (vcs || any_match(o->exclude, o->nexclude, r)) {
                /* pruned as a whole */
            } else if (loop) {
                fprintf(stderr, "pickleproof: %s: directory loop (a link to its own ancestor)\n",
                        path);
                l->errors++;
            } else if (depth + 1 >= MAX_DEPTH) {
                fprintf(stderr, "pickleproof: %s: more than %d directory levels\n", path,
                        MAX_DEPTH);
                l->errors++;
            } else {
                anc[depth + 1].dev = sb.st_dev;
                anc[depth + 1].ino = sb.st_ino;
                rc = walk_dir(l, path, r, o, anc, depth + 1);
            }
        } else if (S_ISREG(sb.st_mode)) {
            if (any_match(o->exclude, o->nexclude, r) ||
                (o->ninclude && !any_match(o->include, o->ninclude, r)))
                l->excluded++;
            else
                rc = push(l, path, false);
        } else {
            l->excluded++; /* FIFOs, sockets and devices: reading them could block or never end */
        }
        free(path);
        free(r);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int pp_walk_add(pp_walk_list *l, const char *arg, const pp_walk_opts *o)
{
    if (strcmp(arg, "-") == 0) return push(l, arg, true);
    struct stat sb;
    /* a path that cannot be looked at is scanned anyway: its report (verdict error, io-error)
     * says why, in every output format */
    if (stat(arg, &sb) != 0 || !S_ISDIR(sb.st_mode)) return push(l, arg, true);
    ancestor anc[MAX_DEPTH + 1];
    anc[0].dev = sb.st_dev;
    anc[0].ino = sb.st_ino;
    return walk_dir(l, arg, NULL, o, anc, 0);
}

/* ---- content sniffing ----------------------------------------------------------------------- */

/* Opcodes that fail on an empty stack, an empty memo or without a MARK, before they import,
 * call or build anything, in both CPython unpicklers: a file starting with one of them is not
 * loadable as a pickle (README text starting "untrusted comment:", "def", "{" ...). INST is not
 * here: the pure-Python unpickler imports its class before it looks for the MARK. */
static bool fails_first(uint8_t op)
{
    static const char text_ops[] = ".012QRabdeghjlopqrstu";
    if (op != 0 && memchr(text_ops, op, sizeof text_ops - 1)) return true;
    switch (op) {
    case 0x81: /* NEWOBJ */
    case 0x85: /* TUPLE1..3 */
    case 0x86:
    case 0x87:
    case 0x90: /* ADDITEMS */
    case 0x91: /* FROZENSET */
    case 0x92: /* NEWOBJ_EX */
    case 0x93: /* STACK_GLOBAL */
    case 0x94: /* MEMOIZE */
    case 0x98: /* READONLY_BUFFER */
        return true;
    default:
        return false;
    }
}

static ssize_t read_at(int fd, uint8_t *p, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, p + got, n - got, off + (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

int pp_walk_sniff(const char *path)
{
    enum { HEAD = 512, TAIL = 65557 };
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return -1;
    }
    uint8_t head[HEAD];
    ssize_t hn = read_at(fd, head, sizeof head, 0);
    int res = -1;
    if (hn >= 0) {
        const pp_opdef *op = hn > 0 ? pp_vm_opdef(head[0]) : NULL;
        res = hn > 0 && (pp_detect(head, (size_t)hn) != PP_CT_PICKLE ||
                         (op && op->name && !fails_first(head[0])));
    }
    if (res == 0 && sb.st_size > HEAD) {
        /* a zip (torch.load) may carry anything in front of its central directory */
        size_t tn = sb.st_size > TAIL ? (size_t)TAIL : (size_t)sb.st_size;
        uint8_t *tail = malloc(tn);
        ssize_t k = tail ? read_at(fd, tail, tn, (off_t)((size_t)sb.st_size - tn)) : -1;
        if (k < 0)
            res = -1;
        else if (k >= 22) {
            for (size_t i = (size_t)k - 22 + 1; i-- > 0 && res == 0;)
                res = tail[i] == 'P' && tail[i + 1] == 'K' && tail[i + 2] == 5 && tail[i + 3] == 6;
        }
        free(tail);
    }
    close(fd);
    return res;
}
