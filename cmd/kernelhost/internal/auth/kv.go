package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/kernelhost/kernelhost/store"
)

// Keys in the world's store, all under Prefix (x/ is the embedding
// program's: the kernel never writes there):
//
//	x/auth/schema            version of this layout ("2"; see tokens.go
//	                         for what version 2 added: named tokens)
//	x/auth/admin             sha256 (hex) of the admin token; written by the
//	                         last transaction of init, after the first
//	                         tokens, so that its presence marks a complete
//	                         world
//	x/auth/p/<principal>     sha256 (hex) of the principal's token
//	x/auth/t/<sha256 hex>    whose token that is: "a" (the admin), or "p"
//	                         followed by the principal
//
// x/auth/t/ is the index a lookup reads: one key per request. An Issue
// replaces x/auth/p/<principal> and moves the principal's x/auth/t/ entry
// in one transaction, so a replaced token stops working everywhere at once.
const Prefix = "x/auth/"

// kvSchema is the version of the layout above. Version 2 is version 1
// plus named tokens (tokens.go), so Open upgrades a version 1 store in
// place by writing the new version: nothing else changes.
const (
	kvSchema   = "2"
	kvSchemaV1 = "1"
)

var (
	keySchema       = []byte(Prefix + "schema")
	keyAdmin        = []byte(Prefix + "admin")
	prefixPrincipal = []byte(Prefix + "p/")
	prefixToken     = []byte(Prefix + "t/")
)

// Roles in an x/auth/t/ value.
const (
	roleAdmin     = 'a'
	rolePrincipal = 'p'
)

// maxIssueRetries bounds how often Issue runs its transaction again after a
// serialisable conflict (another process issuing the same principal's token
// at the same moment).
const maxIssueRetries = 32

// ErrExists is returned by Init when the store already holds tokens.
var ErrExists = errors.New("auth: the store already holds tokens")

func principalKey(p string) []byte { return append(bytes.Clone(prefixPrincipal), p...) }
func tokenKey(h string) []byte     { return append(bytes.Clone(prefixToken), h...) }

// Init writes a fresh admin token and one token for each of principals
// into st, x/auth/admin in the last transaction (the principals' tokens
// go before it, [TokensPerTxn] to a transaction): call it last when
// creating a world, so that a world whose creation was interrupted has no
// tokens ([Open] answers ErrNotFound). It returns the tokens' Store,
// the admin token and the principals' tokens, in the order of principals;
// only their hashes are stored. It returns ErrExists (wrapped) when st
// already has tokens.
func Init(st store.Store, principals []string) (*Store, string, []string, error) {
	admin, err := NewToken()
	if err != nil {
		return nil, "", nil, err
	}
	toks := make([]string, len(principals))
	f := file{Version: fileVersion, Admin: hash(admin), Principals: make(map[string]string, len(principals))}
	for i, p := range principals {
		if _, dup := f.Principals[p]; dup {
			return nil, "", nil, fmt.Errorf("auth: principal %q listed twice", p)
		}
		if toks[i], err = NewToken(); err != nil {
			return nil, "", nil, err
		}
		f.Principals[p] = hash(toks[i])
	}
	if err := initBatched(st, f); err != nil { // init_batch.go
		return nil, "", nil, fmt.Errorf("auth: write tokens: %w", err)
	}
	return &Store{kv: st}, admin, toks, nil
}

