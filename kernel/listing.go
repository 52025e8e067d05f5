package kernel

import (
	"context"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Listing artifacts by prefix (discovery). A principal's listing shows only
// the artifacts that principal may read: each artifact examined is judged by
// its own access contract, as a read by the caller, on one snapshot and
// without effect on the store, the way Explain judges (no ABI change: the
// contract sees an ordinary read request). A read the contract allows at a
// price counts as visible: knowing the id is not what the price buys, the
// content is, and the listing shows no content. Rights follow the same rule
// (their contract's read check). A listing shows ids and types only, never
// content or metadata.

// MaxListExamined bounds the artifacts one ListArtifacts call examines (one
// read check each), visible or not, so that a page costs a bounded number of
// contract runs however few of them the caller may see.
const MaxListExamined = 1000

// MaxListCPU bounds, in microseconds, the cpu_rate one ListArtifacts page
// spends on read checks: once its checks have used this much the page ends
// (with Next), so that a run of artifacts whose contracts spin costs a
// caller at most about this, plus one check's Config.ContractTimeout, a
// page, not its whole window. It is one check's default budget (100ms).
const MaxListCPU = 100_000

// ListedArtifact is one entry of a listing: an artifact's id, type,
// governing contract and revision, the parts of its descriptor that say
// what it is and who judges it (a browser groups by them). It never carries
// content, metadata, size or creator: those a read shows, and pays for.
type ListedArtifact struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Contract string `json:"access_contract"`
	Revision uint64 `json:"revision"`
}

// ArtifactList is one page of ListArtifacts.
type ArtifactList struct {
	// Artifacts are the artifacts of the page the caller may read, in id
	// order.
	Artifacts []ListedArtifact
	// Next is the id of the last artifact examined when more may follow
	// (the page is full, it reached MaxListExamined or MaxListCPU, or
	// Quota stopped it): the next page continues after it. Empty when the listing has
	// reached the end of the prefix. It may name an artifact the caller
	// may not read (ids are not secret, see ArtifactIDs); nothing else of
	// that artifact is shown.
	Next string
	// Examined counts the artifacts whose read check ran.
	Examined int
	// CPU is the cpu_rate, in microseconds, charged to the caller for the
	// read checks, each as Do charges a read's run.
	CPU int64
	// Quota is set when the caller's cpu_rate ran out, or its memory quota
	// is 0, before the page was complete: the QUOTA_EXCEEDED failure as Do
	// would return it (Resource, Available, RetryAfter, Retriable). The
	// artifacts examined before it are listed; Next continues after them.
	Quota *Result
}

