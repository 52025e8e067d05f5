package demo_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/demo"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testenv"
)

var ctx = context.Background()

// TestPayPerReadReproducible rebuilds pay_per_read.wasm from its WAT source
// with wat2wasm and requires the committed module byte for byte. Without
// wat2wasm it skips, unless KERNELHOST_REQUIRE_TOOLCHAIN=1.
func TestPayPerReadReproducible(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		msg := "wat2wasm not found: install wabt (apt-get install -y wabt) to rebuild pay_per_read.wasm"
		if os.Getenv("KERNELHOST_REQUIRE_TOOLCHAIN") == "1" {
			t.Fatalf("%s (KERNELHOST_REQUIRE_TOOLCHAIN=1)", msg)
		}
		t.Skipf("%s; set KERNELHOST_REQUIRE_TOOLCHAIN=1 to make this a failure", msg)
	}
	out := filepath.Join(t.TempDir(), "pay_per_read.wasm")
	b, err := exec.Command("wat2wasm", "-o", out, "pay_per_read.wat").CombinedOutput()
	require.NoError(t, err, "wat2wasm: %s", b)
	rebuilt, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(demo.PayPerRead, rebuilt),
		"pay_per_read.wasm differs from a rebuild: run `wat2wasm -o pay_per_read.wasm pay_per_read.wat` in %s and commit it", "cmd/kernelhost/internal/demo")
}

func kv(pairs ...string) []abi.KV {
	var out []abi.KV
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, abi.KV{Key: pairs[i], Value: pairs[i+1]})
	}
	return out
}

// TestPayPerRead runs the contract under the real host.
func TestPayPerRead(t *testing.T) {
	h, err := host.New(ctx, host.Config{Timeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(ctx) })
	require.NoError(t, h.Validate(ctx, demo.PayPerRead))
	hash, err := h.Prepare(ctx, demo.PayPerRead)
	require.NoError(t, err)

	config := kv("payee", "alice", "price", "10", "sponsor", "sponsor")
	for _, tc := range []struct {
		name string
		req  abi.Request
		want abi.Decision
	}{
		{"read is charged to the sponsor",
			abi.Request{Action: abi.ActionRead, Caller: "bob", CreatedBy: "alice", Config: config},
			abi.Decision{Allowed: true, Cost: 10, Payer: "sponsor", Payee: "alice", Reason: "pay_per_read: paid read"}},
		{"no config: free, caller pays nothing, burned",
			abi.Request{Action: abi.ActionRead, Caller: "bob", CreatedBy: "alice"},
			abi.Decision{Allowed: true, Reason: "pay_per_read: paid read"}},
		{"bad price denies",
			abi.Request{Action: abi.ActionRead, Caller: "bob", Config: kv("price", "ten")},
			abi.Decision{Reason: "pay_per_read: config price is not a decimal integer"}},
		{"huge price denies",
			abi.Request{Action: abi.ActionRead, Caller: "bob", Config: kv("price", "1234567890123456789")},
			abi.Decision{Reason: "pay_per_read: config price is not a decimal integer"}},
		{"long sponsor denies",
			abi.Request{Action: abi.ActionRead, Caller: "bob", Config: kv("sponsor", string(bytes.Repeat([]byte("s"), 129)))},
			abi.Decision{Reason: "pay_per_read: config sponsor or payee is too long"}},
		{"creator writes",
			abi.Request{Action: abi.ActionWrite, Caller: "alice", CreatedBy: "alice", Config: config},
			abi.Decision{Allowed: true, Reason: "pay_per_read: controller acts"}},
		{"stranger writes",
			abi.Request{Action: abi.ActionWrite, Caller: "mallory", CreatedBy: "alice", Config: config},
			abi.Decision{Reason: "pay_per_read: only the controller may change this artifact"}},
		{"controller metadata wins over created_by",
			abi.Request{Action: abi.ActionDelete, Caller: "bob", CreatedBy: "alice", Metadata: kv("controller", "bob")},
			abi.Decision{Allowed: true, Reason: "pay_per_read: controller acts"}},
		{"creator is no longer controller",
			abi.Request{Action: abi.ActionDelete, Caller: "alice", CreatedBy: "alice", Metadata: kv("controller", "bob")},
			abi.Decision{Reason: "pay_per_read: only the controller may change this artifact"}},
		{"empty controller matches nobody",
			abi.Request{Action: abi.ActionEdit, Caller: "", CreatedBy: "alice", Metadata: kv("controller", "")},
			abi.Decision{Reason: "pay_per_read: only the controller may change this artifact"}},
		{"unknown action",
			abi.Request{Action: abi.Action(99), Caller: "alice", CreatedBy: "alice"},
			abi.Decision{Reason: "pay_per_read: unknown action"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.TargetExists = true
			req.TargetID, req.TargetType, req.AccessContract = "report", "text", "pay"
			d, _, err := h.Evaluate(ctx, hash, &req, abi.Limits{})
			require.NoError(t, err)
			require.Equal(t, tc.want, d)
		})
	}
}

// TestRun plays the scenario; cmd/kernelhost's TestDemoServe asserts its lines.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, demo.Run(ctx, &out, t.TempDir()), out.String())
	require.Contains(t, out.String(), "demo finished: every step ended as expected")
}

// TestMain points the demo's world at the machine-wide test compilation
// cache, so that the genesis rights registry compiles once per machine.
func TestMain(m *testing.M) {
	if dir := testenv.CacheDir(); dir != "" {
		os.Setenv(demo.CacheEnv, dir)
	}
	os.Exit(m.Run())
}
