/* The restricted pickle VM: reads one pickle stream exactly as CPython's unpickler would, but
 * imports and calls nothing. Globals, calls, constructions, BUILDs, method-like mutations,
 * persistent ids and extension codes become nodes and events in a pp_graph for the policy to
 * judge. One table of 256 opcode definitions drives one loop; nothing recurses. */
#ifndef PP_VM_H
#define PP_VM_H

#include "arena.h"
#include "graph.h"
#include "pickleproof.h"

/* Everything the VM produced for one input (possibly several stacked streams). */
typedef struct pp_graph {
    pp_arena arena;
    pp_event *events, *events_tail; /* stream order */
    size_t nevents;
    uint32_t next_id;
    uint32_t nnodes; /* nodes made: the next serial */
    /* intern table of globals by resolved (module, name) */
    pp_node **globals;
    size_t nglobals_slots, nglobals;
} pp_graph;

pp_err pp_graph_init(pp_graph *g, uint64_t memory_cap);
void pp_graph_free(pp_graph *g);

/* The running VM as a container hook sees it (joblib reads array bytes that follow a BUILD). */
typedef struct pp_vm_io pp_vm_io;

typedef struct pp_vm_hooks {
    void *ctx;
    /* Called after every BUILD whose target is a node, once its event is recorded. May consume
     * the raw bytes that follow (pp_vm_io_take) and replace the top of the stack. */
    pp_err (*after_build)(void *ctx, pp_vm_io *io, pp_node *target, pp_val state);
} pp_vm_hooks;

/* Borrows n raw bytes at the current position, outside any frame (as joblib reads the file
 * handle directly): refused inside a frame that is not exhausted, and beyond payload-bytes. */
pp_err pp_vm_io_take(pp_vm_io *io, uint64_t n, const uint8_t **p);
/* File offset of the next unread byte. */
uint64_t pp_vm_io_offset(const pp_vm_io *io);
int pp_vm_io_protocol(const pp_vm_io *io);
pp_graph *pp_vm_io_graph(pp_vm_io *io);
/* A new graph node (PP_N_ARRAY for arrays), located at the current opcode. */
pp_node *pp_vm_io_new_node(pp_vm_io *io, pp_nkind kind);
pp_err pp_vm_io_replace_top(pp_vm_io *io, pp_val v);
/* Records an error at the current opcode (first error wins) and returns code. */
pp_err pp_vm_io_fail(pp_vm_io *io, pp_err code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

typedef struct pp_vm_options {
    pp_flavor flavor;
    pp_encoding encoding;
    const pp_limits *limits;
    const char *stream_name; /* for errors */
    uint32_t stream_index;
    bool persistent_ids; /* the loader has persistent_load (PyTorch); else PERSID fails */
    const pp_vm_hooks *hooks; /* NULL for plain pickles */
} pp_vm_options;

typedef struct pp_stream_result {
    pp_val root;        /* the object STOP returned */
    bool stopped;       /* STOP was reached */
    uint64_t start;     /* file offset of the first byte */
    uint64_t end;       /* file offset just past STOP (or of the failure) */
    int protocol;       /* the highest PROTO seen, or -1 */
    uint64_t opcodes;   /* opcodes executed */
} pp_stream_result;

/* Runs from p[0] until STOP. `base` is the file offset of p[0]. Events are appended to g even
 * when the stream then fails: CPython would have run them before failing. */
pp_err pp_vm_run(pp_graph *g, const uint8_t *p, size_t len, uint64_t base,
                 const pp_vm_options *opt, pp_stream_result *out, pp_error *err);

/* The opcode table, for tests, the fuzz dictionary and explain. */
typedef struct pp_opdef {
    const char *name; /* pickletools name, NULL for invalid bytes */
    uint8_t proto;    /* protocol that introduced it */
    uint8_t argkind;  /* PP_ARG_* */
} pp_opdef;

enum {
    PP_ARG_NONE = 0,
    PP_ARG_U1,
    PP_ARG_U2,
    PP_ARG_I4,
    PP_ARG_U4,
    PP_ARG_U8,
    PP_ARG_F8,
    PP_ARG_LINE,   /* one text line */
    PP_ARG_LINE2,  /* two text lines */
    PP_ARG_LEN1,   /* 1-byte length + payload */
    PP_ARG_LEN4,   /* 4-byte length + payload */
    PP_ARG_LEN8    /* 8-byte length + payload */
};

const pp_opdef *pp_vm_opdef(uint8_t op);
const char *pp_vm_opname(int op); /* NULL for -1 or invalid */

#endif
