// Package mcp serves kernelhost to LLM agents over the Model Context
// Protocol (MCP), built on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk). It is a client of the HTTP API
// (package client), never of the kernel itself: every tool call and every
// resource read is one request of the HTTP API with one principal's bearer
// token, so the server holds no authority beyond that token. No tool takes a
// caller: New refuses a tool whose input schema names one (CheckInputSchema),
// and every input schema refuses properties it does not declare.
//
// Over stdio (kernelhost mcp) the token is the one the command was started
// with. Over streamable HTTP (kernelhost mcp --http) the server holds no
// token at all: each HTTP request carries its caller's own kernelhost token
// as its bearer token, which the server passes on.
//
// Tools that act (read, write, edit, delete, invoke) carry max_cost, the most
// the principal agrees to pay for the action's contract decision; a call
// that gives none gets Config.DefaultMaxCost (0 by default: any price is
// refused with COST_LIMIT_EXCEEDED, naming the price, so that a model pays
// only what it explicitly agreed to). Every acting tool carries a request_id
// (one is made when the call gives none, and returned): sending the same
// call again with it returns the first result and applies nothing twice.
// A failure is a tool result with isError and a JSON body that says what to
// do (ErrorBody).
package mcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
)

// Name is the server's name in the MCP handshake.
const Name = "kernelhost"

// Config configures a Server.
type Config struct {
	// Client is the API client, with its token, that every tool call uses:
	// the stdio mode. Nil for the HTTP mode, where each HTTP request's
	// bearer token is used with a client of Server.
	Client *client.Client
	// Server is the kernelhost server's URL (HTTP mode).
	Server string
	// HTTPClient carries the HTTP mode's requests to Server (nil: a client
	// of its own).
	HTTPClient *http.Client
	// DefaultMaxCost is the max_cost of a call that gives none. The zero
	// value refuses every price: a model pays only what it agreed to in the
	// call.
	DefaultMaxCost int64
	// MaxCostCeiling is the most max_cost a call may give; negative means
	// no ceiling. The zero value allows no price at all (with
	// DefaultMaxCost 0: a server that never pays).
	MaxCostCeiling int64
	// Version is the version reported in the handshake.
	Version string
	// RequestID makes the request_id of a call that gives none; nil means
	// "mcp-" and 24 random hex digits.
	RequestID func() string
}

// Server is an MCP server over one kernelhost server.
type Server struct {
	cfg   Config
	mcp   *gomcp.Server
	tools []string
}

// instructions are sent to the client in the handshake; hosts show them to
// the model.
const instructions = `kernelhost is a world of principals acting on artifacts. You act as one principal, the
owner of this server's token; no tool can act as anyone else. Every action on an artifact is
judged by the artifact's access contract, which may allow or deny it and set a price in scrip.
Acting tools take max_cost: the most scrip you agree to pay for that call (default ` + "%d" + `). A higher
price fails with COST_LIMIT_EXCEEDED and charges nothing: use explain to see a price first.
Failures are JSON with error_code, retriable, retry_after_ns and a hint that says what to do.
Artifacts you may read are resources: kernelhost://artifact/{id}.`

// New returns a server with every tool and the artifact resources.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		if _, err := client.ParseServer(cfg.Server); err != nil {
			return nil, err
		}
	}
	if cfg.DefaultMaxCost < 0 {
		return nil, fmt.Errorf("mcp: default max_cost %d: give 0 or more", cfg.DefaultMaxCost)
	}
	if cfg.MaxCostCeiling >= 0 && cfg.DefaultMaxCost > cfg.MaxCostCeiling {
		return nil, fmt.Errorf("mcp: default max_cost %d is above the ceiling %d", cfg.DefaultMaxCost, cfg.MaxCostCeiling)
	}
	if cfg.RequestID == nil {
		cfg.RequestID = randomRequestID
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &Server{cfg: cfg}
	s.mcp = gomcp.NewServer(&gomcp.Implementation{Name: Name, Title: "kernelhost", Version: cfg.Version}, &gomcp.ServerOptions{
		Instructions: fmt.Sprintf(instructions, cfg.DefaultMaxCost),
		// Tools and resources are fixed: no list_changed to announce.
		Capabilities: &gomcp.ServerCapabilities{
			Tools:     &gomcp.ToolCapabilities{},
			Resources: &gomcp.ResourceCapabilities{},
		},
	})
	if err := s.addTools(); err != nil {
		return nil, err
	}
	s.addResources()
	return s, nil
}

