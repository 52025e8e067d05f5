package store_test

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/store"
)

// benchStores are the stores the benchmarks compare.
var benchStores = []opener{
	{"badger-sync", func(t testing.TB) store.Store { return openBadger(t, t.TempDir(), store.BadgerOptions{}) }},
	{"badger-nosync", func(t testing.TB) store.Store {
		return openBadger(t, t.TempDir(), store.BadgerOptions{NoSync: true})
	}},
	{"badger-inmemory", func(t testing.TB) store.Store { return openBadger(t, "", store.BadgerOptions{InMemory: true}) }},
	{"mem", func(testing.TB) store.Store { return store.NewMem() }},
	{"postgres", openPostgres},
}

const benchKeys = 1024

var benchValue = bytes.Repeat([]byte("v"), 128)

func benchKey(i int) []byte { return fmt.Appendf(nil, "bench/%06d", i%benchKeys) }

// BenchmarkUpdate commits one 128-byte write per transaction from one
// goroutine: with sync on, each op waits for its own fsync.
func BenchmarkUpdate(b *testing.B) {
	for _, o := range benchStores {
		b.Run(o.name, func(b *testing.B) {
			s := o.open(b)
			defer s.Close()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := benchKey(i)
				i++
				if err := s.Update(func(tx store.Txn) error { return tx.Set(key, benchValue) }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpdate_parallel is BenchmarkUpdate from 8×GOMAXPROCS goroutines
// writing distinct keys: Badger groups concurrent commits into one fsync, so
// synced throughput grows with writers.
func BenchmarkUpdate_parallel(b *testing.B) {
	for _, o := range benchStores {
		b.Run(o.name, func(b *testing.B) {
			s := o.open(b)
			defer s.Close()
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := benchKey(int(next.Add(1)))
					if err := s.Update(func(tx store.Txn) error { return tx.Set(key, benchValue) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// fill writes benchKeys keys of benchValue.
func fill(b *testing.B, s store.Store) {
	b.Helper()
	require.NoError(b, s.Update(func(tx store.Txn) error {
		for i := range benchKeys {
			if err := tx.Set(benchKey(i), benchValue); err != nil {
				return err
			}
		}
		return nil
	}))
}

// BenchmarkView reads one key of 1024 in a View.
func BenchmarkView(b *testing.B) {
	for _, o := range benchStores {
		b.Run(o.name, func(b *testing.B) {
			s := o.open(b)
			defer s.Close()
			fill(b, s)
			keys := make([][]byte, benchKeys)
			for i := range keys {
				keys[i] = benchKey(i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				key := keys[i%benchKeys]
				i++
				if err := s.View(func(tx store.Txn) error {
					_, err := tx.Get(key)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkView_iterate visits 100 consecutive keys of 1024 in a View.
func BenchmarkView_iterate(b *testing.B) {
	for _, o := range benchStores {
		b.Run(o.name, func(b *testing.B) {
			s := o.open(b)
			defer s.Close()
			fill(b, s)
			prefix := []byte("bench/")
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				start := benchKey(i % (benchKeys - 100))
				i++
				n := 0
				if err := s.View(func(tx store.Txn) error {
					return tx.Iterate(prefix, start, func(_, _ []byte) error {
						if n++; n == 100 {
							return store.ErrStop
						}
						return nil
					})
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
