package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// Headers of a non-streaming answer: what the call was charged.
const (
	HeaderEvent        = "X-Kernelhost-Event"
	HeaderInputTokens  = "X-Kernelhost-Llm-Input-Tokens"
	HeaderOutputTokens = "X-Kernelhost-Llm-Output-Tokens"
	HeaderCost         = "X-Kernelhost-Llm-Cost-Microdollars"
)

// call is one call in flight: what was reserved and what happened.
type call struct {
	g       *Gateway
	r       *http.Request
	caller  string
	req     *chatRequest
	kcall   kernel.LLMCall
	res     *kernel.LLMReservation
	sent    atomic.Bool // the request's headers reached the wire
	usage   *usage      // the provider's last report, nil: none
	outcome string
	status  int
	start   time.Time

	settled bool
	charged kernel.LLMUsage
	cost    int64
	event   uint64
}

// ServeChat answers POST /v1/llm/chat for caller, the principal its token
// authenticated (the server binds it; the admin token never gets here);
// token is that token's name, for the call's audit event.
// Every failure before the call is the server's JSON error shape; the
// provider's answer is passed on as it came (key redacted), a stream
// chunk by chunk.
func (g *Gateway) ServeChat(w http.ResponseWriter, r *http.Request, caller, token string) {
	body, status, e := g.readBody(w, r)
	if e != nil {
		writeError(w, status, *e)
		return
	}
	req, e := parseChat(body, g.cfg.Prices, g.cfg.DefaultMaxTokens)
	if e != nil {
		writeError(w, statusOf(*e), *e)
		return
	}
	g.serve(w, r, caller, token, req, 0)
}

// serve reserves, forwards and settles the parsed call req for caller;
// capMicros > 0 caps what it may cost (an executable's call: what its
// invoke's max_llm_cost has left).
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, caller, token string, req *chatRequest, capMicros int64) {
	// ?payer=P bills sponsor P, under P's grant_llm_consent for caller
	// (the kernel checks it); no other query parameter is taken.
	payer, e := payerParam(r)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	price := g.cfg.Prices[req.model]
	c := &call{g: g, r: r, caller: caller, req: req, start: time.Now(), kcall: kernel.LLMCall{
		Caller: caller, Payer: payer, Model: req.model, MaxInputTokens: req.maxInput, MaxOutputTokens: req.maxOutput,
		InputPrice: price.InputPer1K, OutputPrice: price.OutputPer1K, Cap: capMicros, Token: token,
	}}
	kctx, cancel := context.WithTimeout(r.Context(), g.cfg.KernelTimeout)
	res, kres := g.cfg.Kernel.ReserveLLM(kctx, c.kcall)
	cancel()
	if !kres.OK {
		if kres.Code == abi.QuotaExceeded {
			g.stats.refused(req.model)
		}
		g.cfg.Logger.Info("llm call refused", "principal", caller, "model", req.model, "code", kres.Code.String(),
			"input_bound", req.maxInput, "output_bound", req.maxOutput, "message", kres.Message)
		writeResult(w, kres)
		return
	}
	c.res = res
	defer c.settle() // once, whatever happens below (a panic included)
	c.forward(w)
}

// readBody reads the request body within MaxBodyBytes (413 beyond, as
// every route answers).
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, *api.Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, http.StatusUnsupportedMediaType, invalid("Content-Type %.64q: send application/json", ct)
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, invalid("request body exceeds %d bytes: send a shorter prompt", g.cfg.MaxBodyBytes)
		}
		return nil, http.StatusBadRequest, invalid("read request body: %v", err)
	}
	return b, 0, nil
}

