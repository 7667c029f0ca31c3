/* Placeholder until this container lands: refuses (never "safe") what it cannot read yet. */
#include "container.h"

pp_err pp_container_joblib(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                            const char *where)
{
    if (pp_detect(data, len) == PP_CT_PICKLE)
        return pp_container_pickle(c, data, len, base, where);
    (void)data;
    (void)len;
    pp_ctx_set_container(c, "joblib");
    return pp_ctx_error(c, PP_E_UNSUPPORTED, base == PP_NO_OFFSET ? 0 : base, where,
                        "joblib containers are not supported yet") == PP_E_NOMEM
               ? PP_E_NOMEM
               : PP_OK;
}
