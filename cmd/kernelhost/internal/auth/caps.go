package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Spending caps. A capped token's spending in its current window is one row
// (x/auth/s/<principal>\x00<name>, JSON spendRow). Before an action runs,
// Reserve takes from it, in one serialisable transaction, the most the
// action may spend; once it has run, Settle gives back what it did not
// spend. Every node reserves in the same row of the shared store, so the
// cap holds across nodes and concurrent requests: the sum of what actions
// may spend never exceeds what is left.

// spendRow is what a token spent in window Bucket (multiples of its
// window since the Unix epoch). A row of an older window counts as empty.
type spendRow struct {
	Bucket int64            `json:"bucket"`
	Spent  map[string]int64 `json:"spent"`
}

// bucket is the window now falls in, for windows of w seconds.
func bucket(now time.Time, w int64) int64 {
	if w <= 0 {
		return 0
	}
	s := now.Unix()
	b := s / w
	if s < 0 && s%w != 0 {
		b--
	}
	return b
}

func readSpend(tx store.Txn, principal, name string) (spendRow, error) {
	v, err := tx.Get(namedKey(prefixSpent, principal, name))
	if errors.Is(err, store.ErrNotFound) {
		return spendRow{}, nil
	}
	if err != nil {
		return spendRow{}, err
	}
	var r spendRow
	if err := json.Unmarshal(v, &r); err != nil {
		return spendRow{}, fmt.Errorf("auth: malformed spending record of %s's token %s", principal, name)
	}
	return r, nil
}

// Need is what an action may spend of one cap key (CapScrip or a
// resource), as Reserve takes it.
type Need struct {
	Key string
	// Amount is the most the action spends. With Clamp, Reserve takes
	// what is left when Amount is more (or negative: no bound of its own)
	// and the caller bounds the action by what was taken (max_cost);
	// without, an Amount above what is left is refused.
	Amount int64
	Clamp  bool
	// Later marks a spend known only after the action (cpu_rate used by
	// contracts): nothing is taken, the action is refused when nothing is
	// left, and Settle counts what it used. One action may therefore
	// overshoot the cap by what it used.
	Later bool
}

// Reservation is what Reserve took for one action, to Settle.
type Reservation struct {
	principal, name string
	bucket          int64
	took            map[string]int64
}

// Took returns what the reservation took of key.
func (r *Reservation) Took(key string) int64 { return r.took[key] }

// CapError is a refusal by a token's spending cap: QUOTA_EXCEEDED, with
// how long until the window ends (Final when the cap itself is below what
// the action needs: waiting does not help).
type CapError struct {
	Key        string
	Cap, Left  int64
	Need       int64
	RetryAfter time.Duration
	Final      bool
	Msg        string
}

func (e *CapError) Error() string { return e.Msg }

// Code is QUOTA_EXCEEDED (api.CodeOf reads it).
func (e *CapError) Code() abi.Code { return abi.QuotaExceeded }

// Reserve takes needs from id's caps for the window now falls in, in one
// transaction that also checks the token still exists (a revocation that
// committed first refuses it: UNAUTHENTICATED). Keys the token does not
// cap are skipped. It returns nil, nil for a token without caps.
func (s *Store) Reserve(id Identity, now time.Time, needs []Need) (*Reservation, error) {
	g := id.Grant
	if g == nil || len(g.Caps) == 0 || s.kv == nil {
		return nil, nil
	}
	b := bucket(now, g.WindowSeconds)
	end := time.Unix((b+1)*g.WindowSeconds, 0)
	res := &Reservation{principal: g.Principal, name: g.Name, bucket: b}
	err := s.retry(func(tx store.Txn) error {
		res.took = make(map[string]int64, len(g.Caps))
		for k := range g.Caps {
			res.took[k] = 0 // Settle counts every capped key
		}
		if _, err := tx.Get(namedKey(prefixNamed, g.Principal, g.Name)); errors.Is(err, store.ErrNotFound) {
			return errRevoked
		} else if err != nil {
			return err
		}
		row, err := readSpend(tx, g.Principal, g.Name)
		if err != nil {
			return err
		}
		if row.Bucket != b || row.Spent == nil {
			row = spendRow{Bucket: b, Spent: map[string]int64{}}
		}
		for _, n := range needs {
			limit, ok := g.Caps[n.Key]
			if !ok {
				continue
			}
			left := max(limit-row.Spent[n.Key], 0)
			take := n.Amount
			switch {
			case n.Later:
				take = 0
				if left == 0 {
					return &CapError{Key: n.Key, Cap: limit, RetryAfter: end.Sub(now), Final: limit == 0,
						Msg: fmt.Sprintf("token %q of %s has spent its cap of %d %s for this window (%s, ends %s): nothing is left to run on",
							g.Name, g.Principal, limit, n.Key, g.Window(), end.UTC().Format(time.RFC3339))}
				}
			case n.Clamp && (take < 0 || take > left):
				take = left
			case take > left:
				return &CapError{Key: n.Key, Cap: limit, Left: left, Need: take, RetryAfter: end.Sub(now), Final: take > limit,
					Msg: fmt.Sprintf("token %q of %s may spend %d more %s this window (cap %d per %s, the window ends %s); this action needs %d",
						g.Name, g.Principal, left, n.Key, limit, g.Window(), end.UTC().Format(time.RFC3339), take)}
			}
			res.took[n.Key] += take
			row.Spent[n.Key] += take
		}
		v, err := json.Marshal(row)
		if err != nil {
			return err
		}
		return tx.Set(namedKey(prefixSpent, g.Principal, g.Name), v)
	})
	if err != nil {
		var ce *CapError
		if errors.As(err, &ce) {
			return nil, ce
		}
		return nil, tokenErr("reserve from the caps of token "+g.Name+" of "+g.Principal, err)
	}
	return res, nil
}

// errRevoked refuses a reservation for a token revoked since it
// authenticated.
var errRevoked = &kernel.Error{Code: abi.Unauthenticated, Msg: "unknown or revoked token"}

// Settle replaces what r took with what the action spent (spent, by key;
// keys the token does not cap are ignored), in the window r was taken in:
// a window that has ended since is left alone, as is a revoked token.
func (s *Store) Settle(r *Reservation, spent map[string]int64) error {
	if r == nil {
		return nil
	}
	err := s.retry(func(tx store.Txn) error {
		if _, err := tx.Get(namedKey(prefixNamed, r.principal, r.name)); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		row, err := readSpend(tx, r.principal, r.name)
		if err != nil {
			return err
		}
		if row.Bucket != r.bucket || row.Spent == nil {
			return nil
		}
		changed := false
		for k, took := range r.took {
			if d := spent[k] - took; d != 0 {
				row.Spent[k] = max(row.Spent[k]+d, 0)
				changed = true
			}
		}
		if !changed {
			return nil
		}
		v, err := json.Marshal(row)
		if err != nil {
			return err
		}
		return tx.Set(namedKey(prefixSpent, r.principal, r.name), v)
	})
	if err != nil {
		return tokenErr("settle the caps of token "+r.name+" of "+r.principal, err)
	}
	return nil
}
