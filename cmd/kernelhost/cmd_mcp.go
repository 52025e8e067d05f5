package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/mcp"
)

// newMCPCmd is 'kernelhost mcp': the MCP server for LLM agents, a client of
// a running server (docs/agents.md "Connecting an LLM agent through MCP").
func newMCPCmd(g *globals) *cobra.Command {
	var (
		token    string
		httpAddr string
		maxCost  int64
		ceiling  int64
	)
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve an LLM agent over the Model Context Protocol, as the token's principal",
		Long: `mcp serves kernelhost's actions and queries as MCP tools, and the artifacts the
principal may read as resources (kernelhost://artifact/{id}), to an MCP client such as
Claude Desktop or an agent framework. It is a client of a running server (--server URL,
$KERNELHOST_SERVER, or --context): every tool call is one request of the HTTP API with the
token, so it can do exactly what the token's principal can and nothing more. No tool takes a
caller.

By default it speaks MCP over stdin and stdout (the client starts it as a command), acting
with --token (or $KERNELHOST_TOKEN, or the context's token). With --http ADDR it serves MCP's
streamable HTTP transport at http://ADDR/mcp instead, holding no token: every HTTP request
brings its caller's own token as 'Authorization: Bearer kh_...'.

Acting tools (read, write, edit, delete, invoke) take max_cost, the most the principal pays
for the call's contract decision. A call without one gets --max-cost (default 0: any price
is refused with COST_LIMIT_EXCEEDED, so the model pays only what it agreed to in the call);
--max-cost-ceiling caps what a call may agree to. Every acting call carries a request_id
(made when absent) so that a call sent again is never applied twice.`,
		Example: `  KERNELHOST_TOKEN=kh_... kernelhost mcp --server http://127.0.0.1:8080
  kernelhost mcp --server https://kh.example --token kh_... --max-cost 10 --max-cost-ceiling 100
  kernelhost mcp --context alice@prod
  kernelhost mcp --server http://127.0.0.1:8080 --http 127.0.0.1:8090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := mcp.Config{DefaultMaxCost: maxCost, MaxCostCeiling: ceiling, Version: mcpVersion()}
			if maxCost < 0 {
				return usagef("--max-cost %d: give 0 or more", maxCost)
			}
			if ceiling >= 0 && maxCost > ceiling {
				return usagef("--max-cost %d is above --max-cost-ceiling %d", maxCost, ceiling)
			}
			if httpAddr != "" {
				if cmd.Flags().Changed("token") {
					return usagef("--http holds no token: each MCP client sends its own ('Authorization: Bearer kh_...'); leave --token out")
				}
				server, err := mcpServerURL(g, cmd)
				if err != nil {
					return err
				}
				cfg.Server = server
				ca := g.caPath() // else the context's, when a context named the server
				if ca == "" && g.resolved && g.target != nil {
					ca = g.target.caFile
				}
				if cfg.HTTPClient, err = client.HTTPClient(ca); err != nil {
					return usageError{err.Error() + ": fix --ca-file, $" + caEnv + " or the context's ca_file"}
				}
				return serveMCPHTTP(cmd.Context(), g, cfg, httpAddr, mcpPath)
			}
			c, err := mcpClient(g, cmd, token)
			if err != nil {
				return err
			}
			cfg.Client = c
			if err := checkMCPToken(cmd.Context(), g, c); err != nil {
				return err
			}
			s, err := mcp.New(cfg)
			if err != nil {
				return err
			}
			// stdout carries MCP only: logs and warnings go to stderr.
			t := &gomcp.IOTransport{Reader: io.NopCloser(cmd.InOrStdin()), Writer: nopWriteCloser{g.out}}
			err = s.Run(cmd.Context(), t)
			if err != nil && cmd.Context().Err() != nil {
				return nil // interrupted
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&token, "token", "", "the principal's token (default $KERNELHOST_TOKEN, or the context's); prefer the environment: a command line is visible to other users of the machine")
	f.StringVar(&httpAddr, "http", "", "serve MCP's streamable HTTP transport at this address (e.g. 127.0.0.1:8090, path /mcp) instead of stdio; each request brings its own token")
	f.Int64Var(&maxCost, "max-cost", 0, "the max_cost of a tool call that gives none: 0 refuses any price")
	f.Int64Var(&ceiling, "max-cost-ceiling", -1, "the most max_cost a tool call may give (-1: no ceiling)")
	return cmd
}

// mcpPath is where --http serves MCP.
const mcpPath = "/mcp"

// nopWriteCloser lets the command's stdout be the transport's writer
// without the transport closing it.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// mcpVersion is the version the MCP handshake reports.
func mcpVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// mcpServerURL returns the server --server, $KERNELHOST_SERVER or the
// context names.
func mcpServerURL(g *globals, cmd *cobra.Command) (string, error) {
	if s := strings.TrimSpace(g.server); cmd.Flags().Changed("server") && s != "" {
		return s, nil
	}
	if s := strings.TrimSpace(os.Getenv(serverEnv)); s != "" && !cmd.Flags().Changed("context") {
		return s, nil
	}
	if t, err := g.remote(cmd); err != nil {
		return "", err
	} else if t != nil {
		return t.server, nil
	}
	return "", usagef("kernelhost mcp is a client of a running server: give --server URL (or $%s), or --context", serverEnv)
}

// mcpClient returns the client of the stdio mode: --token with the server
// of --server or $KERNELHOST_SERVER, or the client mode's target.
func mcpClient(g *globals, cmd *cobra.Command, token string) (*client.Client, error) {
	if cmd.Flags().Changed("token") {
		if cmd.Flags().Changed("context") {
			return nil, usagef("give --token or --context, not both")
		}
		server, err := mcpServerURL(g, cmd)
		if err != nil {
			return nil, err
		}
		return g.newClient(&remoteTarget{server: server, token: strings.TrimSpace(token)})
	}
	t, err := g.remote(cmd)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, usagef("kernelhost mcp is a client of a running server: give --server URL with --token or $%s, or --context", tokenEnv)
	}
	return g.newClient(t)
}

// checkMCPToken asks the server whom the token stands for before serving:
// the admin token (which acts as no principal) and a token the server
// refuses end the command; a server not reachable yet is only a warning,
// since an MCP client may start before it.
func checkMCPToken(ctx context.Context, g *globals, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := c.Whoami(ctx)
	var ce *client.Error
	switch {
	case err == nil && id.Admin:
		return usagef("the admin token acts as no principal: give kernelhost mcp a principal's token")
	case err == nil:
		fmt.Fprintf(g.errOut, "kernelhost: MCP over stdio as %s at %s\n", id.Principal, c.Server())
		return nil
	case errors.As(err, &ce) && ce.Code() == abi.Unavailable:
		fmt.Fprintf(g.errOut, "kernelhost: warning: %v; serving anyway, tool calls fail UNAVAILABLE until it answers\n", err)
		return nil
	}
	return err
}

// serveMCPHTTP serves MCP's streamable HTTP transport at addr until ctx
// ends, then lets requests in flight finish.
func serveMCPHTTP(ctx context.Context, g *globals, cfg mcp.Config, addr, path string) error {
	if _, err := client.ParseServer(cfg.Server); err != nil {
		return usageError{err.Error()}
	}
	s, err := mcp.New(cfg)
	if err != nil {
		return err
	}
	h, err := s.HTTPHandler()
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopbackHost(host) {
		fmt.Fprintf(g.errOut, "kernelhost: warning: MCP over plain http on %s: tokens cross the network unencrypted; put TLS in front of it\n", ln.Addr())
	}
	fmt.Fprintf(g.errOut, "kernelhost: MCP (streamable HTTP) at http://%s%s for %s\n", ln.Addr(), path, cfg.Server)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
