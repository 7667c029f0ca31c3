#include "arena.h"

#include <stdlib.h>
#include <string.h>

/* Allocation-failure injection: every allocation in the library goes through pp_malloc & co. */
static uint64_t fail_at;
static uint64_t alloc_count;

void pp_alloc_fail_at(uint64_t n)
{
    fail_at = n;
    alloc_count = 0;
}

static int should_fail(void)
{
    if (!fail_at)
        return 0;
    return ++alloc_count >= fail_at;
}

void *pp_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *pp_calloc(size_t n, size_t m)
{
    return should_fail() ? NULL : calloc(n ? n : 1, m ? m : 1);
}

void *pp_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void pp_free(void *p)
{
    free(p);
}

char *pp_strdup(const char *s)
{
    size_t n = strlen(s);
    char *d = pp_malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

struct pp_arena_chunk {
    pp_arena_chunk *next;
    size_t size;
    max_align_t align[]; /* payload */
};

#define CHUNK_MIN ((size_t)64 << 10)
#define CHUNK_MAX ((size_t)16 << 20)

void pp_arena_init(pp_arena *a, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->cap = cap;
}

int pp_arena_over_cap(const pp_arena *a, size_t n)
{
    return n > a->cap || a->used > a->cap - n;
}

static void *new_chunk(pp_arena *a, size_t n)
{
    /* Chunks grow with use so a big graph costs few mallocs and a small one little memory. */
    size_t size = a->used / 4;
    if (size < CHUNK_MIN)
        size = CHUNK_MIN;
    if (size > CHUNK_MAX)
        size = CHUNK_MAX;
    if (size < n)
        size = n;
    if (size > SIZE_MAX - sizeof(pp_arena_chunk))
        return NULL;
    if (pp_arena_over_cap(a, size + sizeof(pp_arena_chunk))) {
        /* Near the cap, take only what this request needs. */
        size = n;
        if (pp_arena_over_cap(a, size + sizeof(pp_arena_chunk)))
            return NULL;
    }
    pp_arena_chunk *c = pp_malloc(sizeof(pp_arena_chunk) + size);
    if (!c)
        return NULL;
    c->next = a->head;
    c->size = size;
    a->head = c;
    a->used += size + sizeof(pp_arena_chunk);
    a->cur = (uint8_t *)c->align;
    a->end = a->cur + size;
    return a->cur;
}

void *pp_arena_alloc(pp_arena *a, size_t n)
{
    if (n > SIZE_MAX - 7)
        return NULL;
    n = (n + 7) & ~(size_t)7;
    if (!n)
        n = 8;
    if ((size_t)(a->end - a->cur) < n || !a->cur) {
        if (!new_chunk(a, n))
            return NULL;
    }
    void *p = a->cur;
    a->cur += n;
    a->last = p;
    a->last_size = n;
    return p;
}

void *pp_arena_zalloc(pp_arena *a, size_t n)
{
    void *p = pp_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *pp_arena_grow(pp_arena *a, void *p, size_t old_n, size_t new_n)
{
    if (!p)
        return pp_arena_alloc(a, new_n);
    if (new_n <= old_n)
        return p;
    if (p == a->last) {
        size_t need = (new_n + 7) & ~(size_t)7;
        if (need >= new_n && (size_t)(a->end - (uint8_t *)p) >= need) {
            a->cur = (uint8_t *)p + need;
            a->last_size = need;
            return p;
        }
    }
    void *q = pp_arena_alloc(a, new_n);
    if (q)
        memcpy(q, p, old_n);
    return q;
}

char *pp_arena_strndup(pp_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *d = pp_arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void pp_arena_free(pp_arena *a)
{
    pp_arena_chunk *c = a->head;
    while (c) {
        pp_arena_chunk *next = c->next;
        pp_free(c);
        c = next;
    }
    memset(a, 0, sizeof *a);
}
