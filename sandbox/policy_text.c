/* The loaded policy as one self-contained policy text, for the sandboxed child: the child cannot
 * open the policy files (or their includes), so the parent writes out the table it already
 * built. Every permission line is rewritten from its parsed form (exact `module:qualname`, the
 * argument pattern's own source text, the result), so reloading the text gives the same table:
 * the same entries, the same rules in the same order. Rule provenance (file:line) is not carried;
 * judgements do not use it. */
#include "sandbox.h"

#include "buf.h"
#include "policy_int.h"

#include <string.h>

static void put_global(pp_buf *b, const pp_pentry *e)
{
    pp_buf_put(b, e->module, e->modlen);
    pp_buf_putc(b, ':');
    pp_buf_put(b, e->name, e->namelen);
}

static void put_result(pp_buf *b, const pp_rule *r)
{
    switch (r->res) {
    case PP_RES_SELF:
        pp_buf_puts(b, " -> self");
        break;
    case PP_RES_ARG:
        pp_buf_printf(b, " -> arg%u", (unsigned)r->resarg + 1);
        break;
    case PP_RES_BYTES:
        pp_buf_puts(b, " -> bytes");
        break;
    case PP_RES_LATIN1:
        pp_buf_printf(b, " -> latin1(arg%u)", (unsigned)r->resarg + 1);
        break;
    default:
        break;
    }
}

static void put_rules(pp_buf *b, const char *kw, const pp_pentry *e, const pp_rule *r)
{
    for (; r; r = r->next) {
        pp_buf_puts(b, kw);
        put_global(b, e);
        if (r->args) {
            pp_buf_putc(b, ' ');
            pp_buf_puts(b, r->args->src);
        }
        put_result(b, r);
        pp_buf_putc(b, '\n');
    }
}

pp_err pp_sandbox_policy_text(const pp_policy *p, char **out, size_t *outn)
{
    *out = NULL;
    *outn = 0;
    pp_buf b;
    pp_buf_init(&b);
    pp_buf_puts(&b, "policy sandbox\n");
    for (size_t i = 0; p && i < p->nslots; i++) {
        const pp_pentry *e = p->slots[i];
        if (!e) continue;
        pp_buf_puts(&b, "reference ");
        put_global(&b, e);
        pp_buf_putc(&b, '\n');
        put_rules(&b, "call ", e, e->call);
        put_rules(&b, "construct ", e, e->construct);
    }
    if (!pp_buf_ok(&b)) {
        pp_buf_free(&b);
        return PP_E_NOMEM;
    }
    *outn = b.n;
    *out = pp_buf_take(&b);
    return *out ? PP_OK : PP_E_NOMEM;
}
