#include "pickleproof.h"

#include <string.h>

static const char *const names[PP_LIMIT__COUNT] = {
    [PP_LIMIT_INPUT_BYTES] = "input-bytes",   [PP_LIMIT_OPCODES] = "opcodes",
    [PP_LIMIT_STACK] = "stack-depth",         [PP_LIMIT_MARKS] = "marks",
    [PP_LIMIT_MEMO] = "memo-entries",         [PP_LIMIT_NESTING] = "nesting-depth",
    [PP_LIMIT_PAYLOAD] = "payload-bytes",     [PP_LIMIT_GRAPH_MEMORY] = "graph-memory",
    [PP_LIMIT_STREAMS] = "streams",           [PP_LIMIT_INFLATED_BYTES] = "inflated-bytes",
    [PP_LIMIT_INFLATE_RATIO] = "inflate-ratio", [PP_LIMIT_ZIP_ENTRIES] = "zip-entries",
    [PP_LIMIT_ARCHIVE_DEPTH] = "archive-depth",
    [PP_LIMIT_CPU_SECONDS] = "cpu-seconds",   [PP_LIMIT_DEADLINE_MS] = "deadline-ms",
    [PP_LIMIT_SANDBOX_MEMORY] = "sandbox-memory", [PP_LIMIT_HASH_WORK] = "hash-work",
};

const char *pp_limit_name(pp_limit_id id)
{
    if ((unsigned)id >= PP_LIMIT__COUNT)
        return "unknown";
    return names[id];
}

void pp_limits_default(pp_limits *l)
{
    /* Generous enough for multi-GB checkpoints' pickles, small enough that a hostile file fails
     * fast: the graph-memory cap bounds everything the VM allocates. */
    l->v[PP_LIMIT_INPUT_BYTES] = (uint64_t)16 << 30;
    l->v[PP_LIMIT_OPCODES] = (uint64_t)1 << 32;
    l->v[PP_LIMIT_STACK] = (uint64_t)1 << 22;
    l->v[PP_LIMIT_MARKS] = (uint64_t)1 << 16;
    l->v[PP_LIMIT_MEMO] = (uint64_t)1 << 26;
    l->v[PP_LIMIT_NESTING] = 10000;
    l->v[PP_LIMIT_PAYLOAD] = (uint64_t)4 << 30;
    l->v[PP_LIMIT_GRAPH_MEMORY] = (uint64_t)2 << 30;
    l->v[PP_LIMIT_STREAMS] = 64;
    l->v[PP_LIMIT_INFLATED_BYTES] = (uint64_t)16 << 30;
    l->v[PP_LIMIT_INFLATE_RATIO] = 1000;
    l->v[PP_LIMIT_ZIP_ENTRIES] = 65536;
    l->v[PP_LIMIT_ARCHIVE_DEPTH] = 4;
    /* The sandbox's budgets: generous for a multi-GB checkpoint, finite for a hostile one. */
    l->v[PP_LIMIT_CPU_SECONDS] = 300;
    l->v[PP_LIMIT_DEADLINE_MS] = 600000;
    l->v[PP_LIMIT_SANDBOX_MEMORY] = 0;
    /* under half a second of CPython's tuple hashing (2^28 took 1.6 s); real keys are short
     * tuples: a million 3-tuple keys are 4M */
    l->v[PP_LIMIT_HASH_WORK] = (uint64_t)1 << 26;
}

pp_err pp_limits_set(pp_limits *l, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (!eq)
        return PP_E_USAGE;
    size_t nl = (size_t)(eq - assignment);
    int id = -1;
    for (int i = 0; i < PP_LIMIT__COUNT; i++)
        if (strlen(names[i]) == nl && memcmp(names[i], assignment, nl) == 0)
            id = i;
    if (id < 0)
        return PP_E_USAGE;
    const char *s = eq + 1;
    if (!*s)
        return PP_E_USAGE;
    uint64_t v = 0;
    const char *digits = s;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return PP_E_USAGE;
        v = v * 10 + d;
    }
    if (s == digits)
        return PP_E_USAGE;
    unsigned shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; s++; break;
    case 'm': case 'M': shift = 20; s++; break;
    case 'g': case 'G': shift = 30; s++; break;
    case 't': case 'T': shift = 40; s++; break;
    default: break;
    }
    if (*s)
        return PP_E_USAGE;
    if (shift && v > (UINT64_MAX >> shift))
        return PP_E_USAGE;
    l->v[id] = v << shift;
    return PP_OK;
}
