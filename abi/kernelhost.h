/*
 * kernelhost.h — the kernelhost contract ABI, version 1, for freestanding C.
 *
 * This header is the C view of abi/SPEC.md: a zero-copy request view, lookups
 * in metadata and config, byte-string helpers, a decision encoder, and the
 * three exports every contract needs (kh_abi_version, kh_alloc, kh_check).
 * It needs no libc: only clang's freestanding <stdint.h> and <stddef.h>.
 *
 * # Usage
 *
 * A whole contract is one file:
 *
 *     #define KH_IMPLEMENT_EXPORTS
 *     #include "kernelhost.h"
 *
 *     void kh_decide(const kh_request *req, kh_decision *d) {
 *         if (req->action == KH_ACTION_READ) {
 *             kh_allow(d);
 *             return;
 *         }
 *         kh_deny(d, "example: only reads are allowed");
 *     }
 *
 * built with
 *
 *     clang --target=wasm32 -O2 -nostdlib -ffreestanding -fno-ident -I path/to/abi \
 *         -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=16384 -Wl,--stack-first \
 *         -o example.wasm example.c
 *
 * (contracts-wasm/Makefile explains each flag). The result imports nothing and
 * exports memory, kh_abi_version, kh_alloc and kh_check.
 *
 * KH_IMPLEMENT_EXPORTS defines the exports in that translation unit and has
 * them call kh_decide. KH_CONTRACT(fn) does the same with a decider of any
 * name. Use exactly one of them, in exactly one translation unit. The exports
 * carry export_name attributes, so no -Wl,--export flags are needed; wasm-ld
 * exports "memory" by default. Define the decider in that translation unit
 * (and make a KH_CONTRACT decider static): the compiler then builds it into
 * kh_check, which costs less fuel than a call.
 *
 * # What the glue does for you
 *
 *   - kh_alloc hands the host a static arena, growing linear memory when a
 *     request is larger (SPEC section 1, "Calling sequence").
 *   - kh_check parses the request in one pass with kh_parse_request. A
 *     malformed request never reaches kh_decide: it is denied with the reason
 *     "malformed request" (fail closed, no trap).
 *   - The decision starts as a denial with an empty reason, cost 0 and empty
 *     payer and payee, so a decider that forgets to decide denies.
 *   - The decision is encoded into a static buffer (SPEC section 4). A
 *     decision the encoder rejects (payer or payee longer than KH_MAX_ID_LEN)
 *     is replaced by a denial with the reason "invalid decision".
 *
 * # Lifetimes
 *
 * Every kh_bytes in a kh_request points into the request buffer the host
 * wrote; it is valid only during the kh_check call that parsed it. Strings
 * placed in a kh_decision must stay valid until kh_decide returns (string
 * literals and the request's own fields both do): the glue copies them into
 * the decision buffer right after.
 *
 * # Determinism
 *
 * Instances are pooled and reused for many requests (SPEC section 7): keep no
 * state between calls in global variables.
 */
#ifndef KERNELHOST_H
#define KERNELHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Constants (SPEC sections 1, 3, 4 and 5)                            */
/* ------------------------------------------------------------------ */

/** KH_ABI_VERSION is the ABI version this header speaks; kh_abi_version returns it. */
#define KH_ABI_VERSION 1

/* Limits, in bytes unless noted. They mirror the constants of the Go package abi. */
#define KH_MAX_ID_LEN 128u          /**< caller, target, created_by, access_contract, payer, payee */
#define KH_MAX_TYPE_LEN 64u         /**< artifact type */
#define KH_MAX_META_PAIRS 64u       /**< pairs per metadata or config list */
#define KH_MAX_META_KEY_LEN 128u    /**< metadata key */
#define KH_MAX_META_VALUE_LEN 4096u /**< metadata value */
#define KH_MAX_METHOD_LEN 128u      /**< invoke method */
#define KH_MAX_ARGS_LEN (1u << 20)  /**< invoke args */
#define KH_MAX_REASON_LEN 1024u     /**< decision reason */
#define KH_MAX_CALLER_RIGHTS 16u    /**< caller_rights entries */
#define KH_MAX_RESOURCE_LEN 32u     /**< bytes of a resource name in caller_rights */
/** KH_MAX_DECISION_SIZE is the largest encoded decision: 16 + 3*4 + 2*128 + 1024. */
#define KH_MAX_DECISION_SIZE (16u + 3u * 4u + 2u * KH_MAX_ID_LEN + KH_MAX_REASON_LEN)

/** KH_REQUEST_HEADER_SIZE is the size of the fixed part of a request. */
#define KH_REQUEST_HEADER_SIZE 48u