// ListArtifacts returns a page of the artifacts whose ids start with prefix
// that principal caller may read, in id order, continuing after the id
// cursor ("" for the first page; pass the page before's Next). It stops when
// limit artifacts are listed (limit <= 0 or above MaxPage means MaxPage),
// when MaxListExamined were examined or their checks used MaxListCPU, or
// when the caller's cpu_rate runs out (ArtifactList.Quota).
//
// Each artifact examined is judged as a read by caller through its access
// contract, exactly as Explain judges a read: on one snapshot, writing
// nothing, appending no audit event, moving no scrip (a priced read is
// visible and charges nothing). The contract runs on the caller's behalf,
// so each run reserves up to Config.ContractTimeout of the caller's
// remaining cpu_rate and is charged what it used, at least 1µs
// (ArtifactList.CPU sums them; the charges live in the rolling window only,
// as Explain's do). A check whose contract fails or denies hides the
// artifact.
//
// caller must be an existing principal, bound by the embedding program as
// for Do. Errors: INVALID_ARGUMENT for a prefix that no id could start with
// (more than abi.MaxIDLen bytes, or a byte no id has) or a cursor that is
// not an id, NOT_FOUND for an unknown caller, UNAVAILABLE once closed,
// INTERNAL on storage failure.
func (k *Kernel) ListArtifacts(ctx context.Context, caller, prefix, cursor string, limit int) (ArtifactList, error) {
	if !k.enter() {
		return ArtifactList{}, closedErr()
	}
	defer k.exit()
	defer k.com.poke() // the checks' usage goes to the store with a batch
	if k.cfg.Record {
		// Like Explain: the checks' CPU charge would change the world
		// outside the recorded order (record.go).
		return ArtifactList{}, errf(abi.Unavailable, "listing by read checks is off while the world is recorded: its CPU charge would change the world outside the recorded order")
	}
	if err := checkListing(prefix, cursor); err != nil {
		return ArtifactList{}, err
	}
	if !validID(caller) {
		return ArtifactList{}, errf(abi.InvalidArgument, "caller %q is not a valid principal id", caller)
	}
	limit = pageLimit(limit)
	now := k.nowNanos()
	var out ArtifactList
	err := k.st.View(func(tx store.Txn) error {
		out = ArtifactList{}
		a := Action{Kind: KindRead, Caller: caller}
		w := &work{k: k, ctx: ctx, a: &a, now: now, tx: &overlay{base: tx}, prepared: true, st: &txnState{}, ds: &doState{}}
		if err := w.list(&out, prefix, cursor, limit); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return ArtifactList{}, storeErr(err)
	}
	return out, nil
}

// list fills out with one page; see ListArtifacts.
func (w *work) list(out *ArtifactList, prefix, cursor string, limit int) *Error {
	caller, err := w.principal(w.a.Caller)
	if err != nil {
		return err
	}
	defer func() { out.CPU = w.ev.CPU }()
	// The quotas Do applies before a read runs its contract (as Explain).
	cpu, err := w.k.status(w.tx, w.a.Caller, &caller, CPURate, w.now)
	if err != nil {
		return err
	}
	if cpu.Available <= 0 {
		r := w.outcome(w.quotaErr(CPURate, 0, w.rateRetry(w.a.Caller, cpu.Quota, CPURate, 1), "%s of %q is exhausted (%d of %d used in the window)", CPURate, w.a.Caller, cpu.Used, cpu.Quota))
		out.Quota, out.Next = &r, cursor
		return nil
	}
	memIdx, _ := Memory.index()
	if caller.Quota[memIdx] == 0 {
		r := w.outcome(w.quotaErr(Memory, 0, 0, "memory quota of %q is 0: no contract can run for it", w.a.Caller))
		out.Quota, out.Next = &r, cursor
		return nil
	}

	start := listStart(prefix, cursor)
	var fail *Error
	more := false
	ierr := w.tx.Iterate(artifactKey(prefix), start, func(key, value []byte) error {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if len(out.Artifacts) == limit || out.Examined == MaxListExamined || w.ev.CPU >= MaxListCPU {
			more = true
			return store.ErrStop
		}
		id := string(key[len(prefixArtifact):])
		art, err := decodeArtifact(value)
		if err != nil {
			return err
		}
		c, gerr := w.governor(id, &art)
		if gerr != nil {
			fail = gerr
			return store.ErrStop
		}
		w.a.Target = id
		d, _, cerr := w.check(abi.ActionRead, id, &art, &c, 0, &caller)
		if cerr != nil && cerr.Code == abi.QuotaExceeded && w.res.Resource != "" {
			// The caller cannot pay for this check: it was not examined.
			r := w.outcome(cerr)
			out.Quota, more = &r, true
			return store.ErrStop
		}
		out.Examined++
		out.Next = id
		if cerr == nil && d.Allowed {
			out.Artifacts = append(out.Artifacts, ListedArtifact{ID: id, Type: art.Type, Contract: art.Contract, Revision: art.Revision})
		}
		return nil
	})
	if fail != nil {
		return fail
	}
	if ierr != nil {
		if w.ctx.Err() != nil {
			return &Error{Code: abi.Unavailable, Msg: "listing artifacts interrupted", Err: ierr}
		}
		return storeErr(ierr)
	}
	if !more {
		out.Next = ""
	} else if out.Next == "" {
		out.Next = cursor // stopped before examining any: continue where asked
	}
	return nil
}

// ArtifactsPage returns up to limit artifacts (id and type) whose ids start
// with prefix, after the id cursor ("" for the first page), in id order, and
// whether more follow; limit <= 0 or above MaxPage means MaxPage. No
// contract judges it: like ArtifactIDs it is for the embedding program (the
// HTTP API's admin token), which decides who may see it; a principal's
// listing is ListArtifacts. Errors: INVALID_ARGUMENT as for ListArtifacts,
// UNAVAILABLE once closed, INTERNAL.
func (k *Kernel) ArtifactsPage(ctx context.Context, prefix, cursor string, limit int) ([]ListedArtifact, bool, error) {
	if !k.enter() {
		return nil, false, closedErr()
	}
	defer k.exit()
	if err := checkListing(prefix, cursor); err != nil {
		return nil, false, err
	}
	limit = pageLimit(limit)
	start := listStart(prefix, cursor)
	var out []ListedArtifact
	more := false
	err := k.st.View(func(tx store.Txn) error {
		out, more = nil, false
		return tx.Iterate(artifactKey(prefix), start, func(key, value []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(out) == limit {
				more = true
				return store.ErrStop
			}
			art, err := decodeArtifact(value)
			if err != nil {
				return err
			}
			out = append(out, ListedArtifact{ID: string(key[len(prefixArtifact):]), Type: art.Type, Contract: art.Contract, Revision: art.Revision})
			return nil
		})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, &Error{Code: abi.Unavailable, Msg: "listing artifacts interrupted", Err: err}
		}
		return nil, false, storeErr(err)
	}
	return out, more, nil
}

// listStart is the first key a listing of prefix examines: the prefix's
// first artifact key, or the key just after artifact cursor when that comes
// later (after, page.go: ids that continue the cursor, "a.1" or "a/b" after
// "a", sort after it and are still reached).
func listStart(prefix, cursor string) []byte {
	start := artifactKey(prefix)
	if cursor != "" {
		if s := after(artifactKey(cursor)); string(s) > string(start) {
			start = s
		}
	}
	return start
}

// checkListing validates a listing's prefix and cursor.
func checkListing(prefix, cursor string) *Error {
	if len(prefix) > abi.MaxIDLen {
		return errf(abi.InvalidArgument, "prefix of %d bytes is longer than any id (%d bytes at most)", len(prefix), abi.MaxIDLen)
	}
	for i := 0; i < len(prefix); i++ {
		if !idByte(prefix[i]) {
			return errf(abi.InvalidArgument, "prefix %q: byte %d (%q) is in no id: %s", prefix, i, prefix[i], idRule)
		}
	}
	if cursor != "" && !validID(cursor) {
		return errf(abi.InvalidArgument, "cursor %q is not an artifact id: pass the Next of the page before", cursor)
	}
	return nil
}

// idByte reports whether c may appear in an id (validID).
func idByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c == '-' || c == '_' || c == '.' || c == ':' || c == '@' || c == '/'
}