// writeAll writes the hashes of f into tx: the layout version, the admin
// and every principal.
func writeAll(tx store.Txn, f file) error {
	if err := tx.Set(keySchema, []byte(kvSchema)); err != nil {
		return err
	}
	if err := tx.Set(keyAdmin, []byte(f.Admin)); err != nil {
		return err
	}
	if err := tx.Set(tokenKey(f.Admin), []byte{roleAdmin}); err != nil {
		return err
	}
	for p, h := range f.Principals {
		if err := tx.Set(principalKey(p), []byte(h)); err != nil {
			return err
		}
		if err := tx.Set(tokenKey(h), append([]byte{rolePrincipal}, p...)); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the tokens kept in st. It returns ErrNotFound (wrapped) when
// st has none: no world, or one whose creation did not finish. A store of
// layout version 1 is upgraded to version 2 in place.
func Open(st store.Store) (*Store, error) {
	v1 := false
	err := st.View(func(tx store.Txn) error {
		if _, err := tx.Get(keyAdmin); err != nil {
			return err
		}
		v, err := tx.Get(keySchema)
		if err != nil {
			return err
		}
		if string(v) == kvSchemaV1 {
			v1 = true // upgraded below
			return nil
		}
		if string(v) != kvSchema {
			return fmt.Errorf("auth: the tokens in the store have layout version %q, this kernelhost reads %q", v, kvSchema)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w in the store", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if v1 {
		if err := upgradeV1(st); err != nil {
			return nil, fmt.Errorf("auth: upgrade the tokens' layout: %w", err)
		}
	}
	return &Store{kv: st}, nil
}

// upgradeV1 moves a store of layout version 1 to version 2 (a no-op on
// one already there): version 2 only adds keys, so it rewrites the version.
func upgradeV1(st store.Store) error {
	var err error
	for range maxIssueRetries {
		err = st.Update(func(tx store.Txn) error {
			v, err := tx.Get(keySchema)
			if err != nil || string(v) != kvSchemaV1 {
				return err
			}
			return tx.Set(keySchema, []byte(kvSchema))
		})
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	return err
}

// Import moves the hashes of the auth file at path (the form kernelhost
// kept them in before they moved into the store) into st, then removes the
// file. It returns false, doing nothing, when there is no file. A file
// whose admin hash st already holds is only removed (an Import that stopped
// between its commit and the removal); one with another admin hash is an
// error, and both are left as they are.
func Import(st store.Store, path string) (bool, error) {
	legacy, err := Load(path)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = st.Update(func(tx store.Txn) error {
		v, err := tx.Get(keyAdmin)
		switch {
		case err == nil && string(v) == legacy.f.Admin:
			return nil
		case err == nil:
			return fmt.Errorf("auth: %s and the store hold different admin tokens: remove %s if the store's are the ones in use", path, path)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return writeAll(tx, legacy.f)
	})
	if err != nil {
		return false, fmt.Errorf("auth: import %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return true, fmt.Errorf("auth: %s was imported into the store but not removed: %w", path, err)
	}
	return true, nil
}

// issueKV makes h principal's token hash in the store, removing the
// principal's previous one from the index in the same transaction.
func (s *Store) issueKV(principal, h string) error {
	var err error
	for range maxIssueRetries {
		err = s.kv.Update(func(tx store.Txn) error {
			old, err := tx.Get(principalKey(principal))
			switch {
			case err == nil:
				if err := tx.Delete(tokenKey(string(old))); err != nil {
					return err
				}
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
			if err := tx.Set(principalKey(principal), []byte(h)); err != nil {
				return err
			}
			return tx.Set(tokenKey(h), append([]byte{rolePrincipal}, principal...))
		})
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("auth: save the token of %s: %w", principal, err)
	}
	return nil
}

// lookupKV finds the token hash h in the store's index: one key read.
//
// NB: no comparison happens in memory, so there is no timing to protect:
// the key read is that of a hash the caller cannot steer.
func (s *Store) lookupKV(h string) (id Identity, ok bool, err error) {
	var v []byte
	err = s.kv.View(func(tx store.Txn) error {
		var err error
		v, err = tx.Get(tokenKey(h))
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Identity{}, false, nil
	case err != nil:
		return Identity{}, false, fmt.Errorf("auth: read tokens: %w", err)
	case len(v) == 1 && v[0] == roleAdmin:
		return Identity{Admin: true}, true, nil
	case len(v) > 1 && v[0] == rolePrincipal:
		return Identity{Principal: string(v[1:])}, true, nil
	case len(v) > 1 && v[0] == roleNamed:
		return decodeNamed(v[1:]) // tokens.go
	}
	return Identity{}, false, fmt.Errorf("auth: malformed token record %q in the store", v)
}

// principalsKV lists the principals with a token in the store.
func (s *Store) principalsKV() ([]string, error) {
	var out []string
	err := s.kv.View(func(tx store.Txn) error {
		return tx.Iterate(prefixPrincipal, nil, func(k, _ []byte) error {
			out = append(out, strings.TrimPrefix(string(k), string(prefixPrincipal)))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("auth: read tokens: %w", err)
	}
	return out, nil // sorted: keys come in byte order, as strings compare
}
