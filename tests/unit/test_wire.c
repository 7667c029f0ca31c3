/* The sandbox result wire format: what the child encodes the parent decodes to the same report,
 * and what an exploited child could send instead (every truncation, every bit flip, lying counts
 * and lengths, regions outside the input, globals the policy refuses) is rejected or re-judged,
 * never trusted. */
#include "../../sandbox/wire.h"

#include "arena.h"
#include "report.h"
#include "scan.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pp_policy *policy;

/* A report with every kind of field the wire carries. */
static pp_report *sample_report(pp_wire_global *g)
{
    pp_report *r = pp_report_new("x.pkl");
    r->bytes = 1000;
    r->nstreams = 2;
    pp_report_set_container(r, "zip");
    pp_report_add_finding(r, "global-not-allowed", "critical", "posix.system", 'c', 7, "pickle",
                          "global %s is not allowed", "posix.system");
    pp_report_add_finding(r, "trailing-data", "medium", NULL, -1, 900, NULL, "tail");
    pp_report_add_global(r, "posix", 5, "system", 6);
    pp_report_add_global(r, "collections", 11, "OrderedDict", 11);
    g[0] = (pp_wire_global){"posix", "system", 5, 6};
    g[1] = (pp_wire_global){"collections", "OrderedDict", 11, 11};
    pp_fail(&r->error, PP_E_TRUNCATED, 950, 0xff, "truncated at %d", 950);
    pp_error_set_stream(&r->error, "pickle#1");
    r->arrays = pp_calloc(4, sizeof *r->arrays);
    r->narrays = 1;
    r->arrays[0].where = pp_strdup("x.pkl!data/0");
    r->arrays[0].offset = 10;
    r->arrays[0].file_offset = 100;
    r->arrays[0].nbytes = 800;
    snprintf(r->arrays[0].dtype, sizeof r->arrays[0].dtype, "<f8");
    r->arrays[0].ndim = 2;
    r->arrays[0].shape[0] = 10;
    r->arrays[0].shape[1] = 10;
    r->arrays[0].order = 'C';
    pp_report_decide(r);
    return r;
}

static pp_err decode(const pp_buf *b, uint64_t input_len, pp_report **out, pp_wire_result *res)
{
    pp_report *r = pp_report_new("x.pkl");
    pp_error why;
    pp_error_clear(&why);
    pp_err rc = pp_wire_decode((const uint8_t *)b->p, b->n, input_len, policy, r, res, &why);
    if (out && rc == PP_OK)
        *out = r;
    else
        pp_report_free(r);
    return rc;
}

static void test_roundtrip(void)
{
    pp_wire_global g[2];
    pp_report *r = sample_report(g);
    pp_buf b;
    pp_buf_init(&b);
    pp_wire_encode(&b, PP_OK, r, g);
    CHECK(pp_buf_ok(&b));
    pp_report *d = NULL;
    pp_wire_result res;
    CHECK(decode(&b, 1000, &d, &res) == PP_OK);
    if (d) {
        CHECK(res.claimed_verdict == (int)r->verdict);
        CHECK(strcmp(d->container, "zip") == 0 && d->nstreams == 2);
        CHECK(d->nfindings == 2 && strcmp(d->findings[0].rule, "global-not-allowed") == 0);
        CHECK(d->findings[0].opcode && strcmp(d->findings[0].opcode, "GLOBAL") == 0);
        CHECK(d->findings[1].global == NULL && d->findings[1].stream == NULL);
        CHECK(d->nglobals == 2 && strcmp(d->globals[1], "collections.OrderedDict") == 0);
        CHECK(d->error.code == PP_E_TRUNCATED && d->error.opcode == 0xff &&
              d->error.offset == 950 && strcmp(d->error.stream, "pickle#1") == 0);
        CHECK(d->narrays == 1 && d->arrays[0].ndim == 2 && d->arrays[0].shape[1] == 10 &&
              strcmp(d->arrays[0].where, "x.pkl!data/0") == 0);
        /* posix.system has no permission: counted for the parent's re-check */
        CHECK(res.denied_globals == 1 && strcmp(res.denied_first, "posix.system") == 0);
        pp_report_free(d);
    }
    /* the array must lie inside the input the parent holds */
    CHECK(decode(&b, 899, NULL, &res) == PP_E_SANDBOX_ERROR);
    pp_buf_free(&b);
    pp_report_free(r);
}

