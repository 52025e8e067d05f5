package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// NewPrincipal is one principal for [Kernel.CreatePrincipals].
type NewPrincipal struct {
	// ID and Balance are CreatePrincipal's.
	ID      string
	Balance uint64
	// Quotas sets the principal's quota of each resource named, as
	// SetQuota right after CreatePrincipal would; a resource left out
	// keeps Config.DefaultQuotas.
	Quotas map[Resource]int64
}

// PrincipalsPerTxn is how many principals one transaction of
// CreatePrincipals writes. A principal takes a few hundred bytes (its
// record, and its input records when the kernel records): 512 of them stay
// far below the transaction size a store accepts (Badger: 15% of a
// memtable), with room for what the caller's hook adds (tokens), while a
// genesis of 100,000 principals takes 196 transactions instead of one or
// more per principal.
const PrincipalsPerTxn = 512

// CreatePrincipals creates ps, in order, each exactly as CreatePrincipal
// followed by SetQuota of each of its Quotas (in the order of Resources)
// would, writing the same state and the same input records (a recording
// replays as those single calls), but PrincipalsPerTxn principals to a
// transaction: the cost of a commit (an fsync) is shared by hundreds of
// principals instead of paid by each twice or more.
//
// with, when not nil, runs in each of those transactions once the batch's
// principals are written, with the batch: the embedding program writes
// its own keys there (under x/, such as the principals' tokens), so that
// they commit with the principals or not at all. An error from with fails
// the batch.
//
// Every entry is validated before anything is written (INVALID_ARGUMENT
// for a bad id, an id listed twice, an unknown resource or a quota out of
// range; ps longer than MaxBulkPrincipals), and a batch holding a
// principal that exists already fails with ALREADY_EXISTS, writing none
// of its principals. created is the number of principals, from the first,
// committed when it returns: all of ps on success; with len(ps) <=
// PrincipalsPerTxn, 0 or all (one transaction). A failure after the first
// transaction leaves the earlier ones committed: an init throws such a
// world away, an embedder may create the rest (ps[created:]) again.
func (k *Kernel) CreatePrincipals(ctx context.Context, ps []NewPrincipal, with func(tx store.Txn, batch []NewPrincipal) error) (created int, err error) {
	if !k.enter() {
		return 0, closedErr()
	}
	defer k.exit()
	if err := validateNewPrincipals(ps); err != nil {
		return 0, err
	}
	for len(ps) > created {
		if err := ctx.Err(); err != nil {
			return created, &Error{Code: abi.Unavailable, Msg: fmt.Sprintf("stopped after %d of %d principals", created, len(ps)), Err: err}
		}
		batch := ps[created:min(len(ps), created+PrincipalsPerTxn)]
		now := k.nowNanos()
		err := k.update(func(tx store.Txn) error { return k.createBatch(tx, batch, now, with) })
		if err != nil {
			return created, storeErr(err)
		}
		created += len(batch)
	}
	return created, nil
}

// MaxBulkPrincipals bounds the principals of one CreatePrincipals call: a
// genesis file holds fewer (its JSON is bounded), and a caller with more
// calls again.
const MaxBulkPrincipals = 1 << 20

// validateNewPrincipals checks what CreatePrincipals can check before it
// writes: everything but whether a principal exists already.
func validateNewPrincipals(ps []NewPrincipal) error {
	if len(ps) > MaxBulkPrincipals {
		return errf(abi.InvalidArgument, "%d principals in one call exceed %d", len(ps), MaxBulkPrincipals)
	}
	seen := make(map[string]struct{}, len(ps))
	for i, p := range ps {
		// Which entry, in a list; one principal reads as CreatePrincipal's.
		at := ""
		if len(ps) > 1 {
			at = fmt.Sprintf("principals[%d]: ", i)
		}
		if !validID(p.ID) {
			return errf(abi.InvalidArgument, "%sprincipal id %q is not a valid id: %s, 1-%d bytes", at, p.ID, idRule, abi.MaxIDLen)
		}
		if _, dup := seen[p.ID]; dup {
			return errf(abi.InvalidArgument, "%sprincipal %q is listed twice", at, p.ID)
		}
		seen[p.ID] = struct{}{}
		if p.Balance > MaxSupply {
			return errf(abi.InvalidArgument, "%sbalance %d exceeds the supply cap %d", at, p.Balance, MaxSupply)
		}
		for r, v := range p.Quotas {
			if _, ok := r.index(); !ok {
				return errf(abi.InvalidArgument, "%sunknown resource %q", at, r)
			}
			if v < 0 || v > maxQuota {
				return errf(abi.InvalidArgument, "%squota of %s must be between 0 and %d", at, r, maxQuota)
			}
		}
	}
	return nil
}

// createBatch writes batch's principals, their mints and records, then
// runs with, in tx.
func (k *Kernel) createBatch(tx store.Txn, batch []NewPrincipal, now int64, with func(store.Txn, []NewPrincipal) error) error {
	var total uint64
	for _, p := range batch {
		if _, err := tx.Get(principalKey(p.ID)); err == nil {
			return errf(abi.AlreadyExists, "principal %q already exists", p.ID)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// No overflow: total and each balance are at most MaxSupply (2^62).
		total += p.Balance
		if total > MaxSupply {
			return errf(abi.InvalidArgument, "minting the balances of these principals would bring the supply past %d", MaxSupply)
		}
	}
	// One supply check for the batch: the single calls' checks, each on
	// the total the ones before it left, pass exactly when this one does.
	if err := checkSupply(tx, total); err != nil {
		return err
	}
	for _, p := range batch {
		rec := principalRec{Balance: p.Balance, CreatedAt: now}
		for i, r := range Resources {
			rec.Quota[i] = k.cfg.DefaultQuotas[r]
		}
		if err := k.record(tx, Record{Op: RecordCreatePrincipal, Now: now, Principal: p.ID, Amount: int64(p.Balance), Result: adminResult(nil)}); err != nil {
			return err
		}
		for i, r := range Resources { // SetQuota's order in genesis: a fixed one
			v, ok := p.Quotas[r]
			if !ok {
				continue
			}
			rec.Quota[i] = v
			if err := k.record(tx, Record{Op: RecordSetQuota, Now: now, Principal: p.ID, Resource: r, Amount: v, Result: adminResult(nil)}); err != nil {
				return err
			}
		}
		if err := tx.Set(principalKey(p.ID), rec.encode()); err != nil {
			return err
		}
		if p.Balance > 0 {
			if err := addCounter(tx, ledgerShard(keyMinted, p.ID), p.Balance); err != nil {
				return err
			}
		}
	}
	if with != nil {
		return with(tx, batch)
	}
	return nil
}