/** KH_FLAG_TARGET_EXISTS is request flag bit 0: the target artifact is stored. */
#define KH_FLAG_TARGET_EXISTS 1u

/* Actions (SPEC section 3, "Actions"). Deny any other value. */
#define KH_ACTION_READ 1u
#define KH_ACTION_WRITE 2u
#define KH_ACTION_EDIT 3u
#define KH_ACTION_DELETE 4u
#define KH_ACTION_INVOKE 5u
#define KH_ACTION_SET_CONTRACT 6u

/**
 * KH_ARENA_STATIC is the size of kh_alloc's static arena. Requests up to this
 * size need no memory growth. Define it before including the header to
 * change it; it costs linear memory, not module bytes.
 */
#ifndef KH_ARENA_STATIC
#define KH_ARENA_STATIC 16384u
#endif

/** kh_err is the result of kh_parse_request: KH_OK or why the bytes are malformed. */
typedef enum kh_err {
    KH_OK = 0,            /**< parsed */
    KH_ERR_SHORT = 1,     /**< shorter than the 48-byte header */
    KH_ERR_MAGIC = 2,     /**< does not start with "KHRQ" */
    KH_ERR_VERSION = 3,   /**< version is not KH_ABI_VERSION */
    KH_ERR_FLAGS = 4,     /**< a flag bit unknown to version 1 is set */
    KH_ERR_TRUNCATED = 5, /**< a length or count points past the end of the buffer */
    KH_ERR_LIMIT = 6,     /**< a length or count exceeds its SPEC section 5 limit */
    KH_ERR_KEYS = 7       /**< a metadata or config key, or a caller_rights resource, is empty, unsorted or repeated */
} kh_err;

/*
 * KH__ALWAYS_INLINE marks the helpers that cost much less fuel inlined than
 * called and that the compiler would otherwise call: those that take the
 * request by pointer (a call forces the whole kh_request out of locals into
 * memory), kh__kvlist (two call sites, with a constant flag each), and
 * kh_kv_get, kh_meta and kh_config, whose loops shrink once specialised to a
 * literal key (the key's length then folds at compile time too). kh_decide
 * is inlined into kh_check for the first reason. A contract runs on metered
 * fuel: a call or a loop turn that the compiler could have removed is paid on
 * every check.
 */
#define KH__ALWAYS_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------ */
/* Byte strings                                                       */
/* ------------------------------------------------------------------ */

/**
 * kh_bytes is a borrowed byte string: ptr is valid for len bytes (ptr may be
 * anything when len is 0). It is not NUL-terminated.
 */
typedef struct kh_bytes {
    const uint8_t *ptr;
    uint32_t len;
} kh_bytes;

/** KH_LIT makes a kh_bytes from a string literal without scanning it. */
#define KH_LIT(s) ((kh_bytes){(const uint8_t *)(s), (uint32_t)(sizeof(s) - 1u)})

/** kh_cstr makes a kh_bytes from a NUL-terminated string (NULL gives an empty one). */
static inline kh_bytes kh_cstr(const char *s) {
    kh_bytes b = {(const uint8_t *)s, 0};
    if (s != NULL) {
        while (s[b.len] != '\0') {
            b.len++;
        }
    }
    return b;
}

/*
 * Word-at-a-time access. A guest pays fuel for every instruction it runs and
 * the host adds a charge to every loop turn, so kh_bytes_eq and kh_bytes_cmp
 * compare, and the decision encoder copies, 8 bytes per step rather than 1.
 * __builtin_memcpy of a constant size compiles to one unaligned load or store
 * (wasm32 allows them) and calls no library function. Every access stays
 * inside [ptr, ptr+len): a tail shorter than a word is handled with smaller
 * or overlapping accesses, never by reading past the end.
 */
static inline uint64_t kh__ld64(const uint8_t *p) {
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    return v;
}

static inline uint32_t kh__ld32(const uint8_t *p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

/* kh__diff64 returns the index (0-7) in memory order of the first byte at
 * which two 8-byte words x and y, loaded with kh__ld64, differ; x != y. */
static inline uint32_t kh__diff64(uint64_t x, uint64_t y) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint32_t)__builtin_clzll(x ^ y) >> 3;
#else
    return (uint32_t)__builtin_ctzll(x ^ y) >> 3;
#endif
}

