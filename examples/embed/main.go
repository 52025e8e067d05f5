// Command embed opens a kernelhost kernel in-process on a temporary Badger
// directory, installs genesis, runs the README's "Embedding" flow (alice
// writes notes/1 under genesis/freeware, bob may not), deploys the C
// pay-per-read contract of examples/c-contract and has a sponsor pay for a
// read, printing every result.
//
// The compilation cache lives in the temporary directory, or in
// $KERNELHOST_WAZERO_CACHE when that is set (as the kernelhost CLI does), so
// that a second run need not compile the genesis Go executables again.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	ccontract "github.com/kernelhost/kernelhost/examples/c-contract"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

func main() {
	dir, err := os.MkdirTemp("", "kernelhost-embed-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
	cache := os.Getenv("KERNELHOST_WAZERO_CACHE")
	if cache == "" {
		cache = filepath.Join(dir, "wazero-cache")
	}
	err = run(context.Background(), os.Stdout, dir, cache)
	if rmErr := os.RemoveAll(dir); err == nil {
		err = rmErr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// run opens a world in dir (a Badger store in dir/store) with the wazero
// compilation cache in cacheDir, plays the scenario and writes what happened
// to w. It fails if a step does not end as planned, and closes the kernel,
// the host and the store in that order on every path.
func run(ctx context.Context, w io.Writer, dir, cacheDir string) (err error) {
	st, err := store.OpenBadger(filepath.Join(dir, "store"), store.BadgerOptions{}) // SyncWrites on by default
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	h, err := host.New(ctx, host.DefaultConfig().WithCacheDir(cacheDir))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, h.Close(ctx)) }()
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: h, Clock: time.Now,
		DefaultContract: genesis.DefaultContract,
	})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, k.Close(ctx)) }()
	if err := genesis.Install(ctx, k, genesis.Spec{Principals: []genesis.PrincipalSpec{
		{ID: "alice", Balance: 100}, {ID: "bob", Balance: 100}, {ID: "sponsor", Balance: 500},
	}}); err != nil {
		return err
	}
	fmt.Fprintln(w, "genesis installed: alice 100, bob 100, sponsor 500")

	s := &script{ctx: ctx, k: k, w: w}
	// The README's "Embedding" flow.
	s.do("alice writes notes/1", kernel.Action{Kind: kernel.KindWrite, Caller: "alice",
		Target: "notes/1", Type: "data", Content: []byte("hello")}, "OK") // governed by genesis/freeware
	s.do("bob writes notes/1", kernel.Action{Kind: kernel.KindWrite, Caller: "bob",
		Target: "notes/1", Content: []byte("mine")}, "PERMISSION_DENIED")
	s.do("bob reads notes/1", kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "notes/1"}, "OK")

	// A custom contract: reads of alice/report cost 5, paid by the sponsor
	// once it consents, credited to alice.
	s.do("alice deploys alice/pay-per-read", kernel.Action{Kind: kernel.KindWrite, Caller: "alice",
		Target: "alice/pay-per-read", Type: kernel.TypeContract, Content: ccontract.PayPerRead(),
		Metadata: map[string]string{"price": "5", "sponsor": "sponsor", "payee": "alice"}}, "OK")
	s.do("alice writes alice/report", kernel.Action{Kind: kernel.KindWrite, Caller: "alice",
		Target: "alice/report", Type: "text", Contract: "alice/pay-per-read", Content: []byte("Q1: revenue up 12%")}, "OK")
	read := kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "alice/report"}
	s.do("bob reads alice/report", read, "PAYER_NOT_AUTHORIZED")
	s.do("sponsor consents (5/read, 50 total)", kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor",
		Contract: "alice/pay-per-read", PerCallCap: 5, TotalCap: 50}, "OK")
	s.do("bob reads alice/report", read, "OK")
	if s.err != nil {
		return s.err
	}
	for _, id := range []string{"alice", "bob", "sponsor"} {
		p, err := k.Principal(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "balance %-7s %d\n", id, p.Balance)
	}
	return k.CheckLedger(ctx)
}

// script runs actions, printing each result and remembering the first that
// ended other than planned.
type script struct {
	ctx context.Context
	k   *kernel.Kernel
	w   io.Writer
	err error
}

func (s *script) do(what string, a kernel.Action, want string) {
	res := s.k.Do(s.ctx, a)
	code := res.Code.String()
	switch {
	case !res.OK:
		fmt.Fprintf(s.w, "%-36s %s %s\n", what, res.ErrorCode, res.Message)
	case a.Kind == kernel.KindRead:
		fmt.Fprintf(s.w, "%-36s OK %q", what, res.Content)
		for _, c := range res.Charges {
			fmt.Fprintf(s.w, " (%s paid %d to %s)", c.Payer, c.Amount, c.Payee)
		}
		fmt.Fprintln(s.w)
	default:
		fmt.Fprintf(s.w, "%-36s OK\n", what)
	}
	if code != want && s.err == nil {
		s.err = fmt.Errorf("%s: got %s, want %s: %s", what, code, want, res.Message)
	}
}
