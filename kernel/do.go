package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Do performs one action and returns its result. It never panics on input
// and never returns a partial effect: either the whole action (effect,
// charges, audit event) commits in one transaction, or nothing but the audit
// event of a denial does.
//
// Actions that fail validation, or whose caller is unknown, change nothing
// and append no event; every other action, allowed or denied, appends one.
func (k *Kernel) Do(ctx context.Context, a Action) Result {
	return k.doTape(ctx, a, nil, nil)
}

// doTape is Do; with a non-nil tape (a replay), the action's LLM host
// calls are answered from it alone, and abortCPU is what the recording's
// attempts they interrupted were charged, which the replay charges again
// (llmexec.go).
func (k *Kernel) doTape(ctx context.Context, a Action, tape []LLMExchange, abortCPU map[string]int64) Result {
	if !k.enter() {
		return failResult(closedErr())
	}
	defer k.exit()
	if err := k.validate(&a); err != nil {
		return failResult(err)
	}
	f := doFrames.Get().(*doFrame)
	f.a = a
	if tape != nil {
		f.ds.tape, f.ds.replay, f.ds.abortCPU = tape, true, abortCPU
		k.chargeAbortedCPU(abortCPU, k.nowNanos())
	}
	res := k.do(ctx, f)
	f.release()
	return res
}

// doFrame is what one Do call works in, reused across calls (doFrames) so
// that an action allocates none of it: the action, the state kept across
// attempts, the attempt's transaction state, work and read overlay, and
// the bodies handed to the store and the committer.
type doFrame struct {
	k        *Kernel
	a        Action
	ds       doState
	st       txnState
	w        work
	ov       overlay
	rb       *rollbackErr // errors.As target
	queued   bool         // the read's event waits for the committer, which releases its number
	viewBody func(store.Txn) error
	runBody  func(store.Txn) error
}

var doFrames = sync.Pool{New: func() any {
	f := new(doFrame)
	f.viewBody = f.view
	f.runBody = f.w.run
	return f
}}

// release clears f, keeping its buffers, and returns it to doFrames.
func (f *doFrame) release() {
	clear(f.ds.pending)
	pending := f.ds.pending[:0]
	f.ds = doState{pending: pending}
	f.st = txnState{}
	f.w = work{}
	f.ov.reset(nil)
	f.a, f.k, f.rb, f.queued = Action{}, nil, nil, false
	doFrames.Put(f)
}

// view is the body of a read's attempt on a snapshot: the action runs on
// an overlay, and it is done there if the only write was its audit event,
// which is queued for the committer.
func (f *doFrame) view(tx store.Txn) error {
	f.ov.reset(tx)
	if err := f.w.run(&f.ov); err != nil {
		return err
	}
	ev, ok := f.ov.only(f.w.st.eventKey(f.w.seq))
	if !ok {
		return errNeedsWrite
	}
	if ev != nil {
		f.k.com.queueEvent(ev)
		f.queued = true
	}
	return nil
}

func (k *Kernel) do(ctx context.Context, f *doFrame) Result {
	// New contract code is compiled outside any transaction (compiling can
	// take milliseconds and must not widen the conflict window), and only
	// once the caller passed every check before it (existence, permission,
	// disk, the compile charge): an attempt that gets that far aborts with
	// errNeedPrepare, Do compiles, and the action runs again from the start.
	f.k = k
	a, ds, st := &f.a, &f.ds, &f.st
	now := k.nowNanos()
	// A read runs first on a snapshot (commits nothing); one that turns out
	// to write more than its audit event (a read with a price) runs again
	// through the committer, reusing its contract decisions.
	// A read with a request id keeps its result: a write.
	// So does every read while the kernel records (record.go).
	view := a.Kind == KindRead && a.RequestID == "" && !k.cfg.Record
	for attempt := 0; ; attempt++ {
		f.w = work{k: k, ctx: ctx, a: a, now: now, prepared: ds.prepared, modHash: ds.modHash, st: st, ds: ds}
		w := &f.w
		var err error
		f.queued = false
		if view {
			err = k.st.View(f.viewBody)
		} else {
			err = k.com.submit(f.runBody)
		}
		st.endHolds(err == nil) // quota.go: capacity held by the attempt's checks
		if errors.Is(err, errNeedsWrite) {
			view = false
			ds.retry()
			continue
		}
		if err == nil {
			for _, f := range st.afterCommit {
				f()
			}
		}
		if errors.As(err, &f.rb) {
			return k.recordRollback(w)
		}
		if errors.Is(err, errNeedPrepare) && ds.compileHold != nil {
			// Authority passed and the deploy charge is held: prepare,
			// then settle the charge. A module that does not prepare fails
			// the next attempt, which records the failure and the charge.
			h, init, perr := k.prepare(ctx, a.Content)
			ds.compileCPU = ds.compileHold.settle(init)
			ds.compileHold = nil
			if perr != nil {
				ds.prepErr = perr
			} else {
				ds.prepared, ds.modHash = true, h
			}
			ds.retry()
			continue
		}
		if errors.Is(err, errNeedLLM) && ds.llmAsk != nil {
			// An executable asked an LLM: ask outside any transaction,
			// then run the action again, answering from the tape.
			k.askLLM(ctx, ds)
			ds.retry()
			continue
		}
		if errors.Is(err, store.ErrConflict) && attempt < k.cfg.MaxConflictRetries {
			conflictBackoff(attempt)
			ds.retry()
			continue
		}
		if err != nil {
			return failResult(storeErr(err))
		}
		return w.res
	}
}

// rollbackErr discards a transaction whose action failed after it had
// written (an invocation whose executable failed): Do then records the
// failure's audit event alone.
type rollbackErr struct{}

func (*rollbackErr) Error() string { return "kernel: action failed after partial effect; rolled back" }

