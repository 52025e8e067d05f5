package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Rights are wrapped quota: transferable, splittable claims on a resource.
// See the README's "Rights" for the model; this file holds the kernel primitives.
//
// A right is an artifact of type "right" stored under the ordinary artifact
// key (so right ids and artifact ids share one namespace). Its content is the
// canonical JSON encoding of {resource, amount, holder} (rightContent) and it
// has an access contract like any artifact: reads of a right are judged by
// that contract. Every other artifact action on a right fails with
// KERNEL_PROTECTED whatever the contract says; only the primitives below
// change it, each for the right's current holder only:
//
//	mint_right     {"kind":"mint_right","target":"r1","resource":"llm_rate","amount":100[,"contract":"c"]}
//	transfer_right {"kind":"transfer_right","target":"r1","to":"bob"}
//	split_right    {"kind":"split_right","target":"r1","amounts":[30,70][,"ids":["r1a","r1b"]]}
//	merge_rights   {"kind":"merge_rights","target":"r1","ids":["r2","r3"]}
//	redeem_right   {"kind":"redeem_right","target":"r1"}
//
// created_by is the minter, forever: split parts keep the minter of the
// right they came from, and merge keeps Target's. The holder is a separate
// fact in the content, changed only by transfer_right.
//
// Conservation: for every resource, the sum of all principals' quotas plus
// the sum of all outstanding rights' amounts (RightTotals) changes only by
// SetQuota and new principals; every action conserves it.

// maxRightParts bounds split_right's parts and merge_rights' absorbed rights.
const maxRightParts = 64

// rightContent is the content of a right artifact, encoded as canonical
// JSON (fields in this order, no spaces).
type rightContent struct {
	Resource Resource `json:"resource"`
	Amount   int64    `json:"amount"`
	Holder   string   `json:"holder"`
}

func (r *rightContent) encode() []byte {
	b, _ := json.Marshal(r) // a struct of a string, an int and a string always encodes
	return b
}

func decodeRightContent(b []byte) (rightContent, error) {
	var r rightContent
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return rightContent{}, fmt.Errorf("right content: %w: %v", errCorrupt, err)
	}
	if _, ok := r.Resource.index(); !ok || r.Amount <= 0 || r.Amount > maxQuota || !validID(r.Holder) {
		return rightContent{}, fmt.Errorf("right content %q: %w", b, errCorrupt)
	}
	return r, nil
}

// rightIndexRec is the value of a rights-by-holder index entry: what the
// kernel needs to sum a holder's rights without loading them.
type rightIndexRec struct {
	Resource Resource
	Amount   int64
}

func (r *rightIndexRec) encode() []byte {
	b := make([]byte, 0, 1+4+len(r.Resource)+8)
	b = append(b, recordVersion)
	b = appendStr(b, string(r.Resource))
	return le.AppendUint64(b, uint64(r.Amount))
}

func decodeRightIndex(b []byte) (rightIndexRec, error) {
	r := reader{b: b}
	if r.byte() != recordVersion {
		return rightIndexRec{}, fmt.Errorf("right index version: %w", errCorrupt)
	}
	res, ok := resourceNamed(r.take(int(r.u32())))
	out := rightIndexRec{Resource: res, Amount: int64(r.u64())}
	if r.err || r.off != len(b) || !ok || out.Amount <= 0 {
		return rightIndexRec{}, fmt.Errorf("right index record: %w", errCorrupt)
	}
	return out, nil
}

// resourceNamed is the Resource named b, without allocating: every check
// decodes the index entries of the caller's rights.
func resourceNamed(b []byte) (Resource, bool) {
	for _, x := range Resources {
		if string(x) == string(b) {
			return x, true
		}
	}
	return "", false
}

// Right describes one outstanding right.
type Right struct {
	ID        string   `json:"id"`
	Resource  Resource `json:"resource"`
	Amount    int64    `json:"amount"`
	Holder    string   `json:"holder"`
	CreatedBy string   `json:"created_by"` // the minter
	Contract  string   `json:"access_contract"`
	Revision  uint64   `json:"revision"`
}

