package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/kernelhost/kernelhost/store"
)

// Paged listings: each call reads at most limit+1 entries of one key range
// in one snapshot, from the position after the last entry of the page
// before, so that a listing of any size is served in bounded pieces (the
// HTTP API's cursors) and never loaded whole. A page that is not the last
// says so (more); continuing from its last entry neither skips nor repeats
// an entry that existed throughout, whatever was created or removed
// meanwhile elsewhere in the range.

// MaxPage bounds the limit of a paged listing; a limit <= 0 or above it
// means MaxPage.
const MaxPage = 1000

func pageLimit(limit int) int {
	if limit <= 0 || limit > MaxPage {
		return MaxPage
	}
	return limit
}

// after returns the smallest key greater than k and every key that has k as
// a proper prefix ending in an id: k with a NUL appended (ids never contain
// NUL, so no id continues with one).
func after(k []byte) []byte { return append(k[:len(k):len(k)], 0) }

// PrincipalsPage returns up to limit principals in id order whose ids sort
// after afterID ("" for the first page), and whether more follow. limit <= 0
// or above MaxPage means MaxPage. Errors: UNAVAILABLE once closed, INTERNAL.
func (k *Kernel) PrincipalsPage(ctx context.Context, afterID string, limit int) ([]Principal, bool, error) {
	if !k.enter() {
		return nil, false, closedErr()
	}
	defer k.exit()
	limit = pageLimit(limit)
	var start []byte
	if afterID != "" {
		start = after(principalKey(afterID))
	}
	var out []Principal
	more := false
	err := k.st.View(func(tx store.Txn) error {
		return tx.Iterate(prefixPrincipal, start, func(key, value []byte) error {
			if len(out) == limit {
				more = true
				return store.ErrStop
			}
			p, err := decodePrincipal(value)
			if err != nil {
				return err
			}
			out = append(out, Principal{ID: string(key[len(prefixPrincipal):]), Balance: p.Balance, CreatedAt: unixTime(p.CreatedAt)})
			return nil
		})
	})
	if err != nil {
		return nil, false, storeErr(err)
	}
	return out, more, nil
}

// RightsPage returns up to limit outstanding rights after the position
// (afterHolder, afterID), and whether more follow. With holder "" it lists
// every principal's rights in (holder, id) order, continuing after right
// afterID of afterHolder (afterID "" for the first page); with holder set, only
// holder's rights in id order, continuing after afterID (afterHolder is
// then ignored). Each right is read in the same snapshot as its index
// entry. limit <= 0 or above MaxPage means MaxPage. Like Rights it reports
// standing: the embedding program decides who may ask. Errors: UNAVAILABLE
// once closed, INTERNAL.
func (k *Kernel) RightsPage(ctx context.Context, holder, afterHolder, afterID string, limit int) ([]Right, bool, error) {
	if !k.enter() {
		return nil, false, closedErr()
	}
	defer k.exit()
	limit = pageLimit(limit)
	prefix := prefixRight
	if holder != "" {
		prefix = rightHolderPrefix(holder)
		afterHolder = holder
	}
	var start []byte
	if afterID != "" {
		start = after(rightKey(afterHolder, afterID))
	}
	var out []Right
	more := false
	err := k.st.View(func(tx store.Txn) error {
		return tx.Iterate(prefix, start, func(key, _ []byte) error {
			if len(out) == limit {
				more = true
				return store.ErrStop
			}
			h, id, ok := cutRightKey(key)
			if !ok {
				return fmt.Errorf("right index key %q: %w", key, errCorrupt)
			}
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
			if rc.Holder != h {
				return fmt.Errorf("right %q is indexed under %q but held by %q: %w", id, h, rc.Holder, errCorrupt)
			}
			out = append(out, Right{ID: id, Resource: rc.Resource, Amount: rc.Amount, Holder: rc.Holder,
				CreatedBy: art.CreatedBy, Contract: art.Contract, Revision: art.Revision})
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = fmt.Errorf("right index points at a missing right: %w", errCorrupt)
		}
		return nil, false, storeErr(err)
	}
	return out, more, nil
}

// cutRightKey splits a rights-by-holder index key r/<holder>\x00<right>.
func cutRightKey(key []byte) (holder, id string, ok bool) {
	rest := key[len(prefixRight):]
	for i, c := range rest {
		if c == 0 {
			return string(rest[:i]), string(rest[i+1:]), i > 0 && i+1 < len(rest)
		}
	}
	return "", "", false
}
