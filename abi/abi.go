package abi

// Version is the ABI version this package speaks. A contract reports the
// version it implements from its kh_abi_version export; the host refuses any
// other value at deploy time.
const Version uint16 = 1

// Magic numbers open every encoded request and decision, so that a guest that
// returns a pointer to garbage is caught before any field is trusted.
const (
	RequestMagic  = "KHRQ"
	DecisionMagic = "KHDC"
)

// Limits shared by host, kernel and guests. They bound every length a decoder
// reads, so that hostile bytes can never make a decoder allocate or loop more
// than these allow.
const (
	MaxIDLen          = 128     // principal and artifact ids, in bytes
	MaxTypeLen        = 64      // artifact type names
	MaxMetaPairs      = 64      // metadata pairs per artifact (and config pairs per contract)
	MaxMetaKeyLen     = 128     // bytes per metadata key
	MaxMetaValueLen   = 4096    // bytes per metadata value
	MaxMethodLen      = 128     // invoke method name
	MaxArgsLen        = 1 << 20 // invoke arguments
	MaxReasonLen      = 1024    // decision reason
	MaxDecisionSize   = decisionFixed + 3*4 + 2*MaxIDLen + MaxReasonLen
	MaxCallerRights   = 16 // caller_rights entries (one per resource)
	MaxResourceLen    = 32 // bytes of a resource name in caller_rights
	MaxRequestSize    = requestFixed + 8*4 + 3*MaxIDLen + MaxTypeLen + MaxMethodLen + MaxArgsLen + 2*MaxMetaPairs*(8+MaxMetaKeyLen+MaxMetaValueLen) + 4 + MaxCallerRights*(4+MaxResourceLen+8)
	requestFixed      = 48
	decisionFixed     = 16
	flagTargetExists  = 1 << 0
	knownRequestFlags = flagTargetExists
)

// Action is what a caller asks to do to an artifact. The numbering is part of
// the ABI and never changes; new actions take new numbers.
type Action uint16

// Actions judged by access contracts.
const (
	ActionInvalid     Action = 0
	ActionRead        Action = 1
	ActionWrite       Action = 2 // replace the content of an existing artifact
	ActionEdit        Action = 3 // change content or metadata in place
	ActionDelete      Action = 4
	ActionInvoke      Action = 5
	ActionSetContract Action = 6 // change the artifact's governing contract
	actionEnd         Action = 7
)

var actionNames = [...]string{
	ActionInvalid:     "invalid",
	ActionRead:        "read",
	ActionWrite:       "write",
	ActionEdit:        "edit",
	ActionDelete:      "delete",
	ActionInvoke:      "invoke",
	ActionSetContract: "set_contract",
}

// String returns the action's lowercase wire name, e.g. "set_contract".
func (a Action) String() string {
	if a < actionEnd {
		return actionNames[a]
	}
	return "unknown"
}

// Valid reports whether a is a defined action other than ActionInvalid.
func (a Action) Valid() bool { return a > ActionInvalid && a < actionEnd }

// ParseAction returns the action whose wire name is s.
func ParseAction(s string) (Action, bool) {
	for i := ActionRead; i < actionEnd; i++ {
		if actionNames[i] == s {
			return i, true
		}
	}
	return ActionInvalid, false
}

// KV is one metadata pair. Encoded lists are sorted by Key, keys unique.
type KV struct {
	Key   string
	Value string
}

// Request is everything a contract is told about one action. The kernel fills
// it from the store; nothing in it is chosen by the caller except the action,
// the payload size and the invoke method and arguments.
type Request struct {
	Action Action
	// TargetExists is false only for requests about an artifact that is not
	// stored yet; the fields of the target are then empty.
	TargetExists bool
	// Time is the kernel's logical time (nanoseconds since the Unix epoch from
	// the kernel's injected clock). It is the same for every contract run by
	// one action, so a contract that reads it stays deterministic.
	Time uint64
	// Depth is the nesting depth of the action: 0 for a top-level action,
	// n for an action issued by an executable invoked at depth n-1.
	Depth uint32

	Caller         string // principal acting; bound by the kernel, never by the client
	TargetID       string
	TargetType     string
	CreatedBy      string // immutable fact; contracts may use it, the kernel never does
	AccessContract string // id of the contract judging this request
	Size           uint64 // current content size of the target, bytes
	Revision       uint64 // current revision of the target
	Metadata       []KV   // the target's metadata, sorted by key

	PayloadSize uint64 // bytes the action would store (write, edit)
	Method      string // invoke only
	Args        []byte // invoke only

	Config []KV // the deciding contract artifact's own metadata, sorted by key

	// CallerRights is how much of each resource the caller holds in rights
	// (kernel-managed claims on quota): at most MaxCallerRights entries,
	// sorted by resource, resources unique and non-empty; the kernel leaves
	// out resources with no rights. It is encoded after Config only when
	// non-empty, a backward-compatible revision of version 1 (SPEC.md
	// section 3): a request that ends at Config has no caller rights.
	CallerRights []RightAmount
}

// RightAmount is the total amount of one resource held in rights.
type RightAmount struct {
	Resource string // a quota resource name, e.g. "llm_rate"
	Amount   uint64
}

// Decision is a contract's answer. A denial is a Decision with Allowed false
// and a Reason, not an error.
type Decision struct {
	Allowed bool
	Cost    uint64 // scrip charged to Payer
	Payer   string // empty: the caller pays
	Payee   string // empty: the cost is burned
	Reason  string // at most MaxReasonLen bytes
}