// validateRight checks a right primitive's shape without the store. It
// fills split_right's derived part ids ("<target>.1", "<target>.2", ...)
// when the action names none.
func (k *Kernel) validateRight(a *Action) *Error {
	if !validID(a.Target) {
		return errf(abi.InvalidArgument, "right %q is not a valid artifact id", a.Target)
	}
	if a.Content != nil || len(a.Metadata) > 0 || len(a.Unset) > 0 || a.Method != "" || a.Args != nil ||
		a.PerCallCap != 0 || a.TotalCap != 0 || (a.Type != "" && a.Type != TypeRight) {
		return errf(abi.InvalidArgument, "%s takes no content, metadata, type, method, args or caps", a.Kind)
	}
	if a.Kind != KindMintRight && (a.Resource != "" || a.Amount != 0 || a.Contract != "") {
		return errf(abi.InvalidArgument, "%s takes no resource, amount or contract: they are the right's own", a.Kind)
	}
	if a.Kind != KindTransferRight && a.To != "" {
		return errf(abi.InvalidArgument, "%s takes no recipient", a.Kind)
	}
	switch a.Kind {
	case KindMintRight:
		if _, ok := Resource(a.Resource).index(); !ok {
			return errf(abi.InvalidArgument, "unknown resource %q: use one of cpu_rate, llm_rate, llm_budget, disk, memory", a.Resource)
		}
		if a.Amount <= 0 {
			return errf(abi.InvalidArgument, "mint_right amount must be positive, got %d", a.Amount)
		}
		if a.Contract != "" && !validID(a.Contract) {
			return errf(abi.InvalidArgument, "contract %q is not a valid artifact id", a.Contract)
		}
	case KindTransferRight:
		if !validID(a.To) {
			return errf(abi.InvalidArgument, "recipient %q is not a valid principal id", a.To)
		}
		if a.To == a.Caller {
			return errf(abi.InvalidArgument, "cannot transfer a right to yourself")
		}
	case KindSplitRight:
		if len(a.Amounts) < 2 || len(a.Amounts) > maxRightParts {
			return errf(abi.InvalidArgument, "split_right needs 2 to %d amounts, got %d", maxRightParts, len(a.Amounts))
		}
		for _, n := range a.Amounts {
			if n <= 0 || n > maxQuota {
				return errf(abi.InvalidArgument, "split_right amounts must be between 1 and %d, got %d", maxQuota, n)
			}
		}
		if len(a.IDs) == 0 {
			ids := make([]string, len(a.Amounts))
			for i := range ids {
				ids[i] = a.Target + "." + strconv.Itoa(i+1)
			}
			if !validID(ids[len(ids)-1]) {
				return errf(abi.InvalidArgument, "derived part id %q is not a valid artifact id: name the parts with ids", ids[len(ids)-1])
			}
			a.IDs = ids
		}
		if len(a.IDs) != len(a.Amounts) {
			return errf(abi.InvalidArgument, "split_right has %d amounts but %d ids", len(a.Amounts), len(a.IDs))
		}
		if err := checkRightIDs(a.Target, a.IDs); err != nil {
			return err
		}
	case KindMergeRights:
		if len(a.IDs) == 0 || len(a.IDs) > maxRightParts {
			return errf(abi.InvalidArgument, "merge_rights needs 1 to %d ids to merge into %q, got %d", maxRightParts, a.Target, len(a.IDs))
		}
		if err := checkRightIDs(a.Target, a.IDs); err != nil {
			return err
		}
	}
	return nil
}

// checkRightIDs checks that ids are valid, distinct and not target.
func checkRightIDs(target string, ids []string) *Error {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !validID(id) {
			return errf(abi.InvalidArgument, "right %q is not a valid artifact id", id)
		}
		if id == target || seen[id] {
			return errf(abi.InvalidArgument, "right %q appears twice", id)
		}
		seen[id] = true
	}
	return nil
}

// rightAction performs one right primitive. Like every kernel-judged action
// it checks everything before it writes anything.
func (w *work) rightAction() *Error {
	var err *Error
	switch w.a.Kind {
	case KindMintRight:
		err = w.mintRight()
	case KindTransferRight:
		err = w.transferRight()
	case KindSplitRight:
		err = w.splitRight()
	case KindMergeRights:
		err = w.mergeRights()
	case KindRedeemRight:
		err = w.redeemRight()
	default:
		err = errf(abi.InvalidArgument, "unknown right primitive %q", w.a.Kind)
	}
	if err == nil {
		w.ev.Allowed = true
	}
	return err
}

