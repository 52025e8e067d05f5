package abi

// Code is a stable error code. Zero is OK, like wazero's Errno: "zero is not
// an error". Codes are part of the public contract of kernelhost: their
// numbers and names never change, new codes take new numbers.
type Code uint32

// Error codes. Each doc says when it is returned and whether retrying the same
// action can succeed without anything else changing (retriable).
const (
	OK                 Code = 0
	InvalidArgument    Code = 1  // INVALID_ARGUMENT: malformed input (ids, amounts, sizes, encodings); not retriable.
	NotFound           Code = 2  // NOT_FOUND: unknown principal or artifact; not retriable.
	AlreadyExists      Code = 3  // ALREADY_EXISTS: creating something whose id is taken; not retriable.
	PermissionDenied   Code = 4  // PERMISSION_DENIED: the access contract denied the action; not retriable.
	ContractFailed     Code = 5  // CONTRACT_FAILED: the contract trapped, hit a limit or returned a malformed decision; the action is denied; not retriable.
	ContractTimeout    Code = 6  // CONTRACT_TIMEOUT: the contract ran past its deadline; denied; not retriable.
	ContractInUse      Code = 7  // CONTRACT_IN_USE: deleting a contract that still governs an artifact; not retriable.
	ImmutableField     Code = 8  // IMMUTABLE_FIELD: an action tried to change id, type or created_by; not retriable.
	InsufficientFunds  Code = 9  // INSUFFICIENT_FUNDS: the payer's scrip balance is below the cost; not retriable.
	PayerNotAuthorized Code = 10 // PAYER_NOT_AUTHORIZED: the contract named a payer that has not consented (or whose caps are spent); not retriable.
	QuotaExceeded      Code = 11 // QUOTA_EXCEEDED: a resource quota is exhausted; retriable once capacity frees up.
	Conflict           Code = 12 // CONFLICT: concurrent transactions kept conflicting; retriable.
	Internal           Code = 13 // INTERNAL: a kernel or storage fault; retriable.
	ContractInvalid    Code = 14 // CONTRACT_INVALID: a module failed deploy-time validation; not retriable.
	OutOfFuel          Code = 15 // OUT_OF_FUEL: the contract used its whole fuel budget; denied; not retriable.
	KernelProtected    Code = 16 // KERNEL_PROTECTED: the artifact is kernel-managed and only kernel primitives change it; not retriable.
	DepthExceeded      Code = 17 // DEPTH_EXCEEDED: nested invocation went past the depth limit; not retriable.
	Unauthenticated    Code = 18 // UNAUTHENTICATED: missing or wrong credentials (HTTP API); not retriable.
	Unavailable        Code = 19 // UNAVAILABLE: the kernel is closed or shutting down, or the host is overloaded (every instance of a module stayed busy); retriable.
	ExecutionFailed    Code = 20 // EXECUTION_FAILED: an invoked executable trapped or returned an error; its writes are rolled back; not retriable.
	CostLimitExceeded  Code = 21 // COST_LIMIT_EXCEEDED: the contract's price for this caller is above the caller's spending limit (max_cost or its default); nothing was charged; not retriable.
	NoStanding         Code = 22 // NO_STANDING: an executable tried to act as a principal that has not granted it standing (or granted it to other code or configuration); not retriable.
	codeEnd            Code = 23
)

// Category groups codes for callers that branch coarsely.
type Category string

// Categories of codes.
const (
	CategoryNone       Category = ""
	CategoryInput      Category = "input"      // the request itself is wrong
	CategoryPermission Category = "permission" // a contract or consent said no
	CategoryContract   Category = "contract"   // the contract misbehaved
	CategoryResource   Category = "resource"   // scrip or quota is short
	CategoryState      Category = "state"      // the world's state forbids it
	CategorySystem     Category = "system"     // the kernel or storage failed
)

type codeInfo struct {
	name      string
	category  Category
	retriable bool
}

var codeInfos = [...]codeInfo{
	OK:                 {"OK", CategoryNone, false},
	InvalidArgument:    {"INVALID_ARGUMENT", CategoryInput, false},
	NotFound:           {"NOT_FOUND", CategoryInput, false},
	AlreadyExists:      {"ALREADY_EXISTS", CategoryState, false},
	PermissionDenied:   {"PERMISSION_DENIED", CategoryPermission, false},
	ContractFailed:     {"CONTRACT_FAILED", CategoryContract, false},
	ContractTimeout:    {"CONTRACT_TIMEOUT", CategoryContract, false},
	ContractInUse:      {"CONTRACT_IN_USE", CategoryState, false},
	ImmutableField:     {"IMMUTABLE_FIELD", CategoryInput, false},
	InsufficientFunds:  {"INSUFFICIENT_FUNDS", CategoryResource, false},
	PayerNotAuthorized: {"PAYER_NOT_AUTHORIZED", CategoryPermission, false},
	QuotaExceeded:      {"QUOTA_EXCEEDED", CategoryResource, true},
	Conflict:           {"CONFLICT", CategorySystem, true},
	Internal:           {"INTERNAL", CategorySystem, true},
	ContractInvalid:    {"CONTRACT_INVALID", CategoryInput, false},
	OutOfFuel:          {"OUT_OF_FUEL", CategoryContract, false},
	KernelProtected:    {"KERNEL_PROTECTED", CategoryPermission, false},
	DepthExceeded:      {"DEPTH_EXCEEDED", CategoryInput, false},
	Unauthenticated:    {"UNAUTHENTICATED", CategoryPermission, false},
	Unavailable:        {"UNAVAILABLE", CategorySystem, true},
	ExecutionFailed:    {"EXECUTION_FAILED", CategoryContract, false},
	CostLimitExceeded:  {"COST_LIMIT_EXCEEDED", CategoryPermission, false},
	NoStanding:         {"NO_STANDING", CategoryPermission, false},
}

func (c Code) info() codeInfo {
	if c < codeEnd {
		return codeInfos[c]
	}
	return codeInfo{"UNKNOWN", CategorySystem, false}
}

// String returns the stable SCREAMING_SNAKE name, e.g. "QUOTA_EXCEEDED".
func (c Code) String() string { return c.info().name }

// Category returns the code's category.
func (c Code) Category() Category { return c.info().category }

// Retriable reports whether the same action may succeed later unchanged.
func (c Code) Retriable() bool { return c.info().retriable }

// Codes returns every defined code in numeric order, OK first.
func Codes() []Code {
	out := make([]Code, 0, codeEnd)
	for c := OK; c < codeEnd; c++ {
		out = append(out, c)
	}
	return out
}

// ParseCode returns the code named s.
func ParseCode(s string) (Code, bool) {
	for c := OK; c < codeEnd; c++ {
		if codeInfos[c].name == s {
			return c, true
		}
	}
	return OK, false
}
