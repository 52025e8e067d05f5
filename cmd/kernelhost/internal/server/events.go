package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/kernel"
)

// The audit trail for followers: GET /v1/events pages it with filters,
// GET /v1/events/{seq} looks one event up, and a follow (Server-Sent
// Events) streams new events as they commit. Every path reads the kernel's
// Events in bounded chunks and applies the kernel's own visibility rule to
// each event (kernel.Event.Involves, then ViewFor) before any filter looks
// at it, so a filter never matches on what the token may not see. The
// admin token sees every event as recorded.
//
// Event numbers are gapless and a snapshot holds every committed event up
// to the last it shows, so a reader that continues from the last number it
// examined never misses an event nor sees one twice.

// maxEventScan bounds the events one request (one poll of a follow)
// examines: a page may be short, or empty, with next beyond the cursor
// sent, when the token sees few of them or few match the filters.
const maxEventScan = 10000

// eventChunk is how many events one kernel read takes.
const eventChunk = 1000

func (s *Server) eventRoutes() {
	s.handle("/v1/events", methods{http.MethodGet: s.anyone(s.events)})
	s.handle("/v1/events/{seq}", methods{http.MethodGet: s.anyone(s.event)})
}

// EventsResponse is the answer to GET /v1/events. Next is the sequence
// number to continue after (as after, since or cursor): the last event
// examined, which may be beyond the last one shown (or show none) when
// events the token may not see, or that the filters leave out, were
// skipped. NextCursor, the same number, is there when the page was cut by
// its limit or by the scan bound, so more events may be waiting now; it is
// absent when the reader has caught up.
type EventsResponse struct {
	Events     []kernel.Event `json:"events"`
	Next       uint64         `json:"next"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// EventResponse is the answer to GET /v1/events/{seq}.
type EventResponse struct {
	OK    bool         `json:"ok"`
	Event kernel.Event `json:"event"`
}

// eventQuery is a parsed GET /v1/events.
type eventQuery struct {
	after     uint64
	limit     int
	kind      kernel.Kind
	principal string // a party to the event (Involves)
	target    string
}

func (q *eventQuery) match(ev *kernel.Event) bool {
	return (q.kind == "" || ev.Kind == q.kind) &&
		(q.principal == "" || ev.Involves(q.principal)) &&
		(q.target == "" || ev.Target == q.target)
}

func (q *eventQuery) filtered() bool { return q.kind != "" || q.principal != "" || q.target != "" }

func badRequest(msg string) *api.Error {
	e := api.NewError(abi.InvalidArgument, msg)
	return &e
}

// parseEventQuery reads after (or since, or cursor: the same position; a
// follow's Last-Event-ID header overrides them), limit, kind, principal
// and target.
func parseEventQuery(r *http.Request) (eventQuery, *api.Error) {
	q := r.URL.Query()
	ev := eventQuery{limit: 100}
	set := ""
	for _, name := range []string{"after", "since", "cursor"} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return eventQuery{}, badRequest(name + " must be a non-negative integer (an event sequence number)")
		}
		if set != "" && n != ev.after {
			return eventQuery{}, badRequest(fmt.Sprintf("%s and %s name different positions: give one", set, name))
		}
		set, ev.after = name, n
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return eventQuery{}, badRequest("Last-Event-ID must be an event sequence number")
		}
		ev.after = n // a reconnecting EventSource resends its URL: the header is where it got to
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEventsPerPage {
			return eventQuery{}, badRequest(fmt.Sprintf("limit must be between 1 and %d", MaxEventsPerPage))
		}
		ev.limit = n
	}
	if v := q.Get("kind"); v != "" {
		if !kernel.KnownKind(kernel.Kind(v)) {
			return eventQuery{}, badRequest(fmt.Sprintf("kind %.64q is no action kind: use one of %v", v, kernel.Kinds()))
		}
		ev.kind = kernel.Kind(v)
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"principal", &ev.principal}, {"target", &ev.target}} {
		v := q.Get(f.name)
		if len(v) > abi.MaxIDLen {
			return eventQuery{}, badRequest(fmt.Sprintf("%s is longer than an id (%d bytes)", f.name, abi.MaxIDLen))
		}
		*f.dst = v
	}
	return ev, nil
}

// isFollow reports whether r asks for a live follow of the events:
// GET /v1/events with Accept: text/event-stream or ?follow=1.
func isFollow(r *http.Request) bool {
	if r.URL.Path != "/v1/events" || r.Method != http.MethodGet {
		return false
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		return true
	}
	switch r.URL.Query().Get("follow") {
	case "1", "true":
		return true
	}
	return false
}

// queryEvents returns the events after q.after that id may see and q
// matches, at most q.limit, examining at most maxEventScan; next is the
// last event examined (q.after when none was) and more whether events were
// left unexamined (the limit or the scan bound cut the page).
func (s *Server) queryEvents(ctx context.Context, id auth.Identity, q eventQuery) (out []kernel.Event, next uint64, more bool, err error) {
	next = q.after
	for examined := 0; examined < maxEventScan; {
		chunk := min(eventChunk, maxEventScan-examined)
		if id.Admin && !q.filtered() {
			chunk = min(chunk, q.limit-len(out)+1) // one more than needed: is there more?
		}
		evs, err := s.cfg.Kernel.Events(ctx, next, chunk)
		if err != nil {
			return nil, q.after, false, err
		}
		for _, ev := range evs {
			if len(out) == q.limit {
				return out, next, true, nil
			}
			examined++
			next = ev.Seq
			if !id.Admin {
				if !ev.Involves(id.Principal) {
					continue
				}
				ev = ev.ViewFor(id.Principal)
			}
			if q.match(&ev) {
				out = append(out, ev)
			}
		}
		if len(evs) < chunk {
			return out, next, false, nil // caught up
		}
	}
	return out, next, true, nil
}

// events answers GET /v1/events: a page, or a follow (see follow).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	id, e := s.identity(r)
	if e != nil {
		writeError(w, http.StatusUnauthorized, *e)
		return
	}
	if v := r.URL.Query().Get("follow"); v != "" && v != "1" && v != "true" && v != "0" && v != "false" {
		writeError(w, http.StatusBadRequest, *badRequest("follow must be 1 or 0"))
		return
	}
	q, e := parseEventQuery(r)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	if isFollow(r) {
		s.followEvents(w, r, id, q)
		return
	}
	evs, next, more, err := s.queryEvents(r.Context(), id, q)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := EventsResponse{Events: evs, Next: next}
	if resp.Events == nil {
		resp.Events = []kernel.Event{}
	}
	if more {
		resp.NextCursor = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, resp)
}

// event answers GET /v1/events/{seq}: the event, as the token may see it,
// or 404 NOT_FOUND when there is none of that number or the token may not
// see it (the same answer: a principal's token learns nothing of others'
// events from it).
func (s *Server) event(w http.ResponseWriter, r *http.Request) {
	id, e := s.identity(r)
	if e != nil {
		writeError(w, http.StatusUnauthorized, *e)
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, http.StatusBadRequest, *badRequest("an event is named by its sequence number, a positive integer"))
		return
	}
	evs, err := s.cfg.Kernel.Events(r.Context(), seq-1, 1)
	if err != nil {
		writeErr(w, err)
		return
	}
	if len(evs) == 1 && evs[0].Seq == seq && (id.Admin || evs[0].Involves(id.Principal)) {
		ev := evs[0]
		if !id.Admin {
			ev = ev.ViewFor(id.Principal)
		}
		writeJSON(w, http.StatusOK, EventResponse{OK: true, Event: ev})
		return
	}
	writeError(w, http.StatusNotFound, api.NewError(abi.NotFound, fmt.Sprintf("no event %d visible to this token", seq)))
}

// followers counts the follows open, in all and per token, so that a
// client (or a hostile principal with many connections) cannot hold more
// than its share; stop ends them all (Shutdown).
type followers struct {
	mu      sync.Mutex
	n       int
	byToken map[string]int
	stop    chan struct{}
	stopped bool
	hooked  sync.Map // *http.Server -> struct{}: Shutdown registered with it
}

func (f *followers) init() {
	f.byToken = make(map[string]int)
	f.stop = make(chan struct{})
}

// acquire takes a place for a follow of token, or says why not.
func (f *followers) acquire(token string, max, perToken int) (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.stopped:
		return false, "the server is shutting down"
	case f.byToken[token] >= perToken:
		return false, fmt.Sprintf("this token already follows the events %d times: close one first", perToken)
	case f.n >= max:
		return false, fmt.Sprintf("the server already serves %d follows: retry later", max)
	}
	f.n++
	f.byToken[token]++
	return true, ""
}

func (f *followers) release(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.byToken[token]--; f.byToken[token] == 0 {
		delete(f.byToken, token)
	}
}

// Followers returns the number of follows open now.
func (s *Server) Followers() int {
	s.follow.mu.Lock()
	defer s.follow.mu.Unlock()
	return s.follow.n
}

// Shutdown ends every follow of the events and refuses new ones (503
// UNAVAILABLE): an http.Server's Shutdown waits for requests in flight, and
// a follow never ends by itself before FollowMaxDuration. The first follow
// served through an http.Server registers Shutdown with it
// (RegisterOnShutdown), so that its Shutdown ends the follows; one that
// serves the Server otherwise (a test's recorder, a wrapper) calls it
// itself. Other requests are unaffected.
func (s *Server) Shutdown() {
	s.follow.mu.Lock()
	defer s.follow.mu.Unlock()
	if !s.follow.stopped {
		s.follow.stopped = true
		close(s.follow.stop)
	}
}

// followEvents streams the events q selects, as the token may see them, as
// Server-Sent Events: one message per event, "id: <seq>" and "data:
// <event JSON>"; after events the token may not see (or the filters leave
// out) were skipped, a message with only "id: <next>", which moves the
// client's last event id on without an event. It starts after q.after (a
// reconnecting client's Last-Event-ID), polls the kernel every FollowPoll,
// sends at most q.limit events per poll, a comment when silent for
// FollowHeartbeat, and ends when the client goes, after FollowMaxDuration,
// on Shutdown, or on a kernel error (an "event: error" message with the
// error's JSON).
func (s *Server) followEvents(w http.ResponseWriter, r *http.Request, id auth.Identity, q eventQuery) {
	token := id.Principal
	if id.Admin {
		token = "\x00admin" // no principal id contains NUL
	}
	if ok, why := s.follow.acquire(token, s.cfg.MaxFollowers, s.cfg.MaxFollowersPerToken); !ok {
		writeError(w, http.StatusServiceUnavailable, api.NewError(abi.Unavailable, "cannot follow the events: "+why))
		return
	}
	defer s.follow.release(token)
	if hs, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok {
		if _, done := s.follow.hooked.LoadOrStore(hs, struct{}{}); !done {
			hs.RegisterOnShutdown(s.Shutdown)
		}
	}

	ctx := r.Context()
	rc := http.NewResponseController(w)
	// The http.Server's ReadTimeout would otherwise expire under the
	// stream and end it: the connection's reader, which sees the client
	// go, takes a timeout for a failure. The follow has its own bounds.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		writeErr(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	flush := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(s.cfg.FollowWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		buf.Reset()
		return rc.Flush()
	}
	fmt.Fprintf(&buf, "retry: %d\n\n", max(1, s.cfg.FollowPoll.Milliseconds()))
	if flush() != nil {
		return
	}

	end := time.NewTimer(s.cfg.FollowMaxDuration)
	defer end.Stop()
	tick := time.NewTicker(s.cfg.FollowPoll)
	defer tick.Stop()
	lastWrite := time.Now()
	for {
		evs, next, more, err := s.queryEvents(ctx, id, q)
		if err != nil {
			if ctx.Err() != nil {
				return // the client went
			}
			buf.WriteString("event: error\ndata: ")
			_ = encodeJSON(&buf, api.ErrorOf(err))
			buf.WriteString("\n")
			_ = flush()
			return
		}
		if len(evs) > 0 || time.Since(lastWrite) >= s.cfg.FollowHeartbeat {
			// The token is checked again before anything is sent (and at
			// each heartbeat): a revoked or expired token's follow ends
			// at once, not at FollowMaxDuration (tokens.go).
			if _, e := s.identity(r); e != nil {
				buf.WriteString("event: error\ndata: ")
				_ = encodeJSON(&buf, e)
				buf.WriteString("\n")
				_ = flush()
				return
			}
		}
		for i := range evs {
			fmt.Fprintf(&buf, "id: %d\ndata: ", evs[i].Seq)
			if err := encodeJSON(&buf, &evs[i]); err != nil { // ends in a newline
				return
			}
			buf.WriteString("\n")
		}
		if next > q.after && (len(evs) == 0 || evs[len(evs)-1].Seq < next) {
			fmt.Fprintf(&buf, "id: %d\n\n", next)
		}
		q.after = next
		if buf.Len() == 0 && time.Since(lastWrite) >= s.cfg.FollowHeartbeat {
			buf.WriteString(": keep-alive\n\n")
		}
		if buf.Len() > 0 {
			if flush() != nil {
				return
			}
			lastWrite = time.Now()
		}
		if more {
			select { // more are waiting: read them now, unless told to stop
			case <-ctx.Done():
				return
			case <-s.follow.stop:
				return
			case <-end.C:
				return
			default:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.follow.stop:
			return
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}
