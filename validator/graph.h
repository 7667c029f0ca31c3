/* The object graph the restricted VM builds: what CPython's unpickler would have built, with every
 * import, call, construction and state change kept as a node or an event to be judged.
 *
 * Values are 24-byte tagged structs copied by value on the stack and in containers. Scalars and
 * strings are immediate (strings borrow from the input or the arena); containers and every
 * effectful object are pp_node pointers into the arena, so memo GET shares them and cycles are
 * kept. Immutable scalars have no identity, as in a canonical comparison with CPython. */
#ifndef PP_GRAPH_H
#define PP_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum pp_vkind {
    PP_V_NONE = 0,
    PP_V_BOOL,   /* u.i is 0 or 1 */
    PP_V_INT,    /* u.i, fits int64 */
    PP_V_BIGINT, /* u.s: little-endian two's complement, minimal or not; n >= 1 */
    PP_V_FLOAT,  /* u.f */
    PP_V_STR,    /* u.s: valid UTF-8 (surrogates allowed, as CPython's surrogatepass) */
    PP_V_BYTES,  /* u.s */
    PP_V_NODE    /* u.node */
} pp_vkind;

struct pp_node;

/* How many values a list, dict (2 per entry) or set held once `events` events had happened:
 * what a call made at that moment saw of it. Newest first; one per batch of mutations. */
typedef struct pp_fill {
    struct pp_fill *prev;
    uint64_t events;
    size_t n;
} pp_fill;

typedef struct pp_val {
    uint8_t kind;
    uint8_t pad[3];
    uint32_t tag; /* PP_V_FLOAT: identity of the float object (for NaN keys); else 0 */
    union {
        int64_t i;
        double f;
        struct {
            const uint8_t *p;
            size_t n;
        } s;
        struct pp_node *node;
    } u;
} pp_val;

typedef enum pp_nkind {
    PP_N_TUPLE = 1,
    PP_N_LIST,
    PP_N_DICT, /* seq holds key, value, key, value... in insertion order, duplicates kept */
    PP_N_SET,
    PP_N_FROZENSET,
    PP_N_BYTEARRAY,  /* u.bytes */
    PP_N_MEMORYVIEW, /* read-only memoryview over u.view (a bytearray node) */
    PP_N_GLOBAL,     /* interned per resolved (module, name): same object for every lookup */
    PP_N_CALL,       /* callable(*args): REDUCE, INST/OBJ with arguments */
    PP_N_NEW,        /* cls.__new__(cls, *args, **kwargs): NEWOBJ(_EX), INST/OBJ without args */
    PP_N_PERSID,     /* persistent_load(pid) */
    PP_N_EXT,        /* copyreg extension code */
    PP_N_ARRAY       /* an array whose raw bytes a container located (u.array.region) */
} pp_nkind;

/* Node flags. */
#define PP_NF_UNHASHABLE 0x01u /* hash() would raise: list/dict/set/bytearray or tuple holding one */
#define PP_NF_DOTTED 0x02u     /* PP_N_GLOBAL: name was resolved as an attribute path (proto >= 4) */
#define PP_NF_RENAMED 0x04u    /* PP_N_GLOBAL: a _compat_pickle rename applied */

typedef enum pp_evkind {
    PP_EV_GLOBAL = 1, /* a lookup of node (GLOBAL, STACK_GLOBAL, INST, OBJ's class is not one) */
    PP_EV_CALL,       /* node created: PP_N_CALL */
    PP_EV_NEW,        /* node created: PP_N_NEW */
    PP_EV_BUILD,      /* BUILD on node with state a */
    PP_EV_APPEND,     /* node.append(a) */
    PP_EV_EXTEND,     /* node.extend(a) where a is a fresh list node */
    PP_EV_SETITEM,    /* node[a] = b */
    PP_EV_ADD,        /* node.add(a) */
    PP_EV_PERSID,     /* node created: PP_N_PERSID */
    PP_EV_EXT         /* node created: PP_N_EXT */
} pp_evkind;

typedef struct pp_event {
    struct pp_event *next;         /* stream order, over all nodes */
    struct pp_event *next_on_node; /* effects on the same node, in order */
    uint8_t kind;
    uint8_t opcode;
    uint32_t stream; /* index of the stream in the input */
    uint64_t offset; /* file offset of the opcode */
    struct pp_node *node;
    pp_val a, b;
} pp_event;

typedef struct pp_node {
    uint8_t kind;
    uint8_t opcode; /* the opcode that created it */
    uint16_t flags;
    uint32_t id;     /* creation order within the input, from 0 */
    uint32_t height; /* scratch for pp_graph_check_depth: 0 unseen, else height + 1 */
    uint32_t serial; /* creation order of every node, from 0 (ids number effectful ones only) */
    /* tuples: elements hash(tuple) visits, saturating (CPython does not cache it) */
    uint32_t hash_work;
    uint64_t offset; /* file offset of the creating opcode */
    pp_event *effects, *effects_tail;
    union {
        struct {
            pp_val *v;
            size_t n, cap;
            pp_fill *fills; /* list, dict, set */
        } seq; /* tuple, list, set, frozenset, dict (2 values per entry) */
        struct {
            const uint8_t *p;
            size_t n;
        } bytes; /* bytearray */
        struct pp_node *view;
        struct {
            const char *module;
            const char *name; /* qualified name; contains '.' only when PP_NF_DOTTED */
            uint32_t modlen, namelen;
            const char *raw_module; /* as written in the stream, before renames */
            const char *raw_name;
        } glob;
        struct {
            pp_val fn; /* callable (CALL) or class (NEW) */
            pp_val *args;
            size_t nargs;
            pp_val *kw; /* NEW only: key, value pairs; nkw pairs */
            size_t nkw;
        } call;
        struct {
            pp_val pid;
        } persid;
        struct {
            int64_t code;
        } ext;
        struct {
            uint64_t region; /* index into the report's arrays; UINT64_MAX: an object array */
            uint64_t start;  /* object array: offset where the stream holding it starts */
            struct pp_node *wrapper; /* the joblib wrapper it stands for (dtype, shape), or NULL */
        } array;
    } u;
} pp_node;

static inline pp_val pp_val_none(void)
{
    pp_val v = {0};
    v.kind = PP_V_NONE;
    return v;
}
static inline pp_val pp_val_node(pp_node *n)
{
    pp_val v = {0};
    v.kind = PP_V_NODE;
    v.u.node = n;
    return v;
}
static inline bool pp_val_is(const pp_val *v, pp_nkind k)
{
    return v->kind == PP_V_NODE && v->u.node->kind == k;
}

/* Python's `a == b` for hashable values, as a dict or set compares keys: numbers across
 * bool/int/float, str, bytes, tuples and frozensets by value, nodes by identity. Returns -1 when
 * the answer needs more than `depth` levels. */
int pp_val_equal(const pp_val *a, const pp_val *b, unsigned depth);
/* The depth of the deepest chain of containment reachable from `roots` (and from every event's
 * operands, via the events list starting at `events`), without recursion: PP_E_LIMIT naming
 * nesting-depth when it exceeds `limit` (10^6 nested lists load in CPython, but break everything
 * that walks them). Cycles are not depth. Uses node->height as scratch. */
struct pp_event;
struct pp_error;
int pp_graph_check_depth(const pp_val *roots, size_t nroots, struct pp_event *events,
                         uint64_t limit, struct pp_error *err);

/* true when hash(v) would raise TypeError. */
bool pp_val_unhashable(const pp_val *v);

#endif