/** kh_bytes_eq reports whether a and b hold the same bytes. */
static inline int kh_bytes_eq(kh_bytes a, kh_bytes b) {
    uint32_t n = a.len;
    if (n != b.len) {
        return 0;
    }
    if (n >= 8u) {
        for (uint32_t i = 0; i < n - 8u; i += 8u) {
            if (kh__ld64(a.ptr + i) != kh__ld64(b.ptr + i)) {
                return 0;
            }
        }
        /* the last 8 bytes, overlapping the words already compared */
        return kh__ld64(a.ptr + n - 8u) == kh__ld64(b.ptr + n - 8u);
    }
    if (n >= 4u) {
        /* the first and the last 4 bytes, overlapping */
        return ((kh__ld32(a.ptr) ^ kh__ld32(b.ptr)) | (kh__ld32(a.ptr + n - 4u) ^ kh__ld32(b.ptr + n - 4u))) == 0;
    }
    if (n == 0) {
        return 1;
    }
    /* bytes 0, n/2 and n-1 cover every byte of a 1- to 3-byte string */
    return ((a.ptr[0] ^ b.ptr[0]) | (a.ptr[n >> 1] ^ b.ptr[n >> 1]) | (a.ptr[n - 1u] ^ b.ptr[n - 1u])) == 0;
}

/** kh_bytes_eq_str reports whether a holds exactly the bytes of the C string s. */
static inline int kh_bytes_eq_str(kh_bytes a, const char *s) {
    return kh_bytes_eq(a, kh_cstr(s));
}

/**
 * kh_bytes_cmp compares a and b in byte order (unsigned): negative when a
 * sorts first, 0 when equal, positive when b sorts first. This is the order
 * of keys in a kvlist.
 */
static inline int kh_bytes_cmp(kh_bytes a, kh_bytes b) {
    uint32_t n = a.len < b.len ? a.len : b.len;
    uint32_t i = 0;
    for (; n - i >= 8u; i += 8u) {
        uint64_t x = kh__ld64(a.ptr + i), y = kh__ld64(b.ptr + i);
        if (x != y) {
            i += kh__diff64(x, y);
            return a.ptr[i] < b.ptr[i] ? -1 : 1;
        }
    }
    for (; i < n; i++) { /* the last 0 to 7 bytes */
        if (a.ptr[i] != b.ptr[i]) {
            return a.ptr[i] < b.ptr[i] ? -1 : 1;
        }
    }
    return a.len < b.len ? -1 : (a.len > b.len ? 1 : 0);
}

/* ------------------------------------------------------------------ */
/* Request view (SPEC section 3)                                      */
/* ------------------------------------------------------------------ */

/**
 * kh_kvlist is a validated, encoded list of (key, value) pairs: count pairs
 * starting at ptr, sorted by key, keys unique and non-empty. Read it with
 * kh_kv_get or a kh_kv_iter.
 */
typedef struct kh_kvlist {
    const uint8_t *ptr;
    uint32_t count;
} kh_kvlist;

/**
 * kh_rightlist is a validated, encoded caller_rights list (SPEC section 3,
 * revision 1.1): count entries of (resource, amount) starting at ptr, sorted
 * by resource, resources unique and non-empty. count is 0 when the request
 * ends at config. Read it with kh_caller_right or a kh_right_iter.
 */
typedef struct kh_rightlist {
    const uint8_t *ptr;
    uint32_t count;
} kh_rightlist;

/**
 * kh_request is a parsed request. Every kh_bytes points into the buffer given
 * to kh_parse_request and is valid while that buffer is unchanged. Fields
 * follow SPEC section 3 in order.
 */
typedef struct kh_request {
    uint32_t action;       /**< KH_ACTION_*; deny values you do not know */
    uint32_t flags;        /**< KH_FLAG_*; see kh_target_exists */
    uint32_t depth;        /**< 0 for a top-level action */
    uint64_t time;         /**< kernel logical time, ns since the Unix epoch */
    uint64_t size;         /**< target content size in bytes */
    uint64_t revision;     /**< target revision */
    uint64_t payload_size; /**< bytes a write or edit would store, else 0 */
    kh_bytes caller;       /**< acting principal, bound by the kernel */
    kh_bytes target_id;
    kh_bytes target_type;
    kh_bytes created_by;      /**< immutable creator of the target */
    kh_bytes access_contract; /**< id of this contract's artifact */
    kh_bytes method;          /**< invoke only */
    kh_bytes args;            /**< invoke only */
    kh_kvlist metadata;       /**< the target's metadata */
    kh_kvlist config;         /**< this contract artifact's own metadata */
    kh_rightlist rights;      /**< caller_rights; count 0 when absent */
} kh_request;

static inline uint16_t kh__u16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t kh__u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t kh__u64(const uint8_t *p) {
    return (uint64_t)kh__u32(p) | ((uint64_t)kh__u32(p + 4) << 32);
}

