package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Layout of a data directory:
//
//	<dir>/store          the Badger store: principals, artifacts, ledger, events
//	<dir>/wazero-cache   wazero's compilation cache, safe to delete
//	                     ($KERNELHOST_WAZERO_CACHE instead, when set)
//	<dir>/auth.json      token hashes (0600), written atomically; its presence
//	                     marks a complete world (init writes it last)
func storeDir(dir string) string { return filepath.Join(dir, "store") }
func cacheDir(dir string) string { return demo.CacheDir(dir) }
func authPath(dir string) string { return filepath.Join(dir, "auth.json") }

// world is an open world: store, host, kernel and tokens.
type world struct {
	dir  string
	st   store.Store
	host *host.Host
	k    *kernel.Kernel
	auth *auth.Store
}

// exists reports whether anything of a world is at dir.
func worldExists(dir string) bool {
	for _, p := range []string{storeDir(dir), authPath(dir)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// open opens the world at g.dataDir.
func (g *globals) open(ctx context.Context) (*world, error) {
	dir := g.dataDir
	a, err := auth.Load(authPath(dir))
	if errors.Is(err, auth.ErrNotFound) {
		if _, serr := os.Stat(storeDir(dir)); serr == nil {
			return nil, fmt.Errorf("the world at %s is incomplete (no auth.json: was init interrupted?): run 'kernelhost init --force' to start over", dir)
		}
		return nil, fmt.Errorf("no world at %s: run 'kernelhost init' first", dir)
	}
	if err != nil {
		return nil, err
	}
	w, err := g.openStore(ctx, dir)
	if err != nil {
		return nil, err
	}
	w.auth = a
	return w, nil
}

// openStore opens the store, host and kernel of dir, creating the store if
// it is missing.
func (g *globals) openStore(ctx context.Context, dir string) (*world, error) {
	st, err := store.OpenBadger(storeDir(dir), store.BadgerOptions{Logger: g.log})
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			return nil, fmt.Errorf("the world at %s is in use by another process (is 'kernelhost serve' running?): stop it, or use the HTTP API", dir)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	h, err := host.New(ctx, host.DefaultConfig().WithCacheDir(cacheDir(dir)))
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: h, Clock: time.Now, DefaultContract: genesis.DefaultContract})
	if err != nil {
		_ = h.Close(ctx)
		_ = st.Close()
		return nil, err
	}
	return &world{dir: dir, st: st, host: h, k: k}, nil
}

// close closes the kernel (waiting for actions in flight), the host and the
// store.
func (w *world) close() error {
	ctx := context.Background()
	return errors.Join(w.k.Close(ctx), w.host.Close(ctx), w.st.Close())
}

// wipe removes every part of the world at dir, and nothing else: a shared
// compilation cache ($KERNELHOST_WAZERO_CACHE) outside dir is left alone, as
// other worlds use it.
func wipe(dir string) error {
	for _, p := range []string{authPath(dir), storeDir(dir), filepath.Join(dir, "wazero-cache")} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// withWorld opens the world, runs fn and closes it.
func (g *globals) withWorld(ctx context.Context, fn func(w *world) error) error {
	w, err := g.open(ctx)
	if err != nil {
		return err
	}
	ferr := fn(w)
	if cerr := w.close(); ferr == nil && cerr != nil {
		return fmt.Errorf("close world: %w", cerr)
	}
	return ferr
}
