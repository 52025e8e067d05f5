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
