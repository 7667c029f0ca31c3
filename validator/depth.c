/* The nesting check: heights of the graph by an iterative post-order walk with memoized heights,
 * so shared subgraphs (memo bombs) cost once and deep chains never touch the C stack. */
#include "arena.h"
#include "err.h"
#include "graph.h"

#include <string.h>

#define IN_PROGRESS UINT32_MAX

typedef struct frame {
    pp_node *n;
    size_t next;            /* index of the next direct child */
    const pp_event *eff;    /* next effect whose operands to visit (after direct children) */
    unsigned part;          /* 0: its a, 1: its b */
    bool in_effects;
    uint32_t best;          /* max child height so far */
} frame;

static size_t direct_count(const pp_node *n)
{
    switch (n->kind) {
    case PP_N_TUPLE:
    case PP_N_LIST:
    case PP_N_DICT:
    case PP_N_SET:
    case PP_N_FROZENSET: return n->u.seq.n;
    case PP_N_CALL:
    case PP_N_NEW: return 1 + n->u.call.nargs + 2 * n->u.call.nkw;
    case PP_N_PERSID: return 1;
    default: return 0;
    }
}

static const pp_val *direct(const pp_node *n, size_t i)
{
    switch (n->kind) {
    case PP_N_CALL:
    case PP_N_NEW:
        if (i == 0)
            return &n->u.call.fn;
        if (i - 1 < n->u.call.nargs)
            return &n->u.call.args[i - 1];
        return &n->u.call.kw[i - 1 - n->u.call.nargs];
    case PP_N_PERSID: return &n->u.persid.pid;
    default: return &n->u.seq.v[i];
    }
}

/* The next child of the frame's node: direct children, then the operands of the effects on the
 * node (BUILD state, mutation arguments), which become part of the object. */
static const pp_val *next_child(frame *f)
{
    if (!f->in_effects) {
        if (f->next < direct_count(f->n))
            return direct(f->n, f->next++);
        f->in_effects = true;
        f->eff = f->n->effects;
        f->part = 0;
    }
    while (f->eff) {
        const pp_event *e = f->eff;
        if (f->part == 0) {
            f->part = 1;
            return &e->a;
        }
        f->eff = e->next_on_node;
        f->part = 0;
        return &e->b;
    }
    return NULL;
}

static int walk(const pp_val *root, frame **stack, size_t *cap, uint64_t limit, pp_error *err)
{
    if (root->kind != PP_V_NODE || root->u.node->height)
        return PP_OK;
    size_t sp = 0;
    (*stack)[sp++] = (frame){.n = root->u.node};
    root->u.node->height = IN_PROGRESS;
    while (sp) {
        frame *f = &(*stack)[sp - 1];
        const pp_val *c = next_child(f);
        if (!c) {
            /* done: height = 1 + max child height */
            f->n->height = f->best + 1 + 1;
            uint32_t h = f->n->height - 1;
            sp--;
            if (sp) {
                frame *p = &(*stack)[sp - 1];
                if (h > p->best)
                    p->best = h;
            }
            continue;
        }
        if (c->kind != PP_V_NODE)
            continue;
        pp_node *n = c->u.node;
        if (n->height == IN_PROGRESS)
            continue; /* a cycle: Python keeps these as references, not depth */
        if (n->height) {
            if (n->height - 1 > f->best)
                f->best = n->height - 1;
            continue;
        }
        if (sp >= limit) {
            pp_fail_limit(err, PP_LIMIT_NESTING, n->offset, n->opcode, limit);
            return PP_E_LIMIT;
        }
        if (sp == *cap) {
            size_t nc = *cap * 2;
            frame *ns = pp_realloc(*stack, nc * sizeof *ns);
            if (!ns)
                return pp_fail(err, PP_E_NOMEM, n->offset, -1, "out of memory checking depth");
            *stack = ns;
            *cap = nc;
        }
        n->height = IN_PROGRESS;
        (*stack)[sp++] = (frame){.n = n};
    }
    return PP_OK;
}

int pp_graph_check_depth(const pp_val *roots, size_t nroots, struct pp_event *events,
                         uint64_t limit, struct pp_error *err)
{
    size_t cap = 256;
    frame *stack = pp_malloc(cap * sizeof *stack);
    if (!stack)
        return pp_fail(err, PP_E_NOMEM, 0, -1, "out of memory checking depth");
    int rc = PP_OK;
    for (size_t i = 0; i < nroots && rc == PP_OK; i++)
        rc = walk(&roots[i], &stack, &cap, limit, err);
    for (const pp_event *e = events; e && rc == PP_OK; e = e->next) {
        pp_val nv = pp_val_node(e->node);
        rc = walk(&nv, &stack, &cap, limit, err);
    }
    pp_free(stack);
    return rc;
}
