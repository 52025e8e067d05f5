package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/ui"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

func newDemoCmd(g *globals) *cobra.Command {
	var keep, record, serve bool
	var addr string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play a self-contained scenario on a temporary world and print it",
		Long: `demo builds a world on a temporary Badger directory (it ignores --data-dir)
and plays a scenario through the public API: agents are created; alice
deploys a WASM contract that charges for reads and names a sponsor as payer;
reads fail until the sponsor consents, then succeed with the sponsor
charged; a stranger is denied; a private artifact stays private; an agent
exhausts its rate quota (QUOTA_EXCEEDED, retriable), another transfers quota
to it and the same action succeeds; the audit trail ends it.

With --serve it then serves the world it built over HTTP on --addr, the web
dashboard included: it prints the dashboard's URL and a token for the admin
and for each agent, and serves until interrupted (Ctrl-C).`,
		Example: `  kernelhost demo
  kernelhost demo --serve --addr 127.0.0.1:8080
  make demo
  make demo DEMO_FLAGS=--serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "kernelhost-demo-")
			if err != nil {
				return err
			}
			if !keep {
				defer func() { _ = os.RemoveAll(dir) }()
			}
			opts := demo.Options{Record: record}
			if serve {
				opts.Serve = func(ctx context.Context, k *kernel.Kernel, st store.Store, t demo.Tokens) error {
					return serveDemo(ctx, g, addr, k, st, t)
				}
			}
			if err := demo.RunWith(cmd.Context(), g.out, dir, opts); err != nil {
				return err
			}
			if keep {
				fmt.Fprintf(g.out, "the world is kept in %s\n", dir)
				if record {
					fmt.Fprintf(g.out, "replay it: kernelhost replay --recording-dir %s\n", dir)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary world's directory and print where it is")
	cmd.Flags().BoolVar(&serve, "serve", false, "then serve the demo's world over HTTP (the API and the dashboard at /ui/) until interrupted")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "with --serve: the address to listen on")
	cmd.Flags().BoolVar(&record, "record", false, "record every input (explain is then refused), so that 'kernelhost replay --recording-dir' can re-execute the kept world")
	return cmd
}

// serveDemo serves the demo's world k (in st) on addr until ctx ends: it
// prints the tokens the scenario issued (t: the admin's, every principal's
// default token, each agent's scoped one) with the dashboard's URL, and
// shuts down cleanly on interrupt.
func serveDemo(ctx context.Context, g *globals, addr string, k *kernel.Kernel, st store.Store, t demo.Tokens) error {
	ids, admin, toks := t.IDs, t.Admin, t.Default
	srv, err := server.New(server.Config{Kernel: k, Auth: t.Auth, Logger: g.log, Store: st})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w: pick another --addr", addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	base := serveURL(ln.Addr())
	fmt.Fprintf(g.out, "\n== The world, served\n   dashboard: %s%s\n   API:       %s/v1 (docs/http.md)\n   admin token: %s\n", base, ui.Prefix, base, admin)
	for i, id := range ids {
		fmt.Fprintf(g.out, "   token of %-8s %s\n", id+":", toks[i])
		if sc, ok := t.Scoped[id]; ok {
			fmt.Fprintf(g.out, "   scoped token %q of %-8s %s (principal token list %s)\n", demo.ScopedName, id+":", sc, id)
		}
	}
	fmt.Fprintln(g.out, "   sign in to the dashboard with one of them; serving until interrupted (Ctrl-C)")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(g.out, "demo: stopped serving")
	return nil
}
