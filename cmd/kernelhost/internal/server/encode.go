package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// Answers are encoded whole into a pooled buffer and written with one Write
// and their Content-Length: no chunked transfer encoding (net/http chunks a
// body over 2 KiB whose length it was not told), no second copy of the
// encoded bytes for indentation, one write to the connection per answer.
// Compact JSON, one line ending in a newline: MarshalIndent spent as much
// CPU on a 1834-byte read's answer as the kernel spent on the read
// (BenchmarkHTTP, issue 17).

// maxPooledBuf is the largest buffer kept for reuse: one answer of several
// MiB (a large artifact) is not pinned in the pool for ever.
const maxPooledBuf = 64 << 10

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// getBuf returns an empty buffer from the pool.
func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// putBuf returns b to the pool unless it grew too large.
func putBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuf {
		bufPool.Put(b)
	}
}

// encodeJSON appends v to buf as compact JSON and a newline, escaping HTML
// characters as json.Marshal does.
func encodeJSON(buf *bytes.Buffer, v any) error {
	return json.NewEncoder(buf).Encode(v)
}

// writeBody writes a JSON answer of status with body, which holds the whole
// encoded value.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
