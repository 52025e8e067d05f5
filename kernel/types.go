package kernel

import (
	"time"

	"github.com/kernelhost/kernelhost/abi"
)

// Kind names an action. The artifact actions are judged by access contracts
// and share their names with abi.Action; the others act on the caller's own
// standing and are judged by the kernel.
type Kind string

// Action kinds.
const (
	KindRead          Kind = "read"
	KindWrite         Kind = "write" // create, or replace content of an existing artifact
	KindEdit          Kind = "edit"  // change content and/or metadata in place
	KindDelete        Kind = "delete"
	KindSetContract   Kind = "set_contract"
	KindInvoke        Kind = "invoke"
	KindTransfer      Kind = "transfer"       // scrip from the caller to To
	KindGrantConsent  Kind = "grant_consent"  // the caller lets Contract name it as payer
	KindRevokeConsent Kind = "revoke_consent" // the caller withdraws that consent
	// KindGrantLLMConsent: the caller agrees to pay principal To's LLM
	// calls through the gateway, within caps: PerCallCap and TotalCap in
	// micro-dollars, Amount in tokens (llm.go).
	KindGrantLLMConsent  Kind = "grant_llm_consent"
	KindRevokeLLMConsent Kind = "revoke_llm_consent" // the caller withdraws it
	KindTransferQuota    Kind = "transfer_quota"     // quota of Resource from the caller to To
	KindConsumeQuota     Kind = "consume_quota"      // the caller reports usage of Resource
	// KindGrantStanding lets executable Target act as the caller (a host
	// call with "as": the caller's id), for as long as Target's code and
	// metadata stay as they are now.
	KindGrantStanding  Kind = "grant_standing"
	KindRevokeStanding Kind = "revoke_standing" // the caller withdraws Target's standing
	// KindSetSpendingLimit sets the caller's default spending limit: the
	// most it pays for one action's contract decision (and, for an invoke,
	// for everything the invocation debits from it) when the action gives
	// no max_cost. Amount may be 0.
	KindSetSpendingLimit Kind = "set_spending_limit"

	// Right primitives (rights.go), judged by the kernel: each acts only for
	// the right's current holder.
	KindMintRight     Kind = "mint_right"     // Amount of the caller's unused Resource quota into new right Target
	KindTransferRight Kind = "transfer_right" // right Target to principal To
	KindSplitRight    Kind = "split_right"    // right Target into parts of Amounts, named IDs (or Target.1, Target.2, ...)
	KindMergeRights   Kind = "merge_rights"   // rights IDs into right Target
	KindRedeemRight   Kind = "redeem_right"   // right Target back into the holder's quota
)

// Action is one request to the kernel. Caller is bound by whoever
// authenticated the request (the embedding program, the HTTP server); it is
// never read from client-supplied JSON (see DecodeAction).
//
// There is no created_by field: the kernel sets it at creation and nothing
// can change it.
type Action struct {
	Kind   Kind   `json:"kind"`
	Caller string `json:"-"`
	Target string `json:"target,omitempty"` // artifact id

	// write (create): Type and Contract of the new artifact; Contract empty
	// means Config.DefaultContract. write on an existing artifact may repeat
	// Type and Contract but not change them.
	Type     string `json:"type,omitempty"`
	Contract string `json:"contract,omitempty"` // also: set_contract's new contract, consent's contract
	Content  []byte `json:"content,omitempty"`  // write, edit (nil: keep content on edit)
	// Metadata is the initial metadata on create, merged into the existing
	// metadata on write and edit. Unset lists keys edit removes.
	Metadata map[string]string `json:"metadata,omitempty"`
	Unset    []string          `json:"unset,omitempty"`

	// MaxCost caps what the caller agrees to pay for this action's contract
	// decision (read, write, edit, delete, set_contract, invoke): a price
	// above it is COST_LIMIT_EXCEEDED and nothing is charged. Nil means the
	// caller's default spending limit (see SetSpendingLimit).
	MaxCost *int64 `json:"max_cost,omitempty"`

	// invoke
	Method string `json:"method,omitempty"`
	Args   []byte `json:"args,omitempty"`
	// MaxLLMCost is, on a top-level invoke, the most the invocation tree
	// may spend of the caller's llm_budget, in micro-dollars, through its
	// executables' LLM host calls (SPEC section 8). Nil or 0: none may
	// call an LLM: a caller never pays for calls it did not allow.
	MaxLLMCost *int64 `json:"max_llm_cost,omitempty"`

	// transfer, transfer_quota, consume_quota
	To       string `json:"to,omitempty"`
	Amount   int64  `json:"amount,omitempty"`
	Resource string `json:"resource,omitempty"` // a Resource name

	// grant_consent: caps on what Contract may charge the caller.
	PerCallCap int64 `json:"per_call_cap,omitempty"`
	TotalCap   int64 `json:"total_cap,omitempty"`

	// split_right: the amounts of the parts and, optionally, their ids.
	// merge_rights: IDs are the rights absorbed into Target.
	Amounts []int64  `json:"amounts,omitempty"`
	IDs     []string `json:"ids,omitempty"`

	// RequestID, when set, makes the action idempotent for its caller: a
	// repeat with the same id within Config.RequestWindow returns the
	// first result (Result.Replayed) and executes nothing, also after a
	// crash; the same id with another action is INVALID_ARGUMENT. Any
	// kind may carry one (requests.go).
	RequestID string `json:"request_id,omitempty"`

	// Token is the name of the credential the front end authenticated the
	// caller with (the HTTP server's token name, never the secret), copied
	// into the audit event so that every use of a token is attributable.
	// Like Caller it is set by whoever authenticated the request and never
	// read from client JSON (DecodeAction leaves it empty).
	Token string `json:"-"`
}