// loadRight loads right id: NOT_FOUND if no artifact has that id,
// INVALID_ARGUMENT if it is not a right.
func (w *work) loadRight(id string) (artifactRec, rightContent, *Error) {
	art, ok, err := w.artifact(id)
	if err != nil {
		return art, rightContent{}, err
	}
	if !ok {
		return art, rightContent{}, errf(abi.NotFound, "right %q does not exist", id)
	}
	if art.Type != TypeRight {
		// The type is not named: an artifact's record is shown only
		// through its read check.
		return art, rightContent{}, errf(abi.InvalidArgument, "artifact %q is not a right", id)
	}
	b, gerr := w.tx.Get(contentKey(id))
	if gerr != nil {
		return art, rightContent{}, storeErr(gerr)
	}
	rc, derr := decodeRightContent(b)
	if derr != nil {
		return art, rightContent{}, storeErr(derr)
	}
	return art, rc, nil
}

// holderOnly fails with PERMISSION_DENIED unless the caller holds right id.
// The kernel judges its own primitive here: holding is the one fact that
// lets a principal use a right, and no contract can grant or deny it. The
// message names nothing stored in the right, not even its holder: a
// non-holder learns only that it is not the holder.
func (w *work) holderOnly(id string, rc *rightContent) *Error {
	if rc.Holder != w.a.Caller {
		return errf(abi.PermissionDenied, "%s of %q: only its holder may use a right", w.a.Kind, id)
	}
	return nil
}

// mustNotExist fails with ALREADY_EXISTS if an artifact has id.
func (w *work) mustNotExist(id string) *Error {
	_, ok, err := w.artifact(id)
	if err != nil {
		return err
	}
	if ok {
		return errf(abi.AlreadyExists, "artifact %q already exists: rights share the artifact namespace", id)
	}
	return nil
}

// putRight stores right id with record art and content rc, and its index
// entry under rc.Holder. created adds the governs entry of a new right.
func (w *work) putRight(id string, art *artifactRec, rc *rightContent, created bool) *Error {
	content := rc.encode()
	art.Type = TypeRight
	art.Size = uint64(len(content))
	art.Hash = sha256.Sum256(content)
	art.UpdatedAt = w.now
	if created {
		art.CreatedAt = w.now
		art.Revision = 1
		if err := w.set(governsKey(art.Contract, id), []byte{}); err != nil {
			return err
		}
	} else {
		art.Revision++
	}
	if err := w.set(contentKey(id), content); err != nil {
		return err
	}
	if err := w.putArtifact(id, art); err != nil {
		return err
	}
	idx := rightIndexRec{Resource: rc.Resource, Amount: rc.Amount}
	return w.set(rightKey(rc.Holder, id), idx.encode())
}

// dropRight removes right id (record art, content rc) and its index entry.
func (w *work) dropRight(id string, art *artifactRec, rc *rightContent) *Error {
	for _, k := range [][]byte{artifactKey(id), contentKey(id), governsKey(art.Contract, id), rightKey(rc.Holder, id)} {
		if err := w.del(k); err != nil {
			return err
		}
	}
	return nil
}

// mintRight moves Amount of the caller's unused Resource quota into the new
// right Target, held by the caller, governed by Contract (default: the
// kernel's DefaultContract). Like transfer_quota it never takes quota the
// caller is using.
func (w *work) mintRight() *Error {
	a := w.a
	res := Resource(a.Resource)
	i, _ := res.index()
	if err := w.mustNotExist(a.Target); err != nil {
		return err
	}
	contract := a.Contract
	if contract == "" {
		contract = w.k.cfg.DefaultContract
	}
	if contract == "" {
		return errf(abi.InvalidArgument, "minting %q needs an access contract", a.Target)
	}
	if _, err := w.contractRec(contract); err != nil {
		return err
	}
	p, err := w.principal(a.Caller)
	if err != nil {
		return err
	}
	// For cpu_rate and llm_rate the amount is held in the window until the
	// transaction ends, so that no concurrent action uses it meanwhile.
	st, ok, terr := w.takeQuota(a.Caller, &p, res, a.Amount)
	if terr != nil {
		return terr
	}
	if !ok {
		return w.quotaErr(res, st.Available, st.RetryAfter, "%q cannot mint %d %s: quota %d, of which %d in use", a.Caller, a.Amount, res, p.Quota[i], st.Used)
	}
	// All checks passed: write.
	p.Quota[i] -= a.Amount
	if err := w.putPrincipal(a.Caller, p); err != nil {
		return err
	}
	art := artifactRec{CreatedBy: a.Caller, Contract: contract}
	rc := rightContent{Resource: res, Amount: a.Amount, Holder: a.Caller}
	if err := w.putRight(a.Target, &art, &rc, true); err != nil {
		return err
	}
	w.res.Revision = art.Revision
	return nil
}

