package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// actionCommands maps every action kind to the commands that perform it,
// by the annotation actionCmd puts on them (kindAnnotation).
func actionCommands(root *cobra.Command) map[kernel.Kind][]*cobra.Command {
	out := map[kernel.Kind][]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if k, ok := c.Annotations[kindAnnotation]; ok {
			out[kernel.Kind(k)] = append(out[kernel.Kind(k)], c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return out
}

// TestEveryActionHasCommand: every action kind of the kernel (kernel.Kinds)
// has a CLI command that performs it (annotated with its kind), each such
// command takes --request-id and --as, and runs; the mapping is:
//
//	read artifact get, artifact show      write artifact put, contract deploy
//	edit artifact edit                     delete artifact rm
//	set_contract artifact set-contract     invoke artifact invoke
//	transfer scrip transfer                set_spending_limit scrip limit
//	grant_consent consent grant            revoke_consent consent revoke
//	grant_llm_consent consent grant-llm    revoke_llm_consent consent revoke-llm
//	grant_standing standing grant          revoke_standing standing revoke
//	transfer_quota quota transfer          consume_quota quota consume
//	mint_right right mint                  transfer_right right transfer
//	split_right right split                merge_rights right merge
//	redeem_right right redeem
//
// It failed before this change for edit, set_contract, invoke and
// consume_quota, which had no command.
func TestEveryActionHasCommand(t *testing.T) {
	t.Parallel()
	root := newRootCmd(io.Discard, io.Discard)
	byKind := actionCommands(root)
	for _, k := range kernel.Kinds() {
		cmds := byKind[k]
		require.NotEmpty(t, cmds, "action kind %s has no CLI command", k)
		for _, c := range cmds {
			require.NotNil(t, c.Flags().Lookup("request-id"), "%s takes --request-id", c.CommandPath())
			require.NotNil(t, c.Flags().Lookup("as"), "%s takes --as", c.CommandPath())
			require.True(t, c.Runnable(), c.CommandPath())
		}
	}
	for k := range byKind {
		require.True(t, kernel.KnownKind(k), "a command names kind %q, which the kernel does not know", k)
	}
}

// TestNewActionCommandsLocal: the commands added for parity, on a local
// world: edit (judged as an edit), set-contract, invoke, quota consume,
// scrip mint, consent show; and --request-id: a repeated id runs once and
// says so.
func TestNewActionCommandsLocal(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "artifact", "put", "n", "--as", "alice", "--type", "text", "--text", "v1", "--meta", "a=1", "--meta", "draft=yes")
	require.Contains(t, ok(t, dir, "artifact", "edit", "n", "--as", "alice", "--meta", "a=2", "--unset", "draft"), "edited n as alice: revision 2")
	show := ok(t, dir, "artifact", "show", "n", "--as", "bob")
	require.Contains(t, show, `a="2"`)
	require.NotContains(t, show, "draft")
	require.Contains(t, fails(t, dir, exitUsage, "artifact", "edit", "n", "--as", "alice"), "nothing to edit")
	require.Contains(t, fails(t, dir, exitError, "artifact", "edit", "n", "--as", "bob", "--text", "x"), "PERMISSION_DENIED")
	require.Equal(t, "v1", ok(t, dir, "artifact", "get", "n", "--as", "bob"), "edit of metadata kept the content")

	require.Contains(t, ok(t, dir, "artifact", "set_contract", "n", "--as", "alice", "--contract", "genesis/private"), "genesis/private now governs n")
	require.Contains(t, fails(t, dir, exitError, "artifact", "get", "n", "--as", "bob"), "PERMISSION_DENIED")
	require.Contains(t, fails(t, dir, exitUsage, "artifact", "set-contract", "n", "--as", "alice"), `required flag(s) "contract"`)

	out := ok(t, dir, "artifact", "invoke", "genesis/rights", "--as", "bob", "--method", "get_quota", "--args", `{"resource":"llm_rate"}`)
	require.Contains(t, out, `"principal":"bob"`)
	args := filepath.Join(t.TempDir(), "args.json")
	require.NoError(t, os.WriteFile(args, []byte(`{"principal":"alice","resource":"disk"}`), 0o600))
	require.Contains(t, ok(t, dir, "artifact", "invoke", "genesis/rights", "--as", "bob", "--method", "get_quota", "--args-file", args), `"resource":"disk"`)
	require.Contains(t, fails(t, dir, exitError, "artifact", "invoke", "genesis/rights", "--as", "bob", "--method", "steal"), "unknown method")

	require.Contains(t, ok(t, dir, "quota", "consume", "--as", "bob", "--resource", "llm_rate", "--amount", "60"), "bob used 60 llm_rate")
	require.Regexp(t, `llm_rate\s+\d+\s+60\s`, ok(t, dir, "quota", "show", "bob"))
	require.Contains(t, fails(t, dir, exitError, "quota", "consume", "--as", "bob", "--resource", "llm_rate", "--amount", "100000000"), "QUOTA_EXCEEDED")
	require.Contains(t, fails(t, dir, exitUsage, "quota", "consume", "--as", "bob", "--resource", "gold", "--amount", "1"), "--resource")

	require.Contains(t, ok(t, dir, "scrip", "mint", "bob", "--amount", "25"), "minted 25 scrip to bob: balance 125")
	require.Contains(t, fails(t, dir, exitUsage, "scrip", "mint", "bob", "--amount", "0"), "positive")
	require.Contains(t, ok(t, dir, "totals"), "ledger      ok")

	ok(t, dir, "consent", "grant", "--as", "sponsor", "--contract", "genesis/freeware", "--per-call", "3", "--total", "30")
	var gr kernel.Grant
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "consent", "show", "--as", "sponsor", "--contract", "genesis/freeware", "-o", "json")), &gr))
	require.Equal(t, kernel.Grant{Payer: "sponsor", Contract: "genesis/freeware", Terms: gr.Terms, PerCallCap: 3, TotalCap: 30}, gr)
	require.Contains(t, fails(t, dir, exitError, "consent", "show", "--as", "bob", "--contract", "genesis/freeware"), "NOT_FOUND")
	require.Contains(t, ok(t, dir, "consent", "grant-llm", "--as", "sponsor", "--to", "bob", "--per-call", "2000", "--total", "9000", "--tokens", "500"),
		"sponsor pays bob's LLM calls: up to 2000µ$ per call, 9000µ$ and 500 tokens in all")
	require.Contains(t, ok(t, dir, "consent", "show-llm", "--as", "sponsor", "--to", "bob"), "up to 2000µ$ per call, 9000µ$ and 500 tokens in all; spent 0µ$ and 0 tokens")
	require.Contains(t, ok(t, dir, "consent", "revoke-llm", "--as", "sponsor", "--to", "bob"), "sponsor no longer pays bob's LLM calls")
	require.Contains(t, fails(t, dir, exitError, "consent", "show-llm", "--as", "sponsor", "--to", "bob"), "NOT_FOUND")
	require.Regexp(t, `genesis/freeware\s+3\s+30\s+0`, ok(t, dir, "consent", "ls", "--as", "sponsor"))
	require.Equal(t, "bob consented to no contract\n", ok(t, dir, "consent", "ls", "--as", "bob"))

	// events show: one event, as a party sees it; NOT_FOUND to others.
	var ev kernel.Event
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "events", "show", "1", "-o", "json")), &ev))
	require.Equal(t, uint64(1), ev.Seq)
	last := strings.Fields(strings.TrimSpace(ok(t, dir, "events", "tail", "--as", "sponsor", "--kind", "grant_llm_consent")))[0]
	require.Contains(t, ok(t, dir, "events", "show", strings.TrimPrefix(last, "#"), "--as", "bob"), "grant_llm_consent", "bob is the recipient")
	require.Contains(t, fails(t, dir, exitError, "events", "show", strings.TrimPrefix(last, "#"), "--as", "alice"), "NOT_FOUND")
	require.Contains(t, fails(t, dir, exitUsage, "events", "show", "0"), "positive integer")
	require.Contains(t, fails(t, dir, exitUsage, "events", "tail", "--kind", "steal"), "--kind")

	// artifact ls --prefix.
	ok(t, dir, "artifact", "put", "bob/a", "--as", "bob", "--type", "text", "--text", "x")
	ls := ok(t, dir, "artifact", "ls", "--as", "bob", "--prefix", "bob/")
	require.Contains(t, ls, "bob/a")
	require.Len(t, strings.Split(strings.TrimSpace(ls), "\n"), 2, "the header and bob/a only: %s", ls)

	// --request-id: the retry returns the first result and moves nothing.
	ok(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "5", "--request-id", "r-1")
	_, errOut, code := cli(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "5", "--request-id", "r-1")
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, errOut, "this request id ran before")
	require.Equal(t, uint64(995), balances(t, dir)["alice"])
	require.Contains(t, fails(t, dir, exitError, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "6", "--request-id", "r-1"), "INVALID_ARGUMENT")
}

