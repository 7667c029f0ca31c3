/* JSON writers for reports (DESIGN.md "Verdicts, exit codes, JSON"). Everything a file can
 * influence goes through pp_buf_json_str, so hostile names stay valid JSON. */
#include "report.h"

#include "vm.h"

#include <inttypes.h>
#include <string.h>

static void json_cstr(pp_buf *b, const char *s)
{
    if (s)
        pp_buf_json_str(b, s, strlen(s));
    else
        pp_buf_puts(b, "null");
}

/* pp_error holds fixed arrays that a careless writer may have filled to the brim. */
static void json_fixed(pp_buf *b, const char *s, size_t cap, int empty_is_null)
{
    size_t n = strnlen(s, cap);
    if (!n && empty_is_null)
        pp_buf_puts(b, "null");
    else
        pp_buf_json_str(b, s, n);
}

static void json_key(pp_buf *b, const char *k)
{
    pp_buf_printf(b, "\"%s\":", k);
}

static void json_u64(pp_buf *b, const char *k, uint64_t v)
{
    pp_buf_printf(b, "\"%s\":%" PRIu64, k, v);
}

static void json_finding(pp_buf *b, const pp_finding *f)
{
    pp_buf_putc(b, '{');
    json_key(b, "rule");
    json_cstr(b, f->rule);
    pp_buf_putc(b, ',');
    json_key(b, "severity");
    json_cstr(b, f->severity);
    pp_buf_putc(b, ',');
    json_key(b, "global");
    json_cstr(b, f->global);
    pp_buf_putc(b, ',');
    json_key(b, "opcode");
    json_cstr(b, f->opcode);
    pp_buf_putc(b, ',');
    json_u64(b, "offset", f->offset);
    pp_buf_putc(b, ',');
    json_key(b, "stream");
    json_cstr(b, f->stream);
    pp_buf_putc(b, ',');
    json_key(b, "message");
    json_cstr(b, f->message ? f->message : "");
    pp_buf_putc(b, '}');
}

static void json_error(pp_buf *b, const pp_error *e)
{
    if (e->code == PP_OK) {
        pp_buf_puts(b, "null");
        return;
    }
    pp_buf_putc(b, '{');
    json_key(b, "name");
    json_cstr(b, pp_errname(e->code));
    pp_buf_putc(b, ',');
    json_u64(b, "offset", e->offset);
    pp_buf_putc(b, ',');
    json_key(b, "opcode");
    json_cstr(b, pp_vm_opname(e->opcode));
    pp_buf_putc(b, ',');
    json_key(b, "limit");
    json_cstr(b, e->code == PP_E_LIMIT && e->limit >= 0 && e->limit < PP_LIMIT__COUNT
                     ? pp_limit_name((pp_limit_id)e->limit)
                     : NULL);
    pp_buf_putc(b, ',');
    json_key(b, "stream");
    json_fixed(b, e->stream, sizeof e->stream, 1);
    pp_buf_putc(b, ',');
    json_key(b, "message");
    json_fixed(b, e->msg, sizeof e->msg, 0);
    pp_buf_putc(b, '}');
}

static void json_strings(pp_buf *b, char *const *v, size_t n)
{
    pp_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) pp_buf_putc(b, ',');
        json_cstr(b, v[i] ? v[i] : "");
    }
    pp_buf_putc(b, ']');
}

/* Signatures are not wired into reports yet; the verdict is all we know. */
static const char *signature_status(pp_verdict v)
{
    switch (v) {
    case PP_VERDICT_UNSIGNED:
        return "missing";
    case PP_VERDICT_BAD_SIGNATURE:
        return "invalid";
    default:
        return "not-checked";
    }
}

