/*
 * probe: a test contract that echoes what kernelhost.h parsed, so that
 * TestHeaderProbe can compare every field with the Go codec. It uses
 * KH_CONTRACT with a custom decider name (the genesis contracts use
 * KH_IMPLEMENT_EXPORTS) and every lookup helper of the header.
 *
 *   allowed: target exists
 *   cost:    time + 3*size + 5*revision + 7*payload_size + 11*depth + 13*action
 *            + 17*(sum of the caller_rights amounts) + 19*kh_caller_right "llm_rate"
 *   payer:   kh_controller
 *   payee:   config "payee", when set
 *   reason:  action name|caller|target_id|target_type|created_by|
 *            access_contract|method|args|k=v;...|k=v;...|meta "b"|config "b"|
 *            controller?|resource;... (truncated to KH_MAX_REASON_LEN)
 */
#include "kernelhost.h"

static uint8_t reason[KH_MAX_REASON_LEN];
static uint32_t n;

static void put(kh_bytes b) {
    for (uint32_t i = 0; i < b.len && n < KH_MAX_REASON_LEN; i++) {
        reason[n++] = b.ptr[i];
    }
}

static void put_list(kh_kvlist l) {
    kh_kv_iter it = kh_kv_iter_init(l);
    kh_bytes k, v;
    while (kh_kv_next(&it, &k, &v)) {
        put(k);
        put(KH_LIT("="));
        put(v);
        put(KH_LIT(";"));
    }
    put(KH_LIT("|"));
}

static void probe(const kh_request *req, kh_decision *d) {
    n = 0;
    d->allowed = kh_target_exists(req);
    d->cost = req->time + 3 * req->size + 5 * req->revision + 7 * req->payload_size +
              11 * (uint64_t)req->depth + 13 * (uint64_t)req->action;
    d->payer = kh_controller(req);
    kh_bytes v;
    if (kh_config(req, "payee", &v)) {
        d->payee = v;
    }
    put(kh_cstr(kh_action_name(req->action)));
    put(KH_LIT("|"));
    const kh_bytes fields[] = {req->caller, req->target_id, req->target_type, req->created_by,
                               req->access_contract, req->method, req->args};
    for (uint32_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        put(fields[i]);
        put(KH_LIT("|"));
    }
    put_list(req->metadata);
    put_list(req->config);
    if (kh_meta(req, "b", &v)) {
        put(v);
    } else {
        put(KH_LIT("-"));
    }
    put(KH_LIT("|"));
    if (kh_kv_get(req->config, KH_LIT("b"), NULL)) {
        put(KH_LIT("config-b"));
    }
    put(KH_LIT("|"));
    put(kh_caller_is_controller(req) ? KH_LIT("controller") : KH_LIT("other"));
    put(KH_LIT("|"));
    kh_right_iter it = kh_right_iter_init(req->rights);
    kh_bytes r;
    uint64_t amount;
    while (kh_right_next(&it, &r, &amount)) {
        put(r);
        put(KH_LIT(";"));
        d->cost += 17 * amount;
    }
    d->cost += 19 * kh_caller_right(req, "llm_rate");
    d->reason.ptr = reason;
    d->reason.len = n;
}

KH_CONTRACT(probe)
