package kernel

import (
	"context"
	"errors"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// ConsentsPage returns up to limit of payer's consent grants (grant_consent)
// in contract-id order, continuing after contract afterContract ("" for the
// first page), and whether more follow. limit <= 0 or above MaxPage means
// MaxPage. Like Rights it reports standing: the embedding program decides
// who may ask (the HTTP API: payer's own token and the admin token).
// Errors: INVALID_ARGUMENT for a cursor that is no id, NOT_FOUND for an
// unknown payer, UNAVAILABLE once closed, INTERNAL.
func (k *Kernel) ConsentsPage(ctx context.Context, payer, afterContract string, limit int) ([]Grant, bool, error) {
	var out []Grant
	more, err := k.grantPage(ctx, prefixGrant, payer, afterContract, limit, func(tx store.Txn, contract string, v []byte) error {
		g, err := decodeGrant(v)
		if err != nil {
			return err
		}
		out = append(out, Grant{Payer: payer, Contract: contract, Terms: hexHash(g.Terms), PerCallCap: g.PerCallCap, TotalCap: g.TotalCap, Spent: g.Spent})
		return nil
	})
	return out, more, err
}

// StandingsPage returns up to limit of the standing grants principal made
// (grant_standing), in executable-id order, continuing after executable
// afterExe ("" for the first page), each with whether it still holds (as
// Standings), and whether more follow. limit <= 0 or above MaxPage means
// MaxPage. Errors: as ConsentsPage.
func (k *Kernel) StandingsPage(ctx context.Context, principal, afterExe string, limit int) ([]Standing, bool, error) {
	var out []Standing
	more, err := k.grantPage(ctx, prefixStanding, principal, afterExe, limit, func(tx store.Txn, exe string, v []byte) error {
		s, err := decodeStanding(v)
		if err != nil {
			return err
		}
		st := Standing{Principal: principal, Executable: exe, Terms: hexHash(s.Terms)}
		b, err := tx.Get(artifactKey(exe))
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			a, err := decodeArtifact(b)
			if err != nil {
				return err
			}
			st.Valid = a.Type == TypeExecutable && termsOf(&a) == s.Terms
		}
		out = append(out, st)
		return nil
	})
	return out, more, err
}

// grantPage pages the grants of one principal stored under
// prefix<owner>\x00<id>, calling each for up to limit of them in one
// snapshot, after id afterID.
func (k *Kernel) grantPage(ctx context.Context, prefix []byte, owner, afterID string, limit int, each func(tx store.Txn, id string, v []byte) error) (bool, error) {
	if !k.enter() {
		return false, closedErr()
	}
	defer k.exit()
	if afterID != "" && !validID(afterID) {
		return false, errf(abi.InvalidArgument, "cursor %q is not an artifact id", afterID)
	}
	limit = pageLimit(limit)
	p := keyPrefix(prefix, owner)
	var start []byte
	if afterID != "" {
		start = after(key2(prefix, owner, afterID))
	}
	more := false
	err := k.st.View(func(tx store.Txn) error {
		more = false
		if _, err := tx.Get(principalKey(owner)); errors.Is(err, store.ErrNotFound) {
			return errf(abi.NotFound, "principal %q does not exist", owner)
		} else if err != nil {
			return err
		}
		n := 0
		return tx.Iterate(p, start, func(key, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if n == limit {
				more = true
				return store.ErrStop
			}
			n++
			return each(tx, string(key[len(p):]), v)
		})
	})
	if err != nil {
		return false, storeErr(err)
	}
	return more, nil
}