// Charge is one movement of scrip caused by an action.
type Charge struct {
	Payer  string `json:"payer"`
	Payee  string `json:"payee,omitempty"` // empty: burned
	Amount uint64 `json:"amount"`
	Reason string `json:"reason"` // "contract", "transfer"
}

// Result is the outcome of one action. OK is true exactly when Code is
// abi.OK. Every field but OK and Code is informational.
type Result struct {
	OK        bool         `json:"ok"`
	Code      abi.Code     `json:"-"`
	ErrorCode string       `json:"error_code,omitempty"`
	Category  abi.Category `json:"error_category,omitempty"`
	Retriable bool         `json:"retriable"`
	Message   string       `json:"message,omitempty"`

	// Decision is the access contract's answer, when one ran.
	Decision *abi.Decision `json:"decision,omitempty"`
	Charges  []Charge      `json:"charges,omitempty"`
	Revision uint64        `json:"revision,omitempty"` // the artifact's revision after the action
	Event    uint64        `json:"event,omitempty"`    // sequence number of the audit event

	// read
	Artifact *ArtifactInfo `json:"artifact,omitempty"`
	Content  []byte        `json:"content,omitempty"`

	// Fuel is the fuel contracts and executables used for this action, when
	// the evaluator meters them (see Config.FuelPerMicrosecond).
	Fuel uint64 `json:"fuel,omitempty"`

	// invoke: the executable's output and log lines.
	Output []byte   `json:"output,omitempty"`
	Logs   []string `json:"logs,omitempty"`

	// split_right: the ids of the new parts, in the order of Amounts.
	IDs []string `json:"ids,omitempty"`

	// QUOTA_EXCEEDED details.
	Resource   string        `json:"resource,omitempty"`
	Available  int64         `json:"available,omitempty"`
	RetryAfter time.Duration `json:"retry_after_ns,omitempty"`

	// Replayed is set on the answer to a repeated request_id: the result
	// is the first execution's (a read's content is not kept: read again
	// for it), and nothing ran this time.
	Replayed bool `json:"replayed,omitempty"`
}

// Err returns nil for a successful result and an *Error carrying the code
// otherwise, so that callers can use errors.Is(err, kernel.ErrQuotaExceeded).
func (r *Result) Err() error {
	if r.OK {
		return nil
	}
	return &Error{Code: r.Code, Msg: r.Message, final: r.Code.Retriable() && !r.Retriable}
}

// ArtifactInfo describes an artifact. Metadata is a copy the caller owns.
type ArtifactInfo struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	CreatedBy string            `json:"created_by"`
	Contract  string            `json:"access_contract"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Size      uint64            `json:"size"`
	Revision  uint64            `json:"revision"`
	Hash      string            `json:"sha256"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// Principal is an identity with standing.
type Principal struct {
	ID        string    `json:"id"`
	Balance   uint64    `json:"balance"`
	CreatedAt time.Time `json:"created_at"`
}

// Grant is a payer's consent to be charged by one contract, within caps.
// It binds to the contract's terms at grant time, its code and its
// configuration (metadata): a rewritten contract, or one whose price, payee
// or any other metadata changed, needs fresh consent.
type Grant struct {
	Payer    string `json:"payer"`
	Contract string `json:"contract"`
	// Terms is the sha256 (hex) of the contract's terms at grant time.
	Terms      string `json:"terms_sha256"`
	PerCallCap uint64 `json:"per_call_cap"`
	TotalCap   uint64 `json:"total_cap"`
	Spent      uint64 `json:"spent"`
}

// Event is one audit record. Every action, allowed or not, appends one.
type Event struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Caller   string    `json:"caller"`
	Kind     Kind      `json:"kind"`
	Target   string    `json:"target,omitempty"`
	To       string    `json:"to,omitempty"`
	Resource string    `json:"resource,omitempty"`
	Amount   int64     `json:"amount,omitempty"`
	CPU      int64     `json:"cpu_us,omitempty"` // contract and executable CPU charged to cpu_rate
	Fuel     uint64    `json:"fuel,omitempty"`   // fuel used by contracts and executables (metered evaluators)
	Depth    uint32    `json:"depth,omitempty"`  // nesting depth: actions of an executable are 1 deeper
	Allowed  bool      `json:"allowed"`          // the contract's answer, or true for kernel-judged actions that passed
	Reason   string    `json:"reason,omitempty"`
	Code     string    `json:"code"`
	Message  string    `json:"message,omitempty"`
	Charges  []Charge  `json:"charges,omitempty"`
	Revision uint64    `json:"revision,omitempty"`
	// Right primitives: the other rights involved (split_right's new parts,
	// merge_rights' absorbed rights) and split_right's amounts.
	IDs     []string `json:"ids,omitempty"`
	Amounts []int64  `json:"amounts,omitempty"`
	// Holder is, for right primitives, the holder of right Target when the
	// action ran: the caller, unless the caller was refused for not holding
	// it. EventsFor shows a refused caller's event with Holder empty.
	Holder string `json:"holder,omitempty"`
	// Token is the name of the token the top-level caller authenticated
	// with (Action.Token), empty for an embedding program's own calls.
	Token string `json:"token,omitempty"`
}

// Totals is the ledger summary. Minted = sum of balances + Burned, always.
type Totals struct {
	Minted uint64 `json:"minted"`
	Burned uint64 `json:"burned"`
}
