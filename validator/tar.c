/* Placeholder until this container lands: refuses (never "safe") what it cannot read yet. */
#include "container.h"

pp_err pp_container_tar(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                         const char *where)
{
    (void)data;
    (void)len;
    pp_ctx_set_container(c, "tar");
    return pp_ctx_error(c, PP_E_UNSUPPORTED, base == PP_NO_OFFSET ? 0 : base, where,
                        "tar containers are not supported yet") == PP_E_NOMEM
               ? PP_E_NOMEM
               : PP_OK;
}
