// Command http-agent is an agent loop that talks to `kernelhost serve` over
// HTTP with its principal's bearer token (docs/http.md). It reads a shared
// board, writes its own notes, tries to change the board (which the board's
// contract refuses), tips a peer in scrip, then "thinks" a few times by
// reporting LLM tokens against its llm_rate quota. On QUOTA_EXCEEDED it waits
// the retry-after the server names when that is within -max-wait, and
// otherwise thinks smaller with what is available. It prints what it did.
//
// The server binds the caller to the token: the agent never names itself in
// a request; -me only names its notes and its balance lookup.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

// config is what one run of the agent needs.
type config struct {
	URL     string        // server base URL, e.g. http://127.0.0.1:8080
	Token   string        // the agent's bearer token
	Me      string        // the agent's principal id
	Peer    string        // who gets the tip
	Board   string        // the artifact the agent reads
	Tip     int64         // scrip sent to Peer
	Think   int64         // LLM tokens per thinking step
	Steps   int           // thinking steps
	MaxWait time.Duration // longest retry-after the agent waits for

	Client *http.Client // nil: a client with a 30 s timeout
}

func main() {
	cfg := config{}
	flag.StringVar(&cfg.URL, "url", envOr("KERNELHOST_URL", "http://127.0.0.1:8080"), "server base URL ($KERNELHOST_URL)")
	flag.StringVar(&cfg.Token, "token", os.Getenv("KERNELHOST_TOKEN"), "the agent's bearer token ($KERNELHOST_TOKEN)")
	flag.StringVar(&cfg.Me, "me", "alice", "the agent's principal id (names its notes; the token decides who acts)")
	flag.StringVar(&cfg.Peer, "peer", "bob", "principal the agent tips")
	flag.StringVar(&cfg.Board, "board", "board/welcome", "artifact the agent reads")
	flag.Int64Var(&cfg.Tip, "tip", 25, "scrip to tip the peer")
	flag.Int64Var(&cfg.Think, "think", 400, "LLM tokens per thinking step")
	flag.IntVar(&cfg.Steps, "steps", 3, "thinking steps")
	flag.DurationVar(&cfg.MaxWait, "max-wait", 2*time.Second, "longest QUOTA_EXCEEDED retry-after to wait for")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "http-agent:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// result is the part of the server's JSON answer the agent reads (an action
// result or an error; docs/http.md "Results" and "Errors").
type result struct {
	OK                bool     `json:"ok"`
	ErrorCode         string   `json:"error_code"`
	Retriable         bool     `json:"retriable"`
	Message           string   `json:"message"`
	Revision          uint64   `json:"revision"`
	Text              *string  `json:"text"`
	Charges           []charge `json:"charges"`
	Resource          string   `json:"resource"`
	Available         int64    `json:"available"`
	RetryAfterSeconds float64  `json:"retry_after_seconds"`
	Balance           uint64   `json:"balance"` // GET /v1/principals/{id}

	status int // HTTP status
}

type charge struct {
	Payer  string `json:"payer"`
	Payee  string `json:"payee"`
	Amount uint64 `json:"amount"`
}

func (r result) String() string {
	if r.OK {
		return "OK"
	}
	return fmt.Sprintf("%s (HTTP %d): %s", r.ErrorCode, r.status, r.Message)
}

// agent is one run's state. It is not safe for concurrent use.
type agent struct {
	cfg config
	hc  *http.Client
	out io.Writer
	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

func newAgent(cfg config, out io.Writer) *agent {
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &agent{cfg: cfg, hc: hc, out: out, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *agent) say(format string, args ...any) { fmt.Fprintf(a.out, format+"\n", args...) }

// call sends one request and decodes the JSON answer. A transport failure or
// an answer that is not JSON is an error; an error answer is a result.
func (a *agent) call(ctx context.Context, method, path string, body any) (result, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return result{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.cfg.URL, "/")+path, rd)
	if err != nil {
		return result{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return result{}, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return result{}, fmt.Errorf("%s %s: HTTP %d, not JSON: %.200q", method, path, resp.StatusCode, b)
	}
	r.status = resp.StatusCode
	if r.ErrorCode == "QUOTA_EXCEEDED" && r.RetryAfterSeconds == 0 {
		// NB: the body's retry_after_seconds is exact; the header is whole seconds.
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			r.RetryAfterSeconds = float64(s)
		}
	}
	return r, nil
}

// maxAttempts bounds the tries of one request that keeps being retriable.
const maxAttempts = 4

// errTooLong reports a retry-after beyond the agent's bound; the result that
// carried it is returned with it.
var errTooLong = errors.New("retry-after exceeds the bound")

// retrying calls the request until it is not retriable, waiting as the
// server says: QUOTA_EXCEEDED's retry-after when within MaxWait (else it
// returns errTooLong with the result), and a short backoff for other
// retriable codes (CONFLICT, UNAVAILABLE, INTERNAL). At most maxAttempts.
func (a *agent) retrying(ctx context.Context, what, method, path string, body any) (result, error) {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		r, err := a.call(ctx, method, path, body)
		if err != nil || r.OK || !r.Retriable || attempt == maxAttempts {
			return r, err
		}
		wait := backoff
		if r.ErrorCode == "QUOTA_EXCEEDED" {
			wait = time.Duration(math.Ceil(r.RetryAfterSeconds*1000)) * time.Millisecond
			if wait > a.cfg.MaxWait {
				a.say("%-28s QUOTA_EXCEEDED on %s: %d available, retry after %.0fs, beyond my %s bound", what, r.Resource, r.Available, r.RetryAfterSeconds, a.cfg.MaxWait)
				return r, errTooLong
			}
			a.say("%-28s QUOTA_EXCEEDED on %s: waiting %s as told", what, r.Resource, wait)
		} else {
			a.say("%-28s %s: retrying in %s", what, r.ErrorCode, wait)
			backoff *= 2
		}
		if err := a.sleep(ctx, wait); err != nil {
			return r, err
		}
	}
}

func action(kind string, fields map[string]any) map[string]any {
	fields["kind"] = kind
	return fields
}

// run plays the agent's loop against the server and prints what it did to
// out. A request the server refuses is reported and the loop goes on; only
// transport failures (and a cancelled ctx) end it with an error.
func run(ctx context.Context, cfg config, out io.Writer) error {
	if cfg.Token == "" {
		return errors.New("no token: pass -token or set KERNELHOST_TOKEN (printed by `kernelhost init` or `principal create`)")
	}
	a := newAgent(cfg, out)

	// 1. Read the board.
	board := ""
	r, err := a.retrying(ctx, "read "+cfg.Board, http.MethodGet, "/v1/artifacts/"+escapeID(cfg.Board), nil)
	if err != nil {
		return err
	}
	if r.ErrorCode == "UNAUTHENTICATED" {
		return fmt.Errorf("the server refused the token: %s", r.Message)
	}
	if r.OK && r.Text != nil {
		board = *r.Text
		a.say("%-28s OK revision %d: %q", "read "+cfg.Board, r.Revision, board)
	} else {
		a.say("%-28s %s", "read "+cfg.Board, r)
	}

	// 2. Write own notes (governed by the default contract: only the agent
	// may change them).
	notes := cfg.Me + "/notes/1"
	r, err = a.retrying(ctx, "write "+notes, http.MethodPost, "/v1/actions", action("write", map[string]any{
		"target": notes, "type": "text", "text": fmt.Sprintf("the board said: %q", board),
		"metadata": map[string]string{"source": cfg.Board},
	}))
	if err != nil {
		return err
	}
	a.say("%-28s %s", "write "+notes, withRevision(r))

	// 3. Try to change the board: its contract decides.
	r, err = a.retrying(ctx, "write "+cfg.Board, http.MethodPost, "/v1/actions", action("write", map[string]any{
		"target": cfg.Board, "text": "the agent was here",
	}))
	if err != nil {
		return err
	}
	a.say("%-28s %s", "write "+cfg.Board, withRevision(r))

	// 4. Tip the peer.
	what := fmt.Sprintf("tip %s %d scrip", cfg.Peer, cfg.Tip)
	r, err = a.retrying(ctx, what, http.MethodPost, "/v1/actions", action("transfer", map[string]any{"to": cfg.Peer, "amount": cfg.Tip}))
	if err != nil {
		return err
	}
	a.say("%-28s %s", what, r)

	// 5. Think: report LLM tokens against llm_rate.
	for step := 1; step <= cfg.Steps; step++ {
		what := fmt.Sprintf("think %d (%d tokens)", step, cfg.Think)
		r, err = a.retrying(ctx, what, http.MethodPost, "/v1/actions", action("consume_quota", map[string]any{"resource": "llm_rate", "amount": cfg.Think}))
		if errors.Is(err, errTooLong) {
			if r.Available <= 0 {
				a.say("%-28s nothing available: stopping", what)
				break
			}
			what = fmt.Sprintf("think %d (%d tokens)", step, r.Available)
			r, err = a.retrying(ctx, what, http.MethodPost, "/v1/actions", action("consume_quota", map[string]any{"resource": "llm_rate", "amount": r.Available}))
			if errors.Is(err, errTooLong) {
				break
			}
		}
		if err != nil {
			return err
		}
		a.say("%-28s %s", what, r)
	}

	// 6. Where it stands.
	r, err = a.call(ctx, http.MethodGet, "/v1/principals/"+url.PathEscape(cfg.Me), nil)
	if err != nil {
		return err
	}
	if !r.OK && r.ErrorCode != "" {
		a.say("%-28s %s", "balance", r)
		return nil
	}
	a.say("%-28s %d", "balance", r.Balance)
	return nil
}

// escapeID escapes each segment of an artifact id for a URL path, keeping
// the slashes the server accepts in ids.
func escapeID(id string) string {
	parts := strings.Split(id, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func withRevision(r result) string {
	if r.OK {
		return fmt.Sprintf("OK revision %d", r.Revision)
	}
	return r.String()
}
