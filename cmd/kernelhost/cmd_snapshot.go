package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// Snapshots and forks (issue 20). 'kernelhost snapshot' writes every entry
// of a world's store, read in one transaction, to one file (store.Dump's
// format: it ends with the entry count and a sha256, so a file cut short
// or altered is refused); 'kernelhost init --from FILE' loads one into an
// empty store: a fork, which goes on from exactly that state. The file
// holds the whole world: artifacts, ledger, events, the token hashes
// (x/auth/), and any input records (R/, cmd_replay.go).

// snapshotOutput is what snapshot prints with --output json.
type snapshotOutput struct {
	File string `json:"file"`
	// World is what was snapshotted: the data directory, the redacted
	// --store URL, or the server.
	World   string `json:"world"`
	Entries int    `json:"entries"`
	Bytes   int64  `json:"bytes"`
	// LastRecord is the number of the last input record in the snapshot
	// (0: none): a replay from it starts after that one.
	LastRecord uint64 `json:"last_record"`
	// StateHash is kernel.StateHash of the snapshot, which a fork of it
	// and a replay to its point have too.
	StateHash string `json:"state_sha256"`
}

func newSnapshotCmd(g *globals) *cobra.Command {
	var file string
	var force bool
	cmd := &cobra.Command{
		Use:   "snapshot --out FILE",
		Short: "Write a consistent snapshot of the world to one file",
		Long: `snapshot writes every entry of the world's store, read in one transaction
(one consistent point), to FILE: principals, artifacts, ledger, quotas,
events, the token hashes, and the input records of a recorded world. It
reads the world in --data-dir (which a server must not hold: then go
through it) or --store, or with --server URL (or a context) asks a running
server for it (GET /v1/snapshot; the admin token, from $KERNELHOST_TOKEN or
the context, as for every command). It then reads the file back, checks it
whole, and prints its entries, bytes, last record and state hash.

'kernelhost init --from FILE' starts a new world from it (a fork), and
'kernelhost replay --from FILE' re-executes a recording from it. The file is
written to a temporary name beside FILE and renamed when complete, readable
by its owner only: it holds the world's every secret but the tokens
themselves (their hashes are in it: a fork accepts the same tokens).`,
		Example: `  kernelhost snapshot --out world.khsnap
  kernelhost --data-dir /srv/world snapshot --out /backup/world-$(date +%F).khsnap
  KERNELHOST_TOKEN=$ADMIN kernelhost --server http://127.0.0.1:8080 snapshot --out world.khsnap`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef(`required flag(s) "out" not set: name the file to write (--out FILE)`)
			}
			if _, err := os.Lstat(file); err == nil && !force {
				return fmt.Errorf("%s exists: give --force to replace it, or another --out", file)
			}
			ctx := cmd.Context()
			t, err := g.remote(cmd)
			if err != nil {
				return err
			}
			var where string
			var dump func(w io.Writer) error
			if t != nil {
				c, err := g.newClient(t)
				if err != nil {
					return err
				}
				where = c.Server()
				dump = func(w io.Writer) error { _, err := c.Snapshot(ctx, w); return err }
			} else {
				dump = func(w io.Writer) error {
					var err error
					where, err = g.dumpLocal(w)
					return err
				}
			}
			out, err := writeSnapshot(file, dump)
			if err != nil {
				return err
			}
			out.World = where
			return g.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "Wrote a snapshot of %s to %s: %d entries, %d bytes\n", out.World, out.File, out.Entries, out.Bytes)
				fmt.Fprintf(w, "  state sha256: %s\n", out.StateHash)
				if out.LastRecord > 0 {
					fmt.Fprintf(w, "  input records: 1..%d (a replay from this snapshot starts at %d)\n", out.LastRecord, out.LastRecord+1)
				}
			})
		},
	}
	cmd.Flags().StringVar(&file, "out", "", "the snapshot file to write")
	cmd.Flags().BoolVar(&force, "force", false, "replace --out if it exists")
	return cmd
}

