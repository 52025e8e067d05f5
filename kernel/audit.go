package kernel

import (
	"context"
	"fmt"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Audit is the world's totals read in one snapshot: the ledger (minted,
// burned, the sum of balances, and whether minted = balances + burned
// holds), and per resource the sum of all quotas and of all outstanding
// rights (their sum per resource changes only by SetQuota and new
// principals).
type Audit struct {
	Minted     uint64 `json:"minted"`
	Burned     uint64 `json:"burned"`
	Balances   uint64 `json:"balances"` // sum of every principal's balance
	Principals int    `json:"principals"`
	Rights     int    `json:"rights"` // outstanding rights
	// QuotaTotals and RightTotals have an entry for every resource.
	QuotaTotals map[Resource]int64 `json:"quota_totals"`
	RightTotals map[Resource]int64 `json:"right_totals"`
	// LedgerOK reports minted == balances + burned; LedgerProblem says what
	// is wrong when it does not hold.
	LedgerOK      bool   `json:"ledger_ok"`
	LedgerProblem string `json:"ledger_problem,omitempty"`
}

// Audit returns the totals of Totals, CheckLedger, QuotaTotals and
// RightTotals, read in one snapshot so that they agree with each other
// while actions commit (four calls would read four snapshots, and a
// transfer between two of them would look like a broken ledger). A broken
// ledger is reported in the Audit (LedgerOK false), not as an error. Cost is
// linear in the number of principals and rights, memory is constant: for
// operators and audits, not hot paths. Errors: UNAVAILABLE once closed,
// INTERNAL.
func (k *Kernel) Audit(ctx context.Context) (Audit, error) {
	if !k.enter() {
		return Audit{}, closedErr()
	}
	defer k.exit()
	var a Audit
	err := k.st.View(func(tx store.Txn) error {
		a = Audit{QuotaTotals: make(map[Resource]int64, numResources), RightTotals: make(map[Resource]int64, numResources)}
		for _, r := range Resources {
			a.QuotaTotals[r], a.RightTotals[r] = 0, 0
		}
		var err error
		if a.Minted, err = readCounter(tx, keyMinted); err != nil {
			return err
		}
		if a.Burned, err = readCounter(tx, keyBurned); err != nil {
			return err
		}
		err = tx.Iterate(prefixPrincipal, nil, func(_, value []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, err := decodePrincipal(value)
			if err != nil {
				return err
			}
			a.Principals++
			a.Balances += p.Balance
			for i, r := range Resources {
				a.QuotaTotals[r] += p.Quota[i]
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Iterate(prefixRight, nil, func(_, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := decodeRightIndex(v)
			if err != nil {
				return err
			}
			a.Rights++
			a.RightTotals[r.Resource] += r.Amount
			return nil
		})
	})
	if err != nil {
		if ctx.Err() != nil {
			return Audit{}, &Error{Code: abi.Unavailable, Msg: "audit interrupted", Err: err}
		}
		return Audit{}, storeErr(err)
	}
	a.LedgerOK = a.Minted == a.Balances+a.Burned
	if !a.LedgerOK {
		a.LedgerProblem = fmt.Sprintf("minted %d != balances %d + burned %d", a.Minted, a.Balances, a.Burned)
	}
	return a, nil
}