// TestCompletion: principal ids, artifact ids, resources and action kinds
// complete, from the world the command line names (here a local one,
// opened for reading).
func TestCompletion(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "artifact", "put", "notes/1", "--as", "alice", "--type", "text", "--text", "x")
	complete := func(args ...string) []string {
		t.Helper()
		var out bytes.Buffer
		code := runContext(context.Background(), append([]string{"__complete", "--data-dir", dir}, args...), &out, io.Discard)
		require.Equal(t, exitOK, code)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return got
	}
	require.Equal(t, []string{"alice", "bob", "genesis", "sponsor"}, complete("scrip", "transfer", "--as", ""))
	require.Equal(t, []string{"bob"}, complete("scrip", "transfer", "--as", "alice", "--to", "b"))
	require.Equal(t, []string{"sponsor"}, complete("principal", "show", "s"))
	require.Equal(t, []string{"notes/1"}, complete("artifact", "get", "no"))
	require.Contains(t, complete("artifact", "set-contract", "notes/1", "--contract", "genesis/"), "genesis/private")
	require.Empty(t, complete("artifact", "get", "notes/1", ""), "one id only")
	require.Contains(t, complete("quota", "transfer", "--resource", ""), "llm_rate")
	require.Contains(t, complete("contract", "check", "--action", ""), "set_contract")
	require.Contains(t, complete("events", "tail", "--kind", ""), "consume_quota")
}

