package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// Chat answers an executable's LLM host call for caller (kernel.LLMGateway:
// serve sets the gateway on its kernel with SetLLMGateway). It is the
// non-streaming POST /v1/llm/chat, in this process: the same request
// checks, reservation (capped at maxCost micro-dollars), forwarding,
// settlement, audit event and metrics. The kernel calls it outside any
// transaction and keeps the answer on the invoking action's tape.
func (g *Gateway) Chat(ctx context.Context, caller, token string, request []byte, maxCost int64) (kernel.LLMAnswer, error) {
	if int64(len(request)) > g.cfg.MaxBodyBytes {
		return kernel.LLMAnswer{}, &kernel.Error{Code: abi.InvalidArgument, Msg: fmt.Sprintf("the LLM request exceeds %d bytes: send a shorter prompt", g.cfg.MaxBodyBytes)}
	}
	req, e := parseChat(request, g.cfg.Prices, g.cfg.DefaultMaxTokens)
	if e != nil {
		return kernel.LLMAnswer{}, apiErr(*e)
	}
	if req.stream {
		return kernel.LLMAnswer{}, &kernel.Error{Code: abi.InvalidArgument, Msg: "an executable's LLM call is answered whole: leave out stream"}
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/llm/chat", bytes.NewReader(request))
	if err != nil {
		return kernel.LLMAnswer{}, &kernel.Error{Code: abi.Internal, Msg: "build the call: " + err.Error()}
	}
	var rec recorder
	g.serve(&rec, r, caller, token, req, maxCost)
	if rec.status < 200 || rec.status > 299 {
		var ae api.Error
		if json.Unmarshal(rec.body.Bytes(), &ae) != nil || ae.ErrorCode == "" {
			ae = api.NewError(abi.Unavailable, fmt.Sprintf("the LLM gateway answered %d", rec.status))
		}
		return kernel.LLMAnswer{}, apiErr(ae)
	}
	return AnswerOf(rec.Header(), rec.body.Bytes()), nil
}

// AnswerOf is a non-streaming answer of POST /v1/llm/chat as the kernel
// and clients keep it: the provider's JSON body and what the call was
// charged, from the answer's headers (HeaderInputTokens, HeaderOutputTokens,
// HeaderCost, HeaderEvent; a missing one reads 0).
func AnswerOf(h http.Header, body []byte) kernel.LLMAnswer {
	num := func(name string) int64 {
		n, _ := strconv.ParseInt(h.Get(name), 10, 64)
		return n
	}
	ev, _ := strconv.ParseUint(h.Get(HeaderEvent), 10, 64)
	return kernel.LLMAnswer{Response: body, InputTokens: num(HeaderInputTokens), OutputTokens: num(HeaderOutputTokens),
		Cost: num(HeaderCost), Event: ev}
}

// apiErr is e as a kernel error, its code kept.
func apiErr(e api.Error) error {
	code, ok := abi.ParseCode(e.ErrorCode)
	if !ok {
		code = abi.Unavailable
	}
	return &kernel.Error{Code: code, Msg: e.Message}
}

// recorder is the in-process http.ResponseWriter Chat serves into.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.h == nil {
		r.h = http.Header{}
	}
	return r.h
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
