package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeShutdownEndsFollows: SIGTERM to 'kernelhost serve' while a
// client follows the events (Server-Sent Events) ends the follow and the
// server stops cleanly (exit 0, "stopped"), instead of waiting out --grace
// for a stream that never ends and failing with "context deadline
// exceeded".
func TestServeShutdownEndsFollows(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "world")
	var initOut initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "init", "-o", "json")), &initOut))
	srv := startServe(t, dir)

	req, err := http.NewRequest(http.MethodGet, "http://"+srv.addr+"/v1/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+initOut.AdminToken)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "retry: "), line) // the follow is open

	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	// The bound only keeps a broken child from hanging the test: without
	// the follow ending, serve exits after --grace (30 s) with an error.
	select {
	case err := <-srv.exited:
		require.NoError(t, err, "serve: %s", srv.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not stop: %s", srv.stderr.String())
	}
	require.Contains(t, srv.stderr.String(), "kernelhost: stopped")
	require.NotContains(t, srv.stderr.String(), "deadline exceeded")
	srv.noRace(t)
}
