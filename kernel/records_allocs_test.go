package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// benchRec is an artifact record like the one every check of
// BenchmarkKernelCheck decodes.
func benchRec() artifactRec {
	return artifactRec{
		Type: "data", CreatedBy: "agent-0007", Contract: "genesis/freeware", Hash: [32]byte{1, 2, 3},
		Size: 1834, Revision: 1, CreatedAt: 5, UpdatedAt: 6,
		Meta:      []abi.KV{{Key: "controller", Value: "agent-0042"}, {Key: "description", Value: "working notes"}, {Key: "topic", Value: "market-making"}},
		DiskPayer: "agent-0007",
	}
}

// TestDecodeArtifact_allocs: an artifact record decodes in two allocations
// (one string all its strings share, and the metadata slice), and its
// strings do not alias the bytes decoded (Iterate's values are reused).
func TestDecodeArtifact_allocs(t *testing.T) {
	want := benchRec()
	b := want.encode()
	got, err := decodeArtifact(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = 0xff
	}
	require.Equal(t, want, got)
	if raceEnabled {
		t.Skip("the race detector allocates on its own: make test-allocs")
	}
	b = want.encode()
	require.Equal(t, 2.0, testing.AllocsPerRun(100, func() {
		if _, err := decodeArtifact(b); err != nil {
			t.Fatal(err)
		}
	}))
	noMeta := want
	noMeta.Meta = nil
	b = noMeta.encode()
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
		if _, err := decodeArtifact(b); err != nil {
			t.Fatal(err)
		}
	}))
}

// TestKeys_allocs: every key, and every prefix a scan starts from, is one
// allocation (eventKey and the NUL-terminated prefixes were two).
func TestKeys_allocs(t *testing.T) {
	require.Equal(t, []byte("r/agent-0042\x00"), rightHolderPrefix("agent-0042"))
	require.Equal(t, []byte("u/c\x00"), governsPrefix("c"))
	require.Equal(t, []byte("s/p\x00"), standingPrefix("p"))
	require.Equal(t, append([]byte("e/"), 0, 0, 0, 0, 0, 0, 1, 2), eventKey(258))
	if raceEnabled {
		t.Skip("the race detector allocates on its own: make test-allocs")
	}
	for name, f := range map[string]func() []byte{
		"eventKey":          func() []byte { return eventKey(1 << 40) },
		"rightHolderPrefix": func() []byte { return rightHolderPrefix("agent-0099") },
		"governsPrefix":     func() []byte { return governsPrefix("genesis/freeware") },
		"standingPrefix":    func() []byte { return standingPrefix("agent-0099") },
		"principalKey":      func() []byte { return principalKey("agent-0099") },
		"artifactKey":       func() []byte { return artifactKey("workspace/agent-0042/notes.md") },
		"grantKey":          func() []byte { return grantKey("agent-0099", "genesis/freeware") },
	} {
		require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = f() }), name)
	}
}

// sliceTxn is a read-only store.Txn over fixed entries, sorted by key, that
// allocates nothing itself: for counting the allocations of a scan.
type sliceTxn struct{ keys, values [][]byte }

func (t *sliceTxn) Get([]byte) ([]byte, error) { return nil, store.ErrNotFound }
func (t *sliceTxn) Set(_, _ []byte) error      { return store.ErrReadOnly }
func (t *sliceTxn) Delete([]byte) error        { return store.ErrReadOnly }
func (t *sliceTxn) Iterate(prefix, start []byte, fn func(key, value []byte) error) error {
	for i, k := range t.keys {
		if !bytes.HasPrefix(k, prefix) || bytes.Compare(k, start) < 0 {
			continue
		}
		if err := fn(k, t.values[i]); err != nil {
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// TestHolderSums_allocs: summing a caller's rights for its request
// allocates the scan's prefix and, when it holds rights, the result; the
// scan itself nothing (its closure and sums used to escape: 2 more, and
// sort.Slice's 2 to 3). The result is sorted by resource name.
func TestHolderSums_allocs(t *testing.T) {
	tx := &sliceTxn{}
	for i, r := range []rightIndexRec{{Disk, 100}, {CPURate, 5}, {Memory, 7}, {CPURate, 6}} {
		tx.keys = append(tx.keys, rightKey("agent-0099", fmt.Sprintf("rights/%d", i))) // in key order
		tx.values = append(tx.values, r.encode())
	}
	got, err := holderSums(tx, "agent-0099")
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.ElementsMatch(t, []abi.RightAmount{{Resource: "cpu_rate", Amount: 11}, {Resource: "disk", Amount: 100}, {Resource: "memory", Amount: 7}}, got)
	require.True(t, sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Resource < got[j].Resource }))
	none, err := holderSums(tx, "agent-0042")
	require.NoError(t, err)
	require.Nil(t, none)

	tx.values[0] = []byte{recordVersion, 3, 0, 0, 0, 'c', 'p', 'u', 1, 0, 0, 0, 0, 0, 0, 0}
	_, err = holderSums(tx, "agent-0099")
	require.ErrorIs(t, err, errCorrupt, "an index entry naming no resource")
	tx.values[0] = (&rightIndexRec{Disk, 100}).encode()

	if raceEnabled {
		t.Skip("the race detector allocates on its own: make test-allocs")
	}
	require.Equal(t, 2.0, testing.AllocsPerRun(100, func() {
		if _, err := holderSums(tx, "agent-0099"); err != nil {
			t.Fatal(err)
		}
	}), "a holder of rights")
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
		if _, err := holderSums(tx, "agent-0042"); err != nil {
			t.Fatal(err)
		}
	}), "a caller without rights")
}