/* kh__str reads a str at *off (which is <= len) bounded by max. */
static inline kh_err kh__str(const uint8_t *b, uint32_t len, uint32_t *off, uint32_t max, kh_bytes *out) {
    uint32_t left = len - *off;
    if (left < 4u) {
        return KH_ERR_TRUNCATED;
    }
    uint32_t n = kh__u32(b + *off);
    if (n > max) {
        return KH_ERR_LIMIT;
    }
    if (n > left - 4u) {
        return KH_ERR_TRUNCATED;
    }
    out->ptr = b + *off + 4u;
    out->len = n;
    *off += 4u + n;
    return KH_OK;
}

/*
 * kh_parse_request checks each length once: a str or count is accepted only
 * when the buffer also holds the 4-byte length or count that must follow it,
 * so that the next one can be read without a test of its own. Both
 * shortfalls are KH_ERR_TRUNCATED, and a limit is tested before the bounds,
 * so the first problem reported is the one a field-by-field reader reports.
 */

/* kh__field reads the str at *off (*off + 4 <= len) bounded by max, and
 * requires 4 more bytes after it. (max is at most KH_MAX_ARGS_LEN, so n + 8
 * cannot wrap.) */
static inline kh_err kh__field(const uint8_t *b, uint32_t len, uint32_t *off, uint32_t max, kh_bytes *out) {
    uint32_t n = kh__u32(b + *off);
    if (n > max) {
        return KH_ERR_LIMIT;
    }
    if (n + 8u > len - *off) {
        return KH_ERR_TRUNCATED;
    }
    out->ptr = b + *off + 4u;
    out->len = n;
    *off += 4u + n;
    return KH_OK;
}

/* kh__kvlist reads and validates the kvlist at *off (*off + 4 <= len). When
 * more is non-zero, 4 more bytes must follow the list. */
KH__ALWAYS_INLINE kh_err kh__kvlist(const uint8_t *b, uint32_t len, uint32_t *off, kh_kvlist *out, int more) {
    uint32_t o = *off;
    uint32_t n = kh__u32(b + o);
    if (n > KH_MAX_META_PAIRS) {
        return KH_ERR_LIMIT;
    }
    o += 4u;
    if (len - o < ((n > 0 || more) ? 4u : 0u)) { /* the first key length, or what follows */
        return KH_ERR_TRUNCATED;
    }
    out->ptr = b + o;
    out->count = n;
    /* The previous key and its first byte. An empty key sorts before every
     * other, so the first key only has to be non-empty. */
    kh_bytes prev = {b, 0};
    uint32_t prev0 = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t left = len - o; /* >= 4 */
        kh_bytes k = {b + o + 4u, kh__u32(b + o)};
        if (k.len - 1u >= KH_MAX_META_KEY_LEN || k.len + 8u > left) {
            /* not 1 to 128 bytes followed by a value length: find out why */
            if (k.len > KH_MAX_META_KEY_LEN) {
                return KH_ERR_LIMIT;
            }
            if (k.len + 4u > left) {
                return KH_ERR_TRUNCATED;
            }
            if (k.len == 0 || kh_bytes_cmp(prev, k) >= 0) {
                return KH_ERR_KEYS;
            }
            return KH_ERR_TRUNCATED;
        }
        /* Keys must increase. Neighbours that differ in their first byte
         * settle it there; others are compared whole. */
        if (k.ptr[0] <= prev0 && kh_bytes_cmp(prev, k) >= 0) {
            return KH_ERR_KEYS;
        }
        o += 4u + k.len;
        left -= 4u + k.len; /* >= 4 */
        uint32_t vn = kh__u32(b + o);
        if (vn > KH_MAX_META_VALUE_LEN) {
            return KH_ERR_LIMIT;
        }
        /* the value, then the next key length or what follows the list */
        if (vn + ((i + 1u < n || more) ? 8u : 4u) > left) {
            return KH_ERR_TRUNCATED;
        }
        o += 4u + vn;
        prev = k;
        prev0 = k.ptr[0];
    }
    *off = o;
    return KH_OK;
}

/* kh__rightlist validates the caller_rights list at off (off < len):
 * whatever follows config, when anything does. Bytes after the list are
 * ignored. It is kept out of line, because the host writes caller_rights only
 * for callers holding rights, so most checks skip it, and it takes no pointer
 * into the request, which would force the whole kh_request out of locals. */
