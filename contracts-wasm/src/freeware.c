/*
 * freeware: anyone reads and invokes; only the controller writes, edits,
 * deletes and sets the contract. The controller is the "controller" metadata
 * value when set, else created_by. Unknown actions are denied.
 */
#define KH_IMPLEMENT_EXPORTS
#include "kernelhost.h"

void kh_decide(const kh_request *req, kh_decision *d) {
    switch (req->action) {
    case KH_ACTION_READ:
    case KH_ACTION_INVOKE:
        kh_allow(d);
        return;
    case KH_ACTION_WRITE:
    case KH_ACTION_EDIT:
    case KH_ACTION_DELETE:
    case KH_ACTION_SET_CONTRACT:
        if (kh_caller_is_controller(req)) {
            kh_allow(d);
            return;
        }
        switch (req->action) {
        case KH_ACTION_WRITE:
            kh_deny(d, "freeware: only the controller may write");
            return;
        case KH_ACTION_EDIT:
            kh_deny(d, "freeware: only the controller may edit");
            return;
        case KH_ACTION_DELETE:
            kh_deny(d, "freeware: only the controller may delete");
            return;
        default:
            kh_deny(d, "freeware: only the controller may set_contract");
            return;
        }
    default:
        kh_deny(d, "freeware: unknown action");
        return;
    }
}
