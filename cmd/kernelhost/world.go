package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
	"github.com/kernelhost/kernelhost/store/postgres"
)

// A world lives in a store: by default Badger in the data directory, or a
// PostgreSQL database that --store ($KERNELHOST_STORE) names, shared by
// every node that opens it. The store holds everything of the world:
// principals, artifacts, ledger, quotas and rate windows, events, and the
// token hashes (package auth, under x/auth/; x/auth/admin, written by
// init's last transaction, marks a complete world).
//
// Layout of a data directory:
//
//	<dir>/store          the Badger store (not with --store)
//	<dir>/wazero-cache   wazero's compilation cache, per node, safe to
//	                     delete ($KERNELHOST_WAZERO_CACHE instead, when set)
//	<dir>/auth.json      token hashes as kernelhost kept them before they
//	                     moved into the store: imported into the store and
//	                     removed by the first command that opens the world
func storeDir(dir string) string { return filepath.Join(dir, "store") }
func cacheDir(dir string) string { return demo.CacheDir(dir) }
func authPath(dir string) string { return filepath.Join(dir, "auth.json") }

// world is an open world: store, host, kernel and tokens.
type world struct {
	dir   string // data directory: the Badger store (if used) and the compilation cache
	where string // what to call the world in messages: dir, or the redacted --store URL
	st    store.Store
	host  *host.Host
	k     *kernel.Kernel
	auth  *auth.Store // read-only when opened for queries (lockShared)
	lock  *dirLock    // the data directory's lock (lock.go); nil with --store
}

// storeEnv names the environment variable that sets --store.
const storeEnv = "KERNELHOST_STORE"

// storeURL returns the PostgreSQL URL of --store (or $KERNELHOST_STORE), or
// "" for the Badger store in --data-dir. Anything else is a usage error.
//
// NB: the variable is read here rather than as the flag's default, so that
// --help never prints a URL that may hold a password.
func (g *globals) storeURL() (string, error) {
	s := g.store
	if s == "" {
		s = os.Getenv(storeEnv)
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		return s, nil
	}
	return "", usagef("--store %s: use a postgres:// URL (postgres://USER@HOST:5432/DB?sslmode=verify-full), or leave it out for the Badger store in --data-dir", redact(s))
}

// redact returns the connection string s with any password replaced, for
// messages and logs.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(a connection string that is not a URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// worldExists reports whether anything of a Badger world is at dir.
func worldExists(dir string) bool {
	for _, p := range []string{storeDir(dir), authPath(dir)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// openKV opens the world's store: PostgreSQL at pg, or else the Badger
// store of dir (created if missing), read-only when readOnly. where names
// it in messages. The caller holds dir's lock (lock.go).
func (g *globals) openKV(dir, pg string, readOnly bool) (st store.Store, where string, err error) {
	if pg != "" {
		where = redact(pg)
		st, err = postgres.Open(pg, postgres.Options{})
		if err != nil {
			return nil, where, fmt.Errorf("open store %s: %w", where, err)
		}
		return st, where, nil
	}
	st, err = store.OpenBadger(storeDir(dir), store.BadgerOptions{Logger: g.log, ReadOnly: readOnly})
	if err != nil {
		if strings.Contains(err.Error(), "directory lock") {
			// We hold dir's lock, so the holder does not take it: an
			// older kernelhost, or a program embedding the kernel.
			return nil, dir, fmt.Errorf("the store of the world at %s is open in another process that does not take %s (an older kernelhost, or a program embedding the kernel): stop it, or reach the world through its HTTP API (--server)", dir, lockPath(dir))
		}
		return nil, dir, fmt.Errorf("open store: %w", err)
	}
	return st, dir, nil
}

// empty reports whether st holds no key at all.
func empty(st store.Store) (bool, error) {
	none := true
	err := st.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(_, _ []byte) error {
			none = false
			return store.ErrStop
		})
	})
	return none, err
}

// open opens the world of --store, or of --data-dir holding its lock in
// mode: a command that only reads (lockShared) opens the Badger store
// read-only, so that any number run at once; one that writes
// (lockExclusive) runs alone. A PostgreSQL world takes no lock: its
// database serves every process at once.
func (g *globals) open(ctx context.Context, mode lockMode) (*world, error) {
	pg, err := g.storeURL()
	if err != nil {
		return nil, err
	}
	dir := g.dataDir
	if pg != "" {
		return g.openStore(ctx, dir, pg, lockExclusive, nil)
	}
	if !worldExists(dir) {
		return nil, fmt.Errorf("no world at %s: run 'kernelhost init' first", dir)
	}
	if _, err := os.Stat(authPath(dir)); err == nil {
		mode = lockExclusive // the first open imports auth.json: a write
	}
	lock, err := lockDir(dir, mode, g.command, g.wait)
	if err != nil {
		return nil, err
	}
	w, err := g.openStore(ctx, dir, "", mode, lock)
	var final noRetry
	if err != nil && mode == lockShared && !errors.As(err, &final) {
		// A store that a crash left unclean opens read-only only once a
		// read-write open recovered it: do that, alone.
		g.log.Debug("read-only open failed: opening read-write", "err", err)
		_ = lock.release()
		if lock, err = lockDir(dir, lockExclusive, g.command, g.wait); err != nil {
			return nil, err
		}
		w, err = g.openStore(ctx, dir, "", lockExclusive, lock)
	}
	if err != nil {
		_ = lock.release()
		return nil, err
	}
	return w, nil
}

