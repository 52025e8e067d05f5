/*
 * self_owned: only the artifact itself acts on itself: every known action is
 * allowed when the caller is the target (caller == target_id), denied
 * otherwise. Metadata and created_by play no part. Unknown actions are denied.
 */
#define KH_IMPLEMENT_EXPORTS
#include "kernelhost.h"

void kh_decide(const kh_request *req, kh_decision *d) {
    switch (req->action) {
    case KH_ACTION_READ:
    case KH_ACTION_WRITE:
    case KH_ACTION_EDIT:
    case KH_ACTION_DELETE:
    case KH_ACTION_INVOKE:
    case KH_ACTION_SET_CONTRACT:
        break;
    default:
        kh_deny(d, "self_owned: unknown action");
        return;
    }
    if (req->target_id.len > 0 && kh_bytes_eq(req->caller, req->target_id)) {
        kh_allow(d);
        return;
    }
    kh_deny(d, "self_owned: only the artifact itself may act on itself");
}
