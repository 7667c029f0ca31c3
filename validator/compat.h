/* _compat_pickle renames applied by find_class when the current protocol is < 3 and fix_imports
 * is on. Tables are generated from CPython's Lib/_compat_pickle.py by tools/gen_compat.py. */
#ifndef PP_COMPAT_H
#define PP_COMPAT_H

#include <stddef.h>

/* Applies NAME_MAPPING, else IMPORT_MAPPING, exactly as find_class does (one or the other).
 * Outputs point at static strings or at the inputs. Returns 1 when something was renamed. */
int pp_compat_map(const char *module, size_t modlen, const char *name, size_t namelen,
                  const char **out_module, size_t *out_modlen, const char **out_name,
                  size_t *out_namelen);

#endif
