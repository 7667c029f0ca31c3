/* The output side of `scan`. */
#include "output.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

int pp_out_format_parse(const char *s)
{
    static const char *const names[] = {"text", "json", "jsonl", "sarif"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

double pp_out_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pp_out_begin(pp_out *o)
{
    o->started = pp_out_now();
    o->progress_ok = !o->quiet && isatty(STDERR_FILENO);
    if (o->fmt == PP_OUT_JSON) pp_report_doc_begin(&o->doc, o->f);
    if (o->fmt == PP_OUT_SARIF) pp_sarif_begin(&o->sarif, o->f);
}

static void clear_progress(pp_out *o)
{
    if (o->progress_shown) {
        fputs("\r\x1b[K", stderr);
        o->progress_shown = false;
    }
}

void pp_out_progress(pp_out *o, size_t done, size_t total)
{
    if (!o->progress_ok || done >= total) return;
    double now = pp_out_now();
    if (!(total > 50 || now - o->started > 1.0) || now - o->last_draw < 0.1) return;
    o->last_draw = now;
    enum { WIDTH = 30 };
    size_t fill = total ? done * WIDTH / total : 0;
    char bar[WIDTH + 1];
    for (size_t i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[WIDTH] = 0;
    fprintf(stderr, "\r[%s] %zu/%zu files  %.1f s\x1b[K", bar, done, total, now - o->started);
    fflush(stderr);
    o->progress_shown = true;
}

void pp_out_file(pp_out *o, const pp_report *r)
{
    /* the bar and text results may share a terminal: results must not land inside the bar */
    clear_progress(o);
    o->files++;
    o->bytes += r->bytes;
    unsigned v = (unsigned)r->verdict;
    o->counts[v <= PP_VERDICT_ERROR ? v : PP_VERDICT_ERROR]++;
    pp_err rc = PP_OK;
    switch (o->fmt) {
    case PP_OUT_TEXT:
        rc = pp_report_write_text_ex(r, o->f, o->text_flags);
        break;
    case PP_OUT_JSON:
        rc = pp_report_doc_add(&o->doc, r);
        break;
    case PP_OUT_JSONL:
        rc = pp_report_write_jsonl(r, o->f);
        break;
    case PP_OUT_SARIF:
        rc = pp_sarif_add(&o->sarif, r);
        break;
    }
    /* streamed: a consumer of jsonl (or a person) sees each file as soon as it is judged */
    if (rc != PP_OK || fflush(o->f) != 0) o->write_failed = true;
}

static void human_bytes(char *b, size_t cap, uint64_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(b, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

bool pp_out_end(pp_out *o, size_t skipped, size_t excluded, int exit_code)
{
    clear_progress(o);
    double secs = pp_out_now() - o->started;
    pp_err rc = PP_OK;
    if (o->fmt == PP_OUT_JSON) rc = pp_report_doc_end_ex(&o->doc, skipped, secs);
    if (o->fmt == PP_OUT_SARIF) rc = pp_sarif_end(&o->sarif, exit_code, exit_code != 2);
    if (rc != PP_OK || fflush(o->f) != 0 || ferror(o->f)) o->write_failed = true;
    if (o->quiet || o->fmt == PP_OUT_JSON) return !o->write_failed;
    char by[32];
    human_bytes(by, sizeof by, o->bytes);
    fprintf(stderr, "pickleproof: %zu file%s", o->files, o->files == 1 ? "" : "s");
    const char *sep = ": ";
    for (unsigned v = 0; v <= PP_VERDICT_ERROR; v++) {
        if (!o->counts[v]) continue;
        bool bad = v != PP_VERDICT_SAFE;
        fprintf(stderr, "%s%s%zu %s%s", sep, o->color_err ? (bad ? "\x1b[1;31m" : "\x1b[32m") : "",
                o->counts[v], pp_verdict_name((pp_verdict)v), o->color_err ? "\x1b[0m" : "");
        sep = ", ";
    }
    fprintf(stderr, "; %s in %.2f s", by, secs);
    if (skipped) fprintf(stderr, "; %zu skipped (not model files)", skipped);
    if (excluded) fprintf(stderr, "; %zu excluded", excluded);
    fputc('\n', stderr);
    return !o->write_failed;
}