// noRetry marks a failure of openStore that opening read-write would not
// cure.
type noRetry struct{ error }

func (e noRetry) Unwrap() error { return e.error }

// openStore opens the store (PostgreSQL at pg, else dir's Badger store,
// read-only in mode lockShared), the tokens, the host and the kernel. It
// does not release lock when it fails; the world holds it once open.
func (g *globals) openStore(ctx context.Context, dir, pg string, mode lockMode, lock *dirLock) (*world, error) {
	readOnly := pg == "" && mode == lockShared
	st, where, err := g.openKV(dir, pg, readOnly)
	if err != nil {
		return nil, err
	}
	a, err := openAuth(st, dir, pg, where) // with no auth.json it only reads
	if err != nil {
		_ = st.Close()
		return nil, noRetry{err}
	}
	if readOnly {
		qs := &queryStore{Store: st}
		w, err := g.openWorld(ctx, dir, where, qs, false)
		if err != nil {
			return nil, err
		}
		qs.seal() // the kernel is open: from here on nothing writes
		w.auth, w.lock = a, lock
		return w, nil
	}
	w, err := g.openWorld(ctx, dir, where, st, pg != "")
	if err != nil {
		return nil, err
	}
	w.auth, w.lock = a, lock
	return w, nil
}

// openAuth returns the tokens of the world in st, importing a Badger
// world's auth.json first, or says why the world is not complete.
func openAuth(st store.Store, dir, pg, where string) (*auth.Store, error) {
	if pg == "" {
		if _, err := auth.Import(st, authPath(dir)); err != nil {
			return nil, err
		}
	}
	a, err := auth.Open(st)
	if !errors.Is(err, auth.ErrNotFound) {
		return a, err
	}
	if pg != "" {
		none, eerr := empty(st)
		if eerr != nil {
			return nil, fmt.Errorf("read store %s: %w", where, eerr)
		}
		if none {
			return nil, fmt.Errorf("no world in %s: run 'kernelhost init --store URL' first", where)
		}
	}
	// init writes the tokens last: a store without them is a world whose
	// init did not finish.
	return nil, fmt.Errorf("the world at %s is incomplete (no tokens in its store: was init interrupted?): run 'kernelhost init --force' to start over", where)
}

// openWorld opens the host (its compilation cache in dir) and the kernel
// over st; shared says that other nodes may open st at the same time (a
// PostgreSQL world), so that the kernel counts their rate windows too. It
// closes st when it fails.
func (g *globals) openWorld(ctx context.Context, dir, where string, st store.Store, shared bool) (*world, error) {
	h, err := host.New(ctx, host.DefaultConfig().WithCacheDir(cacheDir(dir)))
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	k, err := kernel.Open(ctx, kernel.Config{Store: st, Evaluator: h, Clock: time.Now, DefaultContract: genesis.DefaultContract, SharedStore: shared, Record: g.recording(st)})
	if err != nil {
		_ = h.Close(ctx)
		_ = st.Close()
		return nil, err
	}
	return &world{dir: dir, where: where, st: st, host: h, k: k}, nil
}

// close closes the kernel (waiting for actions in flight), the host and the
// store, then lets go of the data directory's lock.
func (w *world) close() error {
	ctx := context.Background()
	return errors.Join(w.k.Close(ctx), w.host.Close(ctx), w.st.Close(), w.lock.release())
}

// wipe removes every part of the Badger world at dir, and nothing else: a
// shared compilation cache ($KERNELHOST_WAZERO_CACHE) outside dir is left
// alone, as other worlds use it.
func wipe(dir string) error {
	for _, p := range []string{authPath(dir), storeDir(dir), filepath.Join(dir, "wazero-cache")} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// wipeBatch is how many keys one transaction of wipeStore deletes: a
// world's keys may be far more than one transaction may write.
const wipeBatch = 512

// wipeStore deletes every key of st (a PostgreSQL world): the tokens' mark
// of a complete world first, in a transaction of its own, so that a wipe
// that stops half way leaves a world every command calls incomplete.
func wipeStore(st store.Store) error {
	if err := st.Update(func(tx store.Txn) error { return tx.Delete([]byte(auth.Prefix + "admin")) }); err != nil {
		return fmt.Errorf("wipe store: %w", err)
	}
	for {
		var keys [][]byte
		err := st.View(func(tx store.Txn) error {
			return tx.Iterate(nil, nil, func(k, _ []byte) error {
				keys = append(keys, append([]byte(nil), k...))
				if len(keys) == wipeBatch {
					return store.ErrStop
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("wipe store: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		err = st.Update(func(tx store.Txn) error {
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("wipe store: %w", err)
		}
	}
}

// withWorld opens the world to change it (the exclusive lock), runs fn
// and closes it.
func (g *globals) withWorld(ctx context.Context, fn func(w *world) error) error {
	return g.withWorldMode(ctx, lockExclusive, fn)
}

// withWorldMode opens the world holding its lock in mode, runs fn and
// closes it.
func (g *globals) withWorldMode(ctx context.Context, mode lockMode, fn func(w *world) error) error {
	if err := g.refuseRemote(); err != nil {
		return err
	}
	w, err := g.open(ctx, mode)
	if err != nil {
		return err
	}
	ferr := fn(w)
	if cerr := w.close(); ferr == nil && cerr != nil {
		return fmt.Errorf("close world: %w", cerr)
	}
	return ferr
}
