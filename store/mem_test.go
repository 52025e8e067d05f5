package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/hammer"
	"github.com/kernelhost/kernelhost/store"
)

// memKey is the i-th key of the big stores below; ascending with i, like
// the kernel's event log.
func memKey(i int) []byte { return fmt.Appendf(nil, "k/%07d", i) }

// fillMem returns a mem store holding n keys, written in ascending order
// (the B-tree's worst case: every node is left half full).
func fillMem(t testing.TB, n int) store.Store {
	t.Helper()
	s := store.NewMem()
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Update(func(tx store.Txn) error {
		for i := range n {
			if err := tx.Set(memKey(i), []byte("value")); err != nil {
				return err
			}
		}
		return nil
	}))
	return s
}

// TestMemStore_allocs pins the heap allocations of the in-memory store on
// a 100k-key store. Lower a bound when an allocation goes; never raise one
// without saying why in the commit.
func TestMemStore_allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates: make test-allocs")
	}
	s := fillMem(t, 100_000)
	key, next, missing, prefix := memKey(50_000), memKey(50_001), []byte("k/missing"), []byte("k/")
	value := bytes.Repeat([]byte("v"), 128)

	var err error
	get := func(tx store.Txn) error { _, err := tx.Get(key); return err }
	nothing := func(store.Txn) error { return nil }
	set := func(tx store.Txn) error { return tx.Set(key, value) }
	set2 := func(tx store.Txn) error { // the second write shares the first's path
		if err := tx.Set(key, value); err != nil {
			return err
		}
		return tx.Set(next, value)
	}
	delMissing := func(tx store.Txn) error { return tx.Delete(missing) }
	var visited int
	visit := func(_, _ []byte) error {
		if visited++; visited == 10 {
			return store.ErrStop
		}
		return nil
	}
	iterate := func(tx store.Txn) error { visited = 0; return tx.Iterate(prefix, key, visit) }

	tests := []struct {
		name string
		run  func()
		want float64
	}{
		// The Txn handed to the closure (it outlives it: a kept Txn
		// answers ErrTxnDone).
		{name: "view", run: func() { err = s.View(nothing) }, want: 1},
		// The view's Txn and the copy Get returns.
		{name: "view get", run: func() { err = s.View(get) }, want: 2},
		{name: "view iterate 10", run: func() { err = s.View(iterate) }, want: 1},
		// An Update that writes nothing clones nothing.
		{name: "update without writes", run: func() { err = s.Update(nothing) }, want: 1},
		{name: "update delete absent", run: func() { err = s.Update(delMissing) }, want: 1},
		// The Txn, Clone's three (the new tree, a copy-on-write context
		// for it and one for the old tree), the key and value's buffer,
		// and the path copied: four levels, a node and its items each, and
		// the children of the three above the leaf.
		{name: "update set", run: func() { err = s.Update(set) }, want: 1 + 3 + 1 + 4*2 + 3},
		// A second write on the same leaf adds only its buffer.
		{name: "update set twice", run: func() { err = s.Update(set2) }, want: 1 + 3 + 2 + 4*2 + 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := testing.AllocsPerRun(100, tc.run)
			require.NoError(t, err)
			t.Logf("%s: %.1f allocations", tc.name, got)
			require.LessOrEqual(t, got, tc.want)
		})
	}

	t.Run("get", func(t *testing.T) {
		require.NoError(t, s.View(func(tx store.Txn) error {
			var v []byte
			got := testing.AllocsPerRun(100, func() { v, err = tx.Get(key) })
			require.NoError(t, err)
			require.Equal(t, value, v)
			require.Equal(t, 1.0, got, "Get allocates its copy and nothing else")
			return nil
		}))
	})
}

