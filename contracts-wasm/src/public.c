/*
 * public: anyone reads, writes, edits and invokes; only the controller
 * deletes and sets the contract. The controller is the "controller" metadata
 * value when set, else created_by. Unknown actions are denied.
 */
#define KH_IMPLEMENT_EXPORTS
#include "kernelhost.h"

void kh_decide(const kh_request *req, kh_decision *d) {
    switch (req->action) {
    case KH_ACTION_READ:
    case KH_ACTION_WRITE:
    case KH_ACTION_EDIT:
    case KH_ACTION_INVOKE:
        kh_allow(d);
        return;
    case KH_ACTION_DELETE:
        if (kh_caller_is_controller(req)) {
            kh_allow(d);
        } else {
            kh_deny(d, "public: only the controller may delete");
        }
        return;
    case KH_ACTION_SET_CONTRACT:
        if (kh_caller_is_controller(req)) {
            kh_allow(d);
        } else {
            kh_deny(d, "public: only the controller may set_contract");
        }
        return;
    default:
        kh_deny(d, "public: unknown action");
        return;
    }
}