// forward sends the call upstream and passes the answer on.
func (c *call) forward(w http.ResponseWriter) {
	g := c.g
	// The call runs under the gateway's timeout, not the server's request
	// timeout, and the connection's deadlines must not end a long stream:
	// the http.Server's ReadTimeout, expiring under it, would read as the
	// client gone.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(g.cfg.Timeout + 30*time.Second))
	ctx, cancel := context.WithTimeout(c.r.Context(), g.cfg.Timeout)
	defer cancel()
	trace := &httptrace.ClientTrace{WroteHeaders: func() { c.sent.Store(true) }}
	ureq, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, g.url, bytes.NewReader(c.req.body))
	if err != nil {
		c.fail(w, ctx, http.StatusInternalServerError, api.NewError(abi.Internal, "build the upstream request: "+err.Error()))
		return
	}
	ureq.Header.Set("Content-Type", "application/json")
	if c.req.stream {
		ureq.Header.Set("Accept", "text/event-stream")
	} else {
		ureq.Header.Set("Accept", "application/json")
	}
	if g.cfg.APIKey != "" {
		ureq.Header.Set("Authorization", "Bearer "+string(g.cfg.APIKey))
	}
	resp, err := g.cfg.Client.Do(ureq)
	if err != nil {
		c.fail(w, ctx, 0, api.NewError(abi.Unavailable, "the LLM provider could not be reached: "+g.redact(err.Error())))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		c.upstreamError(w, ctx, resp)
		return
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if c.req.stream && mt == "text/event-stream" {
		c.stream(w, ctx, rc, resp)
		return
	}
	c.whole(w, ctx, resp)
}

// whole passes on a non-streaming answer: read whole, settled, then sent
// with what it was charged in the headers.
func (c *call) whole(w http.ResponseWriter, ctx context.Context, resp *http.Response) {
	g := c.g
	b, err := io.ReadAll(io.LimitReader(resp.Body, g.cfg.MaxResponseBytes+1))
	if err != nil {
		c.fail(w, ctx, 0, api.NewError(abi.Unavailable, "the LLM provider's answer broke off: "+g.redact(err.Error())))
		return
	}
	if int64(len(b)) > g.cfg.MaxResponseBytes {
		c.fail(w, ctx, 0, api.NewError(abi.Unavailable, fmt.Sprintf("the LLM provider's answer exceeds %d bytes", g.cfg.MaxResponseBytes)))
		return
	}
	var body struct {
		Usage *usage `json:"usage"`
	}
	if json.Unmarshal(b, &body) == nil {
		c.usage = body.Usage
	}
	c.outcome, c.status = OutcomeOK, resp.StatusCode
	c.settle()
	h := w.Header()
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/json"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	if c.event != 0 {
		h.Set(HeaderEvent, strconv.FormatUint(c.event, 10))
	}
	h.Set(HeaderInputTokens, strconv.FormatInt(c.charged.InputTokens, 10))
	h.Set(HeaderOutputTokens, strconv.FormatInt(c.charged.OutputTokens, 10))
	h.Set(HeaderCost, strconv.FormatInt(c.cost, 10))
	out := g.redactBytes(b)
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// stream passes on a server-sent-event stream one event at a time,
// flushing each, and keeps the last usage it reports. The usage-only
// chunk the gateway asked for is dropped unless the client asked for it
// too.
func (c *call) stream(w http.ResponseWriter, ctx context.Context, rc *http.ResponseController, resp *http.Response) {
	g := c.g
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(resp.StatusCode)
	c.status = resp.StatusCode
	if rc.Flush() != nil {
		c.outcome = OutcomeClientGone
		return
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var ev []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: keep reading it into ev.
			err = nil
		}
		ev = append(ev, line...)
		if len(ev) > MaxEventBytes {
			c.streamFail(w, rc, ctx, api.NewError(abi.Unavailable, fmt.Sprintf("the LLM provider sent an event of more than %d bytes", MaxEventBytes)))
			return
		}
		if err != nil && err != io.EOF {
			// Broken off mid-stream: the partial event goes nowhere.
			c.streamFail(w, rc, ctx, api.NewError(abi.Unavailable, "the LLM provider's stream broke off: "+g.redact(err.Error())))
			return
		}
		blank := len(line) > 0 && line[len(line)-1] == '\n' && len(bytes.TrimRight(line, "\r\n")) == 0
		if (blank || err == io.EOF) && len(bytes.TrimSpace(ev)) > 0 && c.keep(ev) {
			if _, werr := w.Write(g.redactBytes(ev)); werr != nil || rc.Flush() != nil {
				c.outcome = OutcomeClientGone
				return
			}
		}
		if blank {
			ev = ev[:0]
		}
		if err == io.EOF {
			c.outcome = OutcomeOK
			return
		}
	}
}