// dumpLocal writes the snapshot of the world in --store or --data-dir to w
// and returns what to call the world. A Badger world is read under the
// data directory's shared lock, with its store opened read-only; one that
// a crash left unclean, or whose tokens are still in auth.json, is opened
// read-write, alone, as every command does then (world.go).
func (g *globals) dumpLocal(w io.Writer) (string, error) {
	pg, err := g.storeURL()
	if err != nil {
		return "", err
	}
	if pg != "" {
		st, where, err := g.openKV(g.dataDir, pg, false)
		if err != nil {
			return where, err
		}
		_, err = store.Dump(st, w)
		return where, errors.Join(err, st.Close())
	}
	dir := g.dataDir
	if !worldExists(dir) {
		return dir, fmt.Errorf("no world at %s: run 'kernelhost init' first", dir)
	}
	_, legacy := os.Stat(authPath(dir))
	for _, mode := range []lockMode{lockShared, lockExclusive} {
		if mode == lockShared && legacy == nil {
			continue // auth.json is imported into the store first: a write
		}
		lock, err := lockDir(dir, mode, g.command, g.wait)
		if err != nil {
			return dir, err
		}
		st, _, err := g.openKV(dir, "", mode == lockShared)
		if err != nil {
			_ = lock.release()
			if mode == lockShared {
				continue // not clean: a read-write open recovers it
			}
			return dir, err
		}
		if mode == lockExclusive && legacy == nil {
			if _, err := auth.Import(st, authPath(dir)); err != nil {
				return dir, errors.Join(err, st.Close(), lock.release())
			}
		}
		_, err = store.Dump(st, w)
		return dir, errors.Join(err, st.Close(), lock.release())
	}
	return dir, nil // not reached: the exclusive pass returns
}

// writeSnapshot writes the snapshot that dump produces to file, through a
// temporary file beside it (owner-only) that is checked whole and renamed
// when complete; it returns what the file holds.
func writeSnapshot(file string, dump func(w io.Writer) error) (out snapshotOutput, err error) {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return out, err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	cw := &countingWriter{w: f}
	if err := dump(cw); err != nil {
		return out, err
	}
	if err := f.Sync(); err != nil {
		return out, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return out, err
	}
	// Read it back: what is renamed into place is a file that loads.
	st := store.NewMem()
	n, err := store.Load(st, f)
	if err != nil {
		return out, fmt.Errorf("the snapshot written does not read back (%w): nothing was written to %s", err, file)
	}
	out = snapshotOutput{File: file, Entries: n, Bytes: cw.n}
	if out.LastRecord, out.StateHash, err = stateOf(st); err != nil {
		return out, err
	}
	if err := f.Close(); err != nil {
		return out, err
	}
	return out, os.Rename(tmp, file)
}

