package kernel

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
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
