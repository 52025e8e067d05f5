package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// TestSnapshotRoute: GET /v1/snapshot streams the world's store to the
// admin token as a snapshot file that loads into an empty store and holds
// the same state; a principal's token, no token, and a server without
// its store are refused with their stable codes, and nothing is streamed.
func TestSnapshotRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil) // started without its store
	withStore := *e
	s, err := server.New(server.Config{Kernel: e.w.K, Auth: e.auth, Store: e.w.Store})
	require.NoError(t, err)
	withStore.s, withStore.srv = s, httptest.NewServer(s)
	t.Cleanup(withStore.srv.Close)

	status, body := withStore.raw(t, http.MethodGet, "/v1/snapshot", e.admin, "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	st := store.NewMem()
	n, err := store.Load(st, bytes.NewReader(body))
	require.NoError(t, err)
	require.Positive(t, n)
	want, err := kernel.StateHash(e.w.Store)
	require.NoError(t, err)
	got, err := kernel.StateHash(st)
	require.NoError(t, err)
	require.Equal(t, want, got, "the snapshot holds the world's state")

	for _, tc := range []struct {
		name   string
		env    *env
		token  string
		status int
		code   abi.Code
	}{
		{"principal token", &withStore, e.alice, http.StatusForbidden, abi.PermissionDenied},
		{"no token", &withStore, "", http.StatusUnauthorized, abi.Unauthenticated},
		{"server without its store", e, e.admin, http.StatusServiceUnavailable, abi.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tc.env.raw(t, http.MethodGet, "/v1/snapshot", tc.token, "")
			require.Equal(t, tc.status, status, "%s", body)
			var ae api.Error
			require.NoError(t, json.Unmarshal(body, &ae), "a JSON error, not a snapshot: %q", body)
			require.Equal(t, tc.code.String(), ae.ErrorCode)
		})
	}
}
