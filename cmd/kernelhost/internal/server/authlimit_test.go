package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
)

// serveFrom sends a request from remote (host:port) straight to s.
func serveFrom(s *server.Server, remote, method, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(""))
	req.RemoteAddr = remote
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// TestFailedAuthRateLimited: an address that keeps presenting bad tokens
// is answered 429 QUOTA_EXCEEDED with Retry-After once its failures are
// spent, before any lookup; its budget refills with time (a fake clock);
// successful requests spend nothing (four budgets' worth of tokens new to
// the address at once, a thousand requests, then the full budget of
// failures) and a token proven from the address keeps working
// while the address is refused; other addresses are not affected (an IPv6
// host counts by its /64); the table of addresses stays within its bound.
func TestFailedAuthRateLimited(t *testing.T) {
	clock := kerneltest.NewClock(kerneltest.Start)
	const burst = 5
	e := newEnv(t, func(c *server.Config) {
		c.Now = clock.Now
		c.AuthFailures = burst
		c.AuthFailureWindow = 50 * time.Second // one try back every 10 s
		c.MaxAuthAddresses = 64
	})
	s := e.s
	const attacker = "203.0.113.7:4000"
	bad := func(i int) string { return fmt.Sprintf("kh_%064d", i) }
	requireStatus := func(rec *httptest.ResponseRecorder, status int, code abi.Code) {
		t.Helper()
		require.Equal(t, status, rec.Code, rec.Body.String())
		if code != abi.OK {
			var ae api.Error
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ae))
			require.Equal(t, code.String(), ae.ErrorCode)
		}
	}

	// Successes spend nothing: many tokens new to the address, all at
	// once (a host running many agents), then a thousand requests.
	fresh := make([]string, 4*burst)
	for i := range fresh {
		id := fmt.Sprintf("agent-%d", i)
		e.w.Principal(t, id, 0)
		tok, err := e.auth.Issue(id)
		require.NoError(t, err)
		fresh[i] = tok
	}
	var wg sync.WaitGroup
	codes := make([]int, len(fresh))
	for i, tok := range fresh {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = serveFrom(s, attacker, http.MethodGet, "/v1/quotas", tok).Code
		}()
	}
	wg.Wait()
	for _, c := range codes {
		require.Equal(t, http.StatusOK, c)
	}
	for range 1000 {
		requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", e.alice), http.StatusOK, abi.OK)
	}
	// Requests that never reach authentication spend nothing either.
	for i := range 3 * burst {
		requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/no-such-route", bad(i)), http.StatusNotFound, abi.NotFound)
	}
	for i := range burst {
		requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", bad(i)), http.StatusUnauthorized, abi.Unauthenticated)
	}
	rec := serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", bad(99))
	requireStatus(rec, http.StatusTooManyRequests, abi.QuotaExceeded)
	require.Equal(t, "10", rec.Header().Get("Retry-After"), "one try comes back in 10 s")
	// Refused before the lookup: a valid token never proven from here is
	// refused too (the limiter cannot tell it from a guess without
	// looking it up), and so is a different port of the same host.
	requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", e.bob), http.StatusTooManyRequests, abi.QuotaExceeded)
	requireStatus(serveFrom(s, "203.0.113.7:4001", http.MethodGet, "/v1/principals/alice", bad(100)), http.StatusTooManyRequests, abi.QuotaExceeded)
	// The token that authenticated from here goes on working, unlimited.
	for range 50 {
		requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", e.alice), http.StatusOK, abi.OK)
	}
	// Requests without a token are not limited (they cost no lookup).
	requireStatus(serveFrom(s, attacker, http.MethodGet, "/healthz", ""), http.StatusOK, abi.OK)
	requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", ""), http.StatusUnauthorized, abi.Unauthenticated)
	// Another address is not affected.
	requireStatus(serveFrom(s, "198.51.100.1:5000", http.MethodGet, "/v1/principals/alice", bad(1)), http.StatusUnauthorized, abi.Unauthenticated)
	requireStatus(serveFrom(s, "198.51.100.1:5000", http.MethodGet, "/v1/principals/alice", e.bob), http.StatusOK, abi.OK)

	// Time refills the budget, one try per 10 s.
	clock.Advance(9 * time.Second)
	rec = serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", bad(101))
	requireStatus(rec, http.StatusTooManyRequests, abi.QuotaExceeded)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	clock.Advance(time.Second)
	requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", bad(102)), http.StatusUnauthorized, abi.Unauthenticated)
	requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", bad(103)), http.StatusTooManyRequests, abi.QuotaExceeded)
	clock.Advance(10 * time.Second)
	requireStatus(serveFrom(s, attacker, http.MethodGet, "/v1/principals/alice", e.bob), http.StatusOK, abi.OK)

	// IPv6: one /64 is one host's; another /64 is another's.
	v6 := func(suffix string) string { return "[2001:db8:1:2:" + suffix + "]:443" }
	for i := range burst {
		requireStatus(serveFrom(s, v6(strconv.Itoa(i+1)+"::1"), http.MethodGet, "/v1/principals/alice", bad(i)), http.StatusUnauthorized, abi.Unauthenticated)
	}
	requireStatus(serveFrom(s, v6("ffff::9"), http.MethodGet, "/v1/principals/alice", bad(9)), http.StatusTooManyRequests, abi.QuotaExceeded)
	requireStatus(serveFrom(s, "[2001:db8:1:3::1]:443", http.MethodGet, "/v1/principals/alice", bad(9)), http.StatusUnauthorized, abi.Unauthenticated)

	// A thousand addresses, one failure each: the table keeps its bound.
	for i := range 1000 {
		requireStatus(serveFrom(s, fmt.Sprintf("10.0.%d.%d:1", i/256, i%256), http.MethodGet, "/v1/principals/alice", bad(i)), http.StatusUnauthorized, abi.Unauthenticated)
	}
	require.LessOrEqual(t, server.AuthAddresses(s), 64)
}
