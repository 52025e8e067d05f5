package ccontract_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	ccontract "github.com/kernelhost/kernelhost/examples/c-contract"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

var ctx = context.Background()

// world opens a kernel on an in-memory store with the package's wasm host and
// installs genesis with spec's principals.
func world(t *testing.T, spec genesis.Spec) *kernel.Kernel {
	t.Helper()
	return testworld.World(t, sharedHost, spec)
}

func balance(t *testing.T, k *kernel.Kernel, id string) uint64 {
	t.Helper()
	p, err := k.Principal(ctx, id)
	require.NoError(t, err)
	return p.Balance
}

// deploy stores the contract as alice's artifact id with config, and an
// artifact target governed by it.
func deploy(t *testing.T, k *kernel.Kernel, id string, config map[string]string, target string) {
	t.Helper()
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: id,
		Type: kernel.TypeContract, Content: ccontract.PayPerRead(), Metadata: config})
	require.True(t, res.OK, res.Message)
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: target,
		Type: "text", Contract: id, Content: []byte("Q1: revenue up 12%")})
	require.True(t, res.OK, res.Message)
}

// Test_main runs the pay-per-read rule through the real kernel and wasm host:
// without the sponsor's consent a read fails with PAYER_NOT_AUTHORIZED and
// nobody pays; with it, a read charges the sponsor and credits the payee;
// strangers cannot change the artifact, the controller can.
func Test_main(t *testing.T) {
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{
		{ID: "alice", Balance: 1000}, {ID: "bob", Balance: 100}, {ID: "sponsor", Balance: 500}, {ID: "mallory"},
	}})
	const contract, report = "alice/pay-per-read", "alice/report"
	deploy(t, k, contract, map[string]string{"price": "7", "sponsor": "sponsor", "payee": "alice"}, report)
	read := kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: report}

	t.Run("no consent: PAYER_NOT_AUTHORIZED, nobody pays", func(t *testing.T) {
		res := k.Do(ctx, read)
		require.Equal(t, abi.PayerNotAuthorized, res.Code, res.Message)
		require.Empty(t, res.Charges)
		require.Equal(t, uint64(500), balance(t, k, "sponsor"))
		require.Equal(t, uint64(100), balance(t, k, "bob"))
	})

	res := k.Do(ctx, kernel.Action{Kind: kernel.KindGrantConsent, Caller: "sponsor", Contract: contract, PerCallCap: 7, TotalCap: 14})
	require.True(t, res.OK, res.Message)

	t.Run("consented: the sponsor pays the payee", func(t *testing.T) {
		res := k.Do(ctx, read)
		require.True(t, res.OK, res.Message)
		require.Equal(t, "Q1: revenue up 12%", string(res.Content))
		require.Equal(t, &abi.Decision{Allowed: true, Cost: 7, Payer: "sponsor", Payee: "alice", Reason: ccontract.ReasonPaid}, res.Decision)
		require.Equal(t, []kernel.Charge{{Payer: "sponsor", Payee: "alice", Amount: 7, Reason: "contract"}}, res.Charges)
		require.Equal(t, uint64(493), balance(t, k, "sponsor"))
		require.Equal(t, uint64(1007), balance(t, k, "alice"))
		require.Equal(t, uint64(100), balance(t, k, "bob"), "the reader pays nothing")
	})

	t.Run("the consent's total cap holds", func(t *testing.T) {
		require.True(t, k.Do(ctx, read).OK)
		res := k.Do(ctx, read) // 7 + 7 spent of 14
		require.Equal(t, abi.PayerNotAuthorized, res.Code, res.Message)
		require.Equal(t, uint64(486), balance(t, k, "sponsor"))
	})

	tests := []struct {
		name   string
		action kernel.Action
		code   abi.Code
		reason string
	}{
		{"stranger writes", kernel.Action{Kind: kernel.KindWrite, Caller: "mallory", Target: report, Content: []byte("pwned")},
			abi.PermissionDenied, ccontract.ReasonNotController},
		{"stranger edits", kernel.Action{Kind: kernel.KindEdit, Caller: "mallory", Target: report, Metadata: map[string]string{"controller": "mallory"}},
			abi.PermissionDenied, ccontract.ReasonNotController},
		{"stranger deletes", kernel.Action{Kind: kernel.KindDelete, Caller: "mallory", Target: report},
			abi.PermissionDenied, ccontract.ReasonNotController},
		{"stranger sets contract", kernel.Action{Kind: kernel.KindSetContract, Caller: "mallory", Target: report, Contract: genesis.Public},
			abi.PermissionDenied, ccontract.ReasonNotController},
		{"controller writes", kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: report, Content: []byte("Q2: flat")},
			abi.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := k.Do(ctx, tc.action)
			require.Equal(t, tc.code, res.Code, res.Message)
			if tc.code != abi.OK {
				require.NotNil(t, res.Decision)
				require.Equal(t, tc.reason, res.Decision.Reason)
				require.Empty(t, res.Charges)
			}
		})
	}
	require.NoError(t, k.CheckLedger(ctx))
}

