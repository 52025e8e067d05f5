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
//     tokens in Amounts, the cost in micro-dollars in Amount, the sponsor
//     in To when one paid).
//
// A sponsor pays a principal's calls (LLMCall.Payer) only under its own
// grant_llm_consent for that principal, within its caps in micro-dollars
// (per call, in all) and tokens (in all); the reservation is taken from
// the caps and what the call did not use is given back at settlement. The
// sponsor's llm_rate and llm_budget are used, never the caller's.
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
	// Payer, when set and not Caller, is the sponsor whose llm_rate and
	// llm_budget the call uses: only under its grant_llm_consent for
	// Caller, within its caps (PAYER_NOT_AUTHORIZED otherwise).
	Payer string
	Model string
	// MaxInputTokens bounds the prompt's tokens (an upper estimate: the
	// gateway counts bytes), MaxOutputTokens the completion's.
	MaxInputTokens, MaxOutputTokens int64
	// Prices in micro-dollars per 1,000 tokens, from the gateway's table.
	InputPrice, OutputPrice int64
	// Cap, when > 0, is the most the call may cost (µ$): a reservation
	// above it is COST_LIMIT_EXCEEDED and nothing is taken. An
	// executable's calls carry what the invoke's max_llm_cost has left.
	Cap int64 `json:",omitempty"`
	// Token is the name of the token the call came with, for its audit
	// event (never a secret; "" when none).
	Token string `json:",omitempty"`
}

// LLMUsage is what the provider reported a call used.
type LLMUsage struct {
	InputTokens, OutputTokens int64
}