// TestMemStore_viewsDuringUpdates runs Views while Updates commit (run it
// with -race: a published tree is never written, even by the Clone that
// starts the next Update). Every Update moves one unit between two of a
// few accounts and appends a log key; every View must see the accounts
// summing to their start and exactly one log key per unit moved.
func TestMemStore_viewsDuringUpdates(t *testing.T) {
	const accounts, start = 8, 1000
	s := store.NewMem()
	defer func() { require.NoError(t, s.Close()) }()
	account := func(i int) []byte { return fmt.Appendf(nil, "acct/%d", i) }
	require.NoError(t, s.Update(func(tx store.Txn) error {
		for i := range accounts {
			if err := tx.Set(account(i), fmt.Append(nil, start)); err != nil {
				return err
			}
		}
		return nil
	}))
	// check returns why tx breaks the invariant, or nil.
	check := func(tx store.Txn) error {
		sum, moved := 0, 0
		err := tx.Iterate([]byte("acct/"), nil, func(_, v []byte) error {
			n, err := atoi(v)
			sum += n
			return err
		})
		if err != nil {
			return err
		}
		if err := tx.Iterate([]byte("log/"), nil, func(_, _ []byte) error { moved++; return nil }); err != nil {
			return err
		}
		v, err := tx.Get([]byte("moved"))
		switch {
		case errors.Is(err, store.ErrNotFound) && moved == 0:
		case err != nil:
			return err
		default:
			if n, err := atoi(v); err != nil || n != moved {
				return fmt.Errorf("moved %q, %d log keys (%v)", v, moved, err)
			}
		}
		if sum != accounts*start {
			return fmt.Errorf("sum %d, want %d", sum, accounts*start)
		}
		return nil
	}
	var moves atomic.Int64
	hammer.Run(t, 8, 300, func(p, n int) {
		if p%2 == 0 { // readers
			if err := s.View(check); err != nil {
				t.Errorf("view: %v", err)
			}
			return
		}
		from, to := account((p+n)%accounts), account((p+2*n+1)%accounts)
		err := s.Update(func(tx store.Txn) error {
			if err := check(tx); err != nil {
				return err
			}
			if bytes.Equal(from, to) {
				return errors.New("discarded") // an Update that fails leaves nothing
			}
			for _, d := range []struct {
				key   []byte
				delta int
			}{{from, -1}, {to, 1}} {
				v, err := tx.Get(d.key)
				if err != nil {
					return err
				}
				c, err := atoi(v)
				if err != nil {
					return err
				}
				if err := tx.Set(d.key, fmt.Append(nil, c+d.delta)); err != nil {
					return err
				}
			}
			m := moves.Add(1)
			if err := tx.Set(fmt.Appendf(nil, "log/%d/%d", p, n), nil); err != nil {
				return err
			}
			return tx.Set([]byte("moved"), fmt.Append(nil, m))
		})
		if err != nil && err.Error() != "discarded" {
			t.Errorf("update: %v", err)
		}
	})
	require.NoError(t, s.View(check))
	require.Positive(t, moves.Load())
}

// TestMemStore_model checks the mem store against a map on random
// transactions big enough to split and merge B-tree nodes: sets, deletes,
// gets and iterations (with prefixes, starts and early stops, some writing
// while they iterate, some nested), Updates that commit or fail, and Views
// opened before later commits, which must still see their snapshot.
func TestMemStore_model(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			s := store.NewMem()
			defer func() { require.NoError(t, s.Close()) }()
			committed := map[string]string{}
			key := func() []byte { return fmt.Appendf(nil, "%c/%04d", 'a'+rng.IntN(3), rng.IntN(400)) }
			for range 30 {
				// A View opened now, checked after this round's Update.
				snapshot := maps.Clone(committed)
				inView, release, viewDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
				go func() {
					viewDone <- s.View(func(tx store.Txn) error {
						close(inView)
						<-release
						got, err := dump(tx, nil, nil)
						if err == nil && !maps.Equal(got, snapshot) {
							err = fmt.Errorf("the view saw %d keys, its snapshot has %d", len(got), len(snapshot))
						}
						return err
					})
				}()
				<-inView

				model := maps.Clone(committed)
				fail := rng.IntN(4) == 0
				errFail := errors.New("fail")
				var err error
				func() {
					// Also when a failed check inside ends the test:
					// Close, deferred above, waits for the View.
					defer close(release)
					err = s.Update(func(tx store.Txn) error {
						for range 1 + rng.IntN(200) {
							op(t, rng, tx, model, key, 0)
						}
						if fail {
							return errFail
						}
						return nil
					})
				}()
				if fail {
					require.Same(t, errFail, err)
				} else {
					require.NoError(t, err)
					committed = model
				}
				require.NoError(t, <-viewDone)
				require.NoError(t, s.View(func(tx store.Txn) error {
					got, err := dump(tx, nil, nil)
					require.NoError(t, err)
					require.Equal(t, committed, got)
					return nil
				}))
			}
		})
	}
}

