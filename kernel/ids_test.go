package kernel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// ambiguousIDs are ids a path-cleaning layer (an HTTP router, a file
// system, a client library) would read as another id: "a/../b" is "b",
// "a//b" is "a/b", "a/" is "a". Each must be refused, or one id names two
// artifacts depending on who reads it.
var ambiguousIDs = []string{
	".", "..", "../x", "./x", "x/..", "x/.", "a/../b", "a/./b", "a/b/..",
	"a//b", "a///b", "a/", "a/b/", "/a", "//a",
}

// TestIDsHaveOneMeaning: principal and artifact ids with "." or ".."
// segments, empty segments or a trailing "/" are INVALID_ARGUMENT wherever
// an id is given (CreatePrincipal, every id field of an action, JSON
// actions), and nothing changes. Dots inside a segment stay valid.
// Reference: issue 14, item 5.
func TestIDsHaveOneMeaning(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	w.Principal(t, "alice", 100)
	w.Principal(t, "bob", 100)
	requireCode(t, abi.OK, w.Do(write("alice", "b", "bee", nil)))
	requireCode(t, abi.OK, w.Do(mintRight("alice", "r", kernel.LLMRate, 10)))

	for _, id := range ambiguousIDs {
		t.Run(id, func(t *testing.T) {
			before := snapshot(t, w.Store)
			evs, err := w.K.Events(ctx, 0, 1000)
			require.NoError(t, err)

			require.ErrorIs(t, w.K.CreatePrincipal(ctx, id, 0), kernel.ErrInvalidArgument, "principal %q", id)
			for _, a := range []kernel.Action{
				write("alice", id, "x", nil),
				{Kind: kernel.KindRead, Caller: "alice", Target: id},
				{Kind: kernel.KindEdit, Caller: "alice", Target: id, Content: []byte("x")},
				{Kind: kernel.KindDelete, Caller: "alice", Target: id},
				{Kind: kernel.KindSetContract, Caller: "alice", Target: "b", Contract: id},
				{Kind: kernel.KindInvoke, Caller: "alice", Target: id},
				{Kind: kernel.KindTransfer, Caller: "alice", To: id, Amount: 1},
				{Kind: kernel.KindTransferQuota, Caller: "alice", To: id, Resource: string(kernel.LLMRate), Amount: 1},
				{Kind: kernel.KindGrantConsent, Caller: "alice", Contract: id, PerCallCap: 1, TotalCap: 1},
				{Kind: kernel.KindRevokeConsent, Caller: "alice", Contract: id},
				mintRight("alice", id, kernel.LLMRate, 1),
				{Kind: kernel.KindTransferRight, Caller: "alice", Target: "r", To: id},
				{Kind: kernel.KindSplitRight, Caller: "alice", Target: "r", Amounts: []int64{5, 5}, IDs: []string{"r1", id}},
				{Kind: kernel.KindMergeRights, Caller: "alice", Target: id, IDs: []string{"r"}},
				{Kind: kernel.KindRedeemRight, Caller: "alice", Target: id},
				{Kind: kernel.KindTransfer, Caller: id, To: "bob", Amount: 1},
			} {
				res := w.Do(a)
				requireCode(t, abi.InvalidArgument, res)
				require.Contains(t, res.Message, "valid", "%s with id %q", a.Kind, id)
			}
			// The JSON form, as clients and executables send it.
			for _, body := range []string{
				`{"kind":"write","target":` + quote(id) + `,"type":"data","text":"x"}`,
				`{"kind":"read","target":` + quote(id) + `}`,
				`{"kind":"transfer","to":` + quote(id) + `,"amount":1}`,
			} {
				a, err := kernel.DecodeAction([]byte(body))
				require.NoError(t, err, body) // the shape is fine; the id is not
				a.Caller = "alice"
				requireCode(t, abi.InvalidArgument, w.Do(a))
			}

			require.Equal(t, before, snapshot(t, w.Store), "a refused id changes nothing")
			after, err := w.K.Events(ctx, 0, 1000)
			require.NoError(t, err)
			require.Len(t, after, len(evs), "and appends no event")
		})
	}

	// "../b" must not reach "b" by any route: b is unchanged and alice
	// still holds her 100 scrip.
	res := w.Do(kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "b"})
	requireCode(t, abi.OK, res)
	require.Equal(t, "bee", string(res.Content))
	require.Equal(t, uint64(1), res.Revision)
	require.Equal(t, uint64(100), w.Balance(t, "alice"))

	// Dots and slashes that do not form a "." or ".." segment mean one
	// thing and stay valid.
	for _, id := range []string{"a.b", "a..b", "...", "..a", "a..", ".a", "a/.b", "a/b..", "x/y/z", "a.b/c.d", "@x:y"} {
		requireCode(t, abi.OK, w.Do(write("alice", id, "ok", nil)))
		require.NoError(t, w.K.CreatePrincipal(ctx, id, 0), id)
	}

	// The longest id is still MaxIDLen bytes.
	long := strings.Repeat("a", abi.MaxIDLen)
	requireCode(t, abi.OK, w.Do(write("alice", long, "", nil)))
	requireCode(t, abi.InvalidArgument, w.Do(write("alice", long+"a", "", nil)))
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