// keep reads one event's data lines for a usage report and says whether
// the event goes to the client.
func (c *call) keep(ev []byte) bool {
	keep := true
	for line := range bytes.Lines(ev) {
		data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 || data[0] != '{' {
			continue // [DONE]
		}
		var chunk struct {
			Usage   *usage            `json:"usage"`
			Choices []json.RawMessage `json:"choices"`
		}
		if json.Unmarshal(data, &chunk) != nil || chunk.Usage == nil {
			continue
		}
		c.usage = chunk.Usage
		if !c.req.wantUsage && chunk.Choices != nil && len(chunk.Choices) == 0 {
			keep = false
		}
	}
	return keep
}

// streamFail ends a stream that broke: an error event when the client is
// still there, in the JSON error shape under "error" (as OpenAI's API
// sends errors in a stream).
func (c *call) streamFail(w http.ResponseWriter, rc *http.ResponseController, ctx context.Context, e api.Error) {
	c.outcome = c.why(ctx, OutcomeUpstreamError)
	if c.outcome == OutcomeClientGone {
		return
	}
	if c.outcome == OutcomeTimeout {
		e.Message = fmt.Sprintf("the LLM call ran past the gateway's timeout (%s)", c.g.cfg.Timeout)
	}
	b, _ := json.Marshal(map[string]api.Error{"error": e})
	_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
	_ = rc.Flush()
}

// why names the outcome of a failure: the client gone, the timeout, or
// otherwise def.
func (c *call) why(ctx context.Context, def string) string {
	switch {
	case c.r.Context().Err() != nil:
		return OutcomeClientGone
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return OutcomeTimeout
	}
	return def
}

// fail answers a failure before anything was passed on.
func (c *call) fail(w http.ResponseWriter, ctx context.Context, status int, e api.Error) {
	c.outcome = c.why(ctx, OutcomeUpstreamError)
	if c.outcome == OutcomeTimeout {
		e = api.NewError(abi.Unavailable, fmt.Sprintf("the LLM provider did not answer within the gateway's timeout (%s)", c.g.cfg.Timeout))
	}
	if status == 0 {
		status = statusOf(e)
	}
	c.status = status
	if c.outcome == OutcomeClientGone {
		return
	}
	c.settle()
	writeError(w, status, e)
}

// upstreamError answers a provider's error status: INVALID_ARGUMENT for a
// request it refused as malformed (400, 404, 413, 422), UNAVAILABLE for
// the rest (its rate limits and faults, a refused key, a redirect), with
// its message (key redacted).
func (c *call) upstreamError(w http.ResponseWriter, ctx context.Context, resp *http.Response) {
	g := c.g
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var body struct {
		Usage *usage          `json:"usage"`
		Error json.RawMessage `json:"error"`
	}
	msg := ""
	if json.Unmarshal(b, &body) == nil {
		c.usage = body.Usage
		var obj struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body.Error, &obj) == nil && obj.Message != "" {
			msg = obj.Message
		} else if json.Unmarshal(body.Error, &msg) != nil {
			msg = ""
		}
	}
	if msg == "" {
		msg = string(bytes.TrimSpace(b))
	}
	msg = validText(g.redact(msg), 512)
	code := abi.Unavailable
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		code = abi.InvalidArgument
	}
	e := api.NewError(code, fmt.Sprintf("the LLM provider answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), msg))
	if code == abi.Unavailable {
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
				w.Header().Set("Retry-After", strconv.Itoa(s))
			}
		}
	}
	c.fail(w, ctx, 0, e)
}