// heldRight loads right id for a primitive of its holder: it refuses anyone
// but the current holder, and only then records the right's resource and
// amount on the audit event, so that a non-holder's refused attempt reveals
// neither, in the event or the error. The holder goes on the event either
// way, so that it sees attempts on its rights (EventsFor hides it from the
// refused caller).
func (w *work) heldRight(id string) (artifactRec, rightContent, *Error) {
	art, rc, err := w.loadRight(id)
	if err != nil {
		return art, rc, err
	}
	w.ev.Holder = rc.Holder
	if err := w.holderOnly(id, &rc); err != nil {
		return art, rc, err
	}
	w.ev.Resource, w.ev.Amount = string(rc.Resource), rc.Amount
	return art, rc, nil
}

// transferRight makes principal To the holder of right Target.
func (w *work) transferRight() *Error {
	a := w.a
	art, rc, err := w.heldRight(a.Target)
	if err != nil {
		return err
	}
	if _, err := w.principal(a.To); err != nil {
		return err
	}
	if err := w.del(rightKey(rc.Holder, a.Target)); err != nil {
		return err
	}
	rc.Holder = a.To
	if err := w.putRight(a.Target, &art, &rc, false); err != nil {
		return err
	}
	w.res.Revision = art.Revision
	return nil
}

// splitRight replaces right Target by new rights IDs holding Amounts, which
// sum exactly to its amount. The parts keep Target's minter, contract and
// holder; Target is removed.
func (w *work) splitRight() *Error {
	a := w.a
	art, rc, err := w.heldRight(a.Target)
	if err != nil {
		return err
	}
	w.ev.IDs, w.ev.Amounts = a.IDs, a.Amounts
	var sum int64
	for _, n := range a.Amounts {
		sum += n // each is at most maxQuota and there are at most 64: no overflow
	}
	if sum != rc.Amount {
		return errf(abi.InvalidArgument, "split_right amounts sum to %d, right %q holds %d", sum, a.Target, rc.Amount)
	}
	for _, id := range a.IDs {
		if err := w.mustNotExist(id); err != nil {
			return err
		}
	}
	// All checks passed: write.
	if err := w.dropRight(a.Target, &art, &rc); err != nil {
		return err
	}
	for j, id := range a.IDs {
		part := artifactRec{CreatedBy: art.CreatedBy, Contract: art.Contract}
		prc := rightContent{Resource: rc.Resource, Amount: a.Amounts[j], Holder: rc.Holder}
		if err := w.putRight(id, &part, &prc, true); err != nil {
			return err
		}
	}
	w.res.IDs = a.IDs
	return nil
}

// mergeRights adds the amounts of rights IDs to right Target and removes
// them. All must have the caller as holder and Target's resource.
func (w *work) mergeRights() *Error {
	a := w.a
	art, rc, err := w.heldRight(a.Target)
	if err != nil {
		return err
	}
	w.ev.IDs = a.IDs
	type part struct {
		art artifactRec
		rc  rightContent
	}
	parts := make([]part, len(a.IDs))
	sum := rc.Amount
	for j, id := range a.IDs {
		pa, prc, err := w.loadRight(id)
		if err != nil {
			return err
		}
		if err := w.holderOnly(id, &prc); err != nil {
			return err
		}
		if prc.Resource != rc.Resource {
			return errf(abi.InvalidArgument, "right %q is of %s, %q of %s: only rights of one resource merge", id, prc.Resource, a.Target, rc.Resource)
		}
		if sum > maxQuota-prc.Amount {
			return errf(abi.InvalidArgument, "merged right would exceed %d", maxQuota)
		}
		sum += prc.Amount
		parts[j] = part{pa, prc}
	}
	// All checks passed: write.
	for j, id := range a.IDs {
		if err := w.dropRight(id, &parts[j].art, &parts[j].rc); err != nil {
			return err
		}
	}
	rc.Amount = sum
	if err := w.putRight(a.Target, &art, &rc, false); err != nil {
		return err
	}
	w.ev.Amount = sum
	w.res.Revision = art.Revision
	return nil
}

// redeemRight moves right Target's amount back into the holder's quota and
// removes the right.
func (w *work) redeemRight() *Error {
	a := w.a
	art, rc, err := w.heldRight(a.Target)
	if err != nil {
		return err
	}
	p, err := w.principal(a.Caller)
	if err != nil {
		return err
	}
	i, _ := rc.Resource.index()
	if p.Quota[i] > maxQuota-rc.Amount {
		return errf(abi.InvalidArgument, "%s quota of %q would exceed %d", rc.Resource, a.Caller, maxQuota)
	}
	// All checks passed: write.
	p.Quota[i] += rc.Amount
	if err := w.putPrincipal(a.Caller, p); err != nil {
		return err
	}
	return w.dropRight(a.Target, &art, &rc)
}

