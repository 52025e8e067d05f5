package kernel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Evaluator runs access contracts. It is owned by the kernel and implemented
// by package host (and by a fake in kerneltest). Implementations must be safe
// for concurrent use.
//
// Errors returned by Evaluate that carry a code (a Code() abi.Code method)
// deny the action with that code; any other error denies with INTERNAL.
type Evaluator interface {
	// Prepare validates and compiles a module and returns the sha256 of its
	// bytes, under which Evaluate finds it. It is idempotent.
	Prepare(ctx context.Context, wasm []byte) ([32]byte, error)
	// Evaluate runs the prepared module hash on req within lim.
	Evaluate(ctx context.Context, hash [32]byte, req *abi.Request, lim abi.Limits) (abi.Decision, abi.Usage, error)
}

// Config configures a Kernel. Zero values mean the documented defaults.
type Config struct {
	// Required.

	// Store holds all state. The kernel does not close it.
	Store store.Store
	// Evaluator runs access contracts (host.New gives the real one).
	Evaluator Evaluator
	// Clock is the only source of time. Pass time.Now, or a fake clock in
	// tests (kerneltest.Clock). The kernel never reads the wall clock itself.
	Clock func() time.Time

	// Usually changed.

	// DefaultContract governs new artifacts whose write names no contract.
	// Empty means such writes fail with INVALID_ARGUMENT.
	DefaultContract string
	// MaxContentBytes caps the content of a data artifact. Default 1 MiB.
	MaxContentBytes int
	// MaxModuleBytes caps the content of a contract or executable: a
	// standard Go guest is 2-4 MB. Default 8 MiB (host.DefaultMaxModuleBytes).
	MaxModuleBytes int
	// ContractTimeout is the deadline handed to the Evaluator for each
	// contract run. Default 100ms. The caller's remaining cpu_rate may
	// shorten it.
	ContractTimeout time.Duration
	// DefaultQuotas are a new principal's quotas; a resource left out takes
	// its value from the package's DefaultQuotas.
	DefaultQuotas map[Resource]int64
	// MaxDepth bounds nested invocation: an executable invoked at depth
	// MaxDepth may not invoke another. Default 8.
	MaxDepth uint32
	// InvokeTimeout bounds one executable run; the payer's remaining
	// cpu_rate may shorten it. Default 1s.
	InvokeTimeout time.Duration
	// FuelPerMicrosecond converts cpu_rate to fuel for metered evaluators
	// (host meters by default): an execution for which n µs of cpu_rate are
	// available gets n×FuelPerMicrosecond fuel, and is charged its fuel
	// used divided by it, rounded up. One fuel is about one simple wasm
	// instruction (host/internal/fuel/COSTS.md). Default 1000.
	FuelPerMicrosecond uint64
	// RateWindow is the length of the rolling window of renewable quotas
	// (cpu_rate, llm_rate). Default 60s.
	RateWindow time.Duration
	// SharedStore says that other kernels may have the store open at the
	// same time (several nodes on one PostgreSQL database): every quota
	// check then reads the other nodes' rate-window rows. A store that
	// says so itself (a Shared() bool method returning true, as
	// store/postgres does) sets it.
	SharedStore bool
	// Record makes the kernel keep every input that changes the world
	// (actions, administrative calls, LLM reservations and settlements) in
	// order, in the store, with its time and the hash of its result, so
	// that Replay can re-execute a world from a snapshot and prove it ends
	// the same (record.go). Reads then go through the committer, which
	// orders them with the writes, and Explain is refused: its CPU charge
	// could not be ordered.
	Record bool
	// RequestWindow is how long the result of an action with a request_id
	// is kept for repeats (Action.RequestID). Default 24h.
	RequestWindow time.Duration

	// DefaultSpendingLimit is the spending limit per action of a principal
	// that set none (set_spending_limit): the most scrip an action without
	// max_cost pays for its contract's decision, or, for an invoke, for
	// everything the invocation debits from the caller. A price above it is
	// COST_LIMIT_EXCEEDED and nothing is charged. Default 100; a negative
	// value means 0.
	DefaultSpendingLimit int64
	// CompileMicrosPerKiB is what deploying a module costs its writer, in
	// µs of cpu_rate per KiB of module (rounded up), charged once the write
	// passed every other check and before the module is compiled, whether
	// or not it compiles: compiling is real work (COSTS.md). Default 250,
	// about what validation, metering and compilation take here.
	CompileMicrosPerKiB int64

	// Tuning.

	// MaxConflictRetries bounds how often an action is retried after a
	// serialisable-transaction conflict before it fails with CONFLICT.
	// Default 64.
	MaxConflictRetries int
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("kernel: Config.Store is nil: pass store.OpenBadger(...) or store.NewMem()")
	case c.Evaluator == nil:
		return errors.New("kernel: Config.Evaluator is nil: pass a host.Host")
	case c.Clock == nil:
		return errors.New("kernel: Config.Clock is nil: pass time.Now, or a fake clock in tests")
	case c.MaxContentBytes < 0 || c.MaxModuleBytes < 0 || c.MaxConflictRetries < 0 || c.ContractTimeout < 0 || c.RateWindow < 0:
		return errors.New("kernel: negative limit in Config")
	}
	quotas := make(map[Resource]int64, numResources)
	for r, v := range DefaultQuotas {
		quotas[r] = v
	}
	for r, v := range c.DefaultQuotas {
		if _, ok := r.index(); !ok {
			return fmt.Errorf("kernel: Config.DefaultQuotas: unknown resource %q", r)
		}
		if v < 0 || v > maxQuota {
			return fmt.Errorf("kernel: Config.DefaultQuotas[%s]: %d is out of range", r, v)
		}
		quotas[r] = v
	}
	c.DefaultQuotas = quotas
	if c.ContractTimeout == 0 {
		c.ContractTimeout = 100 * time.Millisecond
	}
	if c.RateWindow == 0 {
		c.RateWindow = 60 * time.Second
	}
	if c.RequestWindow <= 0 {
		c.RequestWindow = 24 * time.Hour
	}
	if c.FuelPerMicrosecond == 0 {
		c.FuelPerMicrosecond = 1000
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = 8
	}
	if c.InvokeTimeout <= 0 {
		c.InvokeTimeout = time.Second
	}
	if c.MaxContentBytes == 0 {
		c.MaxContentBytes = 1 << 20
	}
	if c.MaxModuleBytes == 0 {
		c.MaxModuleBytes = 8 << 20
	}
	if c.MaxConflictRetries == 0 {
		c.MaxConflictRetries = 64
	}
	switch {
	case c.DefaultSpendingLimit == 0:
		c.DefaultSpendingLimit = 100
	case c.DefaultSpendingLimit < 0:
		c.DefaultSpendingLimit = 0
	}
	if c.CompileMicrosPerKiB <= 0 {
		c.CompileMicrosPerKiB = 250
	}
	return nil
}

