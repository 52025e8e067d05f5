/*
 * pay_per_read: an access contract that charges for reads, in freestanding C
 * against abi/kernelhost.h (ABI version 1).
 *
 * Rule. read: allowed for everyone at the price in the contract's own config
 * (the contract artifact's metadata: the request's config list), charged to
 * config "sponsor" (absent or empty: the caller pays) and credited to config
 * "payee" (absent or empty: the cost is burned). The kernel honours a sponsor
 * only if it consented to this contract (grant_consent); otherwise the read
 * fails with PAYER_NOT_AUTHORIZED and nobody pays. Every other known action:
 * only the controller (metadata "controller" when set, else created_by).
 * Unknown actions and malformed requests are denied.
 *
 * Config keys: price (decimal digits, at most 18 so that it cannot overflow;
 * absent or empty means 0), sponsor, payee (principal ids, at most 128 bytes).
 * A malformed config denies every read (fail closed) with a reason that says
 * what to fix.
 *
 * Build (from examples/c-contract; see README.md):
 *
 *   clang --target=wasm32 -O2 -nostdlib -ffreestanding -fno-ident -Wall -Wextra -Werror -I../../abi \
 *       -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=16384 -Wl,--stack-first \
 *       -o pay_per_read.wasm src/pay_per_read.c
 */
#define KH_IMPLEMENT_EXPORTS
#include "kernelhost.h"

/* KH_MAX_PRICE_DIGITS bounds the price: 18 decimal digits fit in a uint64. */
#define KH_MAX_PRICE_DIGITS 18u

/*
 * parse_price stores the decimal value of s in *out and returns 1, or
 * returns 0 when s holds anything but at most KH_MAX_PRICE_DIGITS digits.
 * The empty string is 0.
 */
static int parse_price(kh_bytes s, uint64_t *out) {
    if (s.len > KH_MAX_PRICE_DIGITS) {
        return 0;
    }
    uint64_t v = 0;
    for (uint32_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];
        if (c < '0' || c > '9') {
            return 0;
        }
        v = v * 10u + (uint64_t)(c - '0');
    }
    *out = v;
    return 1;
}

/* decide_read prices a read from the contract's config. */
static void decide_read(const kh_request *req, kh_decision *d) {
    kh_bytes price = KH_LIT(""), sponsor = KH_LIT(""), payee = KH_LIT("");
    kh_config(req, "price", &price);
    kh_config(req, "sponsor", &sponsor);
    kh_config(req, "payee", &payee);
    uint64_t cost = 0;
    if (!parse_price(price, &cost)) {
        kh_deny(d, "pay_per_read: config price is not a decimal integer of at most 18 digits");
        return;
    }
    if (sponsor.len > KH_MAX_ID_LEN || payee.len > KH_MAX_ID_LEN) {
        kh_deny(d, "pay_per_read: config sponsor or payee is longer than 128 bytes");
        return;
    }
    kh_allow(d);
    d->cost = cost;
    d->payer = sponsor; /* empty: the caller pays */
    d->payee = payee;   /* empty: burned */
    d->reason = KH_LIT("pay_per_read: paid read");
}

void kh_decide(const kh_request *req, kh_decision *d) {
    switch (req->action) {
    case KH_ACTION_READ:
        decide_read(req, d);
        return;
    case KH_ACTION_WRITE:
    case KH_ACTION_EDIT:
    case KH_ACTION_DELETE:
    case KH_ACTION_INVOKE:
    case KH_ACTION_SET_CONTRACT:
        if (kh_caller_is_controller(req)) {
            kh_allow(d);
            return;
        }
        kh_deny(d, "pay_per_read: only the controller may change or invoke this artifact");
        return;
    default:
        kh_deny(d, "pay_per_read: unknown action");
        return;
    }
}
