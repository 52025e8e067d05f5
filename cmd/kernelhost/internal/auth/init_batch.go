package auth

import (
	"errors"
	"sort"

	"github.com/kernelhost/kernelhost/store"
)

// TokensPerTxn is how many principals' tokens one transaction of [Init]
// writes. A principal's two keys take about 250 bytes with the store's
// per-entry overhead: 4096 of them (about 1 MB) stay well below the
// transaction size Badger accepts with kernelhost's memtables (15% of 16
// MiB), where a world of 100,000 principals in one transaction would be
// refused (ErrTxnTooBig).
const TokensPerTxn = 4096

// initBatched writes f into st: the principals' hashes first, TokensPerTxn
// to a transaction, then the layout version and the admin in a last one.
// x/auth/admin is what [Open] looks for, so a world whose init stopped
// before that last commit has no tokens, whatever it wrote before. Every
// transaction fails with ErrExists when st has x/auth/admin already.
func initBatched(st store.Store, f file) error {
	absent := func(tx store.Txn) error {
		if _, err := tx.Get(keyAdmin); err == nil {
			return ErrExists
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return nil
	}
	if err := st.View(absent); err != nil { // before any work
		return err
	}
	ids := make([]string, 0, len(f.Principals))
	for p := range f.Principals {
		ids = append(ids, p)
	}
	sort.Strings(ids) // keys in order: a batch writes a range
	for len(ids) > 0 {
		batch := ids[:min(len(ids), TokensPerTxn)]
		ids = ids[len(batch):]
		err := st.Update(func(tx store.Txn) error {
			if err := absent(tx); err != nil {
				return err
			}
			for _, p := range batch {
				h := f.Principals[p]
				if err := tx.Set(principalKey(p), []byte(h)); err != nil {
					return err
				}
				if err := tx.Set(tokenKey(h), append([]byte{rolePrincipal}, p...)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return st.Update(func(tx store.Txn) error {
		if err := absent(tx); err != nil {
			return err
		}
		return writeAll(tx, file{Admin: f.Admin})
	})
}

// IssueTx gives each of principals a fresh token inside tx, a transaction
// on the store s keeps its tokens in that the caller commits (the kernel's,
// through kernel.CreatePrincipals's hook: the principals and their tokens
// then commit together or not at all), replacing any earlier token as
// Issue does. It returns the tokens in the order of principals. ok is
// false, and nothing is written, for a Store kept in a file, which has no
// transaction: call Issue for each principal then.
func (s *Store) IssueTx(tx store.Txn, principals []string) (toks []string, ok bool, err error) {
	if s.kv == nil {
		return nil, false, nil
	}
	toks = make([]string, len(principals))
	for i, p := range principals {
		if toks[i], err = NewToken(); err != nil {
			return nil, true, err
		}
		h := hash(toks[i])
		// As issueKV, in the caller's transaction.
		old, err := tx.Get(principalKey(p))
		switch {
		case err == nil:
			if err := tx.Delete(tokenKey(string(old))); err != nil {
				return nil, true, err
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, true, err
		}
		if err := tx.Set(principalKey(p), []byte(h)); err != nil {
			return nil, true, err
		}
		if err := tx.Set(tokenKey(h), append([]byte{rolePrincipal}, p...)); err != nil {
			return nil, true, err
		}
	}
	return toks, true, nil
}
