/* A capped bump allocator for untrusted object graphs: one call frees everything, so deep or
 * cyclic graphs never need a recursive free. The cap is the "graph-memory" limit. */
#ifndef PP_ARENA_H
#define PP_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct pp_arena_chunk pp_arena_chunk;

typedef struct pp_arena {
    pp_arena_chunk *head;
    uint8_t *cur;
    uint8_t *end;
    size_t used; /* bytes handed out plus chunk overhead, checked against cap */
    size_t cap;
    void *last;       /* most recent allocation, for in-place growth */
    size_t last_size;
} pp_arena;

void pp_arena_init(pp_arena *a, size_t cap);
/* Returns 8-byte aligned memory, or NULL when the cap is reached or malloc fails
 * (pp_arena_over_cap tells which). */
void *pp_arena_alloc(pp_arena *a, size_t n);
void *pp_arena_zalloc(pp_arena *a, size_t n);
/* Grows `p` (of old_n bytes) to new_n, in place when it is the most recent allocation. */
void *pp_arena_grow(pp_arena *a, void *p, size_t old_n, size_t new_n);
char *pp_arena_strndup(pp_arena *a, const char *s, size_t n);
int pp_arena_over_cap(const pp_arena *a, size_t n);
void pp_arena_free(pp_arena *a);

/* Test hook: fail the Nth allocation (1-based) from now on; 0 disables. Process-wide. */
void pp_alloc_fail_at(uint64_t n);
/* malloc/realloc wrappers every module uses, so allocation-failure injection reaches all. */
void *pp_malloc(size_t n);
void *pp_calloc(size_t n, size_t m);
void *pp_realloc(void *p, size_t n);
void pp_free(void *p);
char *pp_strdup(const char *s);

#endif
