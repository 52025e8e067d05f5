package kernel_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestDiskCountsMetadata: the disk quota counts every stored byte of an
// artifact, its metadata and a fixed per-record overhead as well as its
// content. Reproduced before the fix: with a quota of 0 a principal stored
// 25 MiB in 100 artifacts' metadata.
func TestDiskCountsMetadata(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "mallory", 0)
	w.Principal(t, "alice", 0)
	require.NoError(t, w.K.SetQuota(ctx, "mallory", kernel.Disk, 0))
	big := map[string]string{}
	for i := 0; i < abi.MaxMetaPairs; i++ {
		big[fmt.Sprintf("k%02d", i)] = strings.Repeat("x", abi.MaxMetaValueLen)
	}
	used := func(id string) int64 {
		t.Helper()
		s, err := w.K.QuotaStatus(ctx, id, kernel.Disk)
		require.NoError(t, err)
		return s.Used
	}

	// Quota 0: not even an empty artifact, with or without metadata.
	for i := 0; i < 100; i++ {
		res := w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: fmt.Sprintf("m/%d", i), Type: "data", Metadata: big})
		require.Equal(t, abi.QuotaExceeded, res.Code, res.Message)
	}
	res := w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: "m/empty", Type: "data"})
	require.Equal(t, abi.QuotaExceeded, res.Code, res.Message)
	require.Zero(t, used("mallory"))

	// alice pays for what she stores: content, keys and values, overhead.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "a/1", Type: "data", Content: []byte("12345"), Metadata: map[string]string{"ab": "cde"}}))
	want := int64(5 + 2 + 3 + kernel.ArtifactOverheadBytes)
	require.Equal(t, want, used("alice"))
	// An edit of metadata alone grows and shrinks it.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "a/1", Metadata: map[string]string{"ab": "cdefgh", "z": "1"}}))
	want += 3 + 2
	require.Equal(t, want, used("alice"))
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "a/1", Unset: []string{"ab"}}))
	want -= 2 + 6
	require.Equal(t, want, used("alice"))
	// A write over quota by metadata alone is refused before it lands.
	require.NoError(t, w.K.SetQuota(ctx, "alice", kernel.Disk, want+10))
	res = w.Do(kernel.Action{Kind: kernel.KindEdit, Caller: "alice", Target: "a/1", Metadata: map[string]string{"big": strings.Repeat("y", 11)}})
	require.Equal(t, abi.QuotaExceeded, res.Code, res.Message)
	require.Equal(t, want, used("alice"))
	// Delete gives all of it back.
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindDelete, Caller: "alice", Target: "a/1"}))
	require.Zero(t, used("alice"))
}