static inline __attribute__((noinline)) kh_err kh__rightlist(const uint8_t *b, uint32_t len, uint32_t off) {
    if (len - off < 4u) {
        return KH_ERR_TRUNCATED;
    }
    uint32_t n = kh__u32(b + off);
    if (n > KH_MAX_CALLER_RIGHTS) {
        return KH_ERR_LIMIT;
    }
    off += 4u;
    /* An empty resource sorts before every other, so the first one only has
     * to be non-empty. */
    kh_bytes prev = {b, 0};
    for (uint32_t i = 0; i < n; i++) {
        kh_bytes r;
        kh_err e = kh__str(b, len, &off, KH_MAX_RESOURCE_LEN, &r);
        if (e != KH_OK) {
            return e;
        }
        if (r.len == 0 || kh_bytes_cmp(prev, r) >= 0) {
            return KH_ERR_KEYS;
        }
        if (len - off < 8u) { /* the amount */
            return KH_ERR_TRUNCATED;
        }
        off += 8u;
        prev = r;
    }
    return KH_OK;
}

/**
 * kh_parse_request validates the len bytes at buf as a version 1 request and
 * fills *req with views into buf, in one pass and without copying. Every
 * length and count is checked against the buffer and against the limits of
 * SPEC section 5; keys must be non-empty, sorted and unique; unknown flag bits
 * are rejected. Bytes after config are the caller_rights list (revision
 * 1.1), validated like the rest, whether or not the contract reads it: a
 * section that runs past the request or contradicts itself makes the whole
 * request malformed, as it does for the Go abi.RequestView. Bytes after
 * caller_rights are ignored, as the SPEC asks. It returns KH_OK, or the
 * first problem found, in which case *req is unspecified and must not be
 * used. It never reads outside [buf, buf+len).
 */
static inline kh_err kh_parse_request(const uint8_t *buf, uint32_t len, kh_request *req) {
    if (buf == NULL || len < KH_REQUEST_HEADER_SIZE) {
        return KH_ERR_SHORT;
    }
    if (kh__u32(buf) != 0x5152484Bu) { /* "KHRQ" */
        return KH_ERR_MAGIC;
    }
    if (kh__u16(buf + 4) != KH_ABI_VERSION) {
        return KH_ERR_VERSION;
    }
    req->action = kh__u16(buf + 6);
    req->flags = kh__u32(buf + 8);
    if ((req->flags & ~KH_FLAG_TARGET_EXISTS) != 0) {
        return KH_ERR_FLAGS;
    }
    req->depth = kh__u32(buf + 12);
    req->time = kh__u64(buf + 16);
    req->size = kh__u64(buf + 24);
    req->revision = kh__u64(buf + 32);
    req->payload_size = kh__u64(buf + 40);

    uint32_t off = KH_REQUEST_HEADER_SIZE;
    if (len - off < 4u) {
        return KH_ERR_TRUNCATED;
    }
    kh_err e;
    if ((e = kh__field(buf, len, &off, KH_MAX_ID_LEN, &req->caller)) != KH_OK ||
        (e = kh__field(buf, len, &off, KH_MAX_ID_LEN, &req->target_id)) != KH_OK ||
        (e = kh__field(buf, len, &off, KH_MAX_TYPE_LEN, &req->target_type)) != KH_OK ||
        (e = kh__field(buf, len, &off, KH_MAX_ID_LEN, &req->created_by)) != KH_OK ||
        (e = kh__field(buf, len, &off, KH_MAX_ID_LEN, &req->access_contract)) != KH_OK ||
        (e = kh__field(buf, len, &off, KH_MAX_METHOD_LEN, &req->method)) != KH_OK ||
        (e = kh__field(buf, len, &off, KH_MAX_ARGS_LEN, &req->args)) != KH_OK ||
        (e = kh__kvlist(buf, len, &off, &req->metadata, 1)) != KH_OK ||
        (e = kh__kvlist(buf, len, &off, &req->config, 0)) != KH_OK) {
        return e;
    }
    req->rights.ptr = buf + off;
    req->rights.count = 0;
    if (off != len) { /* off <= len: caller_rights follows config */
        if ((e = kh__rightlist(buf, len, off)) != KH_OK) {
            return e;
        }
        req->rights.ptr = buf + off + 4u;
        req->rights.count = kh__u32(buf + off);
    }
    return KH_OK;
}

/** kh_target_exists reports whether the request's target artifact is stored. */
static inline int kh_target_exists(const kh_request *req) {
    return (req->flags & KH_FLAG_TARGET_EXISTS) != 0;
}

/**
 * kh_action_name returns the wire name of an action ("read", "set_contract",
 * ...), "invalid" for 0 and "unknown" for values version 1 does not define,
 * like the Go abi.Action.String.
 */
static inline const char *kh_action_name(uint32_t action) {
    switch (action) {
    case KH_ACTION_READ:
        return "read";
    case KH_ACTION_WRITE:
        return "write";
    case KH_ACTION_EDIT:
        return "edit";
    case KH_ACTION_DELETE:
        return "delete";
    case KH_ACTION_INVOKE:
        return "invoke";
    case KH_ACTION_SET_CONTRACT:
        return "set_contract";
    case 0:
        return "invalid";
    default:
        return "unknown";
    }
}