// TestConfig covers the config the contract reads: no sponsor means the
// caller pays, no payee means the cost is burned, no price means free, and a
// malformed config denies every read.
func TestConfig(t *testing.T) {
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice", Balance: 1000}, {ID: "bob", Balance: 100}}})
	long := string(bytes.Repeat([]byte("x"), 129))
	tests := []struct {
		name    string
		config  map[string]string
		code    abi.Code
		reason  string
		bob     uint64 // bob's balance after one read, from 100
		charges []kernel.Charge
	}{
		{"caller pays, burned", map[string]string{"price": "3"}, abi.OK, ccontract.ReasonPaid, 97,
			[]kernel.Charge{{Payer: "bob", Amount: 3, Reason: "contract"}}},
		{"caller pays the payee", map[string]string{"price": "4", "payee": "alice", "sponsor": ""}, abi.OK, ccontract.ReasonPaid, 96,
			[]kernel.Charge{{Payer: "bob", Payee: "alice", Amount: 4, Reason: "contract"}}},
		{"free", nil, abi.OK, ccontract.ReasonPaid, 100, nil},
		{"empty price is free", map[string]string{"price": ""}, abi.OK, ccontract.ReasonPaid, 100, nil},
		{"price above the caller's spending limit", map[string]string{"price": "101"}, abi.CostLimitExceeded, "", 100, nil},
		{"price too dear for the caller", map[string]string{"price": "100"}, abi.InsufficientFunds, "", 100, nil}, // within the limit, above bob's 93
		{"price not a number", map[string]string{"price": "ten"}, abi.PermissionDenied, ccontract.ReasonBadPrice, 100, nil},
		{"negative price", map[string]string{"price": "-1"}, abi.PermissionDenied, ccontract.ReasonBadPrice, 100, nil},
		{"price of 19 digits", map[string]string{"price": "1000000000000000000"}, abi.PermissionDenied, ccontract.ReasonBadPrice, 100, nil},
		{"sponsor too long", map[string]string{"price": "1", "sponsor": long}, abi.PermissionDenied, ccontract.ReasonLongID, 100, nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			contract, target := "alice/ppr-"+string(rune('a'+i)), "alice/doc-"+string(rune('a'+i))
			deploy(t, k, contract, tc.config, target)
			before, err := k.Totals(ctx)
			require.NoError(t, err)
			bob := balance(t, k, "bob")
			res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: target})
			require.Equal(t, tc.code, res.Code, res.Message)
			if tc.reason != "" {
				require.Equal(t, tc.reason, res.Decision.Reason)
			}
			require.Equal(t, tc.charges, res.Charges)
			spent := 100 - tc.bob
			require.Equal(t, bob-spent, balance(t, k, "bob"))
			after, err := k.Totals(ctx)
			require.NoError(t, err)
			burned := uint64(0)
			for _, c := range tc.charges {
				if c.Payee == "" {
					burned += c.Amount
				}
			}
			require.Equal(t, before.Burned+burned, after.Burned)
		})
	}
	require.NoError(t, k.CheckLedger(ctx))
}

// pinnedClangMajor is the clang major version that built the committed
// pay_per_read.wasm; another major version emits other code.
const pinnedClangMajor = "14"

// buildArgs is the README's clang command, run in this directory, minus the
// output path.
var buildArgs = []string{
	"--target=wasm32", "-O2", "-nostdlib", "-ffreestanding", "-fno-ident", "-Wall", "-Wextra", "-Werror", "-I../../abi",
	"-Wl,--no-entry", "-Wl,--strip-all", "-Wl,-z,stack-size=16384", "-Wl,--stack-first",
}

// skipOrFail skips the test with msg, or fails it when
// KERNELHOST_REQUIRE_TOOLCHAIN=1 (CI sets it after installing clang and lld).
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("KERNELHOST_REQUIRE_TOOLCHAIN") == "1" {
		t.Fatalf("%s (KERNELHOST_REQUIRE_TOOLCHAIN=1)", msg)
	}
	t.Skipf("%s; set KERNELHOST_REQUIRE_TOOLCHAIN=1 to make this a failure", msg)
}

// TestReproducible rebuilds the contract with the README's clang command and
// requires the committed pay_per_read.wasm byte for byte.
func TestReproducible(t *testing.T) {
	for _, tool := range []string{"clang", "wasm-ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not found: install clang and lld (apt-get install -y clang lld) to rebuild the contract")
		}
	}
	out, err := exec.Command("clang", "--version").CombinedOutput()
	require.NoError(t, err, "clang --version: %s", out)
	m := regexp.MustCompile(`clang version (\d+)\.`).FindSubmatch(out)
	if m == nil || string(m[1]) != pinnedClangMajor {
		first, _, _ := bytes.Cut(out, []byte("\n"))
		skipOrFail(t, "clang "+pinnedClangMajor+" built the committed contract; found: "+string(first))
	}
	dst := filepath.Join(t.TempDir(), "pay_per_read.wasm")
	cmd := exec.Command("clang", append(buildArgs, "-o", dst, filepath.Join("src", "pay_per_read.c"))...)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "clang: %s", out)
	rebuilt, err := os.ReadFile(dst)
	require.NoError(t, err)
	committed := ccontract.PayPerRead()
	require.True(t, bytes.Equal(committed, rebuilt),
		"pay_per_read.wasm differs from a rebuild (%d vs %d bytes): rebuild with the README command (or `make examples`) and commit", len(committed), len(rebuilt))
}
