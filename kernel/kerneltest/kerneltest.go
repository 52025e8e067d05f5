package kerneltest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Clock is a fake clock. It is safe for concurrent use.
type Clock struct {
	// mu guards t against concurrent Advance and Now.
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time; pass the method value as kernel.Config.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Rule is a contract written as a Go function, for the fake Evaluator.
// Returning an error makes the contract fail (CONTRACT_FAILED unless the
// error carries a code).
type Rule func(req *abi.Request) (abi.Decision, error)

// Evaluator is a fake kernel.Evaluator. A contract's "module" is any byte
// string registered with Register; Prepare rejects everything else with
// CONTRACT_INVALID. It is safe for concurrent use.
type Evaluator struct {
	// mu guards rules and programs; Register* write, the rest read.
	mu       sync.RWMutex
	rules    map[[32]byte]Rule
	programs map[[32]byte]Program
	calls    atomic.Int64
	prepares atomic.Int64
}

// Program is an executable written as a Go function, for the fake
// Evaluator's Invoke: it gets the invoke request and the kernel's host calls.
// Returning an error is a trap.
type Program func(req *abi.Request, calls abi.HostCalls) (abi.InvokeResult, error)

// NewEvaluator returns an empty fake evaluator.
func NewEvaluator() *Evaluator {
	return &Evaluator{rules: map[[32]byte]Rule{}, programs: map[[32]byte]Program{}}
}

// RegisterExecutable makes code a valid executable module running program.
func (e *Evaluator) RegisterExecutable(code []byte, program Program) {
	e.mu.Lock()
	e.programs[sha256.Sum256(code)] = program
	e.mu.Unlock()
}

// Invoke implements kernel.Invoker.
func (e *Evaluator) Invoke(_ context.Context, h [32]byte, req *abi.Request, _ abi.Limits, calls abi.HostCalls) (abi.InvokeResult, abi.Usage, error) {
	e.calls.Add(1)
	e.mu.RLock()
	p, ok := e.programs[h]
	e.mu.RUnlock()
	if !ok {
		return abi.InvokeResult{}, abi.Usage{}, errors.New("kerneltest: executable not prepared")
	}
	r, err := p(req, calls)
	return r, abi.Usage{CPU: time.Microsecond}, err
}

// Register makes code a valid module that decides with rule.
func (e *Evaluator) Register(code []byte, rule Rule) {
	e.mu.Lock()
	e.rules[sha256.Sum256(code)] = rule
	e.mu.Unlock()
}

// CodedError is an error with a stable code, as package host returns them.
type CodedError struct {
	C   abi.Code
	Msg string
}

func (e *CodedError) Error() string { return e.C.String() + ": " + e.Msg }

// Code returns the error's code.
func (e *CodedError) Code() abi.Code { return e.C }

// Prepare implements kernel.Evaluator.
func (e *Evaluator) Prepare(_ context.Context, wasm []byte) ([32]byte, error) {
	e.prepares.Add(1)
	h := sha256.Sum256(wasm)
	e.mu.RLock()
	_, ok := e.rules[h]
	_, isProgram := e.programs[h]
	e.mu.RUnlock()
	if !ok && !isProgram {
		return h, &CodedError{abi.ContractInvalid, fmt.Sprintf("unregistered fake module %.20q", wasm)}
	}
	return h, nil
}

// Evaluate implements kernel.Evaluator.
func (e *Evaluator) Evaluate(_ context.Context, h [32]byte, req *abi.Request, _ abi.Limits) (abi.Decision, abi.Usage, error) {
	e.calls.Add(1)
	e.mu.RLock()
	rule, ok := e.rules[h]
	e.mu.RUnlock()
	if !ok {
		return abi.Decision{}, abi.Usage{}, errors.New("kerneltest: module not prepared")
	}
	d, err := rule(req)
	return d, abi.Usage{CPU: time.Microsecond}, err
}

// Calls returns how many times Evaluate or Invoke ran.
func (e *Evaluator) Calls() int64 { return e.calls.Load() }

// Prepares returns how many times Prepare ran (the work of compiling).
func (e *Evaluator) Prepares() int64 { return e.prepares.Load() }

// Controller is the genesis contracts' controller rule: the "controller"
// metadata value if set, else created_by.
func Controller(req *abi.Request) string {
	for _, kv := range req.Metadata {
		if kv.Key == "controller" {
			return kv.Value
		}
	}
	return req.CreatedBy
}

// Freeware is the genesis freeware rule in Go: anyone reads and invokes, only
// the controller changes.
func Freeware(req *abi.Request) (abi.Decision, error) {
	switch req.Action {
	case abi.ActionRead, abi.ActionInvoke:
		return abi.Decision{Allowed: true}, nil
	}
	if req.Caller == Controller(req) {
		return abi.Decision{Allowed: true}, nil
	}
	return abi.Decision{Reason: "freeware: only the controller may " + req.Action.String()}, nil
}

// Private lets only the controller do anything.
func Private(req *abi.Request) (abi.Decision, error) {
	if req.Caller == Controller(req) {
		return abi.Decision{Allowed: true}, nil
	}
	return abi.Decision{Reason: "private: only the controller"}, nil
}

// AllowAll allows every action at no cost.
func AllowAll(*abi.Request) (abi.Decision, error) { return abi.Decision{Allowed: true}, nil }

// World is a kernel on an in-memory store with a fake evaluator and clock.
// Contracts "freeware", "private" and "allow-all" exist (governed by
// "private", controlled by principal "genesis"), and "freeware" is the
// default contract.
type World struct {
	K     *kernel.Kernel
	Store store.Store
	Eval  *Evaluator
	Clock *Clock
}

// Start is the fake clock's initial time.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewWorld builds a World; mutate lets a test adjust the kernel config. The
// kernel is closed when the test ends.
func NewWorld(t testing.TB, mutate func(*kernel.Config)) *World {
	t.Helper()
	mem := store.NewMem()
	w := &World{Eval: NewEvaluator(), Clock: NewClock(Start)}
	cfg := kernel.Config{Store: mem, Evaluator: w.Eval, Clock: w.Clock.Now, DefaultContract: "freeware"}
	if mutate != nil {
		mutate(&cfg) // may replace the store; the test then closes its own
	}
	w.Store = cfg.Store
	k, err := kernel.Open(context.Background(), cfg)
	require.NoError(t, err)
	w.K = k
	t.Cleanup(func() {
		_ = k.Close(context.Background())
		_ = mem.Close()
	})
	require.NoError(t, k.CreatePrincipal(context.Background(), "genesis", 0))
	// Genesis holds exactly the disk its contracts take, whatever the test's
	// default quotas say.
	var disk int64
	for _, c := range []string{"fake:private", "fake:freeware", "fake:allow-all"} {
		disk += kernel.StoredBytes(len(c), nil)
	}
	require.NoError(t, k.SetQuota(context.Background(), "genesis", kernel.Disk, disk))
	// and the cpu_rate deploying them costs (the compile charge).
	require.NoError(t, k.SetQuota(context.Background(), "genesis", kernel.CPURate, 1_000_000))
	w.Deploy(t, "genesis", "private", "private", Private)
	w.Deploy(t, "genesis", "freeware", "private", Freeware)
	w.Deploy(t, "genesis", "allow-all", "private", AllowAll)
	return w
}

// Deploy creates contract id as caller, governed by governor, deciding with
// rule. The fake module bytes are "fake:"+id.
func (w *World) Deploy(t testing.TB, caller, id, governor string, rule Rule) {
	t.Helper()
	code := []byte("fake:" + id)
	w.Eval.Register(code, rule)
	res := w.K.Do(context.Background(), kernel.Action{Kind: kernel.KindWrite, Caller: caller, Target: id, Type: kernel.TypeContract, Contract: governor, Content: code})
	require.True(t, res.OK, "deploy %s: %s", id, res.Message)
}

// DeployExecutable creates executable id as caller, governed by contract,
// running program. The fake module bytes are "exe:"+id.
func (w *World) DeployExecutable(t testing.TB, caller, id, contract string, program Program) {
	t.Helper()
	code := []byte("exe:" + id)
	w.Eval.RegisterExecutable(code, program)
	res := w.K.Do(context.Background(), kernel.Action{Kind: kernel.KindWrite, Caller: caller, Target: id, Type: kernel.TypeExecutable, Contract: contract, Content: code})
	require.True(t, res.OK, "deploy executable %s: %s", id, res.Message)
}

// GrantStanding has principal grant executable exe standing to act as it
// (host calls with "as": principal), failing the test if it is refused.
func (w *World) GrantStanding(t testing.TB, principal, exe string) {
	t.Helper()
	res := w.K.Do(context.Background(), kernel.Action{Kind: kernel.KindGrantStanding, Caller: principal, Target: exe})
	require.True(t, res.OK, "grant standing %s -> %s: %s", principal, exe, res.Message)
}

// Principal creates principal id with balance.
func (w *World) Principal(t testing.TB, id string, balance uint64) {
	t.Helper()
	require.NoError(t, w.K.CreatePrincipal(context.Background(), id, balance))
}

// Do runs an action.
func (w *World) Do(a kernel.Action) kernel.Result { return w.K.Do(context.Background(), a) }

// Balance returns id's balance, failing the test if id is unknown.
func (w *World) Balance(t testing.TB, id string) uint64 {
	t.Helper()
	p, err := w.K.Principal(context.Background(), id)
	require.NoError(t, err)
	return p.Balance
}
