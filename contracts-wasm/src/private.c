/*
 * private: only the controller does anything. The controller is the
 * "controller" metadata value when set, else created_by. Unknown actions are
 * denied.
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
        kh_deny(d, "private: unknown action");
        return;
    }
    if (kh_caller_is_controller(req)) {
        kh_allow(d);
        return;
    }
    switch (req->action) {
    case KH_ACTION_READ:
        kh_deny(d, "private: only the controller may read");
        return;
    case KH_ACTION_WRITE:
        kh_deny(d, "private: only the controller may write");
        return;
    case KH_ACTION_EDIT:
        kh_deny(d, "private: only the controller may edit");
        return;
    case KH_ACTION_DELETE:
        kh_deny(d, "private: only the controller may delete");
        return;
    case KH_ACTION_INVOKE:
        kh_deny(d, "private: only the controller may invoke");
        return;
    default:
        kh_deny(d, "private: only the controller may set_contract");
        return;
    }
}
