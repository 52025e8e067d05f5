package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// pages follows path's next_cursor from the first page to the last and
// returns every page's body, decoded by decode, which returns the page's
// size and its next_cursor.
func (e *env) pages(t *testing.T, token, path string, limit int, decode func([]byte) (int, string)) {
	t.Helper()
	cursor := ""
	for calls := 0; ; calls++ {
		require.Less(t, calls, 1000, "paging must end")
		q := url.Values{}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		status, b := e.raw(t, http.MethodGet, path+"?"+q.Encode(), token, "")
		require.Equal(t, http.StatusOK, status, "%s", b)
		n, next := decode(b)
		want := limit
		if limit == 0 {
			want = server.DefaultPage
		}
		require.LessOrEqual(t, n, want)
		if next == "" {
			return
		}
		require.Equal(t, want, n, "a page with a next_cursor is full")
		cursor = next
	}
}

// TestListsPaginate: GET /v1/principals, /v1/rights and
// /v1/principals/{id}/rights answer pages of at most limit (default
// DefaultPage, at most MaxPage) with next_cursor on every page but the
// last; following it lists everything once, in order; a bad limit or a
// cursor the endpoint did not give is 400 INVALID_ARGUMENT.
func TestListsPaginate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for i := range 150 {
		e.w.Principal(t, fmt.Sprintf("p%03d", i), uint64(i))
	}
	for i := range 7 {
		e.act(t, e.alice, fmt.Sprintf(`{"kind":"mint_right","target":"a/r%d","resource":"llm_rate","amount":%d}`, i, i+1), http.StatusOK)
	}
	for i := range 3 {
		e.act(t, e.bob, fmt.Sprintf(`{"kind":"mint_right","target":"b/r%d","resource":"llm_rate","amount":%d}`, i, i+1), http.StatusOK)
	}
	allPrincipals, err := e.w.K.Principals(ctx)
	require.NoError(t, err)
	require.Greater(t, len(allPrincipals), server.DefaultPage)
	aliceRights, err := e.w.K.Rights(ctx, "alice")
	require.NoError(t, err)
	bobRights, err := e.w.K.Rights(ctx, "bob")
	require.NoError(t, err)
	allRights := append(append([]kernel.Right{}, aliceRights...), bobRights...)

	for _, limit := range []int{0, 1, 3, 7, 1000} {
		var ps []kernel.Principal
		e.pages(t, e.bob, "/v1/principals", limit, func(b []byte) (int, string) {
			var page server.PrincipalsResponse
			require.NoError(t, json.Unmarshal(b, &page))
			ps = append(ps, page.Principals...)
			return len(page.Principals), page.NextCursor
		})
		require.Equal(t, allPrincipals, ps, "limit %d", limit)

		for _, tc := range []struct {
			token, path string
			want        []kernel.Right
		}{
			{e.admin, "/v1/rights", allRights},
			{e.alice, "/v1/rights", aliceRights},
			{e.admin, "/v1/principals/alice/rights", aliceRights},
			{e.bob, "/v1/principals/bob/rights", bobRights},
			{e.admin, "/v1/principals/p001/rights", []kernel.Right{}},
		} {
			got := []kernel.Right{}
			e.pages(t, tc.token, tc.path, limit, func(b []byte) (int, string) {
				var page server.RightsResponse
				require.NoError(t, json.Unmarshal(b, &page))
				got = append(got, page.Rights...)
				return len(page.Rights), page.NextCursor
			})
			require.Equal(t, tc.want, got, "%s limit %d", tc.path, limit)
		}
	}

	// The default page is DefaultPage: the route never answers everything.
	var page server.PrincipalsResponse
	e.call(t, http.MethodGet, "/v1/principals", e.bob, "", &page)
	require.Len(t, page.Principals, server.DefaultPage)
	require.NotEmpty(t, page.NextCursor)

	// A cursor of alice's rights does not continue bob's.
	var rp server.RightsResponse
	e.call(t, http.MethodGet, "/v1/principals/alice/rights?limit=1", e.admin, "", &rp)
	require.NotEmpty(t, rp.NextCursor)
	for _, tc := range []struct{ token, path string }{
		{e.bob, "/v1/principals?limit=0"},
		{e.bob, "/v1/principals?limit=1001"},
		{e.bob, "/v1/principals?limit=x"},
		{e.bob, "/v1/principals?cursor=%21%21"},
		{e.bob, "/v1/principals?cursor=" + url.QueryEscape(rp.NextCursor)}, // two parts, not one
		{e.admin, "/v1/rights?limit=0"},
		{e.admin, "/v1/rights?cursor=YQ"}, // "a": one part, not two
		{e.admin, "/v1/principals/bob/rights?cursor=" + url.QueryEscape(rp.NextCursor)},
	} {
		var ae api.Error
		resp := e.call(t, http.MethodGet, tc.path, tc.token, "", &ae)
		requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)
	}
}
