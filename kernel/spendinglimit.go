package kernel

import (
	"context"
	"errors"

	"github.com/kernelhost/kernelhost/store"
)

// SpendingLimit returns principal's default spending limit per action:
// what its set_spending_limit set, else Config.DefaultSpendingLimit; the
// limit an action without max_cost is held to. A front end that bounds an
// action by a max_cost of its own (the HTTP server, for a token with a
// spending cap) starts from it, so that it never raises the limit the
// principal chose.
func (k *Kernel) SpendingLimit(ctx context.Context, principal string) (int64, error) {
	if !k.enter() {
		return 0, closedErr()
	}
	defer k.exit()
	lim := k.cfg.DefaultSpendingLimit
	err := k.st.View(func(tx store.Txn) error {
		if _, err := loadPrincipal(tx, principal); err != nil {
			return err
		}
		b, err := tx.Get(spendingLimitKey(principal))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err := decodeU64(b)
		if err != nil {
			return err
		}
		lim = int64(min(v, 1<<63-1))
		return nil
	})
	if err != nil {
		return 0, storeErr(err)
	}
	return lim, nil
}
