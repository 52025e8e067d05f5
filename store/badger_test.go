package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/store"
)

// TestBadger_conflict runs transaction A, which reads and writes while B
// commits between A's reads and A's commit. Badger's serialisable isolation
// aborts A exactly when B wrote a key that A read.
func TestBadger_conflict(t *testing.T) {
	tests := []struct {
		name         string
		aReads       []string
		aWrites      []string
		bWrites      []string
		wantConflict bool
	}{
		{name: "read-modify-write same key", aReads: []string{"k"}, aWrites: []string{"k"}, bWrites: []string{"k"}, wantConflict: true},
		{name: "B wrote a key A only read", aReads: []string{"k"}, aWrites: []string{"other"}, bWrites: []string{"k"}, wantConflict: true},
		{name: "disjoint keys", aReads: []string{"a"}, aWrites: []string{"a"}, bWrites: []string{"b"}},
		{name: "blind writes do not conflict", aWrites: []string{"k"}, bWrites: []string{"k"}},
		{name: "read-only A", aReads: []string{"k"}, bWrites: []string{"k"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openBadger(t, "", store.BadgerOptions{InMemory: true})
			defer func() { require.NoError(t, s.Close()) }()

			aRead, bDone := make(chan struct{}), make(chan struct{})
			aErr := make(chan error)
			go func() {
				aErr <- s.Update(func(tx store.Txn) error {
					for _, k := range tc.aReads {
						if _, err := tx.Get([]byte(k)); err != nil && !errors.Is(err, store.ErrNotFound) {
							return err
						}
					}
					close(aRead)
					<-bDone
					for _, k := range tc.aWrites {
						if err := tx.Set([]byte(k), []byte("A")); err != nil {
							return err
						}
					}
					return nil
				})
			}()
			<-aRead
			require.NoError(t, s.Update(func(tx store.Txn) error {
				for _, k := range tc.bWrites {
					if _, err := tx.Get([]byte(k)); err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					if err := tx.Set([]byte(k), []byte("B")); err != nil {
						return err
					}
				}
				return nil
			}))
			close(bDone)
			err := <-aErr
			if !tc.wantConflict {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, store.ErrConflict)
			// A wrote nothing.
			for _, kv := range view(t, s, "") {
				require.NotContains(t, kv, "=A")
			}
		})
	}
}

func TestBadger_persistence(t *testing.T) {
	dir := t.TempDir()
	s := openBadger(t, dir, store.BadgerOptions{})
	require.NoError(t, s.Update(func(tx store.Txn) error {
		require.NoError(t, tx.Set([]byte("a"), []byte("1")))
		require.NoError(t, tx.Set([]byte("b"), []byte("2")))
		return nil
	}))
	require.NoError(t, s.Update(func(tx store.Txn) error { return tx.Delete([]byte("b")) }))
	errBoom := errors.New("boom")
	require.ErrorIs(t, s.Update(func(tx store.Txn) error {
		require.NoError(t, tx.Set([]byte("discarded"), []byte("x")))
		return errBoom
	}), errBoom)

	_, err := store.OpenBadger(dir, store.BadgerOptions{})
	require.Error(t, err, "a second open of the same directory is refused")

	require.NoError(t, s.Close())
	s = openBadger(t, dir, store.BadgerOptions{})
	defer func() { require.NoError(t, s.Close()) }()
	require.Equal(t, []string{"a=1"}, view(t, s, ""))
}