pp_err pp_report_json(const pp_report *r, pp_buf *b)
{
    pp_buf_putc(b, '{');
    json_key(b, "path");
    json_cstr(b, r->path ? r->path : "<memory>");
    pp_buf_putc(b, ',');
    json_key(b, "verdict");
    json_cstr(b, pp_verdict_name(r->verdict));
    pp_buf_putc(b, ',');
    json_key(b, "container");
    json_cstr(b, r->container ? r->container : "pickle");
    pp_buf_putc(b, ',');
    json_u64(b, "bytes", r->bytes);
    pp_buf_putc(b, ',');
    json_u64(b, "streams", (uint64_t)r->nstreams);
    pp_buf_puts(b, ",\"findings\":[");
    for (size_t i = 0; i < r->nfindings; i++) {
        if (i) pp_buf_putc(b, ',');
        json_finding(b, &r->findings[i]);
    }
    pp_buf_puts(b, "],");
    json_key(b, "globals");
    json_strings(b, r->globals, r->nglobals);
    pp_buf_putc(b, ',');
    json_key(b, "error");
    json_error(b, &r->error);
    pp_buf_puts(b, ",\"signature\":{\"status\":");
    json_cstr(b, r->sig_status ? r->sig_status : signature_status(r->verdict));
    if (r->sig_keyid[0]) {
        pp_buf_puts(b, ",\"key_id\":");
        json_cstr(b, r->sig_keyid);
    }
    if (r->sig_comment) {
        pp_buf_puts(b, ",\"trusted_comment\":");
        pp_buf_json_str(b, r->sig_comment, strlen(r->sig_comment));
    }
    if (r->sig_reason) {
        pp_buf_puts(b, ",\"reason\":");
        pp_buf_json_str(b, r->sig_reason, strlen(r->sig_reason));
    }
    pp_buf_puts(b, "},");
    json_key(b, "sandbox");
    json_cstr(b, r->sandbox ? r->sandbox : "off");
    pp_buf_putc(b, ',');
    json_key(b, "policy");
    json_strings(b, r->policies, r->npolicies);
    pp_buf_puts(b, ",\"arrays\":[");
    for (size_t i = 0; i < r->narrays; i++) {
        const pp_array_region *a = &r->arrays[i];
        if (i)
            pp_buf_putc(b, ',');
        pp_buf_putc(b, '{');
        json_key(b, "where");
        pp_buf_json_str(b, a->where, strlen(a->where));
        pp_buf_printf(b, ",\"offset\":%llu,\"file_offset\":", (unsigned long long)a->offset);
        if (a->file_offset == PP_NO_OFFSET)
            pp_buf_puts(b, "null");
        else
            pp_buf_printf(b, "%llu", (unsigned long long)a->file_offset);
        pp_buf_printf(b, ",\"nbytes\":%llu,", (unsigned long long)a->nbytes);
        json_key(b, "dtype");
        pp_buf_json_str(b, a->dtype, strnlen(a->dtype, sizeof a->dtype));
        pp_buf_puts(b, ",\"shape\":[");
        for (uint32_t k = 0; k < a->ndim && k < PP_MAX_NDIM; k++)
            pp_buf_printf(b, "%s%llu", k ? "," : "", (unsigned long long)a->shape[k]);
        pp_buf_printf(b, "],\"order\":\"%c\"}", a->order == 'F' ? 'F' : 'C');
    }
    pp_buf_puts(b, "]}");
    return pp_buf_ok(b) ? PP_OK : PP_E_NOMEM;
}

static pp_err flush(pp_buf *b, FILE *f)
{
    pp_err e = PP_OK;
    if (!pp_buf_ok(b))
        e = PP_E_NOMEM;
    else if (b->n && fwrite(b->p, 1, b->n, f) != b->n)
        e = PP_E_IO;
    pp_buf_free(b);
    return e;
}

pp_err pp_report_write_json(const pp_report *r, FILE *f)
{
    pp_buf b;
    pp_buf_init(&b);
    pp_report_json(r, &b);
    return flush(&b, f);
}

pp_err pp_report_write_jsonl(const pp_report *r, FILE *f)
{
    pp_buf b;
    pp_buf_init(&b);
    pp_report_json(r, &b);
    pp_buf_putc(&b, '\n');
    return flush(&b, f);
}

/* ---- the document ------------------------------------------------------------------------ */

static void doc_write(pp_report_doc *d, pp_buf *b)
{
    pp_err e = flush(b, d->f);
    if (e && d->err == PP_OK) d->err = e;
}

void pp_report_doc_begin(pp_report_doc *d, FILE *f)
{
    memset(d, 0, sizeof *d);
    d->f = f;
    d->err = PP_OK;
    pp_buf b;
    pp_buf_init(&b);
    pp_buf_printf(&b, "{\"tool\":\"pickleproof\",\"version\":\"%s\",\"files\":[", PP_VERSION);
    doc_write(d, &b);
}

pp_err pp_report_doc_add(pp_report_doc *d, const pp_report *r)
{
    pp_buf b;
    pp_buf_init(&b);
    /* one file per line keeps big documents diffable and greppable */
    pp_buf_puts(&b, d->nfiles ? ",\n" : "\n");
    pp_report_json(r, &b);
    doc_write(d, &b);
    d->nfiles++;
    d->bytes += r->bytes;
    unsigned v = (unsigned)r->verdict;
    d->counts[v <= PP_VERDICT_ERROR ? v : PP_VERDICT_ERROR]++;
    return d->err;
}

static pp_err doc_end(pp_report_doc *d, bool extended, size_t skipped, double seconds)
{
    pp_buf b;
    pp_buf_init(&b);
    pp_buf_printf(&b, "%s],\"summary\":{\"files\":%zu", d->nfiles ? "\n" : "", d->nfiles);
    for (unsigned v = 0; v <= PP_VERDICT_ERROR; v++)
        pp_buf_printf(&b, ",\"%s\":%zu", pp_verdict_name((pp_verdict)v), d->counts[v]);
    if (extended)
        pp_buf_printf(&b, ",\"skipped\":%zu,\"bytes\":%" PRIu64 ",\"seconds\":%.3f", skipped,
                      d->bytes, seconds >= 0 ? seconds : 0.0);
    pp_buf_puts(&b, "}}\n");
    doc_write(d, &b);
    if (d->err == PP_OK && fflush(d->f) != 0) d->err = PP_E_IO;
    return d->err;
}

pp_err pp_report_doc_end(pp_report_doc *d)
{
    return doc_end(d, false, 0, 0);
}

pp_err pp_report_doc_end_ex(pp_report_doc *d, size_t skipped, double seconds)
{
    return doc_end(d, true, skipped, seconds);
}

pp_err pp_report_write_json_doc(const pp_report *const *reports, size_t n, FILE *f)
{
    pp_report_doc d;
    pp_report_doc_begin(&d, f);
    for (size_t i = 0; i < n; i++)
        pp_report_doc_add(&d, reports[i]);
    return pp_report_doc_end(&d);
}
