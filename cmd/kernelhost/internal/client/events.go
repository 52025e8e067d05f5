package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// EventQuery selects events of GET /v1/events: those after sequence number
// After, at most Limit (0: the server's default) per page, filtered by
// Kind, Principal (a party to the event) and Target, as the token sees
// them.
type EventQuery struct {
	After     uint64
	Limit     int
	Kind      string
	Principal string
	Target    string
}

func (q EventQuery) values() url.Values {
	v := url.Values{}
	v.Set("after", strconv.FormatUint(q.After, 10))
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	for _, kv := range [][2]string{{"kind", q.Kind}, {"principal", q.Principal}, {"target", q.Target}} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	return v
}

// Events returns one page of events (server.EventsResponse: the events,
// the number to continue after, and a cursor when more are waiting now).
func (c *Client) Events(ctx context.Context, q EventQuery) (server.EventsResponse, error) {
	var r server.EventsResponse
	err := c.call(ctx, http.MethodGet, "/v1/events", q.values(), nil, &r)
	return r, err
}

// Event returns event seq as the token sees it; NOT_FOUND when there is
// none or the token may not see it.
func (c *Client) Event(ctx context.Context, seq uint64) (kernel.Event, error) {
	var r server.EventResponse
	err := c.call(ctx, http.MethodGet, "/v1/events/"+strconv.FormatUint(seq, 10), nil, nil, &r)
	return r.Event, err
}

// Follow streams the events q selects (GET /v1/events?follow=1, Server-
// Sent Events), calling fn for each in order, until ctx ends (it then
// returns nil), fn fails, or the server refuses the follow for good (an
// error answer other than UNAVAILABLE: a bad token, a bad filter). When
// the stream ends (the server's FollowMaxDuration, its shutdown) or the
// server cannot be reached, Follow resumes after the last event it saw
// (Last-Event-ID), so that no event is skipped or repeated, waiting
// between attempts (the server's retry: at first, growing to at most
// maxBackoff while it fails); retrying, when not nil, is told each wait.
func (c *Client) Follow(ctx context.Context, q EventQuery, fn func(kernel.Event) error, retrying func(err error, wait time.Duration)) error {
	const maxBackoff = 10 * time.Second
	wait := 200 * time.Millisecond
	for {
		got, err := c.follow(ctx, &q, fn, &wait)
		if ctx.Err() != nil {
			return nil
		}
		var fe fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		var e *Error
		if errors.As(err, &e) && e.Status != 0 && e.API.ErrorCode != abi.Unavailable.String() {
			return err // refused: retrying changes nothing
		}
		if got {
			wait = 200 * time.Millisecond // it worked for a while: start over
		}
		if err != nil && retrying != nil {
			retrying(err, wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if err != nil {
			wait = min(2*wait, maxBackoff)
		}
	}
}

// fnError is an error of Follow's fn, which ends the follow.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// follow runs one stream, advancing q.After past every event id it sees,
// and reports whether it got one. A stream the server ended is a nil
// error; *wait becomes the server's retry.
func (c *Client) follow(ctx context.Context, q *EventQuery, fn func(kernel.Event) error, wait *time.Duration) (bool, error) {
	v := q.values()
	v.Set("follow", "1")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/events", v), nil)
	if err != nil {
		return false, err
	}
	c.header(req)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(q.After, 10))
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b := make([]byte, 64<<10)
		n, _ := resp.Body.Read(b)
		return false, answerError(resp.StatusCode, resp.Header, b[:n], "GET /v1/events?follow=1")
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), MaxAnswerBytes)
	got := false
	var id, event string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "": // a comment (keep-alive)
			case "id":
				id = value
			case "event":
				event = value
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(value)
			case "retry":
				if ms, err := strconv.Atoi(value); err == nil && ms > 0 {
					*wait = time.Duration(ms) * time.Millisecond
				}
			}
			continue
		}
		// A blank line ends a message.
		switch {
		case event == "error":
			var e api.Error
			if json.Unmarshal([]byte(data.String()), &e) != nil || e.ErrorCode == "" {
				e = api.NewError(abi.Internal, "the follow ended with an error that is not kernelhost's: "+data.String())
			}
			return got, &Error{Status: http.StatusOK, API: e}
		case data.Len() > 0:
			var ev kernel.Event
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return got, &Error{Status: http.StatusOK, API: api.NewError(abi.Internal, "an event of the follow is not an event: "+err.Error())}
			}
			if ev.Seq <= q.After {
				break // already seen (a server resending): never twice
			}
			got = true
			q.After = ev.Seq
			if err := fn(ev); err != nil {
				return got, fnError{err}
			}
		case id != "":
			// Events the token may not see were skipped: move on.
			if n, err := strconv.ParseUint(id, 10, 64); err == nil && n > q.After {
				q.After = n
			}
		}
		id, event = "", ""
		data.Reset()
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return got, c.transportError(fmt.Errorf("the follow broke: %w", err))
	}
	return got, nil
}
