package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// hang bounds a wait for the server that should end at once; reaching it
// means the test is broken (a follow that never delivers), not slow.
const hang = 60 * time.Second

// sseMsg is one Server-Sent Events message.
type sseMsg struct {
	id, event, data string
}

// follower is an open follow of /v1/events.
type follower struct {
	resp   *http.Response
	msgs   chan sseMsg
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream ended
}

// follow opens a follow of /v1/events?query with token; lastID, when not
// empty, is sent as Last-Event-ID.
func (e *env) follow(t *testing.T, token, query, lastID string) *follower {
	t.Helper()
	c, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(c, http.MethodGet, e.srv.URL+"/v1/events?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	f := &follower{resp: resp, msgs: make(chan sseMsg, 1024), cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() { f.close() })
	if resp.StatusCode != http.StatusOK {
		close(f.done)
		return f
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	go func() {
		defer close(f.done)
		defer close(f.msgs)
		r := bufio.NewReader(resp.Body)
		var m sseMsg
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if m != (sseMsg{}) {
					f.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, ":"):
				// a comment: keep-alive
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				switch k {
				case "id":
					m.id = v
				case "event":
					m.event = v
				case "data":
					m.data += v
				}
			}
		}
	}()
	return f
}

func (f *follower) close() {
	f.cancel()
	_ = f.resp.Body.Close()
	<-f.done
}

// next returns the next message that carries an event (skipping those that
// only move the last event id) and the last id seen up to it.
func (f *follower) next(t *testing.T) (kernel.Event, string) {
	t.Helper()
	timeout := time.After(hang)
	for {
		select {
		case m, ok := <-f.msgs:
			require.True(t, ok, "the stream ended")
			require.Empty(t, m.event, "message %+v", m)
			if m.data == "" {
				continue
			}
			var ev kernel.Event
			require.NoError(t, json.Unmarshal([]byte(m.data), &ev))
			require.Equal(t, strconv.FormatUint(ev.Seq, 10), m.id)
			return ev, m.id
		case <-timeout:
			require.FailNow(t, "no event arrived")
		}
	}
}

// nextN returns the next n events.
func (f *follower) nextN(t *testing.T, n int) []kernel.Event {
	t.Helper()
	var out []kernel.Event
	for range n {
		ev, _ := f.next(t)
		out = append(out, ev)
	}
	return out
}

// ended waits for the stream to end.
func (f *follower) ended(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(hang):
		require.FailNow(t, "the stream did not end")
	}
}

func fastFollow(cfg *server.Config) { cfg.FollowPoll = 2 * time.Millisecond }

func (e *env) act(t *testing.T, token, body string, status int) {
	t.Helper()
	var r api.Result
	resp := e.call(t, http.MethodPost, "/v1/actions", token, body, &r)
	require.Equal(t, status, resp.StatusCode, "%s: %s", body, r.Message)
}

