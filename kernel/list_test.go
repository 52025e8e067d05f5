package kernel_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestArtifactIDs lists every artifact in byte order, private ones included
// (ids are not secret), and forgets deleted ones.
func TestArtifactIDs(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 0)
	requireCode(t, abi.OK, w.Do(write("alice", "notes/b", "x", nil)))
	requireCode(t, abi.OK, w.Do(write("alice", "notes/a", "y", nil)))
	secret := write("alice", "secret", "z", map[string]string{"k": "v"})
	secret.Contract = "private"
	requireCode(t, abi.OK, w.Do(secret))

	ids, err := w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"allow-all", "freeware", "notes/a", "notes/b", "private", "secret"}, ids)

	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "notes/a"}))
	ids, err = w.K.ArtifactIDs(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"allow-all", "freeware", "notes/b", "private", "secret"}, ids)
}

// TestArtifactIDs_closed fails with UNAVAILABLE once the kernel is closed.
func TestArtifactIDs_closed(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	require.NoError(t, w.K.Close(ctx))
	_, err := w.K.ArtifactIDs(ctx)
	require.ErrorIs(t, err, kernel.ErrClosed)
}
