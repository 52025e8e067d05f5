package kernel

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Resource names a quota. Quotas are kernel state per principal, enforced
// before every action; see the README's "Quotas" section.
type Resource string

// Resources. Units are integers: microseconds, tokens, micro-dollars, bytes.
const (
	// CPURate is CPU time of contract and invoke executions per rolling
	// window, in microseconds. Renewable.
	CPURate Resource = "cpu_rate"
	// LLMRate is LLM tokens per rolling window, reported by the embedding
	// application through ConsumeQuota. Renewable.
	LLMRate Resource = "llm_rate"
	// LLMBudget is LLM spend in micro-dollars. Depletable: what is used is
	// gone.
	LLMBudget Resource = "llm_budget"
	// Disk is bytes of artifact content a principal is charged for (the
	// artifacts it created). Allocatable: deletes and shrinking writes give
	// bytes back.
	Disk Resource = "disk"
	// Memory is the most linear memory one WASM execution on the principal's
	// behalf may use, in bytes. A cap, never used up.
	Memory Resource = "memory"
)

// Resources lists every resource in a fixed order.
var Resources = []Resource{CPURate, LLMRate, LLMBudget, Disk, Memory}

const numResources = 5

func (r Resource) index() (int, bool) {
	for i, x := range Resources {
		if x == r {
			return i, true
		}
	}
	return 0, false
}

// DefaultQuotas are the quotas of a new principal when Config.DefaultQuotas
// leaves a resource out.
var DefaultQuotas = map[Resource]int64{
	CPURate:   10_000_000, // 10 CPU-seconds per window
	LLMRate:   1000,
	LLMBudget: 0, // set by genesis
	Disk:      1_000_000,
	Memory:    100_000_000,
}

// QuotaStatus is one resource's standing for one principal.
type QuotaStatus struct {
	Resource Resource `json:"resource"`
	Quota    int64    `json:"quota"`
	// Used is usage inside the rolling window (renewable), spent so far
	// (llm_budget), bytes stored (disk), or 0 (memory).
	Used      int64 `json:"used"`
	Available int64 `json:"available"`
	// RetryAfter is how long until any used capacity frees up, for
	// renewable resources with usage in the window.
	RetryAfter time.Duration `json:"retry_after_ns,omitempty"`
}

// rateWindow is an exact sliding log of usage of one renewable resource by
// one principal: entries (time, amount) in time order, the oldest dropped
// once they leave the window. Memory: 16 bytes per distinct timestamp in the
// window, bounded by maxWindowEntries; past the bound the newest entry
// absorbs new usage, which can only make usage expire later, never earlier.
type rateWindow struct {
	// mu guards every field; actions of the same principal contend for it.
	mu       sync.Mutex
	entries  []rateEntry // oldest first
	head     int         // entries[head:] are live
	sum      int64       // sum of live entries
	reserved int64       // capacity held by executions in flight
	key      rateKey     // whose window it is, to mark it for writing
	// inflight are the consumptions (consume_quota) of open
	// transactions, which the stored row already counts.
	inflight []rateEntry
}

// dropInflight removes one in-flight consumption. Caller holds mu.
func (w *rateWindow) dropInflight(t, amt int64) {
	for i, e := range w.inflight {
		if e.t == t && e.amt == amt {
			w.inflight = slices.Delete(w.inflight, i, i+1)
			return
		}
	}
}

type rateEntry struct {
	t   int64 // ns
	amt int64
}

const maxWindowEntries = 4096

// prune drops entries at or before now-length. Caller holds mu.
func (w *rateWindow) prune(now, length int64) {
	for w.head < len(w.entries) && w.entries[w.head].t <= now-length {
		w.sum -= w.entries[w.head].amt
		w.head++
	}
	if w.head == len(w.entries) {
		w.entries, w.head = w.entries[:0], 0
	} else if w.head > 64 && w.head*2 > len(w.entries) {
		n := copy(w.entries, w.entries[w.head:])
		w.entries, w.head = w.entries[:n], 0
	}
}

// add records amt at now. Caller holds mu.
func (w *rateWindow) add(now, amt int64) {
	if amt <= 0 {
		return
	}
	w.sum += amt
	if n := len(w.entries); n > w.head && (w.entries[n-1].t >= now || n-w.head >= maxWindowEntries) {
		w.entries[n-1].amt += amt
		return
	}
	w.entries = append(w.entries, rateEntry{now, amt})
}

