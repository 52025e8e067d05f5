package auth_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/store"
)

// failingStore fails its Update number failAt (1-based) and counts them.
type failingStore struct {
	store.Store
	updates, failAt int
}

var errDiskFull = errors.New("disk full")

func (f *failingStore) Update(fn func(store.Txn) error) error {
	f.updates++
	if f.updates == f.failAt {
		return errDiskFull
	}
	return f.Store.Update(fn)
}

// TestInitBatched: Init of more principals than one Badger transaction
// holds (the old single transaction failed with ErrTxnTooBig) writes them
// in several, every token works, and an Init interrupted before its last
// transaction leaves a store without tokens (Open: ErrNotFound) even though
// principals' hashes were committed.
func TestInitBatched(t *testing.T) {
	const n = 5*auth.TokensPerTxn + 7 // 40,974 keys: past what one transaction of Badger takes
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("agent-%06d", i)
	}

	st, err := store.OpenBadger(t.TempDir(), store.BadgerOptions{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	fs := &failingStore{Store: st}
	a, admin, toks, err := auth.Init(fs, ids)
	require.NoError(t, err)
	require.Equal(t, 7, fs.updates, "six batches of tokens, then the admin")
	id, ok := a.Authenticate(admin)
	require.True(t, ok)
	require.True(t, id.Admin)
	for _, i := range []int{0, auth.TokensPerTxn, n - 1} {
		id, ok := a.Authenticate(toks[i])
		require.True(t, ok, ids[i])
		require.Equal(t, ids[i], id.Principal)
	}
	ps, err := a.Principals()
	require.NoError(t, err)
	require.Len(t, ps, n)
	_, _, _, err = auth.Init(st, []string{"late"})
	require.ErrorIs(t, err, auth.ErrExists)

	for _, failAt := range []int{3, 7} { // a batch of tokens; the admin's
		t.Run(fmt.Sprintf("fail at transaction %d", failAt), func(t *testing.T) {
			mem := store.NewMem()
			t.Cleanup(func() { _ = mem.Close() })
			_, _, _, err := auth.Init(&failingStore{Store: mem, failAt: failAt}, ids)
			require.ErrorIs(t, err, errDiskFull)
			_, err = auth.Open(mem)
			require.ErrorIs(t, err, auth.ErrNotFound, "an interrupted init has no tokens")
		})
	}
}