func seqs(evs []kernel.Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

// eventsPage reads one page of GET /v1/events?query.
func (e *env) eventsPage(t *testing.T, token, query string) server.EventsResponse {
	t.Helper()
	status, b := e.raw(t, http.MethodGet, "/v1/events?"+query, token, "")
	require.Equal(t, http.StatusOK, status, "%s", b)
	var page server.EventsResponse
	require.NoError(t, json.Unmarshal(b, &page))
	return page
}

// allEvents pages GET /v1/events?query (without after) to the end.
func (e *env) allEvents(t *testing.T, token, query string, limit int) []kernel.Event {
	t.Helper()
	var out []kernel.Event
	after := uint64(0)
	for calls := 0; ; calls++ {
		require.Less(t, calls, 1000)
		page := e.eventsPage(t, token, fmt.Sprintf("%s&after=%d&limit=%d", query, after, limit))
		require.LessOrEqual(t, len(page.Events), limit)
		out = append(out, page.Events...)
		if page.NextCursor == "" {
			return out
		}
		require.Equal(t, strconv.FormatUint(page.Next, 10), page.NextCursor)
		after = page.Next
	}
}

// TestEventsFilters: kind, principal and target select from what the token
// sees, page by page as in one page, and the admin's filtered view equals
// filtering every event; mallory filtering for the principal alice finds
// nothing of alice's (not her probe of alice's right, whose holder her view
// withholds), and bad filters are 400.
func TestEventsFilters(t *testing.T) {
	t.Parallel()
	e, mallory := partiesEnv(t)
	all, err := e.w.K.Events(ctx, 0, 0)
	require.NoError(t, err)

	filter := func(evs []kernel.Event, keep func(kernel.Event) bool) []kernel.Event {
		var out []kernel.Event
		for _, ev := range evs {
			if keep(ev) {
				out = append(out, ev)
			}
		}
		return out
	}
	for _, tc := range []struct {
		query string
		keep  func(kernel.Event) bool
	}{
		{"kind=transfer", func(ev kernel.Event) bool { return ev.Kind == kernel.KindTransfer }},
		{"principal=bob", func(ev kernel.Event) bool { return ev.Involves("bob") }},
		{"target=diary", func(ev kernel.Event) bool { return ev.Target == "diary" }},
		{"kind=transfer&principal=mallory", func(ev kernel.Event) bool { return ev.Kind == kernel.KindTransfer && ev.Involves("mallory") }},
		{"kind=write&target=nothing", func(ev kernel.Event) bool { return false }},
	} {
		want := filter(all, tc.keep)
		for _, limit := range []int{1, 2, 100} {
			got := e.allEvents(t, e.admin, tc.query, limit)
			require.Equal(t, want, got, "%s limit %d", tc.query, limit)
		}
	}

	require.Equal(t, []string{"alice:transfer:bob:OK", "mallory:transfer:bob:OK"},
		summary(e.allEvents(t, e.bob, "kind=transfer", 1)))
	require.Equal(t, []string{"mallory:read:diary:PERMISSION_DENIED"},
		summary(e.allEvents(t, mallory, "target=diary", 100)))
	require.Equal(t, []string{"alice:write:diary:OK"},
		summary(e.allEvents(t, e.alice, "target=diary", 100)))
	// The attack: mallory asks for alice's events. She sees her probe of
	// alice's right only without its holder, so it does not match.
	require.Empty(t, e.allEvents(t, mallory, "principal=alice", 100))
	require.Equal(t, []string{"mallory:redeem_right:secret:PERMISSION_DENIED"},
		summary(e.allEvents(t, e.alice, "principal=mallory&kind=redeem_right", 100)))

	for _, q := range []string{"kind=tranfser", "after=-1", "since=x", "after=1&since=2", "limit=0", "limit=1001",
		"follow=maybe", "principal=" + strings.Repeat("a", 129)} {
		var ae api.Error
		resp := e.call(t, http.MethodGet, "/v1/events?"+q, e.admin, "", &ae)
		requireError(t, resp, ae, http.StatusBadRequest, abi.InvalidArgument)
	}
	// after, since and cursor name the same position.
	a := e.eventsPage(t, e.admin, "after=3&limit=2")
	require.Equal(t, a, e.eventsPage(t, e.admin, "since=3&limit=2"))
	require.Equal(t, a, e.eventsPage(t, e.admin, "cursor=3&limit=2"))
	require.Equal(t, a, e.eventsPage(t, e.admin, "after=3&since=3&limit=2"))
	require.Equal(t, []uint64{4, 5}, seqs(a.Events))
	require.Equal(t, "5", a.NextCursor)
	last := e.eventsPage(t, e.admin, fmt.Sprintf("after=%d", all[len(all)-1].Seq))
	require.Empty(t, last.Events)
	require.Empty(t, last.NextCursor)
	require.Equal(t, all[len(all)-1].Seq, last.Next)
}

// TestEventLookup: GET /v1/events/{seq} answers the event as the token may
// see it, 404 NOT_FOUND for a number that does not exist and for an event
// the token may not see (the same answer), 400 for a malformed number.
func TestEventLookup(t *testing.T) {
	t.Parallel()
	e, mallory := partiesEnv(t)
	all, err := e.w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	get := func(token string, seq string) (int, server.EventResponse, api.Error) {
		status, b := e.raw(t, http.MethodGet, "/v1/events/"+seq, token, "")
		var ev server.EventResponse
		var ae api.Error
		if status == http.StatusOK {
			require.NoError(t, json.Unmarshal(b, &ev))
		} else {
			require.NoError(t, json.Unmarshal(b, &ae))
		}
		return status, ev, ae
	}
	for _, want := range all {
		status, got, _ := get(e.admin, strconv.FormatUint(want.Seq, 10))
		require.Equal(t, http.StatusOK, status)
		require.True(t, got.OK)
		require.Equal(t, want, got.Event)
	}
	// Each principal gets exactly the events it sees in the list, as it
	// sees them there, and 404 for the others.
	for _, token := range []string{e.alice, e.bob, mallory} {
		mine := map[uint64]kernel.Event{}
		for _, ev := range e.allEvents(t, token, "", 100) {
			mine[ev.Seq] = ev
		}
		require.NotEmpty(t, mine)
		for _, ev := range all {
			status, got, ae := get(token, strconv.FormatUint(ev.Seq, 10))
			if want, ok := mine[ev.Seq]; ok {
				require.Equal(t, http.StatusOK, status)
				require.Equal(t, want, got.Event)
				continue
			}
			require.Equal(t, http.StatusNotFound, status)
			require.Equal(t, abi.NotFound.String(), ae.ErrorCode)
		}
	}
	redeem := all[len(all)-2]
	require.Equal(t, kernel.KindRedeemRight, redeem.Kind)
	_, got, _ := get(mallory, strconv.FormatUint(redeem.Seq, 10))
	require.Empty(t, got.Event.Holder, "mallory's probe shows no holder")

	for _, seq := range []string{strconv.FormatUint(all[len(all)-1].Seq+1, 10), "18446744073709551615"} {
		status, _, ae := get(e.admin, seq)
		require.Equal(t, http.StatusNotFound, status, seq)
		require.Equal(t, abi.NotFound.String(), ae.ErrorCode)
	}
	for _, seq := range []string{"0", "-1", "x", "1.5"} {
		status, _, ae := get(e.admin, seq)
		require.Equal(t, http.StatusBadRequest, status, seq)
		require.Equal(t, abi.InvalidArgument.String(), ae.ErrorCode)
	}
	status, _, ae := get("", "1")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, abi.Unauthenticated.String(), ae.ErrorCode)
}