// TestQueryStoreScratch: a world opened for queries runs the kernel's
// opening writes on a scratch layer that reads its own writes (Get and
// Iterate, in order, deletes hidden) and keeps none of them; once sealed,
// Update refuses.
func TestQueryStoreScratch(t *testing.T) {
	t.Parallel()
	base := store.NewMem()
	require.NoError(t, base.Update(func(tx store.Txn) error {
		for _, k := range []string{"a/1", "a/3", "a/5", "b/1"} {
			if err := tx.Set([]byte(k), []byte("base")); err != nil {
				return err
			}
		}
		return nil
	}))
	qs := &queryStore{Store: base}
	require.NoError(t, qs.Update(func(tx store.Txn) error {
		require.NoError(t, tx.Set([]byte("a/2"), []byte("mine")))
		require.NoError(t, tx.Set([]byte("a/5"), []byte("mine")))
		require.NoError(t, tx.Delete([]byte("a/3")))
		v, err := tx.Get([]byte("a/2"))
		require.NoError(t, err)
		require.Equal(t, "mine", string(v))
		_, err = tx.Get([]byte("a/3"))
		require.ErrorIs(t, err, store.ErrNotFound)
		var seen []string
		require.NoError(t, tx.Iterate([]byte("a/"), nil, func(k, v []byte) error {
			seen = append(seen, string(k)+"="+string(v))
			return nil
		}))
		require.Equal(t, []string{"a/1=base", "a/2=mine", "a/5=mine"}, seen)
		seen = nil
		require.NoError(t, tx.Iterate([]byte("a/"), []byte("a/2"), func(k, _ []byte) error {
			seen = append(seen, string(k))
			return store.ErrStop
		}))
		require.Equal(t, []string{"a/2"}, seen)
		return nil
	}))
	var all []string
	require.NoError(t, base.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error { all = append(all, string(k)+"="+string(v)); return nil })
	}))
	require.Equal(t, []string{"a/1=base", "a/3=base", "a/5=base", "b/1=base"}, all, "nothing was kept")
	qs.seal()
	require.ErrorIs(t, qs.Update(func(store.Txn) error { return nil }), store.ErrReadOnly)
}