// retryAfter is the time until usage falls to quota-need or below, 0 when
// need exceeds quota: no wait can help. f is the usage of other nodes.
// Caller holds mu and has pruned.
func (w *rateWindow) retryAfter(now, length, quota, need int64, f foreign) time.Duration {
	if need > quota {
		return 0
	}
	excess := w.sum + f.sum + w.reserved + need - quota
	if excess <= 0 {
		return 0
	}
	// Usage leaves the window oldest first, own and other nodes' merged.
	own, ext := w.entries[w.head:], f.entries
	for len(own) > 0 || len(ext) > 0 {
		var e rateEntry
		if len(ext) == 0 || (len(own) > 0 && own[0].t <= ext[0].t) {
			e, own = own[0], own[1:]
		} else {
			e, ext = ext[0], ext[1:]
		}
		excess -= e.amt
		if excess <= 0 {
			return time.Duration(e.t + length - now)
		}
	}
	// Reservations in flight hold the rest; they resolve within a deadline.
	return time.Duration(length)
}

// rates holds the rolling windows of the usage this kernel charged. Other
// nodes' usage (and this store's before a restart) is read from the store
// (ratestore.go).
type rates struct {
	m sync.Map // rateKey -> *rateWindow
}

type rateKey struct {
	principal string
	res       Resource
}

func (r *rates) get(p string, res Resource) *rateWindow {
	k := rateKey{p, res}
	if w, ok := r.m.Load(k); ok {
		return w.(*rateWindow)
	}
	w, _ := r.m.LoadOrStore(k, &rateWindow{key: k})
	return w.(*rateWindow)
}

func (k *Kernel) windowNanos() int64 { return int64(k.cfg.RateWindow) }

// status computes a principal's standing in one resource from its record and,
// for renewable resources, its window and the other nodes' rows in tx.
func (k *Kernel) status(tx store.Txn, id string, p *principalRec, res Resource, now int64) (QuotaStatus, *Error) {
	i, _ := res.index()
	s := QuotaStatus{Resource: res, Quota: p.Quota[i]}
	switch res {
	case CPURate, LLMRate:
		f, err := k.foreignUsage(tx, id, res, now)
		if err != nil {
			return s, storeErr(err)
		}
		w := k.rates.get(id, res)
		w.mu.Lock()
		w.prune(now, k.windowNanos())
		s.Used = w.sum + w.reserved + f.sum
		if s.Used > 0 {
			s.RetryAfter = w.retryAfter(now, k.windowNanos(), 0, 0, f)
		}
		w.mu.Unlock()
	case LLMBudget:
		s.Used = p.BudgetUsed
	case Disk:
		s.Used = p.DiskUsed
	}
	s.Available = s.Quota - s.Used
	if s.Available < 0 {
		s.Available = 0
	}
	return s, nil
}

// quotaErr builds the QUOTA_EXCEEDED error and fills the result's details.
// retry is how long until waiting lets the same request through, 0 when no
// wait ever will (the request exceeds the whole quota). The error is final,
// not retriable and without a retry-after, when retry is 0 and for every
// resource that does not refill with time (llm_budget, disk, memory): an
// agent that honours retriable must never loop on it.
func (w *work) quotaErr(res Resource, available int64, retry time.Duration, format string, args ...any) *Error {
	if res != CPURate && res != LLMRate {
		retry = 0
	}
	w.res.Resource = string(res)
	w.res.Available = available
	w.res.RetryAfter = retry
	msg := fmt.Sprintf(format, args...)
	if retry > 0 {
		msg += fmt.Sprintf("; capacity frees up in %s", retry)
	} else {
		msg += "; waiting will not help"
	}
	e := errf(abi.QuotaExceeded, "%s", msg)
	e.final = retry <= 0
	return e
}

// rateRetry is how long until need units of renewable resource res fit
// principal id's quota, 0 when they never will: the retry quotaErr needs
// for a shortage found outside the window's own checks.
func (w *work) rateRetry(id string, quota int64, res Resource, need int64) time.Duration {
	f, err := w.k.foreignUsage(w.tx, id, res, w.now)
	if err != nil {
		return 0
	}
	win := w.k.rates.get(id, res)
	length := w.k.windowNanos()
	win.mu.Lock()
	defer win.mu.Unlock()
	win.prune(w.now, length)
	return win.retryAfter(w.now, length, quota, need, f)
}

