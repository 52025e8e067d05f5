package server

import (
	"io"
	"net/http"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/store"
)

// SnapshotWriteTimeout bounds how long one GET /v1/snapshot may take to
// send: a snapshot holds a read transaction of the store open while it
// streams, so a client that reads slowly must not hold it for ever; it is
// longer than the server's write timeout, which a large world could
// outlast.
const SnapshotWriteTimeout = 10 * time.Minute

// SnapshotContentType is the media type of GET /v1/snapshot's body: the
// file store.Dump writes.
const SnapshotContentType = "application/vnd.kernelhost.snapshot"

// snapshot answers GET /v1/snapshot (admin token): every entry of the
// world's store, from one read transaction, streamed as store.Dump writes
// it (the file 'kernelhost snapshot' saves and 'kernelhost init --from'
// loads). Nothing is buffered: the body's end (entry count and sha256)
// tells the client whether it got all of it, as the status cannot once
// the stream has begun.
func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Store == nil {
		writeError(w, http.StatusServiceUnavailable, api.NewError(abi.Unavailable, "this server was started without its store (server.Config.Store): snapshots are off"))
		return
	}
	w.Header().Set("Content-Type", SnapshotContentType)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	// NB: an error from the controller means the writer cannot change its
	// deadline (a test's recorder): the server's own then applies.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(SnapshotWriteTimeout))
	cw := &countingWriter{w: w}
	n, err := store.Dump(s.cfg.Store, cw)
	if err != nil {
		s.cfg.Logger.Error("snapshot", "entries_written", n, "err", err)
		if cw.n == 0 {
			writeErr(w, err)
		}
		// Otherwise the status went out with the first bytes: the client
		// finds the body cut short (no end, no hash) and refuses it.
		return
	}
	s.cfg.Logger.Info("snapshot", "entries", n)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