// stateOf returns the last input record and the state hash (hex) of st.
func stateOf(st store.Store) (uint64, string, error) {
	last, err := kernel.LastRecord(st)
	if err != nil {
		return 0, "", err
	}
	h, err := kernel.StateHash(st)
	if err != nil {
		return 0, "", err
	}
	return last, hex.EncodeToString(h[:]), nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// loadSnapshotFile loads the snapshot file at path into a new in-memory
// store.
func loadSnapshotFile(path string) (store.Store, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := store.NewMem()
	if _, err := store.Load(st, f); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// forkOutput is what 'init --from' prints with --output json.
type forkOutput struct {
	DataDir string `json:"data_dir"`
	// Store is the --store URL, its password redacted; empty for the
	// Badger store in DataDir.
	Store      string `json:"store,omitempty"`
	From       string `json:"from"`
	Entries    int    `json:"entries"`
	LastRecord uint64 `json:"last_record"`
	StateHash  string `json:"state_sha256"`
	// Recording: the new world records its inputs (it holds records, or
	// --record).
	Recording bool `json:"recording"`
	// Tokens is "kept" (the fork accepts the source world's tokens),
	// "new" (--new-tokens: every one replaced) or "issued" (the snapshot
	// held none): with "new" and "issued", AdminToken and Principals are
	// the new ones, shown this once.
	Tokens     string          `json:"tokens"`
	AdminToken string          `json:"admin_token,omitempty"`
	Principals []initPrincipal `json:"principals,omitempty"`
}

// initFromCmd is 'init --from FILE': it creates the world from the
// snapshot and prints what it holds.
func (g *globals) initFromCmd(cmd *cobra.Command, file, genesisFile string, force, newTokens bool) error {
	if genesisFile != "" {
		return usagef("give --from (a snapshot: the world as it was) or --genesis (a new world), not both")
	}
	out, err := g.initFrom(cmd.Context(), file, force, newTokens)
	if err != nil {
		return err
	}
	return g.emit(out, func(w io.Writer) {
		where := out.DataDir
		if out.Store != "" {
			where = out.Store
		}
		fmt.Fprintf(w, "Initialised a world at %s from the snapshot %s: %d entries\n", where, out.From, out.Entries)
		fmt.Fprintf(w, "  state sha256: %s (the snapshot's)\n", out.StateHash)
		if out.Recording {
			fmt.Fprintf(w, "  recording: its inputs are recorded, after the snapshot's last record %d\n", out.LastRecord)
		}
		if out.Tokens == "kept" {
			fmt.Fprintln(w, "  tokens: the snapshot's: this world accepts the source world's tokens (--new-tokens replaces them)")
			return
		}
		if out.Tokens == "new" {
			fmt.Fprintln(w, "\nNew tokens, shown this once (only their hashes are stored; the source world's do not work here):")
		} else {
			fmt.Fprintln(w, "\nThe snapshot held no tokens. New ones, shown this once (only their hashes are stored):")
		}
		fmt.Fprintf(w, "  %-12s %s\n", "admin", out.AdminToken)
		for _, p := range out.Principals {
			fmt.Fprintf(w, "  %-12s %s   (balance %d)\n", p.ID, p.Token, p.Balance)
		}
	})
}

// initFrom creates the world of --data-dir or --store from the snapshot
// file: it must not exist yet (force: deleted first), and is removed again
// if anything fails.
func (g *globals) initFrom(ctx context.Context, file string, force, newTokens bool) (out forkOutput, err error) {
	f, err := os.Open(file) // before anything is touched
	if err != nil {
		return out, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	pg, err := g.storeURL()
	if err != nil {
		return out, err
	}
	if pg != "" {
		st, where, err := g.openKV(g.dataDir, pg, false)
		if err != nil {
			return out, err
		}
		none, err := empty(st)
		if err != nil {
			_ = st.Close()
			return out, fmt.Errorf("read store %s: %w", where, err)
		}
		if !none {
			if !force {
				_ = st.Close()
				return out, fmt.Errorf("a world already exists in %s: use --force to delete it and start over (stop the nodes serving it first), or another database or schema", where)
			}
			if err := wipeStore(st); err != nil {
				_ = st.Close()
				return out, err
			}
		}
		out, err = g.fork(ctx, g.dataDir, where, st, true, f, file, newTokens, func(st store.Store) { _ = wipeStore(st) })
		out.Store = where
		return out, err
	}
	dir := g.dataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return out, err
	}
	lock, err := lockDir(dir, lockExclusive, g.command, g.wait)
	if err != nil {
		return out, err
	}
	defer func() { err = errors.Join(err, lock.release()) }()
	if worldExists(dir) {
		if !force {
			return out, fmt.Errorf("a world already exists at %s: use --force to delete it and start over, or another --data-dir", dir)
		}
		if err := wipe(dir); err != nil {
			return out, err
		}
	}
	st, where, err := g.openKV(dir, "", false)
	if err != nil {
		return out, err
	}
	out, err = g.fork(ctx, dir, where, st, false, f, file, newTokens, nil)
	if err != nil {
		_ = wipe(dir) // leave no half world behind
	}
	return out, err
}

// fork loads the snapshot r (named file) into the empty store st, opens the
// world over it and, with newTokens or when the snapshot holds no tokens,
// replaces them. It closes st. undo, when set, empties st (still open)
// after a failure: a PostgreSQL world, where wipe cannot.
func (g *globals) fork(ctx context.Context, dir, where string, st store.Store, shared bool, r io.Reader, file string, newTokens bool, undo func(store.Store)) (forkOutput, error) {
	out := forkOutput{DataDir: dir, From: file, Tokens: "kept"}
	n, err := store.Load(st, r)
	if err != nil {
		_ = st.Close()
		return out, fmt.Errorf("load %s: %w: nothing was created", file, err)
	}
	out.Entries = n
	_, aerr := auth.Open(st)
	hasTokens := aerr == nil
	if aerr != nil && !errors.Is(aerr, auth.ErrNotFound) {
		_ = st.Close()
		return out, aerr
	}
	w, err := g.openWorld(ctx, dir, where, st, shared)
	if err != nil {
		return out, err
	}
	err = func() error {
		if newTokens || !hasTokens {
			out.Tokens = "new"
			if !hasTokens {
				out.Tokens = "issued"
			}
			var err error
			if out.AdminToken, out.Principals, err = reissueTokens(ctx, w, hasTokens); err != nil {
				return err
			}
		}
		var err error
		out.LastRecord, out.StateHash, err = stateOf(st)
		out.Recording = g.recording(st)
		return err
	}()
	if err != nil && undo != nil {
		undo(st)
	}
	return out, errors.Join(err, w.close())
}

// reissueTokens replaces every token of the world w with a new one: the
// admin's and each principal's that had one (hadTokens), or, for a
// snapshot that held none (a world an embedding program made, such as the
// demo's), each principal's but genesis's. The old hashes are deleted
// first; auth.Init then writes the new ones and the mark of a complete
// world in one transaction. It returns the new tokens.
func reissueTokens(ctx context.Context, w *world, hadTokens bool) (string, []initPrincipal, error) {
	var ids []string
	if hadTokens {
		a, err := auth.Open(w.st)
		if err != nil {
			return "", nil, err
		}
		if ids, err = a.Principals(); err != nil {
			return "", nil, err
		}
	} else {
		ps, err := w.k.Principals(ctx)
		if err != nil {
			return "", nil, codedError(err)
		}
		for _, p := range ps {
			if p.ID != genesis.Principal {
				ids = append(ids, p.ID)
			}
		}
	}
	sort.Strings(ids)
	if err := deletePrefix(w.st, []byte(auth.Prefix)); err != nil {
		return "", nil, fmt.Errorf("replace the tokens: %w", err)
	}
	_, admin, toks, err := auth.Init(w.st, ids)
	if err != nil {
		return "", nil, err
	}
	out := make([]initPrincipal, len(ids))
	for i, id := range ids {
		p, err := w.k.Principal(ctx, id)
		if err != nil {
			return "", nil, codedError(err)
		}
		out[i] = initPrincipal{ID: id, Balance: p.Balance, Token: toks[i]}
	}
	return admin, out, nil
}

// deletePrefix deletes every key of st under prefix, in transactions of at
// most wipeBatch keys.
func deletePrefix(st store.Store, prefix []byte) error {
	for {
		var keys [][]byte
		err := st.View(func(tx store.Txn) error {
			return tx.Iterate(prefix, nil, func(k, _ []byte) error {
				if !bytes.HasPrefix(k, prefix) {
					return store.ErrStop
				}
				keys = append(keys, bytes.Clone(k))
				if len(keys) == wipeBatch {
					return store.ErrStop
				}
				return nil
			})
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		if err := st.Update(func(tx store.Txn) error {
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
}