// TestBadgerReadOnly: a store closed cleanly opens read-only several times
// at once; each reads what was written and refuses Update with
// ErrReadOnly; a read-write open is refused while they hold it, and works
// once they closed.
func TestBadgerReadOnly(t *testing.T) {
	dir := t.TempDir()
	s := openBadger(t, dir, store.BadgerOptions{})
	require.NoError(t, s.Update(func(tx store.Txn) error { return tx.Set([]byte("a"), []byte("1")) }))
	_, err := store.OpenBadger(dir, store.BadgerOptions{ReadOnly: true})
	require.Error(t, err, "no read-only open beside a read-write one")
	require.NoError(t, s.Close())

	var ros []store.Store
	for range 3 {
		ro := openBadger(t, dir, store.BadgerOptions{ReadOnly: true})
		require.Equal(t, []string{"a=1"}, view(t, ro, ""))
		err := ro.Update(func(tx store.Txn) error { return tx.Set([]byte("b"), []byte("2")) })
		require.ErrorIs(t, err, store.ErrReadOnly)
		ros = append(ros, ro)
	}
	_, err = store.OpenBadger(dir, store.BadgerOptions{})
	require.Error(t, err, "no read-write open beside read-only ones")
	for _, ro := range ros {
		require.NoError(t, ro.Close())
	}
	s = openBadger(t, dir, store.BadgerOptions{})
	defer func() { require.NoError(t, s.Close()) }()
	require.Equal(t, []string{"a=1"}, view(t, s, ""), "the read-only opens wrote nothing")

	_, err = store.OpenBadger("", store.BadgerOptions{InMemory: true, ReadOnly: true})
	require.ErrorContains(t, err, "ReadOnly in memory")
}

func TestBadger_txnTooBig(t *testing.T) {
	s := openBadger(t, "", store.BadgerOptions{InMemory: true, MemTableSize: 8 << 20})
	defer func() { require.NoError(t, s.Close()) }()
	value := bytes.Repeat([]byte("v"), 64<<10)
	var setErr error
	err := s.Update(func(tx store.Txn) error {
		for i := range 1000 { // 64 MiB, far over 15% of 8 MiB
			if setErr = tx.Set(fmt.Appendf(nil, "k/%04d", i), value); setErr != nil {
				return setErr
			}
		}
		return nil
	})
	require.ErrorIs(t, setErr, store.ErrTxnTooBig)
	require.ErrorIs(t, err, store.ErrTxnTooBig)
	require.Empty(t, view(t, s, ""), "nothing of the big transaction was written")
}

func TestOpenBadger_options(t *testing.T) {
	tests := []struct {
		name string
		dir  string
		opts store.BadgerOptions
	}{
		{name: "in memory with dir", dir: "x", opts: store.BadgerOptions{InMemory: true}},
		{name: "no dir", opts: store.BadgerOptions{}},
		{name: "memtable too small", opts: store.BadgerOptions{InMemory: true, MemTableSize: 1 << 20}},
		{name: "negative", opts: store.BadgerOptions{InMemory: true, BlockCacheSize: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.OpenBadger(tc.dir, tc.opts)
			require.ErrorContains(t, err, "store: open badger")
			require.Nil(t, s)
		})
	}
}

func TestOpenBadger_logger(t *testing.T) {
	h := &recordHandler{}
	s := openBadger(t, t.TempDir(), store.BadgerOptions{Logger: slog.New(h)})
	require.NoError(t, s.Close())
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.records, "badger logs on open and close")
	for _, r := range h.records {
		require.Equal(t, slog.LevelDebug, r.Level, "badger's info is debug for us: %s", r.Message)
		require.Equal(t, strings.TrimSpace(r.Message), r.Message)
	}
}

// recordHandler is a slog.Handler that keeps every record.
type recordHandler struct {
	// mu guards records; Badger logs from its own goroutines.
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}

// TestBadgerDeferredSync: UpdateDeferred's writes are visible at once and
// survive a reopen after Sync; Sync after Close is ErrClosed.
func TestBadgerDeferredSync(t *testing.T) {
	dir := t.TempDir()
	s, err := store.OpenBadger(dir, store.BadgerOptions{})
	require.NoError(t, err)
	d, ok := s.(store.DeferredSync)
	require.True(t, ok, "Badger splits commit and sync")
	require.NoError(t, d.UpdateDeferred(func(tx store.Txn) error { return tx.Set([]byte("k"), []byte("v")) }))
	require.NoError(t, s.View(func(tx store.Txn) error {
		v, err := tx.Get([]byte("k"))
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
		return nil
	}))
	require.NoError(t, d.Sync())
	require.NoError(t, s.Close())
	require.ErrorIs(t, d.Sync(), store.ErrClosed)

	s, err = store.OpenBadger(dir, store.BadgerOptions{})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.View(func(tx store.Txn) error {
		v, err := tx.Get([]byte("k"))
		require.NoError(t, err)
		require.Equal(t, "v", string(v))
		return nil
	}))
}