// recordRollback appends the audit event of a rolled-back action in a
// transaction of its own, numbered there (the rolled-back attempt's
// numbers went back to the committer).
func (k *Kernel) recordRollback(w *work) Result {
	w.ev.Charges = nil
	w.ev.Revision = 0
	w.res.Charges = nil
	w.res.Revision = 0
	err := k.update(func(tx store.Txn) error {
		w.ev.Seq = takeSeq(tx)
		if err := k.appendEvent(tx, &w.ev); err != nil {
			return err
		}
		w.tx, w.res.Event = tx, w.ev.Seq
		if e := w.keepResult(); e != nil {
			return e
		}
		if e := w.recordDo(); e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		return failResult(storeErr(err))
	}
	w.res.Event = w.ev.Seq
	return w.res
}

// takeSeq takes the next audit event number of the committer's batch that
// tx belongs to, or returns 0 on a snapshot (a read's event is numbered
// when a batch writes it).
func takeSeq(tx store.Txn) uint64 {
	o, ok := tx.(*overlay)
	if !ok || o.num == nil {
		return 0
	}
	n := *o.num
	*o.num++
	return n
}

// doState is what one Do call keeps across the attempts of its
// transaction, so that a retry neither redoes nor re-bills work the first
// attempt did: the compiled module and its charge, and the decisions of
// contracts (a contract is deterministic: the same code asked the same
// request answers the same, so a retry reuses the answer and its charge).
type doState struct {
	prepared    bool         // a.Content is a prepared module
	modHash     [32]byte     // its hash
	prepErr     *Error       // a.Content did not compile: the action fails with it
	compileCPU  int64        // what deploying it billed, in µs of cpu_rate
	compileHold *compileHold // held by the attempt that aborted to prepare
	// LLM host calls (llmexec.go): the answers so far, in call order;
	// whether they come from a record (a replay: nothing is asked); the
	// call an aborted attempt left; the calls asked and what they cost;
	// the CPU of the attempts they interrupted, by principal.
	tape     []LLMExchange
	replay   bool
	llmAsk   *llmAsk
	llmAsks  int
	llmSpent int64
	abortCPU map[string]int64
	// The contract runs of earlier attempts: kept as they happen in
	// pending (no hashing on the path of an action that commits at its
	// first attempt), keyed by memoKey in evals once an attempt retries.
	pending []pendingEval
	evals   map[[32]byte]memoEval
	retried bool
}

// memoEval is one contract run of an earlier attempt.
type memoEval struct {
	d     abi.Decision
	usage abi.Usage
	cpu   int64 // cpu_rate charged for it
	err   error
}

// pendingEval is a contract run not yet keyed.
type pendingEval struct {
	code [32]byte
	req  abi.Request
	memoEval
}

// maxMemoEvals bounds the runs a doState keeps: an invocation tree makes at
// most maxHostCalls nested actions, each judged once.
const maxMemoEvals = 2 * maxHostCalls

// retry is called before every attempt after the first: the runs so far
// are keyed, so that the attempt can find them.
func (ds *doState) retry() {
	ds.retried = true
	for _, p := range ds.pending {
		ds.store(p.code, &p.req, p.memoEval)
	}
	ds.pending = nil
}

// remember keeps a contract run for later attempts.
func (ds *doState) remember(code [32]byte, req *abi.Request, m memoEval) {
	switch {
	case len(ds.pending)+len(ds.evals) >= maxMemoEvals:
	case ds.retried:
		ds.store(code, req, m)
	default:
		ds.pending = append(ds.pending, pendingEval{code: code, req: *req, memoEval: m})
	}
}

func (ds *doState) store(code [32]byte, req *abi.Request, m memoEval) {
	if k, ok := memoKey(code, req); ok {
		if ds.evals == nil {
			ds.evals = make(map[[32]byte]memoEval)
		}
		ds.evals[k] = m
	}
}

// recall finds the run of an earlier attempt that asked code req.
func (ds *doState) recall(code [32]byte, req *abi.Request) (memoEval, bool) {
	if !ds.retried || len(ds.evals) == 0 {
		return memoEval{}, false
	}
	k, ok := memoKey(code, req)
	if !ok {
		return memoEval{}, false
	}
	m, hit := ds.evals[k]
	return m, hit
}

// conflictBackoff waits a little before attempt+1 of a transaction that
// conflicted, longer each time (50µs, 100µs, ... up to 5ms), so that
// colliding actions spread out instead of colliding again at once. It
// affects only when an action runs, never its result.
func conflictBackoff(attempt int) {
	d := time.Duration(50*(attempt+1)) * time.Microsecond
	time.Sleep(min(d, 5*time.Millisecond))
}

// txnState is shared by an action and every action nested in it (through an
// executable's host calls): they all run in one transaction.
type txnState struct {
	// afterCommit runs once the transaction committed: in-memory effects
	// (rate windows) that must not happen for an attempt that is retried.
	afterCommit []func()
	// holds are capacity of renewable resources taken by checks in the
	// transaction, resolved by endHolds when it ends (see quota.go).
	holds  []rateHold
	writes int // writes made so far, by any action in the transaction
	// calls counts the kernel host calls of the whole invocation tree
	// (every level), bounded by maxHostCalls; llmCalls its LLM host
	// calls, the position on the tape (llmexec.go).
	calls    int
	llmCalls int
	// topLLMCap is the top-level invoke's max_llm_cost (0: none).
	topLLMCap int64
	// The spending limit of the top-level action's caller covers the whole
	// tree: what the caller pays for its decisions and, inside an
	// invocation, what executables transfer as the caller.
	// kbuf is scratch room for the keys of Gets (the store keeps no key it
	// is asked for), so that a lookup builds its key without allocating.
	kbuf []byte

	top      string // the top-level caller
	topLimit uint64 // its limit for this action (max_cost or its default)
	topSpent uint64 // what the tree has debited from it so far
}

// key returns prefix+id in st's scratch buffer, valid until the next call:
// for Gets only, never for a Set.
func (st *txnState) key(prefix []byte, id string) []byte {
	st.kbuf = append(append(st.kbuf[:0], prefix...), id...)
	return st.kbuf
}

// eventKey returns eventKey(seq) in st's scratch buffer, like key.
func (st *txnState) eventKey(seq uint64) []byte {
	st.kbuf = binary.BigEndian.AppendUint64(append(st.kbuf[:0], prefixEvent...), seq)
	return st.kbuf
}

// errNeedsWrite ends a read's attempt on a snapshot that would write more
// than its audit event: it runs again through the committer.
var errNeedsWrite = errors.New("kernel: read needs a write transaction")

// errNeedPrepare aborts an attempt that must compile contract code first.
var errNeedPrepare = errors.New("kernel: contract code needs preparing")

// work is one attempt of one action inside one transaction.
type work struct {
	k        *Kernel
	ctx      context.Context
	a        *Action
	now      int64
	seq      uint64
	tx       store.Txn
	st       *txnState
	depth    uint32   // 0 for a top-level action, n+1 for actions of an executable at depth n
	ds       *doState // shared by every attempt of the Do call and its nested actions
	prepared bool     // the Evaluator accepted a.Content as a module
	modHash  [32]byte // a.Content's hash, when prepared
	writes0  int      // st.writes when this action started

	ran  bool     // an executable ran for this action
	meta []abi.KV // the target's metadata after write or edit

	res Result
	ev  Event
}

// dirty reports whether this action (or one nested in it) has written.
func (w *work) dirty() bool { return w.st.writes > w.writes0 }

func (w *work) set(k, v []byte) *Error {
	w.st.writes++
	if err := w.tx.Set(k, v); err != nil {
		return storeErr(err)
	}
	return nil
}

func (w *work) del(k []byte) *Error {
	w.st.writes++
	if err := w.tx.Delete(k); err != nil {
		return storeErr(err)
	}
	return nil
}

// run is the transaction body of a top-level action.
func (w *work) run(tx store.Txn) error {
	w.tx = tx
	*w.st = txnState{kbuf: w.st.kbuf[:0]}
	err := w.exec()
	if err == errNeedPrepareErr {
		return errNeedPrepare
	}
	if err == errNeedLLMErr {
		return errNeedLLM
	}
	if err != nil {
		return err
	}
	return nil
}

// exec performs the action in w.tx: it checks everything it can before it
// writes anything, and appends the audit event. It returns an error only to
// abort the whole transaction: a storage failure or conflict (retried by
// Do), or a failure after writes (rolled back, then recorded by Do).
func (w *work) exec() *Error {
	w.res = Result{}
	w.writes0 = w.st.writes
	a := w.a
	w.ev = Event{Seq: w.seq, Time: unixTime(w.now), Caller: a.Caller, Kind: a.Kind, Target: a.Target, To: a.To, Resource: a.Resource, Amount: a.Amount, Depth: w.depth, Token: a.Token}
	if w.depth == 0 {
		// Billed by earlier attempts: the compile (needPrepared) and the
		// runs LLM calls interrupted (llmexec.go).
		w.ev.CPU = w.ds.compileCPU + abortedCPUTotal(w.ds.abortCPU)
	}
	if _, err := w.principal(a.Caller); err != nil {
		// Unknown callers leave no trace: there is nobody to attribute to.
		w.res = failResult(err)
		return nil
	}
	if a.RequestID != "" {
		var done bool
		var rerr *Error
		if w.depth > 0 {
			rerr = errf(abi.InvalidArgument, "request_id belongs to top-level actions: an invocation's nested actions commit with it")
		} else {
			done, rerr = w.replay() // requests.go
		}
		if rerr != nil {
			if rerr.Code == abi.Internal {
				return rerr
			}
			return w.failed(rerr)
		}
		if done {
			return nil // answered from the record: nothing runs, nothing is written
		}
	}
	if w.depth == 0 {
		lim, err := w.spendingLimit(a.Caller, a.MaxCost)
		if err != nil {
			return err
		}
		w.st.top, w.st.topLimit = a.Caller, lim
		if a.MaxLLMCost != nil {
			w.st.topLLMCap = *a.MaxLLMCost
		}
	}
	var err *Error
	switch a.Kind {
	case KindTransfer:
		err = w.transfer()
	case KindGrantConsent:
		err = w.grantConsent()
	case KindRevokeConsent:
		err = w.revokeConsent()
	case KindGrantLLMConsent:
		err = w.grantLLMConsent() // llm.go
	case KindRevokeLLMConsent:
		err = w.revoke(llmGrantKey(a.Caller, a.To), "%q has no LLM consent for %q", a.Caller, a.To)
	case KindSetSpendingLimit:
		err = w.setSpendingLimit()
	case KindGrantStanding:
		err = w.grantStanding()
	case KindRevokeStanding:
		err = w.revokeStanding()
	case KindTransferQuota:
		err = w.transferQuota()
	case KindConsumeQuota:
		err = w.consumeQuota()
	case KindMintRight, KindTransferRight, KindSplitRight, KindMergeRights, KindRedeemRight:
		err = w.rightAction()
	default:
		err = w.artifactAction()
	}
	if err == errNeedPrepareErr || err == errNeedLLMErr {
		return err
	}
	if err != nil {
		if err.Code == abi.Internal || err.Code == abi.Conflict || err.Code == abi.Unavailable {
			return err // abort: retried on conflict, reported otherwise
		}
		w.res.fail(err)
		w.ev.Code = w.res.Code.String()
		w.ev.Message = w.res.Message
		if w.dirty() || w.ran {
			// Only an invocation fails after writing or running code: its
			// executable (or a nested one) failed. Everything it did,
			// nested audit events included, is rolled back; a nested
			// failure fails the whole invocation tree.
			return &Error{Code: err.Code, Msg: err.Msg, Err: &rollbackErr{}}
		}
	} else {
		w.res.succeed()
	}
	w.ev.Code = w.res.Code.String()
	w.ev.Message = w.res.Message
	w.ev.Charges = w.res.Charges
	w.ev.Revision = w.res.Revision
	if e := w.appendEvent(); e != nil {
		return e
	}
	if err := w.keepResult(); err != nil { // requests.go
		return err
	}
	return w.recordDo() // record.go
}

// appendEvent numbers w's event and appends it. The number is taken only
// now, when the event is written, so that an action that writes none (an
// unknown caller, a request answered from its record) leaves no gap; the
// events of an invocation's nested actions therefore come before the
// invocation's own.
func (w *work) appendEvent() *Error {
	w.seq = takeSeq(w.tx)
	w.ev.Seq = w.seq
	if e := w.k.appendEvent(w.tx, &w.ev); e != nil {
		return storeErr(e)
	}
	w.res.Event = w.seq
	return nil
}

// failed records err as the outcome of an action that wrote nothing: its
// event, and its result under its request id.
func (w *work) failed(err *Error) *Error {
	w.res.fail(err)
	w.ev.Code = w.res.Code.String()
	w.ev.Message = w.res.Message
	if e := w.appendEvent(); e != nil {
		return e
	}
	if err := w.keepResult(); err != nil {
		return err
	}
	return w.recordDo()
}

// needPrepared makes sure the Evaluator accepted a.Content as a module. It
// runs only after every check that can refuse the action before it. The
// writer pays for deploying, from its cpu_rate, whatever the outcome: the
// compile charge (compileCost) and the fuel the module's initialisation
// runs, both functions of the bytes alone, so the charge is the same on
// every node and every retry whether or not the module happens to be
// compiled already. Nobody can make the host compile or initialise for
// free. A top-level action holds the charge, aborts, and Do prepares
// outside the transaction (and settles the charge); a nested one prepares
// in place.
func (w *work) needPrepared() *Error {
	if w.prepared {
		return nil
	}
	top := w.depth == 0
	if top && w.ds.prepErr != nil {
		return w.ds.prepErr
	}
	hold, err := w.holdCompile()
	if err != nil {
		return err
	}
	if top {
		w.ds.compileHold = hold
		return errNeedPrepareErr
	}
	h, init, perr := w.k.prepare(w.ctx, w.a.Content)
	w.ev.CPU += hold.settle(init)
	if perr != nil {
		return perr
	}
	w.prepared, w.modHash = true, h
	return nil
}

// compileHold is cpu_rate held for deploying a module, settled once the
// Evaluator said what its initialisation ran.
type compileHold struct {
	cost    int64 // the compile charge
	got     int64 // what was reserved: cost plus up to the init reserve
	release func(used int64)
}

// settle charges the compile charge plus init µs, never more than was held,
// and returns the charge.
func (c *compileHold) settle(init int64) int64 {
	charge := min(c.cost+init, c.got)
	c.release(charge)
	return charge
}

// holdCompile reserves the deploy charge of a.Content from the caller's
// cpu_rate: the compile charge, which must be available in full, plus as
// much of the Evaluator's init reserve as is. QUOTA_EXCEEDED when the
// caller has less than the compile charge.
func (w *work) holdCompile() (*compileHold, *Error) {
	cost := w.k.compileCost(len(w.a.Content))
	p, err := w.principal(w.a.Caller)
	if err != nil {
		return nil, err
	}
	i, _ := CPURate.index()
	if cost > p.Quota[i] { // final: no wait frees more than the quota
		st, serr := w.k.status(w.tx, w.a.Caller, &p, CPURate, w.now)
		if serr != nil {
			return nil, serr
		}
		return nil, w.quotaErr(CPURate, st.Available, 0, "compiling a module of %d bytes costs %dµs of cpu_rate, more than the whole quota of %q (%d)", len(w.a.Content), cost, w.a.Caller, p.Quota[i])
	}
	got, release, qerr := w.reserveRate(w.a.Caller, &p, CPURate, cost+w.k.initReserve())
	if qerr != nil {
		return nil, qerr
	}
	if got < cost {
		release(0)
		return nil, w.quotaErr(CPURate, got, w.rateRetry(w.a.Caller, p.Quota[i], CPURate, cost), "compiling a module of %d bytes costs %dµs of cpu_rate; %q has %d available", len(w.a.Content), cost, w.a.Caller, got)
	}
	return &compileHold{cost: cost, got: got, release: release}, nil
}

// compileCost is the cpu_rate, in µs, charged for compiling a module of n
// bytes: Config.CompileMicrosPerKiB per KiB, rounded up, at least 1.
func (k *Kernel) compileCost(n int) int64 {
	return max(1, (int64(n)*k.cfg.CompileMicrosPerKiB+1023)/1024)
}

// ModuleInspector is implemented by Evaluators that can tell which entry
// points a prepared module exports (package host's Host does). With one, the
// kernel refuses at deploy a contract without kh_check or an executable
// without kh_invoke, instead of letting every later call fail.
type ModuleInspector interface {
	Entrypoints(hash [32]byte) (check, invoke, ok bool)
}

// checkKind verifies that the prepared module in a.Content fits an artifact
// of type typ.
func (w *work) checkKind(typ string) *Error {
	mi, ok := w.k.ev.(ModuleInspector)
	if !ok || !w.prepared {
		return nil
	}
	check, invoke, known := mi.Entrypoints(w.modHash)
	switch {
	case !known:
		return nil
	case typ == TypeContract && !check:
		return errf(abi.ContractInvalid, "a contract must export kh_check: this module is an executable (kh_invoke only); deploy it with type %q", TypeExecutable)
	case typ == TypeExecutable && !invoke:
		return errf(abi.ContractInvalid, "an executable must export kh_invoke: this module is an access contract (kh_check only); deploy it with type %q", TypeContract)
	}
	return nil
}

func (w *work) principal(id string) (principalRec, *Error) {
	b, err := w.tx.Get(w.st.key(prefixPrincipal, id))
	if errors.Is(err, store.ErrNotFound) {
		return principalRec{}, errf(abi.NotFound, "principal %q does not exist", id)
	}
	if err != nil {
		return principalRec{}, storeErr(err)
	}
	p, err := decodePrincipal(b)
	if err != nil {
		return principalRec{}, storeErr(err)
	}
	return p, nil
}

func (w *work) putPrincipal(id string, p principalRec) *Error {
	return w.set(principalKey(id), p.encode())
}

// artifact loads an artifact record; ok is false when it does not exist.
func (w *work) artifact(id string) (artifactRec, bool, *Error) {
	b, err := w.tx.Get(w.st.key(prefixArtifact, id))
	if errors.Is(err, store.ErrNotFound) {
		return artifactRec{}, false, nil
	}
	if err != nil {
		return artifactRec{}, false, storeErr(err)
	}
	r, err := decodeArtifact(b)
	if err != nil {
		return artifactRec{}, false, storeErr(err)
	}
	return r, true, nil
}

func (w *work) putArtifact(id string, r *artifactRec) *Error {
	return w.set(artifactKey(id), r.encode())
}

// contractRec loads the contract id, which must exist and be of type contract.
func (w *work) contractRec(id string) (artifactRec, *Error) {
	c, ok, err := w.artifact(id)
	if err != nil {
		return c, err
	}
	if !ok {
		return c, errf(abi.NotFound, "contract %q does not exist", id)
	}
	if c.Type != TypeContract {
		return c, errf(abi.InvalidArgument, "artifact %q is of type %q, not a contract", id, c.Type)
	}
	return c, nil
}

func (w *work) artifactAction() *Error {
	a := w.a
	art, exists, err := w.artifact(a.Target)
	if err != nil {
		return err
	}
	if !exists {
		if a.Kind == KindWrite {
			return w.create()
		}
		return errf(abi.NotFound, "artifact %q does not exist", a.Target)
	}
	if art.Type == TypeRight && a.Kind != KindRead {
		// Reads of a right are judged by its contract like any read.
		return errf(abi.KernelProtected, "artifact %q is a right: only the right primitives change it", a.Target)
	}
	// Checks the kernel makes on the shape of the action, before asking the
	// contract: they concern physics, not permission.
	switch a.Kind {
	case KindWrite, KindEdit:
		if a.Type != "" && a.Type != art.Type {
			return errf(abi.ImmutableField, "type of %q is %q and cannot change", a.Target, art.Type)
		}
		if a.Kind == KindWrite && a.Contract != "" && a.Contract != art.Contract {
			return errf(abi.InvalidArgument, "write cannot change the access contract: use set_contract")
		}
		if a.Kind == KindEdit && a.Contract != "" {
			return errf(abi.InvalidArgument, "edit cannot change the access contract: use set_contract")
		}
		if err := w.k.checkContentSize(art.Type, a.Content); err != nil {
			return err
		}
		meta, err := mergeMeta(art.Meta, a.Metadata, a.Unset)
		if err != nil {
			return err
		}
		w.meta = meta
		// The caller's own disk is checked before its contract runs; a
		// disk payer's other than the caller only once the contract
		// allowed the action, so that a stranger learns nothing of it.
		if art.DiskPayer == a.Caller {
			if err := w.checkDisk(art.DiskPayer, w.diskDelta(&art)); err != nil {
				return err
			}
		}
	case KindInvoke:
		if art.Type != TypeExecutable {
			return errf(abi.InvalidArgument, "%q is of type %q: only executables can be invoked", a.Target, art.Type)
		}
		if w.depth > w.k.cfg.MaxDepth {
			return errf(abi.DepthExceeded, "invoke of %q at depth %d exceeds the limit of %d", a.Target, w.depth, w.k.cfg.MaxDepth)
		}
	case KindSetContract:
		if a.Contract == a.Target && art.Type != TypeContract {
			return errf(abi.InvalidArgument, "only a contract can govern itself")
		}
		if a.Contract != a.Target {
			if _, err := w.contractRec(a.Contract); err != nil {
				return err
			}
		}
	}
	payload := uint64(0)
	if a.Content != nil {
		payload = uint64(len(a.Content))
	}
	d, cerr := w.judge(a.Target, &art, payload)
	if cerr != nil {
		return cerr
	}
	if !d.Allowed {
		return errf(abi.PermissionDenied, "%s of %q denied by %s: %s", a.Kind, a.Target, art.Contract, reasonOr(d.Reason))
	}
	if (a.Kind == KindWrite || a.Kind == KindEdit) && art.DiskPayer != a.Caller {
		if err := w.checkDisk(art.DiskPayer, w.diskDelta(&art)); err != nil {
			return err
		}
	}
	if (a.Kind == KindWrite || a.Kind == KindEdit) && isModule(art.Type) && a.Content != nil {
		// New code is compiled only now that the contract allowed the
		// write (no work before authority), and before anything is
		// charged or written.
		if err := w.needPrepared(); err != nil {
			return err
		}
		if err := w.checkKind(art.Type); err != nil {
			return err
		}
	}
	if a.Kind == KindDelete && art.Type == TypeContract {
		if err := w.checkUnused(a.Target); err != nil {
			return err
		}
	}
	if err := w.settle(art.Contract, d); err != nil {
		return err
	}
	return w.apply(&art)
}

// errNeedPrepareErr carries errNeedPrepare through *Error returns.
var errNeedPrepareErr = &Error{Code: abi.Internal, Msg: "prepare", Err: errNeedPrepare}

func reasonOr(r string) string {
	if r == "" {
		return "no reason given"
	}
	return r
}

// judge runs the access contract of art (whose id is id) on the caller's
// action and returns its decision. A contract failure is an *Error whose code
// denies the action.
func (w *work) judge(id string, art *artifactRec, payload uint64) (*abi.Decision, *Error) {
	a := w.a
	var c artifactRec
	if art.Contract == id {
		c = *art // a contract that governs itself
	} else {
		var err *Error
		if c, err = w.contractRec(art.Contract); err != nil {
			return nil, &Error{Code: abi.Internal, Msg: fmt.Sprintf("governing contract of %q is missing", id), Err: err}
		}
	}
	if err := w.k.ensurePrepared(w.ctx, w.tx, art.Contract, c.Hash); err != nil {
		return nil, err
	}
	act, _ := abi.ParseAction(string(a.Kind))
	req := requestFor(act, a.Caller, id, art, c.Meta, w.now, payload, a.Method, a.Args)
	req.Depth = w.depth
	rights, rerr := w.callerRights(a.Caller) // rights.go
	if rerr != nil {
		return nil, rerr
	}
	req.CallerRights = rights
	caller, perr := w.principal(a.Caller)
	if perr != nil {
		return nil, perr
	}
	// An earlier attempt of this Do that asked the same code the same
	// request got the answer this attempt would get, and paid for it.
	if m, hit := w.ds.recall(c.Hash, &req); hit {
		return w.judged(art.Contract, m.d, m.usage, m.cpu, m.err)
	}
	// The contract may run no longer than the caller's remaining cpu_rate,
	// and use no more memory than its memory quota.
	maxCPU := w.k.cfg.ContractTimeout.Microseconds()
	got, release, qerr := w.reserveRate(a.Caller, &caller, CPURate, maxCPU)
	if qerr != nil {
		return nil, qerr
	}
	memIdx, _ := Memory.index()
	lim := w.k.limits(got, caller.Quota[memIdx])
	if caller.Quota[memIdx] == 0 {
		release(0)
		return nil, w.quotaErr(Memory, 0, 0, "memory quota of %q is 0: no contract can run for it", a.Caller)
	}
	d, usage, err := w.k.ev.Evaluate(w.ctx, c.Hash, &req, lim)
	if w.k.evicted(err) {
		if perr := w.k.ensurePrepared(w.ctx, w.tx, art.Contract, c.Hash); perr != nil {
			release(0)
			return nil, perr
		}
		d, usage, err = w.k.ev.Evaluate(w.ctx, c.Hash, &req, lim)
	}
	// CPU is charged whatever the outcome, at least 1µs per execution, and
	// never more than was reserved.
	cpu := w.k.cpuCharge(usage, got)
	release(cpu)
	if err == nil || codeOf(err) != abi.Internal {
		w.ds.remember(c.Hash, &req, memoEval{d: d, usage: usage, cpu: cpu, err: err})
	}
	return w.judged(art.Contract, d, usage, cpu, err)
}

// memoKey identifies a contract run by the sha256 of its code hash and
// encoded request (32 bytes however large the request); ok is false when
// the request does not encode (the run then fails anyway).
func memoKey(code [32]byte, req *abi.Request) ([32]byte, bool) {
	b, err := abi.AppendRequest(append(make([]byte, 0, 512), code[:]...), req)
	return sha256.Sum256(b), err == nil
}

// judged records a contract run (its charge, made once) on the event and
// result and turns its outcome into judge's.
func (w *work) judged(contract string, d abi.Decision, usage abi.Usage, cpu int64, err error) (*abi.Decision, *Error) {
	w.ev.CPU += cpu
	w.ev.Fuel += usage.Fuel
	w.res.Fuel += usage.Fuel
	if err != nil {
		code := codeOf(err)
		if code == abi.OK || code == abi.Internal {
			code = abi.ContractFailed
		}
		return nil, &Error{Code: code, Msg: fmt.Sprintf("contract %s failed; the action is denied", contract), Err: err}
	}
	w.ev.Allowed = d.Allowed
	w.ev.Reason = d.Reason
	w.res.Decision = &d
	return &d, nil
}

// checkUnused fails with CONTRACT_IN_USE if contract governs any artifact
// other than itself.
func (w *work) checkUnused(contract string) *Error {
	var user string
	err := w.tx.Iterate(governsPrefix(contract), nil, func(key, _ []byte) error {
		id := string(key[len(governsPrefix(contract)):])
		if id != contract {
			user = id
			return store.ErrStop
		}
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	if user != "" {
		return errf(abi.ContractInUse, "contract %q still governs %q: move its artifacts to another contract first", contract, user)
	}
	return nil
}

// settle charges the decision's cost: to the caller, or to a payer that
// consented to this contract, and credits the payee or burns it.
func (w *work) settle(contract string, d *abi.Decision) *Error {
	if d.Cost == 0 {
		return nil
	}
	caller := w.a.Caller
	payer := d.Payer
	if payer == "" {
		payer = caller
	}
	var grant grantRec
	var gkey []byte
	if payer != caller {
		gkey = grantKey(payer, contract)
		b, err := w.tx.Get(gkey)
		if errors.Is(err, store.ErrNotFound) {
			return errf(abi.PayerNotAuthorized, "contract %s named payer %q, who has not consented to it", contract, payer)
		}
		if err != nil {
			return storeErr(err)
		}
		if grant, err = decodeGrant(b); err != nil {
			return storeErr(err)
		}
		c, cerr := w.contractRec(contract)
		if cerr != nil {
			return cerr
		}
		if termsOf(&c) != grant.Terms {
			return errf(abi.PayerNotAuthorized, "payer %q consented to other terms of contract %s: its code or configuration changed since", payer, contract)
		}
		if d.Cost > grant.PerCallCap {
			return errf(abi.PayerNotAuthorized, "cost %d exceeds payer %q's per-call cap %d for %s", d.Cost, payer, grant.PerCallCap, contract)
		}
		if grant.TotalCap-grant.Spent < d.Cost {
			return errf(abi.PayerNotAuthorized, "cost %d exceeds what remains (%d) of payer %q's consent to %s", d.Cost, grant.TotalCap-grant.Spent, payer, contract)
		}
	}
	if payer == caller {
		// The caller's spending limit comes first: a price it did not
		// agree to is a denial whatever its balance.
		if err := w.spend(d.Cost, "the price of "+string(w.a.Kind)+" of "+w.a.Target); err != nil {
			return err
		}
	}
	p, err := w.principal(payer)
	if err != nil {
		if err.Code == abi.NotFound {
			return errf(abi.PayerNotAuthorized, "payer %q does not exist", payer)
		}
		return err
	}
	if p.Balance < d.Cost {
		return errf(abi.InsufficientFunds, "payer %q has %d scrip, the cost is %d", payer, p.Balance, d.Cost)
	}
	if d.Payee != "" {
		if _, err := w.principal(d.Payee); err != nil {
			if err.Code == abi.NotFound {
				return errf(abi.ContractFailed, "contract %s named payee %q, who does not exist", contract, d.Payee)
			}
			return err
		}
	}
	// All checks passed: write.
	if gkey != nil {
		grant.Spent += d.Cost
		if err := w.set(gkey, grant.encode()); err != nil {
			return err
		}
	}
	if err := w.move(payer, d.Payee, d.Cost, &p); err != nil {
		return err
	}
	w.res.Charges = append(w.res.Charges, Charge{Payer: payer, Payee: d.Payee, Amount: d.Cost, Reason: "contract"})
	return nil
}

// move debits from (whose record is p, already checked to hold amount) and
// credits to, or burns amount when to is empty.
func (w *work) move(from, to string, amount uint64, p *principalRec) *Error {
	if to == from {
		return nil
	}
	p.Balance -= amount
	if err := w.putPrincipal(from, *p); err != nil {
		return err
	}
	if to == "" {
		return w.addCounter(ledgerShard(keyBurned, from), amount)
	}
	q, err := w.principal(to)
	if err != nil {
		return err
	}
	q.Balance += amount
	return w.putPrincipal(to, q)
}

func (w *work) addCounter(k []byte, amount uint64) *Error {
	w.st.writes++
	return addCounter(w.tx, k, amount)
}

func addCounter(tx store.Txn, k []byte, amount uint64) *Error {
	var v uint64
	b, err := tx.Get(k)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return storeErr(err)
	default:
		if v, err = decodeU64(b); err != nil {
			return storeErr(err)
		}
	}
	if err := tx.Set(k, encodeU64(v+amount)); err != nil {
		return storeErr(err)
	}
	return nil
}

// apply performs the effect of an allowed artifact action.
func (w *work) apply(art *artifactRec) *Error {
	a := w.a
	switch a.Kind {
	case KindRead:
		content, err := w.tx.Get(w.st.key(prefixContent, a.Target))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return storeErr(err)
		}
		w.res.Artifact = info(a.Target, art)
		w.res.Content = content
		w.res.Revision = art.Revision
		return nil
	case KindInvoke:
		return w.invoke(art)
	case KindDelete:
		if err := w.chargeDisk(art.DiskPayer, -StoredBytes(int(art.Size), art.Meta)); err != nil {
			return err
		}
		for _, k := range [][]byte{artifactKey(a.Target), contentKey(a.Target), governsKey(art.Contract, a.Target)} {
			if err := w.del(k); err != nil {
				return err
			}
		}
		return nil
	case KindSetContract:
		if a.Contract == art.Contract {
			w.res.Revision = art.Revision
			return nil
		}
		if err := w.del(governsKey(art.Contract, a.Target)); err != nil {
			return err
		}
		if err := w.set(governsKey(a.Contract, a.Target), []byte{}); err != nil {
			return err
		}
		art.Contract = a.Contract
	case KindWrite, KindEdit:
		// Disk is billed to the artifact's disk payer (its creator,
		// recorded at creation): a fact about who stores it, not a
		// permission. Content and metadata both count.
		if err := w.chargeDisk(art.DiskPayer, w.diskDelta(art)); err != nil {
			return err
		}
		art.Meta = w.meta
		if a.Content != nil {
			if err := w.setContent(a.Target, art); err != nil {
				return err
			}
		}
	}
	art.Revision++
	art.UpdatedAt = w.now
	if err := w.putArtifact(a.Target, art); err != nil {
		return err
	}
	w.res.Revision = art.Revision
	return nil
}

// ArtifactOverheadBytes is what every stored artifact counts against its
// disk payer's disk quota beyond its content and metadata: its keys, its
// record and its index entry, so that even empty artifacts are not free.
const ArtifactOverheadBytes = 64

// StoredBytes is what an artifact with content of n bytes and metadata meta
// counts against the disk quota: n, plus every metadata key and value, plus
// ArtifactOverheadBytes.
func StoredBytes(n int, meta []abi.KV) int64 {
	s := int64(n) + ArtifactOverheadBytes
	for _, kv := range meta {
		s += int64(len(kv.Key) + len(kv.Value))
	}
	return s
}

// diskDelta is the change of stored bytes a write or edit of art makes:
// the new content (or the old, when the action leaves it) and the merged
// metadata w.meta, against what art stores now.
func (w *work) diskDelta(art *artifactRec) int64 {
	n := int(art.Size)
	if w.a.Content != nil {
		n = len(w.a.Content)
	}
	return StoredBytes(n, w.meta) - StoredBytes(int(art.Size), art.Meta)
}

func (w *work) setContent(id string, art *artifactRec) *Error {
	art.Size = uint64(len(w.a.Content))
	art.Hash = sha256.Sum256(w.a.Content)
	return w.set(contentKey(id), w.a.Content)
}

// create makes a new artifact. Creation is judged by the kernel alone: a
// valid id and type, an existing contract (or the new contract itself).
func (w *work) create() *Error {
	a := w.a
	if a.Type == "" {
		return errf(abi.InvalidArgument, "creating %q needs a type", a.Target)
	}
	if a.Type == TypeRight {
		return errf(abi.KernelProtected, "artifacts of type %q are made only by mint_right", TypeRight)
	}
	if len(a.Unset) > 0 {
		return errf(abi.InvalidArgument, "unset applies to existing artifacts only")
	}
	if err := w.k.checkContentSize(a.Type, a.Content); err != nil {
		return err
	}
	contract := a.Contract
	if contract == "" {
		contract = w.k.cfg.DefaultContract
	}
	if contract == "" {
		return errf(abi.InvalidArgument, "creating %q needs an access contract", a.Target)
	}
	selfGoverned := contract == a.Target
	if selfGoverned && a.Type != TypeContract {
		return errf(abi.InvalidArgument, "only a contract can govern itself")
	}
	if !selfGoverned {
		if _, err := w.contractRec(contract); err != nil {
			return err
		}
	}
	if isModule(a.Type) && len(a.Content) == 0 {
		return errf(abi.ContractInvalid, "a %s needs a wasm module as content", a.Type)
	}
	stored := StoredBytes(len(a.Content), sortedKVs(a.Metadata))
	if err := w.checkDisk(a.Caller, stored); err != nil {
		return err
	}
	if isModule(a.Type) {
		// Compiled only once the creation passed every other check.
		if err := w.needPrepared(); err != nil {
			return err
		}
		if err := w.checkKind(a.Type); err != nil {
			return err
		}
	}
	if err := w.chargeDisk(a.Caller, stored); err != nil {
		return err
	}
	art := artifactRec{
		Type:      a.Type,
		DiskPayer: a.Caller,
		CreatedBy: a.Caller,
		Contract:  contract,
		CreatedAt: w.now,
		Meta:      sortedKVs(a.Metadata),
	}
	if err := w.setContent(a.Target, &art); err != nil {
		return err
	}
	if err := w.set(governsKey(contract, a.Target), []byte{}); err != nil {
		return err
	}
	art.Revision = 1
	art.UpdatedAt = w.now
	if err := w.putArtifact(a.Target, &art); err != nil {
		return err
	}
	w.ev.Allowed = true
	w.res.Revision = 1
	return nil
}

func (w *work) transfer() *Error {
	a := w.a
	p, err := w.principal(a.Caller)
	if err != nil {
		return err
	}
	if _, err := w.principal(a.To); err != nil {
		return err
	}
	amt := uint64(a.Amount)
	if p.Balance < amt {
		return errf(abi.InsufficientFunds, "balance %d is below the amount %d", p.Balance, amt)
	}
	if w.depth > 0 {
		// An executable moving the caller's scrip spends from the caller's
		// limit: the caller chose the amount of a transfer it makes itself,
		// not of one made for it.
		if err := w.spend(amt, "a transfer to "+a.To); err != nil {
			return err
		}
	}
	if err := w.move(a.Caller, a.To, amt, &p); err != nil {
		return err
	}
	w.ev.Allowed = true
	w.res.Charges = []Charge{{Payer: a.Caller, Payee: a.To, Amount: amt, Reason: "transfer"}}
	return nil
}

func (w *work) grantConsent() *Error {
	a := w.a
	c, err := w.contractRec(a.Contract)
	if err != nil {
		return err
	}
	g := grantRec{Terms: termsOf(&c), PerCallCap: uint64(a.PerCallCap), TotalCap: uint64(a.TotalCap)}
	if err := w.set(grantKey(a.Caller, a.Contract), g.encode()); err != nil {
		return err
	}
	w.ev.Allowed = true
	return nil
}

func (w *work) revokeConsent() *Error {
	a := w.a
	return w.revoke(grantKey(a.Caller, a.Contract), "%q has no consent for contract %q", a.Caller, a.Contract)
}

// revoke deletes the grant at k, made by the caller; NOT_FOUND (with the
// message format gives) when there is none.
func (w *work) revoke(k []byte, format string, args ...any) *Error {
	if _, err := w.tx.Get(k); errors.Is(err, store.ErrNotFound) {
		return errf(abi.NotFound, format, args...)
	} else if err != nil {
		return storeErr(err)
	}
	if err := w.del(k); err != nil {
		return err
	}
	w.ev.Allowed = true
	return nil
}

// grantStanding records that the caller lets executable a.Target act as it,
// bound to the executable's terms (code and metadata) as they are now.
func (w *work) grantStanding() *Error {
	a := w.a
	e, ok, err := w.artifact(a.Target)
	if err != nil {
		return err
	}
	if !ok {
		return errf(abi.NotFound, "executable %q does not exist", a.Target)
	}
	if e.Type != TypeExecutable {
		return errf(abi.InvalidArgument, "%q is of type %q: standing is granted to executables only", a.Target, e.Type)
	}
	s := standingRec{Terms: termsOf(&e)}
	if err := w.set(standingKey(a.Caller, a.Target), s.encode()); err != nil {
		return err
	}
	w.ev.Allowed = true
	return nil
}

func (w *work) revokeStanding() *Error {
	a := w.a
	return w.revoke(standingKey(a.Caller, a.Target), "%q has granted no standing to %q", a.Caller, a.Target)
}

// checkStanding fails with NO_STANDING unless principal granted standing
// to executable exe and exe's terms are still those it agreed to.
func (w *work) checkStanding(principal, exe string) *Error {
	b, err := w.tx.Get(standingKey(principal, exe))
	if errors.Is(err, store.ErrNotFound) {
		return errf(abi.NoStanding, "%q has not granted executable %q standing to act as it", principal, exe)
	}
	if err != nil {
		return storeErr(err)
	}
	s, err := decodeStanding(b)
	if err != nil {
		return storeErr(err)
	}
	e, ok, kerr := w.artifact(exe)
	if kerr != nil {
		return kerr
	}
	if !ok || e.Type != TypeExecutable || termsOf(&e) != s.Terms {
		return errf(abi.NoStanding, "%q granted executable %q standing for other terms: its code or metadata changed since", principal, exe)
	}
	return nil
}

// spendingLimit is what principal agreed to pay for one action: max (the
// action's max_cost) when given, else its own default (set_spending_limit),
// else Config.DefaultSpendingLimit.
func (w *work) spendingLimit(principal string, max *int64) (uint64, *Error) {
	if max != nil {
		return uint64(*max), nil
	}
	b, err := w.tx.Get(w.st.key(prefixSpending, principal))
	if errors.Is(err, store.ErrNotFound) {
		return uint64(w.k.cfg.DefaultSpendingLimit), nil
	}
	if err != nil {
		return 0, storeErr(err)
	}
	v, err := decodeU64(b)
	if err != nil {
		return 0, storeErr(err)
	}
	return v, nil
}

// spend checks a debit of amount from this action's caller against its
// spending limit, before anything is charged, and records it. The
// top-level caller's limit covers the whole invocation tree; a principal an
// executable acts as (standing) has its own limit per action.
func (w *work) spend(amount uint64, what string) *Error {
	a := w.a
	if a.MaxCost != nil && amount > uint64(*a.MaxCost) {
		return errf(abi.CostLimitExceeded, "%s is %d scrip, above max_cost %d of %q; nothing was charged", what, amount, *a.MaxCost, a.Caller)
	}
	if a.Caller != w.st.top {
		lim, err := w.spendingLimit(a.Caller, a.MaxCost)
		if err != nil {
			return err
		}
		if amount > lim {
			return errf(abi.CostLimitExceeded, "%s is %d scrip, above the spending limit %d of %q; nothing was charged", what, amount, lim, a.Caller)
		}
		return nil
	}
	left := w.st.topLimit - w.st.topSpent
	if amount > left {
		if w.st.topSpent == 0 {
			return errf(abi.CostLimitExceeded, "%s is %d scrip, above the spending limit %d of %q (max_cost, or its default: set_spending_limit); nothing was charged", what, amount, w.st.topLimit, a.Caller)
		}
		return errf(abi.CostLimitExceeded, "%s is %d scrip, above the %d left of %q's spending limit %d for this action (max_cost, or its default); nothing was charged", what, amount, left, a.Caller, w.st.topLimit)
	}
	w.st.topSpent += amount
	return nil
}

// setSpendingLimit sets the caller's default spending limit per action.
func (w *work) setSpendingLimit() *Error {
	if err := w.set(spendingLimitKey(w.a.Caller), encodeU64(uint64(w.a.Amount))); err != nil {
		return err
	}
	w.ev.Allowed = true
	return nil
}

func info(id string, r *artifactRec) *ArtifactInfo {
	return &ArtifactInfo{
		ID:        id,
		Type:      r.Type,
		CreatedBy: r.CreatedBy,
		Contract:  r.Contract,
		Metadata:  kvMap(r.Meta),
		Size:      r.Size,
		Revision:  r.Revision,
		Hash:      hexHash(r.Hash),
		CreatedAt: unixTime(r.CreatedAt),
		UpdatedAt: unixTime(r.UpdatedAt),
	}
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }
