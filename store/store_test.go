package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/hammer"
	"github.com/kernelhost/kernelhost/store"
)

// opener opens a fresh, empty Store for one test; the test closes it.
type opener struct {
	name string
	open func(t testing.TB) store.Store
}

// openers are the implementations every shared test runs against.
var openers = []opener{
	{"mem", func(testing.TB) store.Store { return store.NewMem() }},
	{"badger-inmemory", func(t testing.TB) store.Store { return openBadger(t, "", store.BadgerOptions{InMemory: true}) }},
	{"badger-disk", func(t testing.TB) store.Store { return openBadger(t, t.TempDir(), store.BadgerOptions{}) }},
}

func openBadger(t testing.TB, dir string, opts store.BadgerOptions) store.Store {
	t.Helper()
	s, err := store.OpenBadger(dir, opts)
	require.NoError(t, err)
	return s
}

func TestStore(t *testing.T) {
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) { testStore(t, o.open) })
	}
}

// testStore is the behaviour every Store implementation shares.
func testStore(t *testing.T, open func(t testing.TB) store.Store) {
	// run gives each case a fresh store, closed at the end.
	run := func(name string, fn func(t *testing.T, s store.Store)) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer func() {
				if err := s.Close(); err != nil {
					require.ErrorIs(t, err, store.ErrClosed)
				}
			}()
			fn(t, s)
		})
	}

	run("get set delete", func(t *testing.T, s store.Store) {
		require.NoError(t, s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set([]byte("a"), []byte("1")))
			require.NoError(t, tx.Set([]byte("b"), []byte("2")))
			require.NoError(t, tx.Set([]byte("empty"), nil))
			return nil
		}))
		require.NoError(t, s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set([]byte("a"), []byte("one")))
			require.NoError(t, tx.Delete([]byte("b")))
			require.NoError(t, tx.Delete([]byte("never")), "deleting an absent key")
			return nil
		}))
		require.NoError(t, s.View(func(tx store.Txn) error {
			tests := []struct {
				name, key string
				want      []byte
				err       error
			}{
				{name: "overwritten", key: "a", want: []byte("one")},
				{name: "deleted", key: "b", err: store.ErrNotFound},
				{name: "never set", key: "c", err: store.ErrNotFound},
				{name: "empty value", key: "empty", want: []byte{}},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					v, err := tx.Get([]byte(tc.key))
					if tc.err != nil {
						require.ErrorIs(t, err, tc.err)
						require.Nil(t, v)
						return
					}
					require.NoError(t, err)
					require.Equal(t, tc.want, v)
				})
			}
			return nil
		}))
	})

	run("get returns a copy", func(t *testing.T, s store.Store) {
		key, val := []byte("k"), []byte("value")
		require.NoError(t, s.Update(func(tx store.Txn) error { return tx.Set(key, val) }))
		// The caller may reuse its buffers once Update has returned.
		key[0], val[0] = 'x', 'x'
		require.NoError(t, s.View(func(tx store.Txn) error {
			v, err := tx.Get([]byte("k"))
			require.NoError(t, err)
			require.Equal(t, "value", string(v))
			v[0] = 'X'
			v, err = tx.Get([]byte("k"))
			require.NoError(t, err)
			require.Equal(t, "value", string(v))
			return nil
		}))
	})

	run("update reads its own writes", func(t *testing.T, s store.Store) {
		require.NoError(t, s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set([]byte("p/1"), []byte("old")))
			require.NoError(t, tx.Set([]byte("p/2"), []byte("two")))
			return nil
		}))
		require.NoError(t, s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set([]byte("p/1"), []byte("new")))
			require.NoError(t, tx.Delete([]byte("p/2")))
			require.NoError(t, tx.Set([]byte("p/3"), []byte("three")))
			v, err := tx.Get([]byte("p/1"))
			require.NoError(t, err)
			require.Equal(t, "new", string(v))
			_, err = tx.Get([]byte("p/2"))
			require.ErrorIs(t, err, store.ErrNotFound)
			require.Equal(t, []string{"p/1=new", "p/3=three"}, collect(t, tx, "p/", ""))
			return nil
		}))
	})

	run("invalid keys", func(t *testing.T, s store.Store) {
		keys := []struct {
			name string
			key  []byte
		}{
			{name: "nil", key: nil},
			{name: "empty", key: []byte{}},
			{name: "too long", key: bytes.Repeat([]byte("k"), store.MaxKeySize+1)},
			{name: "badger prefix", key: []byte("!badger!head")},
		}
		require.NoError(t, s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set(bytes.Repeat([]byte("k"), store.MaxKeySize), nil), "longest key")
			for _, tc := range keys {
				t.Run(tc.name, func(t *testing.T) {
					_, err := tx.Get(tc.key)
					require.ErrorIs(t, err, store.ErrInvalidKey)
					require.ErrorIs(t, tx.Set(tc.key, []byte("v")), store.ErrInvalidKey)
					require.ErrorIs(t, tx.Delete(tc.key), store.ErrInvalidKey)
				})
			}
			return nil
		}))
	})

	run("iterate", func(t *testing.T, s store.Store) {
		require.NoError(t, s.Update(func(tx store.Txn) error {
			// Inserted out of order on purpose.
			for _, k := range []string{"b/1", "a/2", "a", "a/10", "ab", "a/1", "a/", "c"} {
				require.NoError(t, tx.Set([]byte(k), []byte("v"+k)))
			}
			return nil
		}))
		tests := []struct {
			name          string
			prefix, start string
			want          []string
		}{
			{name: "prefix", prefix: "a/", want: []string{"a/=va/", "a/1=va/1", "a/10=va/10", "a/2=va/2"}},
			{name: "all", want: []string{"a=va", "a/=va/", "a/1=va/1", "a/10=va/10", "a/2=va/2", "ab=vab", "b/1=vb/1", "c=vc"}},
			{name: "start on a key", prefix: "a/", start: "a/10", want: []string{"a/10=va/10", "a/2=va/2"}},
			{name: "start between keys", prefix: "a/", start: "a/11", want: []string{"a/2=va/2"}},
			{name: "start before prefix", prefix: "a/", start: "0", want: []string{"a/=va/", "a/1=va/1", "a/10=va/10", "a/2=va/2"}},
			{name: "start after prefix", prefix: "a/", start: "a0"},
			{name: "start without prefix", start: "ab", want: []string{"ab=vab", "b/1=vb/1", "c=vc"}},
			{name: "no match", prefix: "z"},
			{name: "prefix is a key", prefix: "c", want: []string{"c=vc"}},
		}
		require.NoError(t, s.View(func(tx store.Txn) error {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					require.Equal(t, tc.want, collect(t, tx, tc.prefix, tc.start))
				})
			}
			t.Run("stop", func(t *testing.T) {
				var got []string
				err := tx.Iterate([]byte("a/"), nil, func(k, _ []byte) error {
					got = append(got, string(k))
					if len(got) == 2 {
						return store.ErrStop
					}
					return nil
				})
				require.NoError(t, err)
				require.Equal(t, []string{"a/", "a/1"}, got)
			})
			t.Run("error", func(t *testing.T) {
				errBoom := errors.New("boom")
				n := 0
				err := tx.Iterate(nil, nil, func(_, _ []byte) error {
					n++
					return errBoom
				})
				require.Same(t, errBoom, err)
				require.Equal(t, 1, n)
			})
			return nil
		}))
	})

	run("writes during iterate", func(t *testing.T, s store.Store) {
		require.NoError(t, s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set([]byte("k/1"), []byte("1")))
			require.NoError(t, tx.Set([]byte("k/3"), []byte("3")))
			return nil
		}))
		require.NoError(t, s.Update(func(tx store.Txn) error {
			var got []string
			require.NoError(t, tx.Iterate([]byte("k/"), nil, func(k, v []byte) error {
				got = append(got, string(k))
				if string(k) == "k/1" {
					require.NoError(t, tx.Set([]byte("k/2"), []byte("2")))
					require.NoError(t, tx.Delete([]byte("k/3")))
				}
				return nil
			}))
			require.Equal(t, []string{"k/1", "k/3"}, got, "the iteration sees the writes made before it")
			require.Equal(t, []string{"k/1=1", "k/2=2"}, collect(t, tx, "k/", ""))
			return nil
		}))
	})

	run("discard on error", func(t *testing.T, s store.Store) {
		require.NoError(t, s.Update(func(tx store.Txn) error { return tx.Set([]byte("keep"), []byte("1")) }))
		errBoom := errors.New("boom")
		err := s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set([]byte("new"), []byte("x")))
			require.NoError(t, tx.Set([]byte("keep"), []byte("2")))
			return errBoom
		})
		require.Same(t, errBoom, err, "fn's error comes back unchanged")
		require.Panics(t, func() {
			_ = s.Update(func(tx store.Txn) error {
				require.NoError(t, tx.Delete([]byte("keep")))
				panic("boom")
			})
		})
		require.Equal(t, []string{"keep=1"}, view(t, s, ""))
		// The store is still usable after the panic.
		require.NoError(t, s.Update(func(tx store.Txn) error { return tx.Set([]byte("after"), []byte("1")) }))
		require.Equal(t, []string{"after=1", "keep=1"}, view(t, s, ""))
	})

	run("view is read-only", func(t *testing.T, s store.Store) {
		require.NoError(t, s.View(func(tx store.Txn) error {
			require.ErrorIs(t, tx.Set([]byte("k"), []byte("v")), store.ErrReadOnly)
			require.ErrorIs(t, tx.Delete([]byte("k")), store.ErrReadOnly)
			return nil
		}))
		require.Empty(t, view(t, s, ""))
	})

	run("txn after closure", func(t *testing.T, s store.Store) {
		var kept store.Txn
		require.NoError(t, s.Update(func(tx store.Txn) error { kept = tx; return tx.Set([]byte("k"), []byte("v")) }))
		for _, keep := range []func(func(store.Txn) error) error{s.View, s.Update} {
			require.NoError(t, keep(func(tx store.Txn) error { kept = tx; return nil }))
			_, err := kept.Get([]byte("k"))
			require.ErrorIs(t, err, store.ErrTxnDone)
			require.ErrorIs(t, kept.Set([]byte("k"), nil), store.ErrTxnDone)
			require.ErrorIs(t, kept.Delete([]byte("k")), store.ErrTxnDone)
			require.ErrorIs(t, kept.Iterate(nil, nil, func(_, _ []byte) error { return nil }), store.ErrTxnDone)
		}
	})

	run("view is a snapshot", func(t *testing.T, s store.Store) {
		require.NoError(t, s.Update(func(tx store.Txn) error {
			require.NoError(t, tx.Set([]byte("k/a"), []byte("1")))
			return tx.Set([]byte("k/b"), []byte("1"))
		}))
		require.NoError(t, s.View(func(tx store.Txn) error {
			before := collect(t, tx, "", "")
			// A concurrent Update commits while this View is open.
			done := make(chan error)
			go func() {
				// No require here: FailNow must not run off the test goroutine.
				done <- s.Update(func(tx store.Txn) error {
					return errors.Join(
						tx.Set([]byte("k/a"), []byte("2")),
						tx.Delete([]byte("k/b")),
						tx.Set([]byte("k/c"), []byte("2")))
				})
			}()
			require.NoError(t, <-done)
			v, err := tx.Get([]byte("k/a"))
			require.NoError(t, err)
			require.Equal(t, "1", string(v))
			_, err = tx.Get([]byte("k/c"))
			require.ErrorIs(t, err, store.ErrNotFound)
			require.Equal(t, before, collect(t, tx, "", ""))
			return nil
		}))
		require.Equal(t, []string{"k/a=2", "k/c=2"}, view(t, s, ""))
	})

	run("closed", func(t *testing.T, s store.Store) {
		require.NoError(t, s.Close())
		require.ErrorIs(t, s.View(func(store.Txn) error { return nil }), store.ErrClosed)
		require.ErrorIs(t, s.Update(func(store.Txn) error { return nil }), store.ErrClosed)
		require.ErrorIs(t, s.Close(), store.ErrClosed)
	})

	run("close waits for transactions", func(t *testing.T, s store.Store) {
		inView, release := make(chan struct{}), make(chan struct{})
		viewDone := make(chan error)
		var getErr, nestedErr error
		go func() {
			viewDone <- s.View(func(tx store.Txn) error {
				close(inView)
				<-release
				_, getErr = tx.Get([]byte("k"))
				// A transaction started while Close waits is refused, not deadlocked.
				nestedErr = s.View(func(store.Txn) error { return nil })
				return nil
			})
		}()
		<-inView
		closed := make(chan error)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v while a View was running", err)
		case <-time.After(20 * time.Millisecond):
		}
		close(release)
		require.NoError(t, <-viewDone)
		require.NoError(t, <-closed)
		require.ErrorIs(t, getErr, store.ErrNotFound, "the running View still reads")
		if nestedErr != nil { // nil if the nested View ran before Close marked the store closed
			require.ErrorIs(t, nestedErr, store.ErrClosed)
		}
	})
}

