package kernel_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// TestPrincipalsPage: pages of every size, followed by the last id, give
// exactly Principals, in order, without a gap or a repeat; more is false
// only on the last page; a principal created behind the cursor is not
// seen, one ahead of it is.
func TestPrincipalsPage(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	for i := range 7 {
		w.Principal(t, fmt.Sprintf("p%d", i), uint64(i))
	}
	all, err := w.K.Principals(ctx)
	require.NoError(t, err)
	for _, limit := range []int{1, 2, 3, 7, 100, 0} {
		var got []kernel.Principal
		after := ""
		for calls := 0; ; calls++ {
			require.Less(t, calls, 100)
			page, more, err := w.K.PrincipalsPage(ctx, after, limit)
			require.NoError(t, err)
			if limit > 0 {
				require.LessOrEqual(t, len(page), limit)
			}
			got = append(got, page...)
			if !more {
				break
			}
			require.NotEmpty(t, page)
			after = page[len(page)-1].ID
		}
		require.Equal(t, all, got, "limit %d", limit)
	}

	page, more, err := w.K.PrincipalsPage(ctx, "p3", 2)
	require.NoError(t, err)
	require.True(t, more)
	require.Equal(t, []string{"p4", "p5"}, ids(page))
	w.Principal(t, "p0a", 0) // behind the cursor
	w.Principal(t, "p5a", 0) // ahead of it
	page, more, err = w.K.PrincipalsPage(ctx, "p5", 10)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, []string{"p5a", "p6"}, ids(page))

	// A cursor that names no principal continues after where it would be.
	page, _, err = w.K.PrincipalsPage(ctx, "p45", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"p5"}, ids(page))

	require.NoError(t, w.K.Close(ctx))
	_, _, err = w.K.PrincipalsPage(ctx, "", 1)
	require.ErrorIs(t, err, kernel.ErrClosed)
}

func ids(ps []kernel.Principal) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func rightIDs(rs []kernel.Right) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Holder+":"+r.ID)
	}
	return out
}

// TestRightsPage: every principal's rights in (holder, id) order, or one
// holder's, page by page, equal Rights for every holder; an unknown holder
// has none.
func TestRightsPage(t *testing.T) {
	w := kerneltest.NewWorld(t, nil)
	for _, p := range []string{"alice", "bob", "carol"} {
		w.Principal(t, p, 100)
	}
	mint := func(caller, id string, amount int64) {
		requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindMintRight, Caller: caller, Target: id, Resource: string(kernel.LLMRate), Amount: amount}))
	}
	mint("alice", "r/a1", 1)
	mint("alice", "r/a2", 2)
	mint("carol", "r/c1", 3)
	mint("bob", "r/b1", 4)
	mint("alice", "r/a3", 5)
	requireCode(t, abi.OK, w.Do(kernel.Action{Kind: kernel.KindTransferRight, Caller: "alice", Target: "r/a2", To: "carol"}))

	var want []kernel.Right
	for _, p := range []string{"alice", "bob", "carol"} {
		rs, err := w.K.Rights(ctx, p)
		require.NoError(t, err)
		want = append(want, rs...)
	}
	require.Equal(t, []string{"alice:r/a1", "alice:r/a3", "bob:r/b1", "carol:r/a2", "carol:r/c1"}, rightIDs(want))

	for _, limit := range []int{1, 2, 4, 5, 0} {
		var got []kernel.Right
		h, id := "", ""
		for calls := 0; ; calls++ {
			require.Less(t, calls, 100)
			page, more, err := w.K.RightsPage(ctx, "", h, id, limit)
			require.NoError(t, err)
			got = append(got, page...)
			if !more {
				break
			}
			h, id = page[len(page)-1].Holder, page[len(page)-1].ID
		}
		require.Equal(t, want, got, "limit %d", limit)
	}

	carol, err := w.K.Rights(ctx, "carol")
	require.NoError(t, err)
	page, more, err := w.K.RightsPage(ctx, "carol", "", "", 1)
	require.NoError(t, err)
	require.True(t, more)
	require.Equal(t, carol[:1], page)
	page, more, err = w.K.RightsPage(ctx, "carol", "ignored", page[0].ID, 1)
	require.NoError(t, err)
	require.False(t, more)
	require.Equal(t, carol[1:], page)

	page, more, err = w.K.RightsPage(ctx, "nobody", "", "", 10)
	require.NoError(t, err)
	require.False(t, more)
	require.Empty(t, page)
}