// reserveRate holds up to max units of a renewable resource for an execution
// about to run and returns how much it got; it fails with QUOTA_EXCEEDED when
// nothing is available. release settles the reservation with what was used.
func (w *work) reserveRate(id string, p *principalRec, res Resource, max int64) (got int64, release func(used int64), err *Error) {
	f, ferr := w.k.foreignUsage(w.tx, id, res, w.now)
	if ferr != nil {
		return 0, nil, storeErr(ferr)
	}
	i, _ := res.index()
	quota := p.Quota[i]
	win := w.k.rates.get(id, res)
	length := w.k.windowNanos()
	win.mu.Lock()
	defer win.mu.Unlock()
	win.prune(w.now, length)
	avail := quota - win.sum - win.reserved - f.sum
	if avail <= 0 {
		retry := win.retryAfter(w.now, length, quota, 1, f)
		return 0, nil, w.quotaErr(res, 0, retry, "%s of %q is exhausted (%d of %d used in the window)", res, id, win.sum+win.reserved+f.sum, quota)
	}
	got = min(avail, max)
	win.reserved += got
	now := w.now
	k := w.k
	return got, func(used int64) {
		win.mu.Lock()
		win.reserved -= got
		win.prune(now, length)
		win.add(now, used)
		win.mu.Unlock()
		if used > 0 {
			// The batch running the action, or the one writing a read's
			// event, writes the window's row; Explain pokes the
			// committer itself.
			k.dirty.mark(win.key, win)
		}
	}, nil
}

// consumeQuota records amount of res used by the caller.
func (w *work) consumeQuota() *Error {
	a := w.a
	res := Resource(a.Resource)
	p, err := w.principal(a.Caller)
	if err != nil {
		return err
	}
	i, _ := res.index()
	switch res {
	case CPURate, LLMRate:
		// The amount is held in the window under its lock, so that no
		// concurrent check can grant the same capacity; it becomes usage
		// only if the transaction commits (Do's retry loop may run this
		// closure again), and is given back otherwise.
		st, ok, err := w.holdRate(a.Caller, res, p.Quota[i], a.Amount, true)
		if err != nil {
			return err
		}
		if !ok {
			return w.quotaErr(res, st.Available, st.RetryAfter,
				"%s of %q: %d requested, %d available", res, a.Caller, a.Amount, st.Available)
		}
	case LLMBudget:
		if avail := p.Quota[i] - p.BudgetUsed; avail < a.Amount {
			return w.quotaErr(res, max(avail, 0), 0, "llm_budget of %q: %d requested, %d left", a.Caller, a.Amount, max(avail, 0))
		}
		p.BudgetUsed += a.Amount
		if err := w.putPrincipal(a.Caller, p); err != nil {
			return err
		}
	default:
		return errf(abi.InvalidArgument, "%s is not consumed directly: disk is used by writes, memory is a cap", res)
	}
	w.ev.Allowed = true
	return nil
}

// rateHold is capacity of a renewable resource taken by a check of an action
// whose transaction is still open. It counts as reserved in its window, so
// that every other check (consume_quota, transfer_quota, mint_right, a
// contract's or an executable's CPU reservation) sees it at once. When the
// transaction ends it is released and, if the transaction committed and use
// is set, recorded as usage at t.
type rateHold struct {
	win *rateWindow
	amt int64
	t   int64
	use bool
	k   *Kernel
}

// holdRate takes amt of renewable resource res from principal id, whose
// quota of res is quota, until the transaction ends: for good as usage when
// use is set (consume_quota), else only until the transaction's lower quota
// is committed (transfer_quota, mint_right). Check and hold happen under the
// window's lock: two actions can never both be granted the same capacity.
// When less than amt is available it takes nothing, returns false and the
// standing it found, with the time until amt would fit.
//
// Consumed usage (use) is also written to this node's row of the window in
// the transaction itself, so that another node checking the same quota
// conflicts with it (ratestore.go).
func (w *work) holdRate(id string, res Resource, quota, amt int64, use bool) (QuotaStatus, bool, *Error) {
	f, err := w.k.foreignUsage(w.tx, id, res, w.now)
	if err != nil {
		return QuotaStatus{}, false, storeErr(err)
	}
	win := w.k.rates.get(id, res)
	length := w.k.windowNanos()
	win.mu.Lock()
	defer win.mu.Unlock()
	win.prune(w.now, length)
	st := QuotaStatus{Resource: res, Quota: quota, Used: win.sum + win.reserved + f.sum}
	st.Available = max(quota-st.Used, 0)
	if quota-st.Used < amt {
		st.RetryAfter = win.retryAfter(w.now, length, quota, amt, f)
		return st, false, nil
	}
	if use {
		// The row holds the log and every consumption still in flight
		// (this one included; another in the same batch has written the
		// row already, and this write replaces it). One that does not
		// commit is counted until the next batch rewrites the row:
		// early, never late.
		win.inflight = append(win.inflight, rateEntry{w.now, amt})
		entries := slices.Concat(win.entries[win.head:], win.inflight)
		slices.SortStableFunc(entries, func(a, b rateEntry) int { return cmp.Compare(a.t, b.t) })
		if e := w.set(rateRowKey(id, res, w.k.node), encodeRateRow(entries, w.k.rateRes())); e != nil {
			win.dropInflight(w.now, amt)
			return st, false, e
		}
	}
	win.reserved += amt
	w.st.holds = append(w.st.holds, rateHold{win: win, amt: amt, t: w.now, use: use, k: w.k})
	return st, true, nil
}

