// Package auth keeps the bearer tokens of a kernelhost world: one admin token,
// a default token per principal, and a principal's named tokens, each a
// grant of part of its authority (scopes, spending caps per window, an
// expiry: tokens.go, caps.go), all stored as sha256 hashes.
//
// A token is shown once, when it is issued; only its hash is kept, so a
// stolen copy of the hashes does not let anyone act.
//
// kernelhost keeps the hashes in the world's own store, under the prefix
// x/auth/ (see [Init] and [Open]), so that every node serving a world on a
// shared store (PostgreSQL) authenticates the tokens any of them issued, at
// once. The older form, a file auth.json ([Create], [Load]: written
// atomically, mode 0600), is read once by [Import], which moves it into the
// store; tests and embedders that have no store may still use it.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/kernelhost/kernelhost/store"
)

// TokenPrefix starts every token, so that a leaked one is easy to recognise
// (and to scan for).
const TokenPrefix = "kh_"

// ErrNotFound is returned (wrapped) by Load when the file does not exist,
// and by Open when the store holds no tokens.
var ErrNotFound = errors.New("auth: no tokens")

// fileVersion is the version of the auth.json format.
const fileVersion = 1

// file is the JSON form of auth.json.
type file struct {
	Version int `json:"version"`
	// Admin is the sha256 (hex) of the admin token.
	Admin string `json:"admin_sha256"`
	// Principals maps a principal id to the sha256 (hex) of its token.
	Principals map[string]string `json:"principals_sha256"`
}

// Store holds a world's token hashes: in a store.Store ([Open], [Init]) or
// in a file ([Load], [Create]). It is safe for concurrent use.
type Store struct {
	// kv is the world's store when the hashes live there ([Open]); nil
	// for a file. Every lookup reads it, so that a token issued by another
	// process on the same store works at once and a replaced one stops.
	kv store.Store

	// path is the file (kv == nil).
	path string

	// mu guards f and byHash: HTTP handlers read them to authenticate,
	// Issue (admin endpoints, CLI) writes them.
	mu     sync.RWMutex
	f      file
	byHash map[string]string // token hash -> principal

	touchState // tokens.go: when this node last recorded each token's use
}

// Identity is who a token belongs to, and what it grants.
type Identity struct {
	// Principal is the principal the token acts as; empty for the admin.
	Principal string
	// Admin is true for the admin token.
	Admin bool
	// Token is the name of a named token; empty for the admin and for a
	// principal's default token (see TokenName).
	Token string
	// Grant is a named token's record: its scopes, caps and expiry (see
	// tokens.go). Nil for the admin and for a default token, which hold
	// every scope and no cap.
	Grant *Token
}

// NewToken returns a fresh random token: TokenPrefix and 32 random bytes in hex.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return TokenPrefix + hex.EncodeToString(b[:]), nil
}

func hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// Create writes a new auth file at path with a fresh admin token, which it
// returns (it is not stored). It replaces any file at path.
func Create(path string) (*Store, string, error) {
	tok, err := NewToken()
	if err != nil {
		return nil, "", err
	}
	s := &Store{path: path, f: file{Version: fileVersion, Admin: hash(tok), Principals: map[string]string{}}}
	s.index()
	if err := s.save(); err != nil {
		return nil, "", err
	}
	return s, tok, nil
}

// Load reads the auth file at path. It returns ErrNotFound (wrapped) when
// there is none.
func Load(path string) (*Store, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s", ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("auth: %s is not valid JSON: %w", path, err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("auth: %s has version %d, this kernelhost reads %d", path, f.Version, fileVersion)
	}
	if len(f.Admin) != 64 {
		return nil, fmt.Errorf("auth: %s has no admin token hash", path)
	}
	if f.Principals == nil {
		f.Principals = map[string]string{}
	}
	s := &Store{path: path, f: f}
	s.index()
	return s, nil
}

// index rebuilds byHash. Caller holds mu for writing, or owns s alone.
func (s *Store) index() {
	s.byHash = make(map[string]string, len(s.f.Principals))
	for p, h := range s.f.Principals {
		s.byHash[h] = p
	}
}

// Issue gives principal a fresh token, replacing any earlier one, saves it
// (in the store, or the file) and returns the token.
func (s *Store) Issue(principal string) (string, error) {
	tok, err := NewToken()
	if err != nil {
		return "", err
	}
	if s.kv != nil {
		if err := s.issueKV(principal, hash(tok)); err != nil {
			return "", err
		}
		return tok, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.f.Principals[principal]
	s.f.Principals[principal] = hash(tok)
	if err := s.save(); err != nil {
		if had {
			s.f.Principals[principal] = old
		} else {
			delete(s.f.Principals, principal)
		}
		return "", err
	}
	s.index()
	return tok, nil
}

// Authenticate returns whose token tok is. ok is false for an unknown or
// malformed token, and when the store could not be read (failing closed;
// [Store.Lookup] tells that case apart).
func (s *Store) Authenticate(tok string) (id Identity, ok bool) {
	id, ok, _ = s.Lookup(tok)
	return id, ok
}

// Lookup is Authenticate, with the error of a store that could not be read
// (then ok is false): a front end answers that as unavailable rather than
// as a bad token.
func (s *Store) Lookup(tok string) (id Identity, ok bool, err error) {
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) > 256 {
		return Identity{}, false, nil
	}
	h := hash(tok)
	if s.kv != nil {
		return s.lookupKV(h)
	}
	id, ok = s.lookupFile(h)
	return id, ok, nil
}

// lookupFile finds the token hash h in the file's hashes.
func (s *Store) lookupFile(h string) (id Identity, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if subtle.ConstantTimeCompare([]byte(h), []byte(s.f.Admin)) == 1 {
		return Identity{Admin: true}, true
	}
	// NB: a map lookup by hash leaks nothing useful through timing: the
	// attacker does not control the hash of what it sends.
	if p, found := s.byHash[h]; found {
		return Identity{Principal: p}, true
	}
	return Identity{}, false
}

// Principals returns the principals that have a token, sorted.
func (s *Store) Principals() ([]string, error) {
	if s.kv != nil {
		return s.principalsKV()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.f.Principals))
	for p := range s.f.Principals {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// save writes the file atomically: a temporary file in the same directory,
// fsynced, then renamed over path. Caller holds mu, or owns s alone.
func (s *Store) save() error {
	b, err := json.MarshalIndent(s.f, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: encode: %w", err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, ".auth-*.json")
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	name := tmp.Name()
	defer func() { _ = os.Remove(name) }() // no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: sync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(name, s.path); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable where the OS allows it
		_ = d.Close()
	}
	return nil
}
