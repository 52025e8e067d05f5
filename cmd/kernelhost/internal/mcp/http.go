package mcp

import (
	"encoding/json"
	"errors"
	"net/http"

	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
)

// MaxHTTPBody bounds one MCP request over HTTP: a write's content in base64
// within the kernel's JSON action limit, with room for the envelope.
const MaxHTTPBody = 6 << 20

// HTTPHandler serves MCP's streamable HTTP transport, stateless: every
// request stands alone and must carry its caller's own kernelhost token
// ('Authorization: Bearer kh_...'), which every tool call and resource read
// of that request uses. The server therefore holds no token, and reaching
// its port gives no authority. A request without a token is answered 401.
// Requests from a browser page of another origin are refused (Go's
// CrossOriginProtection), and so are requests to a loopback address that
// name another host (the SDK's protection against DNS rebinding).
//
// A server built with a Client (the stdio mode's token) has no HTTP
// handler: it would lend that token to whoever reaches the port.
func (s *Server) HTTPHandler() (http.Handler, error) {
	if s.cfg.Client != nil {
		return nil, errors.New("mcp: a server with a token of its own serves stdio only: over HTTP each request brings its own token")
	}
	h := gomcp.NewStreamableHTTPHandler(func(*http.Request) *gomcp.Server { return s.mcp }, &gomcp.StreamableHTTPOptions{
		Stateless:           true,
		JSONResponse:        true,
		MaxRequestBodyBytes: MaxHTTPBody,
	})
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := bearer(r.Header); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kernelhost"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.NewError(abi.Unauthenticated,
				"send your kernelhost token: 'Authorization: Bearer kh_...' (each request acts as the token's principal)"))
			return
		}
		h.ServeHTTP(w, r)
	})
	return http.NewCrossOriginProtection().Handler(auth), nil
}
