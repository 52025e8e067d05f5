package kernel

import (
	"bytes"
	"context"
	"errors"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// CreatePrincipal creates principal id holding balance scrip, minted for it.
// It is an administrative operation: the embedding program (genesis, the CLI,
// the HTTP server's admin endpoints) decides who may call it. Errors:
// INVALID_ARGUMENT for a bad id, ALREADY_EXISTS.
func (k *Kernel) CreatePrincipal(ctx context.Context, id string, balance uint64) error {
	if !k.enter() {
		return closedErr()
	}
	defer k.exit()
	if !validID(id) {
		return errf(abi.InvalidArgument, "principal id %q is not a valid id: %s, 1-%d bytes", id, idRule, abi.MaxIDLen)
	}
	now := k.nowNanos()
	err := k.update(func(tx store.Txn) error {
		if _, err := tx.Get(principalKey(id)); err == nil {
			return errf(abi.AlreadyExists, "principal %q already exists", id)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := checkSupply(tx, balance); err != nil {
			return err
		}
		p := principalRec{Balance: balance, CreatedAt: now}
		for i, r := range Resources {
			p.Quota[i] = k.cfg.DefaultQuotas[r]
		}
		if err := tx.Set(principalKey(id), p.encode()); err != nil {
			return err
		}
		if balance > 0 {
			if err := addCounter(tx, ledgerShard(keyMinted, id), balance); err != nil {
				return err
			}
		}
		return k.record(tx, Record{Op: RecordCreatePrincipal, Now: now, Principal: id, Amount: int64(balance), Result: adminResult(nil)})
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// Mint creates amount new scrip in id's balance. Administrative, like
// CreatePrincipal. Errors: INVALID_ARGUMENT for amount <= 0, NOT_FOUND.
func (k *Kernel) Mint(ctx context.Context, id string, amount int64) error {
	if !k.enter() {
		return closedErr()
	}
	defer k.exit()
	if amount <= 0 {
		return errf(abi.InvalidArgument, "mint amount must be positive, got %d", amount)
	}
	err := k.update(func(tx store.Txn) error {
		p, err := loadPrincipal(tx, id)
		if err != nil {
			return err
		}
		if err := checkSupply(tx, uint64(amount)); err != nil {
			return err
		}
		p.Balance += uint64(amount)
		if err := tx.Set(principalKey(id), p.encode()); err != nil {
			return err
		}
		if err := addCounter(tx, ledgerShard(keyMinted, id), uint64(amount)); err != nil {
			return err
		}
		return k.record(tx, Record{Op: RecordMint, Now: k.nowNanos(), Principal: id, Amount: amount, Result: adminResult(nil)})
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// Principal returns principal id. Principals' balances are public facts of
// the world. Errors: NOT_FOUND.
func (k *Kernel) Principal(ctx context.Context, id string) (Principal, error) {
	p, err := k.readPrincipal(id)
	if err != nil {
		return Principal{}, err
	}
	return Principal{ID: id, Balance: p.Balance, CreatedAt: unixTime(p.CreatedAt)}, nil
}

// Principals lists every principal in id order.
func (k *Kernel) Principals(ctx context.Context) ([]Principal, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	var out []Principal
	err := k.st.View(func(tx store.Txn) error {
		return tx.Iterate(prefixPrincipal, nil, func(key, value []byte) error {
			p, err := decodePrincipal(value)
			if err != nil {
				return err
			}
			out = append(out, Principal{ID: string(key[len(prefixPrincipal):]), Balance: p.Balance, CreatedAt: unixTime(p.CreatedAt)})
			return nil
		})
	})
	if err != nil {
		return nil, storeErr(err)
	}
	return out, nil
}

// Consent returns payer's consent grant to contract. Errors: NOT_FOUND.
func (k *Kernel) Consent(ctx context.Context, payer, contract string) (Grant, error) {
	if !k.enter() {
		return Grant{}, closedErr()
	}
	defer k.exit()
	var out Grant
	err := k.st.View(func(tx store.Txn) error {
		b, err := tx.Get(grantKey(payer, contract))
		if errors.Is(err, store.ErrNotFound) {
			return errf(abi.NotFound, "%q has no consent for contract %q", payer, contract)
		} else if err != nil {
			return err
		}
		g, err := decodeGrant(b)
		if err != nil {
			return err
		}
		out = Grant{Payer: payer, Contract: contract, Terms: hexHash(g.Terms), PerCallCap: g.PerCallCap, TotalCap: g.TotalCap, Spent: g.Spent}
		return nil
	})
	if err != nil {
		return Grant{}, storeErr(err)
	}
	return out, nil
}

// Totals returns the ledger totals.
func (k *Kernel) Totals(ctx context.Context) (Totals, error) {
	if !k.enter() {
		return Totals{}, closedErr()
	}
	defer k.exit()
	var t Totals
	err := k.st.View(func(tx store.Txn) error {
		var err error
		if t.Minted, err = readCounter(tx, keyMinted); err != nil {
			return err
		}
		t.Burned, err = readCounter(tx, keyBurned)
		return err
	})
	if err != nil {
		return Totals{}, storeErr(err)
	}
	return t, nil
}

// CheckLedger verifies, in one snapshot, that minted scrip equals the sum of
// all balances plus burned scrip. It returns INTERNAL if not. Cost is linear
// in the number of principals: for tests, audits and the CLI, not hot paths.
func (k *Kernel) CheckLedger(ctx context.Context) error {
	if !k.enter() {
		return closedErr()
	}
	defer k.exit()
	err := k.st.View(func(tx store.Txn) error {
		minted, err := readCounter(tx, keyMinted)
		if err != nil {
			return err
		}
		burned, err := readCounter(tx, keyBurned)
		if err != nil {
			return err
		}
		var sum uint64
		err = tx.Iterate(prefixPrincipal, nil, func(_, value []byte) error {
			p, err := decodePrincipal(value)
			sum += p.Balance
			return err
		})
		if err != nil {
			return err
		}
		if minted != sum+burned {
			return errf(abi.Internal, "ledger broken: minted %d != balances %d + burned %d", minted, sum, burned)
		}
		return nil
	})
	if err != nil {
		return storeErr(err)
	}
	return nil
}

// MaxSupply bounds the scrip ever minted, so that no sum of balances, burns
// or charges can overflow a uint64.
const MaxSupply = uint64(1) << 62

// checkSupply fails with INVALID_ARGUMENT if minting amount more would pass
// MaxSupply. Every balance is part of the minted total, so no balance can
// overflow either.
func checkSupply(tx store.Txn, amount uint64) error {
	minted, err := readCounter(tx, keyMinted)
	if err != nil {
		return err
	}
	if amount > MaxSupply || minted > MaxSupply-amount {
		return errf(abi.InvalidArgument, "minting %d would bring the supply past %d (minted so far: %d)", amount, MaxSupply, minted)
	}
	return nil
}

// readCounter reads a u64 counter; for a ledger total (l/minted,
// l/burned) it is the sum of its shards (ledgerShard) and of the unsharded
// key a store written before them holds.
func readCounter(tx store.Txn, k []byte) (uint64, error) {
	b, err := tx.Get(k)
	var v uint64
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return 0, err
	default:
		if v, err = decodeU64(b); err != nil {
			return 0, err
		}
	}
	if !bytes.Equal(k, keyMinted) && !bytes.Equal(k, keyBurned) {
		return v, nil
	}
	prefix := append(bytes.Clone(k), '/')
	err = tx.Iterate(prefix, nil, func(_, value []byte) error {
		n, err := decodeU64(value)
		v += n // no overflow: the supply is capped at MaxSupply
		return err
	})
	return v, err
}

// Standing is a principal's grant of standing to one executable
// (grant_standing): the executable may act as the principal while its code
// and metadata are those the grant was made for.
type Standing struct {
	Principal  string `json:"principal"`
	Executable string `json:"executable"`
	// Terms is the sha256 (hex) of the executable's terms at grant time.
	Terms string `json:"terms_sha256"`
	// Valid reports whether the executable exists and its terms are still
	// those granted; a grant that is not valid gives no standing.
	Valid bool `json:"valid"`
}

// Standings returns the standing grants principal made, by executable id,
// each with whether it still holds. Errors: NOT_FOUND for an unknown
// principal, UNAVAILABLE once closed.
func (k *Kernel) Standings(ctx context.Context, principal string) ([]Standing, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	var out []Standing
	err := k.st.View(func(tx store.Txn) error {
		if _, err := tx.Get(principalKey(principal)); errors.Is(err, store.ErrNotFound) {
			return errf(abi.NotFound, "principal %q does not exist", principal)
		} else if err != nil {
			return err
		}
		prefix := standingPrefix(principal)
		return tx.Iterate(prefix, nil, func(key, v []byte) error {
			s, err := decodeStanding(v)
			if err != nil {
				return err
			}
			exe := string(key[len(prefix):])
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
	})
	if err != nil {
		return nil, storeErr(err)
	}
	return out, nil
}