// callerRights sums, per resource, the rights holder holds, sorted by
// resource name, for the ABI request's caller_rights. It is a prefix scan
// of the holder's index entries.
func (w *work) callerRights(holder string) ([]abi.RightAmount, *Error) {
	sums, err := holderSums(w.tx, holder)
	if err != nil {
		return nil, storeErr(err)
	}
	return sums, nil
}

func holderSums(tx store.Txn, holder string) ([]abi.RightAmount, error) {
	// A closure passed to Iterate escapes, and so would everything it
	// captures: a pooled scan with its method value bound once costs no
	// allocation on the path of every check.
	s := holderScans.Get().(*holderScan)
	defer holderScans.Put(s)
	s.sums, s.found = [numResources]int64{}, false
	err := tx.Iterate(rightHolderPrefix(holder), nil, s.visit)
	if err != nil || !s.found {
		return nil, err
	}
	n := 0
	for _, v := range s.sums {
		if v > 0 {
			n++
		}
	}
	out := make([]abi.RightAmount, 0, n)
	for _, i := range resourcesByName {
		if s.sums[i] > 0 {
			out = append(out, abi.RightAmount{Resource: string(Resources[i]), Amount: uint64(s.sums[i])})
		}
	}
	return out, nil
}

// resourcesByName are the indexes of Resources in the order of their names,
// the order of caller_rights.
var resourcesByName = func() []int {
	idx := make([]int, len(Resources))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return Resources[idx[a]] < Resources[idx[b]] })
	return idx
}()

// holderScan sums the index entries of one holder's rights (holderSums).
type holderScan struct {
	sums  [numResources]int64
	found bool
	visit func(key, value []byte) error // s.add, bound once
}

var holderScans = sync.Pool{New: func() any {
	s := &holderScan{}
	s.visit = s.add
	return s
}}

func (s *holderScan) add(_, v []byte) error {
	r, err := decodeRightIndex(v)
	if err != nil {
		return err
	}
	i, _ := r.Resource.index()
	s.sums[i] += r.Amount
	s.found = true
	return nil
}

// RightTotals returns, for every resource, the sum of the amounts of all
// outstanding rights, in one snapshot. With QuotaTotals it states
// conservation: QuotaTotals()[r] + RightTotals()[r] changes only by SetQuota
// and new principals. Cost is linear in the number of rights: for tests,
// audits and tools. Errors: UNAVAILABLE once closed, INTERNAL.
func (k *Kernel) RightTotals(ctx context.Context) (map[Resource]int64, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	out := make(map[Resource]int64, numResources)
	for _, r := range Resources {
		out[r] = 0
	}
	err := k.st.View(func(tx store.Txn) error {
		return tx.Iterate(prefixRight, nil, func(_, v []byte) error {
			r, err := decodeRightIndex(v)
			if err != nil {
				return err
			}
			out[r.Resource] += r.Amount
			return nil
		})
	})
	if err != nil {
		return nil, storeErr(err)
	}
	return out, nil
}

// Rights returns the rights holder holds, in id order. Like Quotas, it
// reports a principal's standing: the embedding program decides who may
// ask (the CLI and HTTP server show a principal its own). Reading a right
// artifact through Do is judged by its access contract. Errors: UNAVAILABLE
// once closed, INTERNAL.
func (k *Kernel) Rights(ctx context.Context, holder string) ([]Right, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	var out []Right
	err := k.st.View(func(tx store.Txn) error {
		prefix := rightHolderPrefix(holder)
		var ids []string
		err := tx.Iterate(prefix, nil, func(key, _ []byte) error {
			ids = append(ids, string(key[len(prefix):]))
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			b, err := tx.Get(artifactKey(id))
			if err != nil {
				return err
			}
			art, err := decodeArtifact(b)
			if err != nil {
				return err
			}
			c, err := tx.Get(contentKey(id))
			if err != nil {
				return err
			}
			rc, err := decodeRightContent(c)
			if err != nil {
				return err
			}
			out = append(out, Right{ID: id, Resource: rc.Resource, Amount: rc.Amount, Holder: rc.Holder,
				CreatedBy: art.CreatedBy, Contract: art.Contract, Revision: art.Revision})
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("right index points at a missing right: %w", errCorrupt)
		}
		return nil, storeErr(err)
	}
	return out, nil
}