// Kernel is a world's kernel. It is safe for concurrent use.
type Kernel struct {
	cfg Config
	st  store.Store
	ev  Evaluator

	// prepared records module hashes the Evaluator has compiled, so that
	// content is loaded and handed over once per hash per process.
	prepared sync.Map // [32]byte -> struct{}

	rates rates
	com   *committer // every write goes through it (commit.go)

	// Rate windows in the store (ratestore.go): this kernel's node
	// number, whether other kernels may share the store, until when rows
	// of earlier nodes may hold live usage, and the windows to write.
	node         uint64
	shared       bool
	foreignUntil int64
	dirty        dirtyRates

	// life guards closing: Do and the methods hold it shared for their whole
	// run; Close takes it exclusively, so it waits for in-flight actions.
	life   sync.RWMutex
	closed atomic.Bool

	// llm answers executables' LLM host calls (SetLLMGateway).
	llm atomic.Pointer[llmGatewayBox]
}

// Open opens the kernel over cfg.Store, writing the schema version into an
// empty store and refusing a store written with another version.
func Open(ctx context.Context, cfg Config) (*Kernel, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k := &Kernel{cfg: cfg, st: cfg.Store, ev: cfg.Evaluator, shared: cfg.SharedStore}
	if s, ok := cfg.Store.(interface{ Shared() bool }); ok && s.Shared() {
		k.shared = true
	}
	err := k.st.Update(func(tx store.Txn) error {
		v, err := tx.Get(keySchema)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return tx.Set(keySchema, []byte(SchemaVersion))
		case err != nil:
			return err
		case string(v) == "3":
			return tx.Set(keySchema, []byte(SchemaVersion)) // see SchemaVersion
		case string(v) != SchemaVersion:
			return fmt.Errorf("kernel: store has schema version %q, this kernel reads %q: use a matching kernelhost release or a new data dir", v, SchemaVersion)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel: open: %w", err)
	}
	if err := k.initSeq(); err != nil {
		return nil, fmt.Errorf("kernel: open: find last event: %w", err)
	}
	if err := k.openNode(); err != nil {
		return nil, fmt.Errorf("kernel: open: rate windows: %w", err)
	}
	k.com = newCommitter(k.st)
	k.com.flush, k.com.committed, k.com.shared, k.com.record = k.flushRates, k.flushed, k.shared, cfg.Record
	k.com.start()
	return k, nil
}

// Close waits for in-flight actions, writes the audit events of reads still
// queued, and stops the kernel; later calls fail with UNAVAILABLE. It does
// not close the store or the evaluator.
func (k *Kernel) Close(ctx context.Context) error {
	k.life.Lock()
	defer k.life.Unlock()
	if !k.closed.Swap(true) {
		k.com.close()
	}
	return nil
}

// enter registers an operation; it fails once the kernel is closed.
func (k *Kernel) enter() bool {
	k.life.RLock()
	if k.closed.Load() {
		k.life.RUnlock()
		return false
	}
	return true
}

func (k *Kernel) exit() { k.life.RUnlock() }

// update runs fn in a transaction of the committer, retrying on conflicts.
func (k *Kernel) update(fn func(tx store.Txn) error) error {
	for attempt := 0; ; attempt++ {
		err := k.com.submit(fn)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		if attempt >= k.cfg.MaxConflictRetries {
			return &Error{Code: abi.Conflict, Msg: "too many concurrent changes, retry", Err: err}
		}
	}
}

// storeErr converts a store or kernel error into an *Error.
func storeErr(err error) *Error {
	var ke *Error
	if errors.As(err, &ke) {
		return ke
	}
	if errors.Is(err, store.ErrConflict) {
		return &Error{Code: abi.Conflict, Msg: "transaction conflict, retry", Err: err}
	}
	if errors.Is(err, store.ErrClosed) {
		return &Error{Code: abi.Unavailable, Msg: "store is closed", Err: err}
	}
	return &Error{Code: abi.Internal, Msg: "storage failure", Err: err}
}

func (k *Kernel) nowNanos() int64 { return k.cfg.Clock().UnixNano() }

// ModuleCache is implemented by Evaluators whose compiled modules are a
// bounded cache (package host's Host is): Prepared reports whether module
// hash is compiled now. The kernel then asks it rather than remember what it
// prepared, and compiles again from the stored content a module the
// Evaluator evicted.
type ModuleCache interface {
	Prepared(hash [32]byte) bool
}

// MeteredPreparer is implemented by Evaluators that report the fuel
// preparing a module runs (its start function and initialiser; package
// host's Host does), deterministically: the same bytes report the same fuel,
// prepared before or not. InitFuel bounds it. The kernel charges it to the
// writer with the compile charge, so that a module whose initialisation
// burns its whole budget costs its writer that budget on every deploy.
type MeteredPreparer interface {
	PrepareMetered(ctx context.Context, wasm []byte) ([32]byte, uint64, error)
	InitFuel() uint64
}

// ensurePrepared makes sure the Evaluator knows the module with hash h,
// loading the contract's content from tx when it does not (the first time,
// or after the Evaluator evicted it).
func (k *Kernel) ensurePrepared(ctx context.Context, tx store.Txn, contractID string, h [32]byte) *Error {
	if k.isPrepared(h) {
		return nil
	}
	wasm, err := tx.Get(contentKey(contractID))
	if err != nil {
		return storeErr(err)
	}
	got, err := k.ev.Prepare(ctx, wasm)
	if err != nil {
		return &Error{Code: codeOf(err), Msg: fmt.Sprintf("contract %s does not load", contractID), Err: err}
	}
	if got != h {
		return errf(abi.Internal, "contract %s: stored hash does not match its content", contractID)
	}
	k.remember(h)
	return nil
}

// isPrepared reports whether the Evaluator has compiled the module h.
func (k *Kernel) isPrepared(h [32]byte) bool {
	if mc, ok := k.ev.(ModuleCache); ok {
		return mc.Prepared(h)
	}
	_, ok := k.prepared.Load(h)
	return ok
}

// remember records that h is prepared, for Evaluators that do not say.
func (k *Kernel) remember(h [32]byte) {
	if _, ok := k.ev.(ModuleCache); !ok {
		k.prepared.Store(h, struct{}{})
	}
}

// evicted reports whether err says the Evaluator no longer has a module the
// kernel found prepared an instant before (a bounded cache evicted it in
// between): the caller prepares it again and retries once.
func (k *Kernel) evicted(err error) bool {
	_, ok := k.ev.(ModuleCache)
	return ok && err != nil && codeOf(err) == abi.NotFound
}

// prepare validates new contract code outside any transaction and returns
// its hash and the µs of cpu_rate its initialisation ran (0 for Evaluators
// that do not report it), also when it fails.
func (k *Kernel) prepare(ctx context.Context, wasm []byte) ([32]byte, int64, *Error) {
	var h [32]byte
	var fuel uint64
	var err error
	if mp, ok := k.ev.(MeteredPreparer); ok {
		h, fuel, err = mp.PrepareMetered(ctx, wasm)
	} else {
		h, err = k.ev.Prepare(ctx, wasm)
	}
	init := int64((fuel + k.cfg.FuelPerMicrosecond - 1) / k.cfg.FuelPerMicrosecond)
	if err != nil {
		code := codeOf(err)
		if code == abi.Internal {
			code = abi.ContractInvalid
		}
		return h, init, &Error{Code: code, Msg: "contract module rejected", Err: err}
	}
	k.remember(h)
	return h, init, nil
}

// initReserve is the cpu_rate, in µs, held for a module's initialisation
// before it is prepared: the Evaluator's InitFuel, or 0.
func (k *Kernel) initReserve() int64 {
	if mp, ok := k.ev.(MeteredPreparer); ok {
		return int64((mp.InitFuel() + k.cfg.FuelPerMicrosecond - 1) / k.cfg.FuelPerMicrosecond)
	}
	return 0
}

// readPrincipal loads principal id in its own snapshot.
func (k *Kernel) readPrincipal(id string) (principalRec, error) {
	if !k.enter() {
		return principalRec{}, closedErr()
	}
	defer k.exit()
	var p principalRec
	err := k.st.View(func(tx store.Txn) error {
		b, err := tx.Get(principalKey(id))
		if errors.Is(err, store.ErrNotFound) {
			return errf(abi.NotFound, "principal %q does not exist", id)
		} else if err != nil {
			return err
		}
		p, err = decodePrincipal(b)
		return err
	})
	if err != nil {
		return principalRec{}, storeErr(err)
	}
	return p, nil
}

// loadPrincipal reads principal id's record in tx: NOT_FOUND when there
// is none.
func loadPrincipal(tx store.Txn, id string) (principalRec, error) {
	b, err := tx.Get(principalKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return principalRec{}, errf(abi.NotFound, "principal %q does not exist", id)
	} else if err != nil {
		return principalRec{}, err
	}
	return decodePrincipal(b)
}

// updatePrincipal applies fn to principal id's record in a transaction,
// and records rec there (record.go).
func (k *Kernel) updatePrincipal(id string, fn func(*principalRec), rec Record) error {
	if !k.enter() {
		return closedErr()
	}
	defer k.exit()
	err := k.update(func(tx store.Txn) error {
		p, err := loadPrincipal(tx, id)
		if err != nil {
			return err
		}
		fn(&p)
		if err := tx.Set(principalKey(id), p.encode()); err != nil {
			return err
		}
		return k.record(tx, rec)
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

func failResult(e *Error) Result {
	r := Result{}
	r.fail(e)
	return r
}

func (r *Result) fail(e *Error) {
	r.OK = false
	r.Code = e.Code
	r.ErrorCode = e.Code.String()
	r.Category = e.Code.Category()
	r.Retriable = e.Retriable()
	r.Message = e.Msg
	if e.Err != nil {
		r.Message += ": " + e.Err.Error()
	}
}

func (r *Result) succeed() {
	r.OK = true
	r.Code = abi.OK
}