// endHolds resolves the holds of a transaction that ended, committed or not.
// Do calls it once per attempt, before the attempt's afterCommit effects.
func (st *txnState) endHolds(committed bool) {
	for _, h := range st.holds {
		h.win.mu.Lock()
		h.win.reserved -= h.amt
		if h.use {
			h.win.dropInflight(h.t, h.amt)
			if committed {
				h.win.add(h.t, h.amt)
			}
		}
		h.win.mu.Unlock()
		if h.use { // the row counted it in flight: write it as it now is
			h.k.dirty.mark(h.win.key, h.win)
		}
	}
	st.holds = nil
}

// transferQuota moves quota between principals, conserving the total.
func (w *work) transferQuota() *Error {
	a := w.a
	res := Resource(a.Resource)
	i, _ := res.index()
	from, err := w.principal(a.Caller)
	if err != nil {
		return err
	}
	to, err := w.principal(a.To)
	if err != nil {
		return err
	}
	st, ok, err := w.takeQuota(a.Caller, &from, res, a.Amount)
	if err != nil {
		return err
	}
	if !ok {
		return w.quotaErr(res, st.Available, st.RetryAfter, "%q cannot give %d %s: quota %d, of which %d in use", a.Caller, a.Amount, res, from.Quota[i], st.Used)
	}
	if to.Quota[i] > maxQuota-a.Amount {
		return errf(abi.InvalidArgument, "%s quota of %q would overflow", res, a.To)
	}
	from.Quota[i] -= a.Amount
	to.Quota[i] += a.Amount
	if err := w.putPrincipal(a.Caller, from); err != nil {
		return err
	}
	if err := w.putPrincipal(a.To, to); err != nil {
		return err
	}
	w.ev.Allowed = true
	return nil
}

// takeQuota checks that principal id (record p) can give up amt of its res
// quota without dropping below what it uses, as transfer_quota and
// mint_right must. For a renewable resource the amount is held in the window
// until the transaction ends, so that no concurrent action can use the
// capacity while the lower quota is not yet committed; for the others, usage
// lives in p itself and the transaction's serialisability protects it. It
// returns false and the standing it found when amt cannot be given.
func (w *work) takeQuota(id string, p *principalRec, res Resource, amt int64) (QuotaStatus, bool, *Error) {
	i, _ := res.index()
	if res == CPURate || res == LLMRate {
		return w.holdRate(id, res, p.Quota[i], amt, false)
	}
	st, err := w.k.status(w.tx, id, p, res, w.now)
	return st, err == nil && p.Quota[i] >= amt && p.Quota[i]-amt >= st.Used, err
}

// maxQuota bounds any single quota so that sums never overflow int64.
const maxQuota = int64(1) << 60

// checkDisk fails with QUOTA_EXCEEDED if billed cannot store delta more
// bytes. It writes nothing: the pre-check before the contract runs.
func (w *work) checkDisk(billed string, delta int64) *Error {
	if delta <= 0 || billed == "" {
		return nil
	}
	p, err := w.principal(billed)
	if err != nil {
		return err
	}
	i, _ := Disk.index()
	if p.DiskUsed+delta > p.Quota[i] {
		avail := max(p.Quota[i]-p.DiskUsed, 0)
		return w.quotaErr(Disk, avail, 0, "disk of %q: %d more bytes needed, %d available", billed, delta, avail)
	}
	return nil
}

// chargeDisk records a change of delta bytes stored by billed, after
// checkDisk passed in the same transaction.
func (w *work) chargeDisk(billed string, delta int64) *Error {
	if delta == 0 || billed == "" {
		return nil
	}
	if err := w.checkDisk(billed, delta); err != nil {
		return err
	}
	p, err := w.principal(billed)
	if err != nil {
		return err
	}
	p.DiskUsed = max(p.DiskUsed+delta, 0)
	return w.putPrincipal(billed, p)
}

// Quotas returns principal id's standing in every resource. Errors:
// NOT_FOUND.
func (k *Kernel) Quotas(ctx context.Context, id string) ([]QuotaStatus, error) {
	return k.quotaStatus(id, Resources)
}

