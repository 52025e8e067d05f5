package kernel

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// LLM calls through the kernel. A gateway (the HTTP server's
// /v1/llm/chat) asks ReserveLLM before it forwards a call to the provider
// and SettleLLM once the provider has answered, failed or been cut off:
//
//   - ReserveLLM takes, in one transaction, the most the call can use:
//     MaxInputTokens+MaxOutputTokens of llm_rate and their price of
//     llm_budget. Either does not fit: QUOTA_EXCEEDED, and nothing may be
//     sent. The llm_rate taken counts at once for every check of this
//     node (as a hold) and, through the node's stored rate row, of every
//     other node; the llm_budget taken is in the principal record.
//   - SettleLLM turns the reservation into what the provider reported
//     (at most what was reserved), gives the rest back and appends one
//     audit event (KindLLMCall: the model in Target, input and output
//     tokens in Amounts, the cost in micro-dollars in Amount).
//
// A reservation that is never settled (the node died during the call)
// stays charged in full: llm_budget for good, llm_rate until it leaves the
// window. Nothing is ever charged that was not reserved first.

// KindLLMCall is the kind of the audit event of a settled LLM call. It is
// not an action a client can send: only the gateway's calls make it.
const KindLLMCall Kind = "llm_call"

// LLMCall describes one call about to go to the provider.
type LLMCall struct {
	Caller string
	Model  string
	// MaxInputTokens bounds the prompt's tokens (an upper estimate: the
	// gateway counts bytes), MaxOutputTokens the completion's.
	MaxInputTokens, MaxOutputTokens int64
	// Prices in micro-dollars per 1,000 tokens, from the gateway's table.
	InputPrice, OutputPrice int64
}

// LLMUsage is what the provider reported a call used.
type LLMUsage struct {
	InputTokens, OutputTokens int64
}

// LLMReservation is what ReserveLLM took for one call. Settle it once.
type LLMReservation struct {
	call    LLMCall
	tokens  int64 // llm_rate held
	cost    int64 // llm_budget held, µ$
	at      int64 // the time of the reservation (the window's entry)
	settled atomic.Bool
}

// Tokens and Cost report what the reservation holds.
func (r *LLMReservation) Tokens() int64 { return r.tokens }

// Cost is the llm_budget held, in micro-dollars.
func (r *LLMReservation) Cost() int64 { return r.cost }

// maxLLMTokens and maxLLMPrice bound a call's numbers so that no product
// or sum overflows int64.
const (
	maxLLMTokens = int64(1) << 31
	maxLLMPrice  = int64(1) << 30
)