/* ------------------------------------------------------------------ */
/* Caller rights (SPEC section 3, revision 1.1)                       */
/* ------------------------------------------------------------------ */

/** kh_right_iter walks a kh_rightlist in resource order; start it with kh_right_iter_init. */
typedef struct kh_right_iter {
    const uint8_t *p;
    uint32_t left;
} kh_right_iter;

/** kh_right_iter_init returns an iterator at the first entry of l. */
static inline kh_right_iter kh_right_iter_init(kh_rightlist l) {
    kh_right_iter it = {l.ptr, l.count};
    return it;
}

/**
 * kh_right_next stores the next entry in *resource and *amount and returns 1,
 * or returns 0 when the list is done. The list must come from
 * kh_parse_request, which validated every length.
 */
static inline int kh_right_next(kh_right_iter *it, kh_bytes *resource, uint64_t *amount) {
    if (it->left == 0) {
        return 0;
    }
    resource->len = kh__u32(it->p);
    resource->ptr = it->p + 4;
    *amount = kh__u64(resource->ptr + resource->len);
    it->p = resource->ptr + resource->len + 8;
    it->left--;
    return 1;
}

/**
 * kh_caller_right returns how much of resource (e.g. "llm_rate") the caller
 * holds in rights: the amount in the request's caller_rights, which
 * kh_parse_request validated, or 0 when the caller holds no rights of
 * resource or the request carries no caller_rights.
 */
