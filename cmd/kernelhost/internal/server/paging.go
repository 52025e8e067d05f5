package server

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
)

// Every list route pages the same way: ?limit= (1 to MaxPage, default
// DefaultPage) and ?cursor=, the next_cursor of the page before. A page
// that is not the last carries next_cursor; the last has none. A cursor is
// opaque (base64url of the position after the last entry shown); it names
// a position, not an entry, so it stays good while entries come and go.
// The events are paged by sequence number instead (events.go).

// maxCursor bounds a cursor's length: two ids and a separator, encoded.
const maxCursor = 2 * (2*abi.MaxIDLen + 1)

// page is a parsed ?limit=&cursor=.
type page struct {
	limit int
	after []string // the cursor's parts, "" each without a cursor
}

// parsePage parses r's limit and cursor, whose position has parts parts.
func parsePage(r *http.Request, parts int) (page, *api.Error) {
	q := r.URL.Query()
	pg := page{limit: DefaultPage, after: make([]string, parts)}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPage {
			e := api.NewError(abi.InvalidArgument, fmt.Sprintf("limit must be between 1 and %d", MaxPage))
			return page{}, &e
		}
		pg.limit = n
	}
	if c := q.Get("cursor"); c != "" {
		after, ok := decodeCursor(c, parts)
		if !ok {
			e := api.NewError(abi.InvalidArgument, "cursor is not one this endpoint gave: pass the next_cursor of the page before, unchanged")
			return page{}, &e
		}
		pg.after = after
	}
	return pg, nil
}

// encodeCursor encodes a position: its parts (ids, which never contain
// NUL) joined by NUL.
func encodeCursor(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, "\x00")))
}

// decodeCursor decodes a cursor of parts parts, each non-empty.
func decodeCursor(c string, parts int) ([]string, bool) {
	if len(c) > maxCursor {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, false
	}
	out := strings.Split(string(b), "\x00")
	if len(out) != parts {
		return nil, false
	}
	for _, p := range out {
		if p == "" || len(p) > abi.MaxIDLen {
			return nil, false
		}
	}
	return out, true
}
