package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/store"
)

// TestOverlayMatchesStore: random sets, deletes, gets and iterations (with
// prefixes, starts and early stops) give the same answers through an
// overlay over a store's transaction as through the transaction itself, and
// flushing the overlay leaves the store exactly as the direct writes did.
func TestOverlayMatchesStore(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			key := func() []byte { return []byte(fmt.Sprintf("%c/%d", "ab"[rng.IntN(2)], rng.IntN(12))) }
			direct, viaOverlay := store.NewMem(), store.NewMem()
			seedBase := func(tx store.Txn) error {
				for i := range 10 {
					if err := tx.Set([]byte(fmt.Sprintf("a/%d", i)), []byte{byte(i)}); err != nil {
						return err
					}
				}
				return nil
			}
			require.NoError(t, direct.Update(seedBase))
			require.NoError(t, viaOverlay.Update(seedBase))
			iter := func(tx store.Txn, prefix, start []byte, stop int) (string, error) {
				var out bytes.Buffer
				n := 0
				err := tx.Iterate(prefix, start, func(k, v []byte) error {
					fmt.Fprintf(&out, "%s=%x;", k, v)
					if n++; n == stop {
						return store.ErrStop
					}
					return nil
				})
				return out.String(), err
			}
			ops := make([]func(tx store.Txn) (string, error), 200)
			for i := range ops {
				k, v := key(), []byte{byte(rng.IntN(256))}
				prefix := [][]byte{nil, []byte("a/"), []byte("b/"), []byte("a/1")}[rng.IntN(4)]
				var start []byte
				if rng.IntN(2) == 0 {
					start = key()
				}
				stop := rng.IntN(6)
				switch rng.IntN(4) {
				case 0:
					ops[i] = func(tx store.Txn) (string, error) { return "", tx.Set(k, v) }
				case 1:
					ops[i] = func(tx store.Txn) (string, error) { return "", tx.Delete(k) }
				case 2:
					ops[i] = func(tx store.Txn) (string, error) {
						got, err := tx.Get(k)
						if errors.Is(err, store.ErrNotFound) {
							return "absent", nil
						}
						return fmt.Sprintf("%x", got), err
					}
				default:
					ops[i] = func(tx store.Txn) (string, error) { return iter(tx, prefix, start, stop) }
				}
			}
			var want, got []string
			require.NoError(t, direct.Update(func(tx store.Txn) error {
				for _, op := range ops {
					s, err := op(tx)
					require.NoError(t, err)
					want = append(want, s)
				}
				return nil
			}))
			require.NoError(t, viaOverlay.Update(func(tx store.Txn) error {
				ov := &overlay{base: tx}
				for _, op := range ops {
					s, err := op(ov)
					require.NoError(t, err)
					got = append(got, s)
				}
				return ov.flush(tx)
			}))
			require.Equal(t, want, got, "every answer is the same")
			var a, b string
			require.NoError(t, direct.View(func(tx store.Txn) (err error) { a, err = iter(tx, nil, nil, -1); return }))
			require.NoError(t, viaOverlay.View(func(tx store.Txn) (err error) { b, err = iter(tx, nil, nil, -1); return }))
			require.Equal(t, a, b, "the flushed store equals the directly written one")
		})
	}
}

// TestOverlayIterateError: an error from the callback stops the merged
// iteration and is returned unchanged, wherever it comes from.
func TestOverlayIterateError(t *testing.T) {
	st := store.NewMem()
	require.NoError(t, st.Update(func(tx store.Txn) error { return tx.Set([]byte("k/2"), []byte("base")) }))
	boom := errors.New("boom")
	require.NoError(t, st.View(func(tx store.Txn) error {
		ov := &overlay{base: tx}
		require.NoError(t, ov.Set([]byte("k/1"), []byte("mine")))
		require.NoError(t, ov.Set([]byte("k/3"), []byte("mine")))
		for at := 1; at <= 3; at++ {
			n := 0
			err := ov.Iterate([]byte("k/"), nil, func(k, v []byte) error {
				if n++; n == at {
					return boom
				}
				return nil
			})
			require.ErrorIs(t, err, boom, "error at key %d", at)
			require.Equal(t, at, n, "nothing after the error")
		}
		return nil
	}))
}
