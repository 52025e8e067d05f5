package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
)

// Snapshot streams GET /v1/snapshot (the admin token) into w: the world's
// store as one snapshot file (store.Dump's format), not held in memory. It
// returns the bytes written. It does not check the file: the caller loads
// it (store.Load checks its end and hash), as a stream cut short after the
// server's 200 looks like any other to HTTP.
//
// It is bounded by ctx and server.SnapshotWriteTimeout, not by Timeout: a
// large world takes longer than one request.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, server.SnapshotWriteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/snapshot", nil), nil)
	if err != nil {
		return 0, err
	}
	c.header(req)
	req.Header.Set("Accept", server.SnapshotContentType+", application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, answerError(resp.StatusCode, resp.Header, b, "GET /v1/snapshot")
	}
	if ct := resp.Header.Get("Content-Type"); ct != server.SnapshotContentType {
		return 0, &Error{Status: resp.StatusCode, API: api.NewError(abi.Internal,
			fmt.Sprintf("GET /v1/snapshot: %s answered %q, not a snapshot (%s): is it a kernelhost server?", c.base.Host, ct, server.SnapshotContentType))}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET /v1/snapshot: stopped after %d bytes: %w", n, err)
	}
	return n, nil
}