// TestEventsFollowReceivesNewEvents: a follow (Accept: text/event-stream,
// or ?follow=1) first delivers the events after its position, then those
// appended after it connected, in order, each once.
func TestEventsFollowReceivesNewEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastFollow)
	e.act(t, e.alice, `{"kind":"transfer","to":"bob","amount":1}`, http.StatusOK)
	before, err := e.w.K.Events(ctx, 0, 0)
	require.NoError(t, err)

	f := e.follow(t, e.admin, "", "")
	require.Equal(t, before, f.nextN(t, len(before)))
	// Appended after it connected.
	for i := range 5 {
		e.act(t, e.alice, fmt.Sprintf(`{"kind":"write","target":"n/%d","type":"text","text":"x"}`, i), http.StatusOK)
	}
	got := f.nextN(t, 5)
	all, err := e.w.K.Events(ctx, 0, 0)
	require.NoError(t, err)
	require.Equal(t, all[len(before):], got)

	// ?follow=1 without the header is a follow too; after= is where it starts.
	last := all[len(all)-1].Seq
	c, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodGet, fmt.Sprintf("%s/v1/events?follow=1&after=%d", e.srv.URL, last-1), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.bob)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	e.act(t, e.bob, `{"kind":"transfer","to":"alice","amount":1}`, http.StatusOK)
	r := bufio.NewReader(resp.Body)
	var data string
	for found := false; !found; {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		data, found = strings.CutPrefix(strings.TrimSpace(line), "data: ")
	}
	var ev kernel.Event
	require.NoError(t, json.Unmarshal([]byte(data), &ev))
	require.Equal(t, last+1, ev.Seq, "bob's transfer: alice's writes before it are not bob's")
	require.Equal(t, "bob", ev.Caller)
}

