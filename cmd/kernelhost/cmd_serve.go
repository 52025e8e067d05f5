package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
)

func newServeCmd(g *globals) *cobra.Command {
	var addr string
	var timeout, grace time.Duration
	var lf llmFlags
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT]",
		Short: "Serve the HTTP API (see docs/http.md)",
		Long: `serve opens the world and answers the HTTP API: JSON under /v1, bearer tokens
(from init and 'principal create'), /healthz and /metrics (Prometheus text).
The caller of every action is the principal whose token authenticated it.

With --store (a PostgreSQL URL) any number of serve processes, on one
machine or many, serve the same world: everything of the world is in the
database (principals, artifacts, ledger, quotas and rate windows, events,
tokens), so a token issued through one node works on every node at once.
Each node keeps its own compilation cache, in --data-dir.

With --llm-endpoint URL (any OpenAI-compatible chat-completions API) and
--llm-prices FILE it serves POST /v1/llm/chat: principals' chat completions,
each reserving llm_rate and llm_budget before it is sent and charged what the
provider reports. The API key comes from the environment variable named by
--llm-key-env (default KERNELHOST_LLM_API_KEY), never from the command line.

On SIGINT or SIGTERM it stops accepting connections, finishes the requests
in flight (up to --grace), then closes the world.

With --record the world keeps every input it accepts, in order (its
records: 'kernelhost replay' re-executes them and checks every result); a
world that holds records goes on recording without it (--record=false
stops it), and POST /v1/explain is refused (UNAVAILABLE) while it records.
GET /v1/snapshot gives the admin a snapshot of the world (see 'kernelhost
snapshot').

Logs are structured
(log/slog) on stderr; --log-level info logs every request.`,
		Example: `  kernelhost serve
  kernelhost serve --addr 0.0.0.0:8080 --log-level info
  KERNELHOST_STORE=postgres://kernelhost@db:5432/world kernelhost serve --addr 0.0.0.0:8080
  curl -s -H "Authorization: Bearer $TOKEN" localhost:8080/v1/principals
  KERNELHOST_LLM_API_KEY=sk-... kernelhost serve --llm-endpoint https://api.openai.com/v1 --llm-prices prices.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := g.localOnly(cmd, "it is the server"); err != nil {
				return err
			}
			w, err := g.open(ctx, lockExclusive)
			if err != nil {
				return err
			}
			defer func() {
				if err := w.close(); err != nil {
					g.log.Error("close world", "err", err)
				}
			}()
			gw, err := lf.gateway(cmd, w.k, g.log)
			if err != nil {
				return err
			}
			srv, err := server.New(server.Config{Kernel: w.k, Auth: w.auth, Pools: w.host, Logger: g.log, RequestTimeout: timeout, LLM: gw, Store: w.st})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w: pick another --addr", addr, err)
			}
			hs := &http.Server{
				Handler:           srv,
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       timeout + 10*time.Second,
				WriteTimeout:      timeout + 10*time.Second,
				IdleTimeout:       2 * time.Minute,
				MaxHeaderBytes:    64 << 10,
			}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			if w.lock != nil {
				// Commands this server keeps out of the data directory are
				// told to come through it.
				if err := w.lock.setServer(w.dir, serveURL(ln.Addr())); err != nil {
					g.log.Warn("record the server's address in the lock", "err", err)
				}
			}
			g.log.Info("serving", "addr", ln.Addr().String(), "world", w.where, "data_dir", w.dir)
			fmt.Fprintf(g.errOut, "kernelhost: serving %s on http://%s (Ctrl-C to stop)\n", w.where, ln.Addr())
			select {
			case err := <-errc:
				return fmt.Errorf("serve: %w", err)
			case <-ctx.Done():
			}
			fmt.Fprintln(g.errOut, "kernelhost: shutting down, finishing requests in flight")
			g.log.Info("shutting down: finishing requests in flight", "grace", grace)
			sctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			fmt.Fprintln(g.errOut, "kernelhost: stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on")
	cmd.Flags().DurationVar(&timeout, "request-timeout", server.DefaultRequestTimeout, "bound on one request's kernel work")
	cmd.Flags().DurationVar(&grace, "grace", 30*time.Second, "how long shutdown waits for requests in flight")
	lf.register(cmd.Flags())
	g.recordFlag(cmd, "record every input the world accepts, for 'kernelhost replay' (a world that holds records records without it; --record=false: not this time)")
	return cmd
}

// serveURL is the base URL of a server listening at addr: a wildcard
// address (0.0.0.0, ::) is reached on this machine at the loopback.
func serveURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
