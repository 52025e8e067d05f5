package store_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/store"
)

func entries(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, st.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error { out[string(k)] = string(v); return nil })
	}))
	return out
}

// TestDumpLoad: a dump loaded into an empty store gives the same entries;
// a truncated, altered or extended file is refused and leaves the store
// empty; a store that holds anything is refused.
func TestDumpLoad(t *testing.T) {
	src := store.NewMem()
	require.NoError(t, src.Update(func(tx store.Txn) error {
		for i := 0; i < 1500; i++ { // more than one load batch
			if err := tx.Set([]byte(fmt.Sprintf("k/%05d", i)), bytes.Repeat([]byte{byte(i)}, i%64)); err != nil {
				return err
			}
		}
		return tx.Set([]byte("empty"), []byte{})
	}))
	var buf bytes.Buffer
	n, err := store.Dump(src, &buf)
	require.NoError(t, err)
	require.Equal(t, 1501, n)

	dst := store.NewMem()
	m, err := store.Load(dst, bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, n, m)
	require.Equal(t, entries(t, src), entries(t, dst))

	_, err = store.Load(dst, bytes.NewReader(buf.Bytes()))
	require.ErrorIs(t, err, store.ErrNotEmpty)

	file := buf.Bytes()
	flipped := bytes.Clone(file)
	flipped[len(flipped)/2] ^= 1
	for name, bad := range map[string][]byte{
		"truncated": file[:len(file)-40],
		"altered":   flipped,
		"extended":  append(bytes.Clone(file), 0),
		"not one":   []byte("hello"),
	} {
		t.Run(name, func(t *testing.T) {
			st := store.NewMem()
			_, err := store.Load(st, bytes.NewReader(bad))
			require.ErrorIs(t, err, store.ErrBadSnapshot)
			require.Empty(t, entries(t, st), "nothing stays of a refused file")
		})
	}
}

// FuzzLoad: no input makes Load panic, and whatever it accepts is a store
// that dumps back to the same bytes.
func FuzzLoad(f *testing.F) {
	src := store.NewMem()
	_ = src.Update(func(tx store.Txn) error { return tx.Set([]byte("a"), []byte("b")) })
	var buf bytes.Buffer
	_, _ = store.Dump(src, &buf)
	f.Add(buf.Bytes())
	f.Add([]byte("KHSNAP1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st := store.NewMem()
		if _, err := store.Load(st, bytes.NewReader(b)); err != nil {
			return
		}
		var again bytes.Buffer
		_, err := store.Dump(st, &again)
		require.NoError(t, err)
		require.Equal(t, b, again.Bytes())
	})
}