// TestEventsFollowResumesWithoutGapsOrDuplicates: a follow closed after
// some events and reopened with the last id it saw (Last-Event-ID, as
// EventSource does, overriding after=) continues with the next event:
// together the two deliveries are exactly the trail, for the admin and for
// a principal whose view skips others' events.
func TestEventsFollowResumesWithoutGapsOrDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastFollow)
	for i := range 6 {
		e.act(t, e.alice, fmt.Sprintf(`{"kind":"transfer","to":"bob","amount":%d}`, i+1), http.StatusOK)
		e.act(t, e.alice, fmt.Sprintf(`{"kind":"write","target":"a/%d","type":"text","text":"x"}`, i), http.StatusOK)
	}
	for _, tc := range []struct {
		name, token string
	}{{"admin", e.admin}, {"bob", e.bob}} {
		t.Run(tc.name, func(t *testing.T) {
			want := e.allEvents(t, tc.token, "", 1000)
			require.GreaterOrEqual(t, len(want), 6)
			f := e.follow(t, tc.token, "limit=2", "")
			first := f.nextN(t, 3)
			f.close()
			lastID := strconv.FormatUint(first[2].Seq, 10)
			// after=0 in the URL, as a reconnecting EventSource resends it:
			// Last-Event-ID wins.
			g := e.follow(t, tc.token, "after=0&limit=2", lastID)
			rest := g.nextN(t, len(want)-3)
			require.Equal(t, want, append(first, rest...))
			// Nothing more: the next event is a new one.
			e.act(t, e.alice, `{"kind":"write","target":"after/`+tc.name+`","type":"text","text":"x","metadata":{"controller":"bob"}}`, http.StatusOK)
			e.act(t, e.bob, `{"kind":"edit","target":"after/`+tc.name+`","text":"y"}`, http.StatusOK)
			ev, _ := g.next(t)
			if tc.token == e.admin {
				ev, _ = g.next(t) // alice's write
			}
			require.Equal(t, "after/"+tc.name, ev.Target)
			require.Equal(t, kernel.KindEdit, ev.Kind)
			require.Greater(t, ev.Seq, want[len(want)-1].Seq)
		})
	}
}

// TestEventsFollowVisibility: mallory's follow never carries another's
// event: not alice's actions, nor her transfers to bob, nor the holder of
// the right mallory probed; only "id" messages move her cursor past them.
// Other tokens' follows see theirs.
func TestEventsFollowVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastFollow)
	e.w.Principal(t, "mallory", 100)
	mallory, err := e.auth.Issue("mallory")
	require.NoError(t, err)
	fm := e.follow(t, mallory, "", "")
	fb := e.follow(t, e.bob, "", "")

	e.act(t, e.alice, `{"kind":"write","target":"diary","type":"text","contract":"private","text":"dear diary"}`, http.StatusOK)
	e.act(t, e.alice, `{"kind":"mint_right","target":"secret","resource":"llm_rate","amount":337,"contract":"private"}`, http.StatusOK)
	e.act(t, mallory, `{"kind":"read","target":"diary"}`, http.StatusForbidden)
	e.act(t, e.alice, `{"kind":"transfer","to":"bob","amount":5}`, http.StatusOK)
	e.act(t, mallory, `{"kind":"redeem_right","target":"secret"}`, http.StatusForbidden)
	e.act(t, e.bob, `{"kind":"write","target":"note","type":"text","text":"hi"}`, http.StatusOK)
	e.act(t, mallory, `{"kind":"transfer","to":"bob","amount":1}`, http.StatusOK) // the last: mallory's and bob's

	got := fm.nextN(t, 3)
	require.Equal(t, []string{"mallory:read:diary:PERMISSION_DENIED", "mallory:redeem_right:secret:PERMISSION_DENIED",
		"mallory:transfer:bob:OK"}, summary(got))
	for _, ev := range got {
		require.True(t, ev.Involves("mallory"))
		require.Empty(t, ev.Holder)
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		for _, s := range []string{"337", "llm_rate", "alice", "dear diary"} {
			require.NotContains(t, string(b), s)
		}
	}
	require.Equal(t, []string{"alice:transfer:bob:OK", "bob:write:note:OK", "mallory:transfer:bob:OK"}, summary(fb.nextN(t, 3)))

	// Whatever else mallory's stream carried after her last event (id-only
	// messages) carried no event.
	fm.close()
	for m := range fm.msgs {
		require.Empty(t, m.data, "no event beyond mallory's own: %+v", m)
	}
	// A filter in a follow still applies to mallory's view only.
	f := e.follow(t, mallory, "principal=alice", "")
	e.act(t, mallory, `{"kind":"redeem_right","target":"secret"}`, http.StatusForbidden)
	e.act(t, mallory, `{"kind":"transfer","to":"alice","amount":1}`, http.StatusOK)
	ev, _ := f.next(t)
	require.Equal(t, "mallory:transfer:alice:OK", summary([]kernel.Event{ev})[0])
}