// quotaStatus returns id's standing in each of rs, in one snapshot.
func (k *Kernel) quotaStatus(id string, rs []Resource) ([]QuotaStatus, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	now := k.nowNanos()
	out := make([]QuotaStatus, 0, len(rs))
	err := k.st.View(func(tx store.Txn) error {
		p, err := loadPrincipal(tx, id)
		if err != nil {
			return err
		}
		for _, r := range rs {
			s, serr := k.status(tx, id, &p, r, now)
			if serr != nil {
				return serr
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, storeErr(err)
	}
	return out, nil
}

// Quota returns principal id's quota of res. Errors: NOT_FOUND,
// INVALID_ARGUMENT for an unknown resource.
func (k *Kernel) Quota(ctx context.Context, id string, res Resource) (int64, error) {
	s, err := k.QuotaStatus(ctx, id, res)
	return s.Quota, err
}

// AvailableCapacity returns what id can still use of res now: quota minus
// usage in the rolling window (renewable), minus what is spent (llm_budget),
// minus bytes stored (disk), or the cap itself (memory).
func (k *Kernel) AvailableCapacity(ctx context.Context, id string, res Resource) (int64, error) {
	s, err := k.QuotaStatus(ctx, id, res)
	return s.Available, err
}

// WouldExceed reports whether using amount of res now would exceed id's
// quota. It reserves nothing: an action may still fail if others use the
// capacity first.
func (k *Kernel) WouldExceed(ctx context.Context, id string, res Resource, amount int64) (bool, error) {
	if amount < 0 {
		return false, errf(abi.InvalidArgument, "amount must not be negative")
	}
	s, err := k.QuotaStatus(ctx, id, res)
	return amount > s.Available, err
}

// QuotaStatus returns principal id's standing in one resource.
func (k *Kernel) QuotaStatus(ctx context.Context, id string, res Resource) (QuotaStatus, error) {
	if _, ok := res.index(); !ok {
		return QuotaStatus{}, errf(abi.InvalidArgument, "unknown resource %q: use one of cpu_rate, llm_rate, llm_budget, disk, memory", res)
	}
	out, err := k.quotaStatus(id, []Resource{res})
	if err != nil {
		return QuotaStatus{}, err
	}
	return out[0], nil
}

// ConsumeQuota records that principal id used amount of res (llm_rate or
// llm_budget, reported by the embedding application; cpu_rate too). It is an
// action of id on its own standing: it appends an audit event, and fails with
// QUOTA_EXCEEDED, changing nothing, when the amount does not fit.
func (k *Kernel) ConsumeQuota(ctx context.Context, id string, res Resource, amount int64) Result {
	return k.Do(ctx, Action{Kind: KindConsumeQuota, Caller: id, Resource: string(res), Amount: amount})
}

// TransferQuota moves amount of res from one principal to another as an
// action of from: Do(Action{Kind: KindTransferQuota, Caller: from, ...}).
func (k *Kernel) TransferQuota(ctx context.Context, from, to string, res Resource, amount int64) Result {
	return k.Do(ctx, Action{Kind: KindTransferQuota, Caller: from, To: to, Resource: string(res), Amount: amount})
}

// SetQuota sets principal id's quota of res. Administrative: it changes the
// world's total of res, which no action can. Errors: NOT_FOUND,
// INVALID_ARGUMENT.
func (k *Kernel) SetQuota(ctx context.Context, id string, res Resource, amount int64) error {
	i, ok := res.index()
	if !ok {
		return errf(abi.InvalidArgument, "unknown resource %q", res)
	}
	if amount < 0 || amount > maxQuota {
		return errf(abi.InvalidArgument, "quota must be between 0 and %d", maxQuota)
	}
	now := k.nowNanos()
	return k.updatePrincipal(id, func(p *principalRec) { p.Quota[i] = amount },
		Record{Op: RecordSetQuota, Now: now, Principal: id, Resource: res, Amount: amount, Result: adminResult(nil)})
}

// QuotaTotals returns, for every resource, the sum of all principals'
// quotas in one snapshot. Only SetQuota and new principals change it; every
// action conserves it.
func (k *Kernel) QuotaTotals(ctx context.Context) (map[Resource]int64, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	out := make(map[Resource]int64, numResources)
	err := k.st.View(func(tx store.Txn) error {
		return tx.Iterate(prefixPrincipal, nil, func(_, value []byte) error {
			p, err := decodePrincipal(value)
			if err != nil {
				return err
			}
			for i, r := range Resources {
				out[r] += p.Quota[i]
			}
			return nil
		})
	})
	if err != nil {
		return nil, storeErr(err)
	}
	return out, nil
}
