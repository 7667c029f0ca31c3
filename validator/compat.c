/* find_class's _compat_pickle step: NAME_MAPPING wins, IMPORT_MAPPING applies only when it missed
 * (Lib/pickle.py Unpickler.find_class and _pickle.c agree). Names from the stream are arbitrary
 * bytes with a length, so nothing here assumes NUL termination of the inputs. */
#include "compat.h"

#include <string.h>

/* Defined in the generated compat_tables.c, sorted bytewise by key. */
extern const char *const pp_compat_name_map[][4];
extern const size_t pp_compat_name_map_len;
extern const char *const pp_compat_import_map[][2];
extern const size_t pp_compat_import_map_len;

/* Orders s[0..n) against the table string t as memcmp on bytes then length, the generator's
 * sort order, so an embedded NUL or a prefix never compares equal. */
static int cmp(const char *s, size_t n, const char *t)
{
    size_t tn = strlen(t);
    int c = n && tn ? memcmp(s, t, n < tn ? n : tn) : 0;
    if (c) return c;
    return n < tn ? -1 : n > tn;
}

int pp_compat_map(const char *module, size_t modlen, const char *name, size_t namelen,
                  const char **out_module, size_t *out_modlen, const char **out_name,
                  size_t *out_namelen)
{
    *out_module = module;
    *out_modlen = modlen;
    *out_name = name;
    *out_namelen = namelen;

    size_t lo = 0, hi = pp_compat_name_map_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *const *row = pp_compat_name_map[mid];
        int c = cmp(module, modlen, row[0]);
        if (!c) c = cmp(name, namelen, row[1]);
        if (!c) {
            *out_module = row[2];
            *out_modlen = strlen(row[2]);
            *out_name = row[3];
            *out_namelen = strlen(row[3]);
            return 1;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }

    lo = 0;
    hi = pp_compat_import_map_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *const *row = pp_compat_import_map[mid];
        int c = cmp(module, modlen, row[0]);
        if (!c) {
            *out_module = row[1];
            *out_modlen = strlen(row[1]);
            return 1;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}