// settle settles the reservation, once: to the provider's usage, the
// reservation where it reported none, nothing where nothing was sent.
// It runs on a context of its own: a client gone must not keep the
// settlement from committing.
func (c *call) settle() {
	if c.settled {
		return
	}
	c.settled = true
	g := c.g
	if c.outcome == "" {
		c.outcome = OutcomeUpstreamError // a panic on the way
	}
	u := settleUsage(c.usage, c.kcall)
	if !c.sent.Load() {
		u = kernel.LLMUsage{}
	}
	// What the kernel charges: each side at most its reservation.
	u.InputTokens = min(max(u.InputTokens, 0), c.kcall.MaxInputTokens)
	u.OutputTokens = min(max(u.OutputTokens, 0), c.kcall.MaxOutputTokens)
	over := c.usage != nil && (c.usage.PromptTokens != nil && *c.usage.PromptTokens > c.kcall.MaxInputTokens ||
		c.usage.CompletionTokens != nil && *c.usage.CompletionTokens > c.kcall.MaxOutputTokens)
	c.charged = u
	c.cost = min(c.kcall.LLMCost(u), c.res.Cost())
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), g.cfg.KernelTimeout)
	defer cancel()
	res := g.cfg.Kernel.SettleLLM(ctx, c.res, u)
	c.event = res.Event
	g.stats.call(c.kcall.Model, c.outcome, u, c.cost)
	if !res.OK {
		g.cfg.Logger.Error("llm call not settled: the reservation stays charged", "principal", c.caller, "model", c.kcall.Model,
			"code", res.Code.String(), "message", res.Message)
		return
	}
	if over {
		g.cfg.Logger.Warn("llm usage above the reservation: charged the reservation", "principal", c.caller, "model", c.kcall.Model,
			"input_bound", c.kcall.MaxInputTokens, "output_bound", c.kcall.MaxOutputTokens)
	}
	g.cfg.Logger.Info("llm call", "principal", c.caller, "model", c.kcall.Model, "outcome", c.outcome, "status", c.status,
		"stream", c.req.stream, "usage_reported", c.usage != nil, "sent", c.sent.Load(),
		"input_tokens", u.InputTokens, "output_tokens", u.OutputTokens, "cost_microdollars", c.cost,
		"event", c.event, "duration", time.Since(c.start))
}

// redact replaces every occurrence of the API key in s. A key shorter
// than 8 bytes is no secret worth the damage its replacement would do.
func (g *Gateway) redact(s string) string {
	if k := string(g.cfg.APIKey); len(k) >= 8 {
		return string(bytes.ReplaceAll([]byte(s), []byte(k), []byte(redacted)))
	}
	return s
}

func (g *Gateway) redactBytes(b []byte) []byte {
	if k := []byte(g.cfg.APIKey); len(k) >= 8 && bytes.Contains(b, k) {
		return bytes.ReplaceAll(b, k, []byte(redacted))
	}
	return b
}

// statusOf is the HTTP status of an error answer.
func statusOf(e api.Error) int {
	c, _ := abi.ParseCode(e.ErrorCode)
	return api.Status(c, e.Retriable)
}

// writeJSON writes v as a JSON answer with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(api.NewError(abi.Internal, "encode response: "+err.Error()))
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes the server's JSON error shape.
func writeError(w http.ResponseWriter, status int, e api.Error) { writeJSON(w, status, e) }

// payerParam reads the only query parameter the route takes, payer, given
// at most once.
func payerParam(r *http.Request) (string, *api.Error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		e := api.NewError(abi.InvalidArgument, "malformed query: "+err.Error())
		return "", &e
	}
	for k, vs := range q {
		if k != "payer" || len(vs) != 1 {
			e := api.NewError(abi.InvalidArgument, fmt.Sprintf("the only query parameter is payer, once (got %q)", k))
			return "", &e
		}
	}
	return q.Get("payer"), nil
}

// writeResult writes a refused reservation as every route writes a
// result: its status (429 for a QUOTA_EXCEEDED that waiting cures, with
// Retry-After in whole seconds; 403 for one no wait cures).
func writeResult(w http.ResponseWriter, res kernel.Result) {
	if res.Code == abi.QuotaExceeded && res.Retriable && res.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(res.RetryAfter.Seconds())), 10))
	}
	writeJSON(w, api.ResultStatus(res), api.ResultOf(res))
}