// MCP returns the SDK's server, to connect to a transport.
func (s *Server) MCP() *gomcp.Server { return s.mcp }

// Tools returns the names of the tools, in the order they were added.
func (s *Server) Tools() []string { return append([]string(nil), s.tools...) }

// Run serves one client over t (stdio: &gomcp.StdioTransport{}) until it
// disconnects or ctx ends.
func (s *Server) Run(ctx context.Context, t gomcp.Transport) error { return s.mcp.Run(ctx, t) }

// randomRequestID returns "mcp-" and 24 random hex digits: 96 bits, so that
// two calls never share one.
func randomRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "mcp-" + hex.EncodeToString(b[:])
}

// forbiddenArgs are argument names that would say who acts or who pays. No
// tool may take one: the caller is the token's principal, and a payer other
// than the caller comes only from a contract and that payer's consent.
var forbiddenArgs = []string{"caller", "caller_id", "as", "act_as", "acting_as", "on_behalf_of", "principal_as", "payer", "from", "created_by", "token"}

// CheckInputSchema refuses the input schema of a tool that names who acts
// or pays (caller, as, payer, from, ...: forbiddenArgs, in any case) at any
// depth, or that takes properties it does not declare. New applies it to
// every tool.
func CheckInputSchema(tool string, s *jsonschema.Schema) error {
	if s == nil {
		return fmt.Errorf("mcp: tool %s has no input schema", tool)
	}
	var walk func(path string, s *jsonschema.Schema) error
	walk = func(path string, s *jsonschema.Schema) error {
		if s == nil {
			return nil
		}
		for name, p := range s.Properties {
			for _, f := range forbiddenArgs {
				if strings.EqualFold(name, f) {
					return fmt.Errorf("mcp: tool %s takes argument %q: no tool may name who acts or pays (the caller is the token's principal)", tool, path+name)
				}
			}
			if err := walk(path+name+".", p); err != nil {
				return err
			}
		}
		return walk(path, s.Items)
	}
	if err := walk("", s); err != nil {
		return err
	}
	if s.Type != "object" || s.AdditionalProperties == nil || s.AdditionalProperties.Not == nil {
		return fmt.Errorf("mcp: tool %s: the input schema must be an object that refuses undeclared properties", tool)
	}
	return nil
}

// clientFor returns the client a request acts with: the configured one
// (stdio), or one with the HTTP request's own bearer token.
func (s *Server) clientFor(extra *gomcp.RequestExtra) (*client.Client, error) {
	if s.cfg.Client != nil {
		return s.cfg.Client, nil
	}
	var h http.Header
	if extra != nil {
		h = extra.Header
	}
	tok, ok := bearer(h)
	if !ok {
		return nil, &toolError{body: newErrorBody(abi.Unauthenticated,
			"the HTTP request carries no kernelhost token", "send your kernelhost token as 'Authorization: Bearer kh_...' with every request to this MCP server")}
	}
	c, err := client.New(s.cfg.Server, tok, s.cfg.HTTPClient)
	if err != nil {
		return nil, &toolError{body: newErrorBody(abi.Unauthenticated, err.Error(), "send your kernelhost token exactly as it was printed (kh_ and 64 hex digits)")}
	}
	return c, nil
}

// bearer returns the bearer token of an Authorization header.
func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// toolError is a failure with its body, as a tool result shows it.
type toolError struct{ body ErrorBody }

func (e *toolError) Error() string { return e.body.ErrorCode + ": " + e.body.Message }

// errorOf turns any failure into a body: a toolError's own, a server's
// answer (*client.Error) with its code, anything else INTERNAL.
func errorOf(err error, requestID string) ErrorBody {
	var te *toolError
	var ce *client.Error
	var b ErrorBody
	switch {
	case errors.As(err, &te):
		b = te.body
	case errors.As(err, &ce):
		b = bodyOfAPIError(ce.API)
		if ce.RetryAfter > 0 {
			b.RetryAfterNS = ce.RetryAfter.Nanoseconds()
		}
		if ce.Status == 0 && ce.Code() == abi.Unavailable {
			b.Hint = "the kernelhost server could not be reached: wait a few seconds and call again" + sameRequest(requestID)
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		b = newErrorBody(abi.Unavailable, err.Error(), "")
	default:
		b = bodyOfAPIError(api.ErrorOf(err))
	}
	if b.RequestID == "" {
		b.RequestID = requestID
	}
	if b.Hint == "" {
		b.Hint = hint(b)
	}
	return b
}