// op applies one random operation to tx and model and checks that they
// answer alike. depth counts the iterations op is running inside.
func op(t *testing.T, rng *rand.Rand, tx store.Txn, model map[string]string, key func() []byte, depth int) {
	switch k := key(); rng.IntN(10) {
	case 0, 1, 2, 3:
		v := fmt.Appendf(nil, "%d", rng.Uint32())
		require.NoError(t, tx.Set(k, v))
		model[string(k)] = string(v)
	case 4, 5:
		require.NoError(t, tx.Delete(k))
		delete(model, string(k))
	case 6, 7:
		v, err := tx.Get(k)
		if want, ok := model[string(k)]; ok {
			require.NoError(t, err)
			require.Equal(t, want, string(v))
		} else {
			require.ErrorIs(t, err, store.ErrNotFound)
		}
	default:
		prefixes := [][]byte{nil, []byte("a/"), []byte("b/0"), []byte("c/01")}
		prefix := prefixes[rng.IntN(len(prefixes))]
		var start []byte
		if rng.IntN(2) == 0 {
			start = key()
		}
		// What the iteration must visit: the model as it starts.
		var want []string
		for mk, mv := range model {
			if strings.HasPrefix(mk, string(prefix)) && mk >= string(start) {
				want = append(want, mk+"="+mv)
			}
		}
		slices.Sort(want) // "=" sorts below the digits that end a key: by key
		stop, burst := len(want)+1, -1
		if rng.IntN(3) == 0 {
			stop = rng.IntN(len(want) + 1)
		}
		if depth < 2 && rng.IntN(2) == 0 {
			burst = rng.IntN(len(want) + 1)
		}
		var got []string
		err := tx.Iterate(prefix, start, func(k, v []byte) error {
			if len(got) == stop {
				return store.ErrStop
			}
			got = append(got, string(k)+"="+string(v))
			if len(got) == burst { // write, or iterate again, meanwhile
				for range 1 + rng.IntN(10) {
					op(t, rng, tx, model, key, depth+1)
				}
			}
			return nil
		})
		require.NoError(t, err)
		if want = want[:min(stop, len(want))]; len(want) == 0 {
			want = nil // as got is when nothing was visited
		}
		require.Equal(t, want, got)
	}
}

// dump returns every key and value under prefix from start.
func dump(tx store.Txn, prefix, start []byte) (map[string]string, error) {
	got := map[string]string{}
	err := tx.Iterate(prefix, start, func(k, v []byte) error {
		got[string(k)] = string(v)
		return nil
	})
	return got, err
}

// BenchmarkMem_100k measures the in-memory store on 100k keys, the size
// of a kernel's event log after a long benchmark: an Update appending a
// new last key (as the log does), one overwriting a pseudo-random key, a
// View of one Get, and one visiting ten keys. Besides ns/op it reports
// cpu-ns/op, the process's CPU time per op (garbage collection included).
func BenchmarkMem_100k(b *testing.B) {
	const n = 100_000
	value := bytes.Repeat([]byte("v"), 128)
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = memKey(i)
	}
	// random returns a pseudo-random index below n (xorshift: no
	// allocation, the same sequence every run).
	x := uint64(1)
	random := func(n int) int {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(n))
	}
	prefix := []byte("k/")
	tests := []struct {
		name string
		op   func(s store.Store, i int) error
	}{
		{name: "append", op: func(s store.Store, i int) error {
			key := memKey(n + i)
			return s.Update(func(tx store.Txn) error { return tx.Set(key, value) })
		}},
		{name: "overwrite", op: func(s store.Store, _ int) error {
			key := keys[random(n)]
			return s.Update(func(tx store.Txn) error { return tx.Set(key, value) })
		}},
		{name: "get", op: func(s store.Store, _ int) error {
			key := keys[random(n)]
			return s.View(func(tx store.Txn) error { _, err := tx.Get(key); return err })
		}},
		{name: "iterate", op: func(s store.Store, _ int) error {
			start, visited := keys[random(n-10)], 0
			return s.View(func(tx store.Txn) error {
				return tx.Iterate(prefix, start, func(_, _ []byte) error {
					if visited++; visited == 10 {
						return store.ErrStop
					}
					return nil
				})
			})
		}},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			s := fillMem(b, n)
			runtime.GC() // the fill's garbage is not the loop's
			cpu0, cpuOK := processCPU()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := tc.op(s, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if cpu1, _ := processCPU(); cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