// collect returns "key=value" for every key Iterate visits.
func collect(t *testing.T, tx store.Txn, prefix, start string) []string {
	t.Helper()
	var got []string
	var p, s []byte
	if prefix != "" {
		p = []byte(prefix)
	}
	if start != "" {
		s = []byte(start)
	}
	require.NoError(t, tx.Iterate(p, s, func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		return nil
	}))
	return got
}

// view collects every key under prefix in a View.
func view(t *testing.T, s store.Store, prefix string) []string {
	t.Helper()
	var got []string
	require.NoError(t, s.View(func(tx store.Txn) error {
		got = collect(t, tx, prefix, "")
		return nil
	}))
	return got
}

// TestStore_hammer increments shared counters from many goroutines, retrying
// on ErrConflict, and checks that no increment is lost or doubled.
func TestStore_hammer(t *testing.T) {
	const counters = 4
	for _, o := range []opener{
		openers[0],
		openers[1],
		{"badger-disk-nosync", func(t testing.TB) store.Store {
			return openBadger(t, t.TempDir(), store.BadgerOptions{NoSync: true})
		}},
		{"postgres", openPostgres},
	} {
		t.Run(o.name, func(t *testing.T) {
			s := o.open(t)
			defer func() { require.NoError(t, s.Close()) }()
			var done, conflicts atomic.Int64
			hammer.Run(t, 8, 200, func(p, n int) {
				key := fmt.Appendf(nil, "counter/%d", (p+n)%counters)
				for {
					err := s.Update(func(tx store.Txn) error {
						var c int
						v, err := tx.Get(key)
						switch {
						case errors.Is(err, store.ErrNotFound):
						case err != nil:
							return err
						default:
							if c, err = atoi(v); err != nil {
								return err
							}
						}
						return tx.Set(key, fmt.Append(nil, c+1))
					})
					if errors.Is(err, store.ErrConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Errorf("update: %v", err)
						return
					}
					done.Add(1)
					return
				}
			})
			sum := 0
			for _, kv := range view(t, s, "counter/") {
				c, err := atoi([]byte(kv[strings.IndexByte(kv, '=')+1:]))
				require.NoError(t, err)
				sum += c
			}
			require.Positive(t, done.Load())
			require.Equal(t, int(done.Load()), sum)
			t.Logf("%d increments, %d conflicts retried", done.Load(), conflicts.Load())
		})
	}
}

func atoi(b []byte) (int, error) {
	var n int
	_, err := fmt.Sscan(string(b), &n)
	return n, err
}