// LLMCost is the price of usage at the call's prices, each side rounded up.
func (c LLMCall) LLMCost(u LLMUsage) int64 {
	return ceilDiv(u.InputTokens*c.InputPrice, 1000) + ceilDiv(u.OutputTokens*c.OutputPrice, 1000)
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// ReserveLLM reserves the most call can use. Errors (in the Result):
// INVALID_ARGUMENT for a bad call, NOT_FOUND for an unknown caller,
// QUOTA_EXCEEDED (retriable for llm_rate when waiting helps, final for
// llm_budget), UNAVAILABLE once closed.
func (k *Kernel) ReserveLLM(ctx context.Context, call LLMCall) (*LLMReservation, Result) {
	switch {
	case !validID(call.Caller):
		return nil, failResult(errf(abi.InvalidArgument, "caller %q is not a valid principal id", call.Caller))
	case call.Model == "" || len(call.Model) > abi.MaxTypeLen*4:
		return nil, failResult(errf(abi.InvalidArgument, "model must be 1-%d bytes", abi.MaxTypeLen*4))
	case call.MaxInputTokens < 0 || call.MaxOutputTokens <= 0 || call.MaxInputTokens > maxLLMTokens || call.MaxOutputTokens > maxLLMTokens:
		return nil, failResult(errf(abi.InvalidArgument, "token bounds must be between 0 and %d (max_tokens at least 1)", maxLLMTokens))
	case call.InputPrice < 0 || call.OutputPrice < 0 || call.InputPrice > maxLLMPrice || call.OutputPrice > maxLLMPrice:
		return nil, failResult(errf(abi.InvalidArgument, "prices must be between 0 and %d micro-dollars per 1k tokens", maxLLMPrice))
	}
	if !k.enter() {
		return nil, failResult(closedErr())
	}
	defer k.exit()
	r := &LLMReservation{call: call, tokens: call.MaxInputTokens + call.MaxOutputTokens, at: k.nowNanos()}
	r.cost = call.LLMCost(LLMUsage{InputTokens: call.MaxInputTokens, OutputTokens: call.MaxOutputTokens})
	win := k.rates.get(call.Caller, LLMRate)
	held := false
	var res Result
	err := k.update(func(tx store.Txn) error {
		if held { // an earlier attempt's hold: this attempt takes it anew
			k.releaseLLMHold(win, r)
			held = false
		}
		w := &work{k: k, ctx: ctx, a: &Action{Kind: KindLLMCall, Caller: call.Caller}, now: r.at, tx: tx, st: &txnState{}, ds: &doState{}}
		res = Result{}
		p, perr := w.principal(call.Caller)
		if perr != nil {
			res = failResult(perr)
			return nil
		}
		bi, _ := LLMBudget.index()
		if avail := p.Quota[bi] - p.BudgetUsed; r.cost > avail {
			e := w.quotaErr(LLMBudget, max(avail, 0), 0, "llm_budget of %q: the call may cost %dµ$, %d left", call.Caller, r.cost, max(avail, 0))
			res = w.res
			res.fail(e)
			return nil
		}
		ri, _ := LLMRate.index()
		f, ferr := k.foreignUsage(tx, call.Caller, LLMRate, r.at)
		if ferr != nil {
			return ferr
		}
		length := k.windowNanos()
		win.mu.Lock()
		win.prune(r.at, length)
		used := win.sum + win.reserved + f.sum
		if quota := p.Quota[ri]; quota-used < r.tokens {
			retry := win.retryAfter(r.at, length, quota, r.tokens, f)
			win.mu.Unlock()
			e := w.quotaErr(LLMRate, max(quota-used, 0), retry, "llm_rate of %q: the call may use %d tokens, %d available", call.Caller, r.tokens, max(quota-used, 0))
			res = w.res
			res.fail(e)
			return nil
		}
		win.reserved += r.tokens
		win.inflight = append(win.inflight, rateEntry{r.at, r.tokens})
		row := k.rowWithInflight(win)
		win.mu.Unlock()
		held = true
		if e := w.set(rateRowKey(call.Caller, LLMRate, k.node), row); e != nil {
			return e
		}
		p.BudgetUsed += r.cost
		if e := w.putPrincipal(call.Caller, p); e != nil {
			return e
		}
		res.succeed()
		return nil
	})
	if err != nil || !res.OK {
		if held {
			k.releaseLLMHold(win, r)
		}
		if err != nil {
			return nil, failResult(storeErr(err))
		}
		return nil, res
	}
	return r, res
}

// releaseLLMHold gives back a reservation's llm_rate hold in memory.
func (k *Kernel) releaseLLMHold(win *rateWindow, r *LLMReservation) {
	win.mu.Lock()
	win.reserved -= r.tokens
	win.dropInflight(r.at, r.tokens)
	win.mu.Unlock()
	k.dirty.mark(win.key, win)
}

// rowWithInflight is the stored row of win: its log and the consumptions
// in flight. Caller holds win.mu and pruned.
func (k *Kernel) rowWithInflight(win *rateWindow) []byte {
	entries := slices.Concat(win.entries[win.head:], win.inflight)
	slices.SortStableFunc(entries, func(a, b rateEntry) int {
		switch {
		case a.t < b.t:
			return -1
		case a.t > b.t:
			return 1
		}
		return 0
	})
	return encodeRateRow(entries, k.rateRes())
}

// SettleLLM settles r to what the provider reported (each side at most
// what was reserved: a provider that reports more is charged the
// reservation), gives back the rest and appends the call's audit event.
// A reservation settles once: a second call is INVALID_ARGUMENT.
func (k *Kernel) SettleLLM(ctx context.Context, r *LLMReservation, u LLMUsage) Result {
	if r == nil || !r.settled.CompareAndSwap(false, true) {
		return failResult(errf(abi.InvalidArgument, "the reservation is settled already"))
	}
	if !k.enter() {
		return failResult(closedErr())
	}
	defer k.exit()
	call := r.call
	u.InputTokens = min(max(u.InputTokens, 0), call.MaxInputTokens)
	u.OutputTokens = min(max(u.OutputTokens, 0), call.MaxOutputTokens)
	cost := min(call.LLMCost(u), r.cost)
	tokens := u.InputTokens + u.OutputTokens
	now := k.nowNanos()
	win := k.rates.get(call.Caller, LLMRate)
	var res Result
	moved := false // the hold is replaced by the usage in memory
	err := k.update(func(tx store.Txn) error {
		w := &work{k: k, ctx: ctx, a: &Action{Kind: KindLLMCall, Caller: call.Caller}, now: now, tx: tx, st: &txnState{}, ds: &doState{}}
		res = Result{}
		p, perr := w.principal(call.Caller)
		if perr != nil {
			return perr // the principal is gone: nothing to settle
		}
		p.BudgetUsed = max(p.BudgetUsed-(r.cost-cost), 0)
		if e := w.putPrincipal(call.Caller, p); e != nil {
			return e
		}
		// The hold becomes the usage, in memory too, while the
		// transaction is open: the rows this node writes meanwhile (the
		// batch's own flush) must count the usage, not the hold.
		win.mu.Lock()
		if !moved {
			win.reserved -= r.tokens
			win.dropInflight(r.at, r.tokens)
			win.inflight = append(win.inflight, rateEntry{r.at, tokens})
			moved = true
		}
		win.prune(now, k.windowNanos())
		row := k.rowWithInflight(win)
		win.mu.Unlock()
		if e := w.set(rateRowKey(call.Caller, LLMRate, k.node), row); e != nil {
			return e
		}
		ev := Event{Seq: takeSeq(tx), Time: unixTime(now), Caller: call.Caller, Kind: KindLLMCall, Target: call.Model,
			Resource: string(LLMBudget), Amount: cost, Amounts: []int64{u.InputTokens, u.OutputTokens}, Allowed: true, Code: abi.OK.String()}
		if e := k.appendEvent(tx, &ev); e != nil {
			return e
		}
		res.succeed()
		res.Event = ev.Seq
		return nil
	})
	// The usage joins the log; a settle that did not commit leaves the
	// whole reservation charged, in the store and here.
	win.mu.Lock()
	if moved {
		win.dropInflight(r.at, tokens)
	} else {
		win.reserved -= r.tokens
		win.dropInflight(r.at, r.tokens)
	}
	if err == nil {
		win.add(r.at, tokens)
	} else {
		win.add(r.at, r.tokens)
	}
	win.mu.Unlock()
	k.dirty.mark(win.key, win)
	if err != nil {
		var ke *Error
		if errors.As(err, &ke) {
			return failResult(ke)
		}
		return failResult(storeErr(err))
	}
	return res
}
