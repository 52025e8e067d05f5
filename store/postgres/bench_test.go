package postgres

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
	"github.com/kernelhost/kernelhost/store"
)

// BenchmarkUpdateWrites is an Update as the kernel's group committer runs
// one: reads, then the batch's writes (20 keys of 128 bytes). "buffered" is
// the store as it is (the writes go with the COMMIT, in one round trip);
// "per-write" sends each write at once, as a store without the buffer
// would, to show what the buffer saves.
func BenchmarkUpdateWrites(b *testing.B) {
	const writes = 20
	val := make([]byte, 128)
	for _, mode := range []string{"buffered", "per-write"} {
		for _, reads := range []int{0, 5} {
			b.Run(fmt.Sprintf("%s/reads=%d", mode, reads), func(b *testing.B) {
				s, err := Open(pgtest.Start(b), Options{})
				require.NoError(b, err)
				defer s.Close()
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					i++
					err := s.Update(func(tx store.Txn) error {
						for r := range reads {
							if _, err := tx.Get(fmt.Appendf(nil, "k/%d/%d", i-1, r)); err != nil && err != store.ErrNotFound {
								return err
							}
						}
						for w := range writes {
							if err := tx.Set(fmt.Appendf(nil, "k/%d/%d", i, w), val); err != nil {
								return err
							}
							if mode == "per-write" {
								if err := tx.(*txn).flush(); err != nil {
									return err
								}
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkViewWhileWriting reads one key in a View while another node
// commits read-modify-write Updates without pause: the two View modes
// (Options.SerializableViews) compared, the deferrable one waiting for a
// safe snapshot.
func BenchmarkViewWhileWriting(b *testing.B) {
	for _, serializable := range []bool{false, true} {
		name := "repeatable-read"
		if serializable {
			name = "serializable-deferrable"
		}
		b.Run(name, func(b *testing.B) {
			dsn := pgtest.Start(b)
			s, err := Open(dsn, Options{SerializableViews: serializable})
			require.NoError(b, err)
			defer s.Close()
			writer, err := Open(dsn, Options{})
			require.NoError(b, err)
			defer writer.Close()
			require.NoError(b, writer.Update(func(tx store.Txn) error { return tx.Set([]byte("n"), []byte("0")) }))
			var stop atomic.Bool
			var wg sync.WaitGroup
			var commits atomic.Int64
			for w := range 2 {
				wg.Go(func() {
					for !stop.Load() {
						_ = writer.Update(func(tx store.Txn) error {
							if _, err := tx.Get([]byte("n")); err != nil {
								return err
							}
							return tx.Set(fmt.Appendf(nil, "w/%d", w), []byte("x"))
						})
						commits.Add(1)
					}
				})
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.View(func(tx store.Txn) error {
					_, err := tx.Get([]byte("n"))
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(commits.Load())/float64(b.N), "writes/op")
		})
	}
}