// TestEventsFollowBounded: one token holds at most MaxFollowersPerToken
// follows and the server MaxFollowers (503 UNAVAILABLE beyond, retriable),
// a hostile principal's many connections included; a follow whose client
// went frees its place.
func TestEventsFollowBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(cfg *server.Config) {
		fastFollow(cfg)
		cfg.MaxFollowers, cfg.MaxFollowersPerToken = 3, 2
	})
	refused := func(token, why string) {
		t.Helper()
		f := e.follow(t, token, "", "")
		require.Equal(t, http.StatusServiceUnavailable, f.resp.StatusCode)
		var ae api.Error
		require.NoError(t, json.NewDecoder(f.resp.Body).Decode(&ae))
		require.Equal(t, abi.Unavailable.String(), ae.ErrorCode)
		require.True(t, ae.Retriable)
		require.Contains(t, ae.Message, why)
	}
	opened := func(token string) *follower {
		t.Helper()
		f := e.follow(t, token, "", "")
		require.Equal(t, http.StatusOK, f.resp.StatusCode)
		return f
	}
	a1 := opened(e.alice)
	opened(e.alice)
	refused(e.alice, "this token already follows")
	opened(e.bob)
	require.Equal(t, 3, e.s.Followers())
	refused(e.admin, "already serves 3 follows")
	// Plain pages are not follows: still served.
	require.Equal(t, http.StatusOK, e.call(t, http.MethodGet, "/v1/events", e.admin, "", nil).StatusCode)
	a1.close() // the client goes: its place frees
	waitFor(t, func() bool { return e.s.Followers() == 2 })
	opened(e.admin)
}

// TestEventsFollowEndsOnShutdown: Shutdown ends every follow (the stream
// closes), a new follow is refused with 503 UNAVAILABLE, and other
// requests are still answered.
func TestEventsFollowEndsOnShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fastFollow)
	fa := e.follow(t, e.alice, "", "")
	fb := e.follow(t, e.admin, "", "")
	e.act(t, e.alice, `{"kind":"transfer","to":"bob","amount":1}`, http.StatusOK)
	fa.next(t)
	require.Equal(t, 2, e.s.Followers())
	e.s.Shutdown()
	fa.ended(t)
	fb.ended(t)
	waitFor(t, func() bool { return e.s.Followers() == 0 })
	f := e.follow(t, e.alice, "", "")
	require.Equal(t, http.StatusServiceUnavailable, f.resp.StatusCode)
	require.Equal(t, http.StatusOK, e.call(t, http.MethodGet, "/v1/events", e.alice, "", nil).StatusCode)
}

// waitFor polls cond until it holds (bounded by hang).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "condition never held")
		time.Sleep(time.Millisecond)
	}
}
