package kernel

import (
	"context"
	"fmt"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Explanation is what Explain found out about one artifact action: the
// request its access contract saw, the contract's decision, what the run
// used, and what Do would do with that decision now.
//
// # Secrecy
//
// No path returns an artifact's metadata without that artifact's read check
// (docs/ARCHITECTURE.md). Explain runs the caller's read check on the target, and on
// the deciding contract, before it shows anything: the request's Metadata is
// omitted unless the caller may read the target, and its Config (the
// contract artifact's own metadata) unless the caller may read the contract.
// Redacted says what was left out. Content is never part of an explanation.
type Explanation struct {
	// Action is the action as judged; its Caller is the one Explain was given.
	Action Action
	// Contract is the id of the contract that judged the action, and
	// ContractHash the sha256 (hex) of its code. Both are empty when no
	// contract runs: creation is judged by the kernel alone, and an unknown
	// target or a kernel-protected one fails before any contract.
	Contract     string
	ContractHash string
	// Request is the request the contract saw, redacted as described above;
	// nil when no contract ran.
	Request *abi.Request
	// TargetReadable and ContractReadable report whether the caller passed
	// the read check on the target and on the deciding contract.
	TargetReadable   bool
	ContractReadable bool
	// Redacted names the request fields left out: "metadata", "config".
	Redacted []string
	// Decision is the contract's answer; nil when it did not answer (no
	// contract ran, or it failed: see Outcome).
	Decision *abi.Decision
	// Usage is what the contract's run used; Usage.CPU is its wall time.
	Usage abi.Usage
	// SpendingLimit is the most the caller would pay for the action: its
	// MaxCost when given, else its default spending limit. A Decision whose
	// Cost is above it, paid by the caller, makes Outcome
	// COST_LIMIT_EXCEEDED.
	SpendingLimit uint64
	// CPU is the cpu_rate, in microseconds, that Explain charged the caller
	// for all its contract runs (read checks included), each as Do charges
	// its run.
	CPU int64
	// Outcome is what Do would return for the action if nothing changed in
	// between: on success the charges settlement would apply, otherwise the
	// failure (PERMISSION_DENIED, CONTRACT_FAILED, PAYER_NOT_AUTHORIZED,
	// INSUFFICIENT_FUNDS, QUOTA_EXCEEDED, ...). Its Fuel is the action run's.
	// Its Content and Artifact are always nil and Event is 0: nothing was
	// recorded.
	//
	// NB: Outcome covers quotas before the contract (cpu_rate, memory),
	// permission and payment. The kernel's own checks on the action's shape
	// (changing a type, write changing the contract) and disk are Do's.
	Outcome Result
}

// Explain judges one artifact action (read, write, edit, delete,
// set_contract, invoke: its contract check, not the executable) exactly as
// Do would, without any effect on the store: it
// reads one snapshot, writes nothing, appends no audit event and moves no
// scrip. The access contract does run, on the caller's behalf, so the caller
// pays for it in cpu_rate as Do would: every run (the read check of the
// target; that of its contract, unless the contract governs itself; the
// action's own, unless it is a read) reserves up to Config.ContractTimeout
// of the caller's remaining cpu_rate, gets that as its budget (fuel or
// deadline), and is charged what it used, at least 1µs (Explanation.CPU sums
// them). A caller without cpu_rate left gets the Outcome QUOTA_EXCEEDED and
// nothing runs. Like Do's, these charges live in the rolling window only.
//
// a.Caller must be an existing principal, bound by the embedding program as
// for Do. Errors: INVALID_ARGUMENT for a malformed action or a kind the
// kernel judges alone (transfer, consent, quota), NOT_FOUND for an unknown
// caller, UNAVAILABLE once closed, INTERNAL on storage failure. A denial or
// a failing contract is not an error: it is the Outcome.
func (k *Kernel) Explain(ctx context.Context, a Action) (Explanation, error) {
	if !k.enter() {
		return Explanation{}, closedErr()
	}
	defer k.exit()
	defer k.com.poke() // the contract runs' usage goes to the store with a batch
	if k.cfg.Record {
		return Explanation{}, errRecording()
	}
	switch a.Kind {
	case KindRead, KindWrite, KindEdit, KindDelete, KindSetContract, KindInvoke:
	case "":
		return Explanation{}, errf(abi.InvalidArgument, "action kind is missing")
	default:
		return Explanation{}, errf(abi.InvalidArgument, "%s is judged by the kernel alone, not by a contract: explain takes read, write, edit, delete, set_contract or invoke", a.Kind)
	}
	if err := k.validate(&a); err != nil {
		return Explanation{}, err
	}
	now := k.nowNanos()
	var ex Explanation
	err := k.st.View(func(tx store.Txn) error {
		ex = Explanation{Action: a}
		// prepared: a contract's new code is not compiled here; the outcome
		// of a deploy does not depend on it (use host Validate for that).
		w := &work{k: k, ctx: ctx, a: &a, now: now, tx: &overlay{base: tx}, prepared: true, st: &txnState{}, ds: &doState{}}
		if err := w.explain(&ex); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return Explanation{}, storeErr(err)
	}
	return ex, nil
}

// explain fills ex. It returns an error only when there is no explanation
// to give (unknown caller, storage failure).
func (w *work) explain(ex *Explanation) *Error {
	a := w.a
	caller, err := w.principal(a.Caller)
	if err != nil {
		return err
	}
	art, exists, err := w.artifact(a.Target)
	if err != nil {
		return err
	}
	if !exists {
		if a.Kind == KindWrite {
			ex.Outcome = w.outcome(w.create())
		} else {
			ex.Outcome = w.outcome(errf(abi.NotFound, "artifact %q does not exist", a.Target))
		}
		return nil
	}
	if art.Type == TypeRight && a.Kind != KindRead {
		ex.Outcome = w.outcome(errf(abi.KernelProtected, "artifact %q is a right: only the right primitives change it", a.Target))
		return nil
	}
	c, err := w.governor(a.Target, &art)
	if err != nil {
		return err
	}
	ex.Contract, ex.ContractHash = art.Contract, hexHash(c.Hash)

	// The quotas Do applies before it runs a contract: the caller needs
	// cpu_rate left (each run reserves it, see check) and a memory quota.
	cpu, err := w.k.status(w.tx, a.Caller, &caller, CPURate, w.now)
	if err != nil {
		return err
	}
	if cpu.Available <= 0 {
		ex.Outcome = w.outcome(w.quotaErr(CPURate, 0, w.rateRetry(a.Caller, cpu.Quota, CPURate, 1), "%s of %q is exhausted (%d of %d used in the window)", CPURate, a.Caller, cpu.Used, cpu.Quota))
		return nil
	}
	memIdx, _ := Memory.index()
	if caller.Quota[memIdx] == 0 {
		ex.Outcome = w.outcome(w.quotaErr(Memory, 0, 0, "memory quota of %q is 0: no contract can run for it", a.Caller))
		return nil
	}
	defer func() { ex.CPU = w.ev.CPU }()

	// The read checks come first: they decide what the explanation may show.
	readD, readU, readErr := w.check(abi.ActionRead, a.Target, &art, &c, 0, &caller)
	ex.TargetReadable = readErr == nil && readD.Allowed
	// A run refused for cpu_rate fills w.res's QUOTA_EXCEEDED details; only
	// those of the run that decides (this one for a read) belong in the
	// Outcome.
	readQuota := w.quotaDetails()
	switch {
	case art.Contract == a.Target:
		ex.ContractReadable = ex.TargetReadable // a contract that governs itself
	default:
		g, err := w.governor(art.Contract, &c)
		if err != nil {
			return err
		}
		d, _, cerr := w.check(abi.ActionRead, art.Contract, &c, &g, 0, &caller)
		ex.ContractReadable = cerr == nil && d.Allowed
	}

	act, _ := abi.ParseAction(string(a.Kind))
	payload := uint64(0)
	if a.Content != nil {
		payload = uint64(len(a.Content))
	}
	d, u, evErr := readD, readU, readErr
	w.setQuotaDetails(readQuota)
	if act != abi.ActionRead {
		w.setQuotaDetails(quotaDetails{})
		d, u, evErr = w.check(act, a.Target, &art, &c, payload, &caller)
	}
	req := requestFor(act, a.Caller, a.Target, &art, c.Meta, w.now, payload, a.Method, a.Args)
	req.CallerRights, _ = w.callerRights(a.Caller)
	if !ex.TargetReadable {
		req.Metadata = nil
		ex.Redacted = append(ex.Redacted, "metadata")
	}
	if !ex.ContractReadable {
		req.Config = nil
		ex.Redacted = append(ex.Redacted, "config")
	}
	ex.Request, ex.Usage = &req, u
	w.res.Fuel = u.Fuel // the action's run, as in Do's result
	if evErr != nil {
		ex.Outcome = w.outcome(evErr)
		return nil
	}
	ex.Decision = &d
	w.res.Decision = &d
	if !d.Allowed {
		ex.Outcome = w.outcome(errf(abi.PermissionDenied, "%s of %q denied by %s: %s", a.Kind, a.Target, art.Contract, reasonOr(d.Reason)))
		return nil
	}
	if a.Kind == KindDelete && art.Type == TypeContract {
		if err := w.checkUnused(a.Target); err != nil {
			ex.Outcome = w.outcome(err)
			return nil
		}
	}
	lim, lerr := w.spendingLimit(a.Caller, a.MaxCost)
	if lerr != nil {
		return lerr
	}
	ex.SpendingLimit = lim
	ex.Outcome = w.outcome(w.settle(art.Contract, &d))
	return nil
}

// quotaDetails are the QUOTA_EXCEEDED fields of a Result.
type quotaDetails struct {
	resource  string
	available int64
	retry     time.Duration
}

func (w *work) quotaDetails() quotaDetails {
	return quotaDetails{w.res.Resource, w.res.Available, w.res.RetryAfter}
}

func (w *work) setQuotaDetails(q quotaDetails) {
	w.res.Resource, w.res.Available, w.res.RetryAfter = q.resource, q.available, q.retry
}

// governor loads the contract that governs the artifact id (record art).
func (w *work) governor(id string, art *artifactRec) (artifactRec, *Error) {
	if art.Contract == id {
		return *art, nil
	}
	c, err := w.contractRec(art.Contract)
	if err != nil {
		return c, &Error{Code: abi.Internal, Msg: fmt.Sprintf("governing contract of %q is missing", id), Err: err}
	}
	return c, nil
}

// check runs contract c on action act of the caller (record caller) on
// artifact id, budgeted and charged as Do's judge does: it reserves up to
// ContractTimeout of the caller's cpu_rate (QUOTA_EXCEEDED when none is
// left), runs the contract with that budget and the caller's memory quota,
// and charges the caller what the run used (adding it to w.ev.CPU). A
// failing contract is an *Error whose code denies.
func (w *work) check(act abi.Action, id string, art, c *artifactRec, payload uint64, caller *principalRec) (abi.Decision, abi.Usage, *Error) {
	if err := w.k.ensurePrepared(w.ctx, w.tx, art.Contract, c.Hash); err != nil {
		return abi.Decision{}, abi.Usage{}, err
	}
	req := requestFor(act, w.a.Caller, id, art, c.Meta, w.now, payload, w.a.Method, w.a.Args)
	rights, rerr := w.callerRights(w.a.Caller)
	if rerr != nil {
		return abi.Decision{}, abi.Usage{}, rerr
	}
	req.CallerRights = rights
	if act == abi.ActionRead {
		req.Method, req.Args = "", nil
	}
	got, release, qerr := w.reserveRate(w.a.Caller, caller, CPURate, w.k.cfg.ContractTimeout.Microseconds())
	if qerr != nil {
		return abi.Decision{}, abi.Usage{}, qerr
	}
	memIdx, _ := Memory.index()
	d, u, err := w.k.ev.Evaluate(w.ctx, c.Hash, &req, w.k.limits(got, caller.Quota[memIdx]))
	cpu := w.k.cpuCharge(u, got)
	release(cpu)
	w.ev.CPU += cpu
	if err != nil {
		code := codeOf(err)
		if code == abi.OK || code == abi.Internal {
			code = abi.ContractFailed
		}
		return d, u, &Error{Code: code, Msg: fmt.Sprintf("contract %s failed; the action is denied", art.Contract), Err: err}
	}
	return d, u, nil
}

// outcome turns the end of an explained attempt into the Result Do would
// give, without content, artifact or event.
func (w *work) outcome(err *Error) Result {
	r := w.res
	if err != nil {
		r.fail(err)
	} else {
		r.succeed()
	}
	r.Content, r.Artifact, r.Event = nil, nil, 0
	return r
}