static void test_failed_scan(void)
{
    pp_buf b;
    pp_buf_init(&b);
    pp_wire_encode(&b, PP_E_NOMEM, NULL, NULL);
    pp_wire_result res;
    CHECK(decode(&b, 5, NULL, &res) == PP_OK && res.scan_rc == PP_E_NOMEM);
    pp_buf_put(&b, "x", 1); /* nothing may follow */
    CHECK(decode(&b, 5, NULL, &res) == PP_E_SANDBOX_ERROR);
    pp_buf_free(&b);
}

static void test_truncations_and_flips(void)
{
    pp_wire_global g[2];
    pp_report *r = sample_report(g);
    pp_buf b;
    pp_buf_init(&b);
    pp_wire_encode(&b, PP_OK, r, g);
    pp_report_free(r);
    pp_wire_result res;
    int bad = 0;
    for (size_t n = 0; n < b.n; n++) {
        pp_buf t = {.p = b.p, .n = n};
        if (decode(&t, 1000, NULL, &res) != PP_E_SANDBOX_ERROR) bad++;
    }
    CHECKF(bad == 0, "%d truncations accepted", bad);
    /* every bit flip: decodes or is rejected, never crashes (ASan watches); a flip inside the
     * header or a length must be rejected */
    int accepted = 0;
    for (size_t i = 0; i < b.n; i++)
        for (int bit = 0; bit < 8; bit++) {
            b.p[i] ^= (char)(1 << bit);
            pp_err rc = decode(&b, 1000, NULL, &res);
            CHECK(rc == PP_OK || rc == PP_E_SANDBOX_ERROR);
            accepted += rc == PP_OK;
            if (i < PP_WIRE_HEADER && rc == PP_OK)
                CHECKF(0, "header flip at %zu bit %d accepted", i, bit);
            b.p[i] ^= (char)(1 << bit);
        }
    CHECK(accepted < (int)(b.n * 8));
    pp_buf_free(&b);
}

static void put32(pp_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    pp_buf_put(b, t, 4);
}

static void test_lies(void)
{
    pp_wire_result res;
    /* a body length that claims more than was sent */
    pp_buf b;
    pp_buf_init(&b);
    pp_buf_put(&b, "PPSR\x01\x00\x00\x00", 8);
    put32(&b, 0xffffffffu);
    put32(&b, 0);
    CHECK(decode(&b, 0, NULL, &res) == PP_E_SANDBOX_ERROR);
    pp_buf_free(&b);
    /* a huge finding count in a small frame */
    pp_report *r = pp_report_new(NULL);
    r->bytes = 3;
    pp_buf_init(&b);
    pp_wire_encode(&b, PP_OK, r, NULL);
    pp_report_free(r);
    CHECK(decode(&b, 3, NULL, &res) == PP_OK);
    CHECK(decode(&b, 4, NULL, &res) == PP_E_SANDBOX_ERROR); /* scanned other bytes */
    /* the finding count sits 12 bytes before the end (findings, globals, arrays: u32 each) */
    size_t at = b.n - 12;
    b.p[at + 3] = 0x7f;
    CHECK(decode(&b, 3, NULL, &res) == PP_E_SANDBOX_ERROR);
    b.p[at + 3] = 0;
    /* an unknown version, an unknown magic */
    b.p[4] = 2;
    CHECK(decode(&b, 3, NULL, &res) == PP_E_SANDBOX_ERROR);
    b.p[4] = 1;
    b.p[0] = 'X';
    CHECK(decode(&b, 3, NULL, &res) == PP_E_SANDBOX_ERROR);
    pp_buf_free(&b);
    /* a severity the verdict logic does not know */
    r = pp_report_new(NULL);
    pp_report_add_finding(r, "x", "harmless", NULL, -1, 0, NULL, "m");
    pp_buf_init(&b);
    pp_wire_encode(&b, PP_OK, r, NULL);
    pp_report_free(r);
    CHECK(decode(&b, 0, NULL, &res) == PP_E_SANDBOX_ERROR);
    pp_buf_free(&b);
    /* an allowed global is not counted */
    r = pp_report_new(NULL);
    pp_report_add_global(r, "collections", 11, "OrderedDict", 11);
    pp_wire_global g = {"collections", "OrderedDict", 11, 11};
    pp_buf_init(&b);
    pp_wire_encode(&b, PP_OK, r, &g);
    pp_report_free(r);
    CHECK(decode(&b, 0, NULL, &res) == PP_OK && res.denied_globals == 0);
    pp_buf_free(&b);
}

int main(void)
{
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&policy) || pp_policy_add_builtin(policy, "default", &err)) return 1;
    test_roundtrip();
    test_failed_scan();
    test_truncations_and_flips();
    test_lies();
    pp_policy_free(policy);
    return tap_done();
}
