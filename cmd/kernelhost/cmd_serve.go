package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
)

func newServeCmd(g *globals) *cobra.Command {
	var addr, tlsCert, tlsKey string
	var insecureListen bool
	var timeout, grace time.Duration
	var lf llmFlags
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--tls-cert FILE --tls-key FILE]",
		Short: "Serve the HTTP API (see docs/http.md)",
		Long: `serve opens the world and answers the HTTP API: JSON under /v1, bearer tokens
(from init and 'principal create'), /healthz and /metrics (Prometheus text).
The caller of every action is the principal whose token authenticated it.

With --tls-cert and --tls-key (PEM files: the certificate chain and its
private key) it serves HTTPS (TLS 1.2 or later) on any address. Without
them it serves plain HTTP, where tokens travel in the clear, and so only on
a loopback address (127.0.0.1, ::1, localhost) unless --insecure-listen is
given (behind a TLS-terminating proxy on the same network, say); it says
which at start. Clients of a private CA or a self-signed certificate give
it with --ca-file (or $KERNELHOST_CA_FILE, or a context's ca_file).
Failed authentication is limited per client address (429 QUOTA_EXCEEDED
with Retry-After past 20 tries of unknown tokens a minute).

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
  kernelhost serve --addr 0.0.0.0:8443 --tls-cert server.crt --tls-key server.key --log-level info
  KERNELHOST_STORE=postgres://kernelhost@db:5432/world kernelhost serve --addr 0.0.0.0:8443 --tls-cert server.crt --tls-key server.key
  curl -s -H "Authorization: Bearer $TOKEN" localhost:8080/v1/principals
  kernelhost --server https://kh.example:8443 --ca-file ca.crt principal list
  KERNELHOST_LLM_API_KEY=sk-... kernelhost serve --llm-endpoint https://api.openai.com/v1 --llm-prices prices.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := g.localOnly(cmd, "it is the server"); err != nil {
				return err
			}
			tc, err := serveTLS(tlsCert, tlsKey) // before the world: a wrong file costs nothing
			if err != nil {
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
			if err := plainHTTPCheck(g, ln, tc != nil, insecureListen); err != nil {
				_ = ln.Close()
				return err
			}
			scheme := "http"
			if tc != nil {
				ln, scheme = tls.NewListener(ln, tc), "https"
			}
			hs := &http.Server{
				Handler:           srv,
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       timeout + 10*time.Second,
				WriteTimeout:      timeout + 10*time.Second,
				IdleTimeout:       2 * time.Minute,
				MaxHeaderBytes:    64 << 10,
				// net/http's own complaints (a TLS handshake that
				// failed: plain HTTP to the HTTPS port) go to the log.
				ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
			}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(ln) }()
			if w.lock != nil {
				// Commands this server keeps out of the data directory are
				// told to come through it.
				if err := w.lock.setServer(w.dir, schemeURL(ln.Addr(), scheme)); err != nil {
					g.log.Warn("record the server's address in the lock", "err", err)
				}
			}
			g.log.Info("serving", "addr", ln.Addr().String(), "tls", tc != nil, "world", w.where, "data_dir", w.dir)
			how := "TLS"
			if tc == nil {
				how = "plain HTTP: give --tls-cert and --tls-key to serve HTTPS"
			}
			fmt.Fprintf(g.errOut, "kernelhost: serving %s on %s://%s (%s; Ctrl-C to stop)\n", w.where, scheme, ln.Addr(), how)
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
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (without TLS: a loopback one, unless --insecure-listen)")
	cmd.Flags().StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; the chain, leaf first); with --tls-key")
	cmd.Flags().StringVar(&tlsKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	cmd.Flags().BoolVar(&insecureListen, "insecure-listen", false, "serve plain HTTP on a non-loopback --addr: tokens cross the network in the clear (behind a TLS proxy only)")
	cmd.Flags().DurationVar(&timeout, "request-timeout", server.DefaultRequestTimeout, "bound on one request's kernel work")
	cmd.Flags().DurationVar(&grace, "grace", 30*time.Second, "how long shutdown waits for requests in flight")
	lf.register(cmd.Flags())
	g.recordFlag(cmd, "record every input the world accepts, for 'kernelhost replay' (a world that holds records records without it; --record=false: not this time)")
	return cmd
}

// serveTLS loads --tls-cert and --tls-key: nil for neither, a usage
// error for one without the other or files that are no key pair.
func serveTLS(cert, key string) (*tls.Config, error) {
	switch {
	case cert == "" && key == "":
		return nil, nil
	case cert == "" || key == "":
		return nil, usagef("give --tls-cert and --tls-key together (the certificate and its private key, PEM)")
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, usagef("--tls-cert %s / --tls-key %s: %v", cert, key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// plainHTTPCheck refuses plain HTTP on a listener ln that is not on a
// loopback address (0.0.0.0, a LAN address, a name that resolved to one)
// unless insecure, and warns when insecure lets it through: a bearer
// token sent over plain HTTP can be read by anyone on the path.
func plainHTTPCheck(g *globals, ln net.Listener, tls, insecure bool) error {
	if tls {
		return nil
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	if !insecure {
		return usagef("refusing to serve plain HTTP on %s, which is not a loopback address: bearer tokens would cross the network in the clear; give --tls-cert and --tls-key, or --insecure-listen (behind a TLS-terminating proxy)", ln.Addr())
	}
	fmt.Fprintf(g.errOut, "kernelhost: warning: --insecure-listen: serving plain HTTP on %s, beyond this machine: bearer tokens cross the network in the clear\n", ln.Addr())
	g.log.Warn("plain HTTP on a non-loopback address (--insecure-listen)", "addr", ln.Addr().String())
	return nil
}

// serveURL is the base URL of a plain HTTP server listening at addr (see
// schemeURL).
func serveURL(addr net.Addr) string { return schemeURL(addr, "http") }

// schemeURL is the base URL (scheme http or https) of a server listening
// at addr: a wildcard address (0.0.0.0, ::) is reached on this machine at
// the loopback.
func schemeURL(addr net.Addr, scheme string) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