// LLMReservation is what ReserveLLM took for one call. Settle it once.
type LLMReservation struct {
	call    LLMCall
	billed  string // whose quotas: Payer or Caller
	tokens  int64  // llm_rate held
	cost    int64  // llm_budget held, µ$
	at      int64  // the time of the reservation (the window's entry)
	recSeq  uint64 // its input record, when the kernel records
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
	case call.Payer != "" && !validID(call.Payer):
		return nil, failResult(errf(abi.InvalidArgument, "payer %q is not a valid principal id", call.Payer))
	case call.Model == "" || len(call.Model) > abi.MaxTypeLen*4:
		return nil, failResult(errf(abi.InvalidArgument, "model must be 1-%d bytes", abi.MaxTypeLen*4))
	case call.MaxInputTokens < 0 || call.MaxOutputTokens <= 0 || call.MaxInputTokens > maxLLMTokens || call.MaxOutputTokens > maxLLMTokens:
		return nil, failResult(errf(abi.InvalidArgument, "token bounds must be between 0 and %d (max_tokens at least 1)", maxLLMTokens))
	case call.InputPrice < 0 || call.OutputPrice < 0 || call.InputPrice > maxLLMPrice || call.OutputPrice > maxLLMPrice:
		return nil, failResult(errf(abi.InvalidArgument, "prices must be between 0 and %d micro-dollars per 1k tokens", maxLLMPrice))
	case call.Cap < 0:
		return nil, failResult(errf(abi.InvalidArgument, "cap must not be negative"))
	case len(call.Token) > abi.MaxTypeLen*4:
		return nil, failResult(errf(abi.InvalidArgument, "token name must be at most %d bytes", abi.MaxTypeLen*4))
	}
	if cost := call.LLMCost(LLMUsage{InputTokens: call.MaxInputTokens, OutputTokens: call.MaxOutputTokens}); call.Cap > 0 && cost > call.Cap {
		return nil, failResult(errf(abi.CostLimitExceeded, "the call may cost %dµ$ (prompt and max_tokens at its model's prices), above the %dµ$ it may spend (the invoke's max_llm_cost left); lower max_tokens; nothing was reserved", cost, call.Cap))
	}
	if !k.enter() {
		return nil, failResult(closedErr())
	}
	defer k.exit()
	r := &LLMReservation{call: call, billed: call.Caller, tokens: call.MaxInputTokens + call.MaxOutputTokens, at: k.nowNanos()}
	if call.Payer != "" {
		r.billed = call.Payer
	}
	r.cost = call.LLMCost(LLMUsage{InputTokens: call.MaxInputTokens, OutputTokens: call.MaxOutputTokens})
	billed := r.billed
	win := k.rates.get(billed, LLMRate)
	held := false
	var res Result
	err := k.update(func(tx store.Txn) error {
		if held { // an earlier attempt's hold: this attempt takes it anew
			k.releaseLLMHold(win, r)
			held = false
		}
		w := &work{k: k, ctx: ctx, a: &Action{Kind: KindLLMCall, Caller: call.Caller}, now: r.at, tx: tx, st: &txnState{}, ds: &doState{}}
		res = Result{}
		if _, perr := w.principal(call.Caller); perr != nil {
			res = failResult(perr)
			return nil
		}
		if billed != call.Caller {
			if perr := w.spendLLMGrant(billed, call.Caller, r.tokens, r.cost); perr != nil {
				if perr.Code == abi.Internal {
					return perr
				}
				res = failResult(perr)
				return nil
			}
		}
		p, perr := w.principal(billed)
		if perr != nil {
			res = failResult(perr)
			return nil
		}
		bi, _ := LLMBudget.index()
		if avail := p.Quota[bi] - p.BudgetUsed; r.cost > avail {
			e := w.quotaErr(LLMBudget, max(avail, 0), 0, "llm_budget of %q: the call may cost %dµ$, %d left", billed, r.cost, max(avail, 0))
			res = w.res
			res.fail(e)
			return nil
		}
		ri, _ := LLMRate.index()
		f, ferr := k.foreignUsage(tx, billed, LLMRate, r.at)
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
			e := w.quotaErr(LLMRate, max(quota-used, 0), retry, "llm_rate of %q: the call may use %d tokens, %d available", billed, r.tokens, max(quota-used, 0))
			res = w.res
			res.fail(e)
			return nil
		}
		win.reserved += r.tokens
		win.inflight = append(win.inflight, rateEntry{r.at, r.tokens})
		row := k.rowWithInflight(win)
		win.mu.Unlock()
		held = true
		if e := w.set(rateRowKey(billed, LLMRate, k.node), row); e != nil {
			return e
		}
		p.BudgetUsed += r.cost
		if e := w.putPrincipal(billed, p); e != nil {
			return e
		}
		res.succeed()
		c := call
		var rerr error
		r.recSeq, rerr = k.recordSeq(tx, Record{Op: RecordLLMReserve, Now: r.at, LLM: &c, Result: resultHash(res)})
		return rerr
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

// sponsorOf is the event's To: the sponsor that paid, so that it sees the
// event; "" when the caller paid.
func sponsorOf(r *LLMReservation) string {
	if r.billed == r.call.Caller {
		return ""
	}
	return r.billed
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
	rawUsage := u // what the provider said, for the record
	u.InputTokens = min(max(u.InputTokens, 0), call.MaxInputTokens)
	u.OutputTokens = min(max(u.OutputTokens, 0), call.MaxOutputTokens)
	cost := min(call.LLMCost(u), r.cost)
	tokens := u.InputTokens + u.OutputTokens
	now := k.nowNanos()
	billed := r.billed
	win := k.rates.get(billed, LLMRate)
	var res Result
	moved := false // the hold is replaced by the usage in memory
	err := k.update(func(tx store.Txn) error {
		w := &work{k: k, ctx: ctx, a: &Action{Kind: KindLLMCall, Caller: call.Caller}, now: now, tx: tx, st: &txnState{}, ds: &doState{}}
		res = Result{}
		p, perr := w.principal(billed)
		if perr != nil {
			return perr // the principal is gone: nothing to settle
		}
		p.BudgetUsed = max(p.BudgetUsed-(r.cost-cost), 0)
		if e := w.putPrincipal(billed, p); e != nil {
			return e
		}
		if billed != call.Caller {
			if e := w.refundLLMGrant(billed, call.Caller, r.tokens-tokens, r.cost-cost); e != nil {
				return e
			}
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
		if e := w.set(rateRowKey(billed, LLMRate, k.node), row); e != nil {
			return e
		}
		ev := Event{Seq: takeSeq(tx), Time: unixTime(now), Caller: call.Caller, Kind: KindLLMCall, Target: call.Model, Token: call.Token,
			To:       sponsorOf(r),
			Resource: string(LLMBudget), Amount: cost, Amounts: []int64{u.InputTokens, u.OutputTokens}, Allowed: true, Code: abi.OK.String()}
		if e := k.appendEvent(tx, &ev); e != nil {
			return e
		}
		res.succeed()
		res.Event = ev.Seq
		raw := rawUsage
		return k.record(tx, Record{Op: RecordLLMSettle, Now: now, Usage: &raw, Settles: r.recSeq, Result: resultHash(res)})
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

// llmGrantKey is the key of sponsor's LLM consent for principal.
func llmGrantKey(sponsor, principal string) []byte { return key2(prefixLLMGrant, sponsor, principal) }

// llmGrantRec is a sponsor's LLM consent: caps and what was spent.
type llmGrantRec struct {
	PerCallCap, TotalCap, TokenCap uint64 // µ$, µ$, tokens
	SpentCost, SpentTokens         uint64
}

func (g *llmGrantRec) encode() []byte {
	b := append(make([]byte, 0, 1+5*8), recordVersion)
	for _, v := range []uint64{g.PerCallCap, g.TotalCap, g.TokenCap, g.SpentCost, g.SpentTokens} {
		b = le.AppendUint64(b, v)
	}
	return b
}

func decodeLLMGrant(b []byte) (llmGrantRec, error) {
	if len(b) != 1+5*8 || b[0] != recordVersion {
		return llmGrantRec{}, errCorrupt
	}
	var g llmGrantRec
	for i, p := range []*uint64{&g.PerCallCap, &g.TotalCap, &g.TokenCap, &g.SpentCost, &g.SpentTokens} {
		*p = le.Uint64(b[1+8*i:])
	}
	return g, nil
}

// grantLLMConsent records that the caller pays a.To's LLM calls within
// the caps; granting again resets what was spent, like grant_consent.
func (w *work) grantLLMConsent() *Error {
	a := w.a
	if _, err := w.principal(a.To); err != nil {
		return err
	}
	g := llmGrantRec{PerCallCap: uint64(a.PerCallCap), TotalCap: uint64(a.TotalCap), TokenCap: uint64(a.Amount)}
	if err := w.set(llmGrantKey(a.Caller, a.To), g.encode()); err != nil {
		return err
	}
	w.ev.Allowed = true
	return nil
}

// spendLLMGrant takes a call's tokens and cost from sponsor's consent for
// principal: PAYER_NOT_AUTHORIZED without one or past its caps.
func (w *work) spendLLMGrant(sponsor, principal string, tokens, cost int64) *Error {
	b, err := w.tx.Get(llmGrantKey(sponsor, principal))
	if errors.Is(err, store.ErrNotFound) {
		return errf(abi.PayerNotAuthorized, "%q has not agreed to pay LLM calls of %q (grant_llm_consent)", sponsor, principal)
	} else if err != nil {
		return storeErr(err)
	}
	g, err := decodeLLMGrant(b)
	if err != nil {
		return storeErr(err)
	}
	switch {
	case uint64(cost) > g.PerCallCap:
		return errf(abi.PayerNotAuthorized, "the call may cost %dµ$, above %q's per-call cap of %d", cost, sponsor, g.PerCallCap)
	case g.SpentCost+uint64(cost) > g.TotalCap:
		return errf(abi.PayerNotAuthorized, "the call may cost %dµ$; %q's consent has %d of %d left", cost, sponsor, g.TotalCap-g.SpentCost, g.TotalCap)
	case g.SpentTokens+uint64(tokens) > g.TokenCap:
		return errf(abi.PayerNotAuthorized, "the call may use %d tokens; %q's consent has %d of %d left", tokens, sponsor, g.TokenCap-g.SpentTokens, g.TokenCap)
	}
	g.SpentCost += uint64(cost)
	g.SpentTokens += uint64(tokens)
	return w.set(llmGrantKey(sponsor, principal), g.encode())
}

// refundLLMGrant gives back to the consent what a settled call did not
// use. A consent revoked or granted anew meanwhile is left alone.
func (w *work) refundLLMGrant(sponsor, principal string, tokens, cost int64) *Error {
	b, err := w.tx.Get(llmGrantKey(sponsor, principal))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return storeErr(err)
	}
	g, err := decodeLLMGrant(b)
	if err != nil {
		return storeErr(err)
	}
	g.SpentCost -= min(g.SpentCost, uint64(cost))
	g.SpentTokens -= min(g.SpentTokens, uint64(tokens))
	return w.set(llmGrantKey(sponsor, principal), g.encode())
}

// LLMConsent is a sponsor's consent to pay a principal's LLM calls.
type LLMConsent struct {
	Sponsor     string `json:"sponsor"`
	Principal   string `json:"principal"`
	PerCallCap  uint64 `json:"per_call_cap"`
	TotalCap    uint64 `json:"total_cap"`
	TokenCap    uint64 `json:"token_cap"`
	SpentCost   uint64 `json:"spent"`
	SpentTokens uint64 `json:"spent_tokens"`
}

// LLMConsent returns sponsor's LLM consent for principal. Errors:
// NOT_FOUND.
func (k *Kernel) LLMConsent(ctx context.Context, sponsor, principal string) (LLMConsent, error) {
	if !k.enter() {
		return LLMConsent{}, closedErr()
	}
	defer k.exit()
	var out LLMConsent
	err := k.st.View(func(tx store.Txn) error {
		b, err := tx.Get(llmGrantKey(sponsor, principal))
		if errors.Is(err, store.ErrNotFound) {
			return errf(abi.NotFound, "%q has no LLM consent for %q", sponsor, principal)
		} else if err != nil {
			return err
		}
		g, err := decodeLLMGrant(b)
		if err != nil {
			return err
		}
		out = LLMConsent{Sponsor: sponsor, Principal: principal, PerCallCap: g.PerCallCap, TotalCap: g.TotalCap, TokenCap: g.TokenCap, SpentCost: g.SpentCost, SpentTokens: g.SpentTokens}
		return nil
	})
	if err != nil {
		return LLMConsent{}, storeErr(err)
	}
	return out, nil
}
