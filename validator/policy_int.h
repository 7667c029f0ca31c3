/* The in-memory form of a loaded policy, shared by the parser (policy.c) and the rules
 * (policy_check.c). Everything a policy owns lives in its arena, freed in one call; only the
 * hash table and the name lists are separate heap arrays because they grow. */
#ifndef PP_POLICY_INT_H
#define PP_POLICY_INT_H

#include "arena.h"
#include "policy.h"

#include <stdbool.h>

/* Longest module or qualname a policy can name. Longer names in a stream cannot be allowed, so
 * lookups reject them before hashing (a hostile stream may carry megabyte-long names). */
#define PP_POLICY_MAX_NAME 512

/* Argument patterns (see policies/README.md for the syntax). */
typedef enum pp_patkind {
    PP_PAT_ANY = 1,     /* any value */
    PP_PAT_NONE,        /* None */
    PP_PAT_TRUE,        /* True */
    PP_PAT_FALSE,       /* False */
    PP_PAT_INT,         /* an int literal: u.i */
    PP_PAT_STR,         /* a str literal: u.s (UTF-8) */
    PP_PAT_BYTES,       /* a bytes literal: u.s */
    PP_PAT_T_STR,       /* any str */
    PP_PAT_T_BYTES,     /* any bytes, or a call result the policy says is bytes */
    PP_PAT_T_INT,       /* any int (bool included, as isinstance(True, int)) */
    PP_PAT_T_FLOAT,     /* any float */
    PP_PAT_T_BOOL,      /* True or False */
    PP_PAT_T_BYTEARRAY, /* a bytearray */
    PP_PAT_T_MEMORYVIEW,
    PP_PAT_T_TUPLE, /* any tuple, contents unchecked (they are judged as nodes of their own) */
    PP_PAT_T_LIST,
    PP_PAT_T_DICT,
    PP_PAT_T_SET,
    PP_PAT_T_FROZENSET,
    PP_PAT_IDENT,    /* a str that is an ASCII identifier not starting with "__" */
    PP_PAT_DTYPESTR, /* a str that is a numpy type code: [<>|=]?[A-Za-z?][0-9]*([unit])? */
    PP_PAT_CLASS,    /* a global with an unconstrained construct permission */
    PP_PAT_GLOBAL,   /* exactly the global u.g */
    PP_PAT_INSTANCE, /* an object the rules know to be an instance of the global u.g */
    PP_PAT_ALT,      /* any of u.seq.v */
    PP_PAT_TUPLE,    /* a tuple: u.seq.v element-wise, then u.seq.star for the rest if set */
    PP_PAT_LIST      /* a list, same shape */
} pp_patkind;

typedef struct pp_pat pp_pat;
struct pp_pat {
    uint8_t kind;
    const char *src; /* the pattern's own text, for messages */
    union {
        int64_t i;
        struct {
            const uint8_t *p;
            size_t n;
        } s;
        struct {
            const char *module, *name;
            uint32_t modlen, namelen;
        } g;
        struct {
            pp_pat **v;
            size_t n;
            pp_pat *star; /* PP_PAT_TUPLE/LIST: pattern for elements past v, or NULL */
        } seq;
    } u;
};

/* What a permitted call returns, as far as BUILD, mutation and argument rules care. */
typedef enum pp_result {
    PP_RES_NONE = 0, /* opaque */
    PP_RES_SELF,     /* an instance of the callee */
    PP_RES_ARG,      /* an instance of the class passed as argument resarg */
    PP_RES_BYTES,    /* a bytes object of unknown content */
    PP_RES_LATIN1    /* bytes: argument resarg (a str) encoded as latin-1 */
} pp_result;

typedef struct pp_rule {
    struct pp_rule *next;
    const pp_pat *args; /* NULL: any arguments, keyword arguments included */
    uint8_t res;        /* pp_result */
    uint32_t resarg;    /* 0-based */
    const char *origin; /* policy file and line that granted it */
    uint32_t line;
} pp_rule;

typedef struct pp_pentry {
    const char *module, *name;
    uint32_t modlen, namelen;
    uint64_t hash;
    unsigned perms;            /* PP_PERM_* bits; call and construct include reference */
    pp_rule *call, *construct; /* in load order: the first matching rule wins */
    pp_rule *call_tail, *construct_tail;
    bool construct_any; /* some construct line has no constraint */
} pp_pentry;

struct pp_policy {
    pp_arena arena;
    pp_pentry **slots; /* open addressing, power-of-two size, at most half full */
    size_t nslots, nentries;
    char **names; /* policy names in load order (arena strings), NULL-terminated */
    size_t nnames, capnames;
    char **units; /* keys of built-ins and files already loaded, so includes load once */
    size_t nunits, capunits;
};

uint64_t pp_policy_hash(const char *module, size_t modlen, const char *name, size_t namelen);
/* The entry for an exact (module, qualname), or NULL. */
const pp_pentry *pp_policy_entry(const pp_policy *p, const char *module, size_t modlen,
                                 const char *name, size_t namelen);

#endif