static inline uint64_t kh_caller_right(const kh_request *req, const char *resource) {
    kh_bytes want = kh_cstr(resource);
    kh_right_iter it = kh_right_iter_init(req->rights);
    kh_bytes r;
    uint64_t amount;
    while (kh_right_next(&it, &r, &amount)) {
        if (kh_bytes_eq(r, want)) {
            return amount;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Metadata and config                                                */
/* ------------------------------------------------------------------ */

/** kh_kv_iter walks a kh_kvlist in key order; start it with kh_kv_iter_init. */
typedef struct kh_kv_iter {
    const uint8_t *p;
    uint32_t left;
} kh_kv_iter;

/** kh_kv_iter_init returns an iterator at the first pair of l. */
static inline kh_kv_iter kh_kv_iter_init(kh_kvlist l) {
    kh_kv_iter it = {l.ptr, l.count};
    return it;
}

/**
 * kh_kv_next stores the next pair in *key and *value and returns 1, or
 * returns 0 when the list is done. The list must come from kh_parse_request,
 * which validated every length.
 */
static inline int kh_kv_next(kh_kv_iter *it, kh_bytes *key, kh_bytes *value) {
    if (it->left == 0) {
        return 0;
    }
    key->len = kh__u32(it->p);
    key->ptr = it->p + 4;
    const uint8_t *v = key->ptr + key->len;
    value->len = kh__u32(v);
    value->ptr = v + 4;
    it->p = value->ptr + value->len;
    it->left--;
    return 1;
}

/**
 * kh_kv_get looks key up in l. It returns 1 and stores the value in *value
 * when the key is present (the value may be empty), else returns 0 and leaves
 * *value untouched. value may be NULL to test presence only.
 */
KH__ALWAYS_INLINE int kh_kv_get(kh_kvlist l, kh_bytes key, kh_bytes *value) {
    if (key.len == 0) {
        return 0; /* keys are non-empty */
    }
    kh_kv_iter it = kh_kv_iter_init(l);
    kh_bytes k, v;
    while (kh_kv_next(&it, &k, &v)) {
        /* keys are sorted: skip those that sort first, stop at one that
         * sorts later; the first byte usually settles it */
        if (k.ptr[0] != key.ptr[0]) {
            if (k.ptr[0] > key.ptr[0]) {
                return 0;
            }
            continue;
        }
        if (k.len == key.len && kh_bytes_eq(k, key)) {
            if (value != NULL) {
                *value = v;
            }
            return 1;
        }
        if (kh_bytes_cmp(k, key) > 0) {
            return 0;
        }
    }
    return 0;
}

/** kh_meta looks up the target's metadata value for the C string key; see kh_kv_get. */
KH__ALWAYS_INLINE int kh_meta(const kh_request *req, const char *key, kh_bytes *value) {
    return kh_kv_get(req->metadata, kh_cstr(key), value);
}

/** kh_config looks up this contract artifact's own metadata (config) for key; see kh_kv_get. */
KH__ALWAYS_INLINE int kh_config(const kh_request *req, const char *key, kh_bytes *value) {
    return kh_kv_get(req->config, kh_cstr(key), value);
}

/**
 * kh_controller returns the target's controller as the genesis contracts
 * define it: the "controller" metadata value when that key is set (even to
 * the empty string, which matches no caller), otherwise created_by. This is a
 * contract-side convention; the kernel never applies it.
 */
KH__ALWAYS_INLINE kh_bytes kh_controller(const kh_request *req) {
    kh_bytes c;
    if (kh_kv_get(req->metadata, KH_LIT("controller"), &c)) {
        return c;
    }
    return req->created_by;
}

/**
 * kh_caller_is_controller reports whether the caller is the target's
 * controller (see kh_controller). An empty controller matches nobody.
 */
KH__ALWAYS_INLINE int kh_caller_is_controller(const kh_request *req) {
    kh_bytes c = kh_controller(req);
    return c.len > 0 && kh_bytes_eq(req->caller, c);
}

/* ------------------------------------------------------------------ */
/* Decision (SPEC section 4)                                          */
/* ------------------------------------------------------------------ */

/**
 * kh_decision is a contract's answer. The exports hand kh_decide a denial
 * with everything empty; set the fields or use kh_allow and kh_deny.
 */
typedef struct kh_decision {
    int allowed;     /**< non-zero: allow */
    uint64_t cost;   /**< scrip charged to the payer */
    kh_bytes payer;  /**< empty: the caller pays; at most KH_MAX_ID_LEN bytes */
    kh_bytes payee;  /**< empty: the cost is burned; at most KH_MAX_ID_LEN bytes */
    kh_bytes reason; /**< truncated to KH_MAX_REASON_LEN bytes when encoded */
} kh_decision;

/** kh_allow marks d allowed with an empty reason; cost, payer and payee are kept. */
static inline void kh_allow(kh_decision *d) {
    d->allowed = 1;
    d->reason.ptr = NULL;
    d->reason.len = 0;
}

/**
 * kh_deny marks d denied with the C string reason (a literal, or anything
 * that outlives kh_decide) and resets cost, payer and payee, so that a denial
 * never charges anyone.
 */
static inline void kh_deny(kh_decision *d, const char *reason) {
    d->allowed = 0;
    d->cost = 0;
    d->payer.len = 0;
    d->payee.len = 0;
    d->reason = kh_cstr(reason);
}

/* kh__put32 stores v little-endian at p: one unaligned store where the
 * target is little-endian, as wasm32 is. */
static inline uint8_t *kh__put32(uint8_t *p, uint32_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    __builtin_memcpy(p, &v, 4);
#else
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
#endif
    return p + 4;
}

/* kh__putstr writes s as a str: its length, then its bytes, copied a word at
 * a time like kh_bytes_eq compares. */
static inline uint8_t *kh__putstr(uint8_t *p, kh_bytes s) {
    uint32_t n = s.len;
    p = kh__put32(p, n);
    if (n == 0) {
        return p;
    }
    if (n < 4u) {
        p[0] = s.ptr[0];
        p[n >> 1] = s.ptr[n >> 1];
        p[n - 1u] = s.ptr[n - 1u];
    } else if (n < 8u) {
        __builtin_memcpy(p, s.ptr, 4);
        __builtin_memcpy(p + n - 4u, s.ptr + n - 4u, 4);
    } else {
        for (uint32_t i = 0; i < n - 8u; i += 8u) {
            __builtin_memcpy(p + i, s.ptr + i, 8);
        }
        __builtin_memcpy(p + n - 8u, s.ptr + n - 8u, 8);
    }
    return p + n;
}

/**
 * kh_encode_decision encodes d per SPEC section 4 into dst, which must have
 * room for KH_MAX_DECISION_SIZE bytes, and returns the encoded length. A
 * reason longer than KH_MAX_REASON_LEN is truncated. It returns 0, writing
 * nothing useful, when payer or payee is longer than KH_MAX_ID_LEN. The
 * strings of d must not overlap dst.
 */
static inline uint32_t kh_encode_decision(const kh_decision *d, uint8_t *dst) {
    if (d->payer.len > KH_MAX_ID_LEN || d->payee.len > KH_MAX_ID_LEN) {
        return 0;
    }
    kh_bytes reason = d->reason;
    if (reason.len > KH_MAX_REASON_LEN) {
        reason.len = KH_MAX_REASON_LEN;
    }
    uint8_t *p = dst;
    p = kh__put32(p, 0x4344484Bu); /* "KHDC" */
    /* version (u16), allowed (u8), reserved (u8) */
    p = kh__put32(p, (uint32_t)KH_ABI_VERSION | (d->allowed ? 1u << 16 : 0u));
    p = kh__put32(p, (uint32_t)d->cost);
    p = kh__put32(p, (uint32_t)(d->cost >> 32));
    p = kh__putstr(p, d->payer);
    p = kh__putstr(p, d->payee);
    p = kh__putstr(p, reason);
    return (uint32_t)(p - dst);
}

/* ------------------------------------------------------------------ */
/* Exports                                                            */
/* ------------------------------------------------------------------ */

#define KH__EXPORT(name) __attribute__((export_name(#name), visibility("default")))

/**
 * KH_CONTRACT(fn) defines the module's exports in this translation unit and
 * makes kh_check call fn, a void fn(const kh_request *, kh_decision *):
 *
 *   kh_abi_version() -> i32   returns KH_ABI_VERSION.
 *   kh_alloc(size) -> i32     returns a region of size bytes for the host to
 *                             write the request into: a static arena of
 *                             KH_ARENA_STATIC bytes, or past the end of
 *                             linear memory, grown with memory.grow, for
 *                             larger requests (one grown region is kept and
 *                             reused or extended). Returns 0 when memory
 *                             cannot grow. The region stays reserved for the
 *                             host until the next kh_alloc call, as SPEC
 *                             section 1 requires: nothing else uses it.
 *   kh_check(ptr, len) -> i64 parses the request, calls fn unless it is
 *                             malformed (then denies "malformed request"),
 *                             encodes the decision into a static buffer and
 *                             returns (buffer << 32) | length.
 */
#define KH_CONTRACT(fn)                                                                    \
    static uint8_t kh__arena[KH_ARENA_STATIC];                                             \
    static uint8_t kh__decision_buf[KH_MAX_DECISION_SIZE];                                 \
    static uintptr_t kh__big_ptr;                                                          \
    static uint64_t kh__big_cap;                                                           \
                                                                                           \
    KH__EXPORT(kh_abi_version) int32_t kh_abi_version(void) { return KH_ABI_VERSION; }    \
                                                                                           \
    KH__EXPORT(kh_alloc) uint8_t *kh_alloc(uint32_t size) {                                \
        if (size <= KH_ARENA_STATIC) {                                                     \
            return kh__arena;                                                              \
        }                                                                                  \
        if (size <= kh__big_cap) {                                                         \
            return (uint8_t *)kh__big_ptr;                                                 \
        }                                                                                  \
        uint64_t end = (uint64_t)__builtin_wasm_memory_size(0) * 65536u;                   \
        uint64_t need = size;                                                              \
        uint64_t base = end;                                                               \
        if (kh__big_cap != 0 && kh__big_ptr + kh__big_cap == end) {                        \
            /* the kept region ends memory: extend it in place */                          \
            base = kh__big_ptr;                                                            \
            need = size - kh__big_cap;                                                     \
        }                                                                                  \
        uint64_t pages = (need + 65535u) / 65536u;                                         \
        if (__builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) {                 \
            return NULL;                                                                   \
        }                                                                                  \
        kh__big_ptr = (uintptr_t)base;                                                     \
        kh__big_cap = end + pages * 65536u - base;                                         \
        return (uint8_t *)kh__big_ptr;                                                     \
    }                                                                                      \
                                                                                           \
    KH__EXPORT(kh_check) uint64_t kh_check(const uint8_t *ptr, uint32_t len) {             \
        kh_request req;                                                                    \
        kh_decision d = {0, 0, {NULL, 0}, {NULL, 0}, {NULL, 0}};                           \
        if (kh_parse_request(ptr, len, &req) == KH_OK) {                                   \
            fn(&req, &d);                                                                  \
        } else {                                                                           \
            kh_deny(&d, "malformed request");                                              \
        }                                                                                  \
        if (d.payer.len > KH_MAX_ID_LEN || d.payee.len > KH_MAX_ID_LEN) {                  \
            kh_deny(&d, "invalid decision"); /* kh_encode_decision would refuse d */       \
        }                                                                                  \
        uint32_t n = kh_encode_decision(&d, kh__decision_buf);                             \
        return ((uint64_t)(uintptr_t)kh__decision_buf << 32) | n;                          \
    }

#ifdef KH_IMPLEMENT_EXPORTS
/**
 * kh_decide is the contract's decider when KH_IMPLEMENT_EXPORTS is defined;
 * you write it. Defined in the same translation unit, it is compiled into
 * kh_check (always_inline), where the parsed request can stay in locals.
 */
__attribute__((always_inline)) void kh_decide(const kh_request *req, kh_decision *d);
KH_CONTRACT(kh_decide)
#endif

#ifdef __cplusplus
}
#endif

#endif /* KERNELHOST_H */
