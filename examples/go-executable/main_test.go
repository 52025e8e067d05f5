package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/kernelhost/kernelhost/internal/testworld"
	"github.com/kernelhost/kernelhost/kernel"
)

// buildArgs is the README's build command, minus the output path.
var buildArgs = []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-buildid="}

// builtWith is the Go release that built the committed counter.wasm; another
// release emits other bytes.
const builtWith = "go1.26.8"

var ctx = context.Background()

func committed(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("counter.wasm")
	require.NoError(t, err)
	return b
}

// world opens a kernel on the real wasm host with genesis installed.
func world(t *testing.T, spec genesis.Spec) *kernel.Kernel {
	t.Helper()
	return testworld.HostWorld(t, spec)
}

// Test_main deploys the committed counter.wasm as alice's executable and
// invokes it through the kernel and the wasm host.
func Test_main(t *testing.T) {
	k := world(t, genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "alice", Balance: 10}, {ID: "bob", Balance: 10}}})
	// A Go module is a few MiB: more than a new principal's default disk.
	require.NoError(t, k.SetQuota(ctx, "alice", kernel.Disk, 8<<20))
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "alice", Target: "counter", Type: kernel.TypeExecutable, Content: committed(t)})
	require.True(t, res.OK, res.Message)

	tests := []struct {
		name   string
		caller string
		method string
		args   string
		want   string   // output; "" when the invocation fails
		code   abi.Code // of a failed invocation
		msg    string   // in a failed invocation's message
		logs   []string
	}{
		{name: "alice counts from 0", caller: "alice", method: "increment", args: `{"counter":"alice/visits"}`,
			want: `{"counter":"alice/visits","value":1}`, logs: []string{"alice/visits: 0 -> 1 by alice"}},
		{name: "alice adds 5", caller: "alice", method: "increment", args: `{"counter":"alice/visits","by":5}`,
			want: `{"counter":"alice/visits","value":6}`, logs: []string{"alice/visits: 1 -> 6 by alice"}},
		{name: "alice reads", caller: "alice", method: "get", args: `{"counter":"alice/visits"}`,
			want: `{"counter":"alice/visits","value":6}`},
		{name: "bob reads alice's counter", caller: "bob", method: "get", args: `{"counter":"alice/visits"}`,
			want: `{"counter":"alice/visits","value":6}`},
		{name: "bob cannot move alice's counter: the write is bob's", caller: "bob", method: "increment", args: `{"counter":"alice/visits"}`,
			code: abi.ExecutionFailed, msg: `PERMISSION_DENIED: write of "alice/visits" denied by genesis/freeware`},
		{name: "bob counts his own", caller: "bob", method: "increment", args: `{"counter":"bob/visits","by":2}`,
			want: `{"counter":"bob/visits","value":2}`, logs: []string{"bob/visits: 0 -> 2 by bob"}},
		{name: "a missing counter is 0", caller: "bob", method: "get", args: `{"counter":"nobody/visits"}`,
			want: `{"counter":"nobody/visits","value":0}`},
		{name: "no counter", caller: "bob", method: "get", args: `{}`,
			code: abi.ExecutionFailed, msg: `counter: args need "counter"`},
		{name: "by must be positive", caller: "bob", method: "increment", args: `{"counter":"bob/visits","by":0}`,
			code: abi.ExecutionFailed, msg: `"by" is a positive amount`},
		{name: "args not JSON", caller: "bob", method: "get", args: `nope`,
			code: abi.ExecutionFailed, msg: "counter: args:"},
		{name: "unknown method", caller: "bob", method: "reset", args: `{"counter":"bob/visits"}`,
			code: abi.ExecutionFailed, msg: `unknown method "reset"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := k.Do(ctx, kernel.Action{Kind: kernel.KindInvoke, Caller: tc.caller, Target: "counter", Method: tc.method, Args: []byte(tc.args)})
			if tc.want == "" {
				require.Equal(t, tc.code, res.Code, res.Message)
				require.Contains(t, res.Message, tc.msg)
				return
			}
			require.True(t, res.OK, res.Message)
			require.JSONEq(t, tc.want, string(res.Output))
			require.Equal(t, tc.logs, res.Logs)
		})
	}

	// The counters are ordinary artifacts of whoever invoked: created_by is
	// the caller, never the executable, and the disk is the caller's.
	for _, c := range []struct{ id, owner, value string }{{"alice/visits", "alice", "6"}, {"bob/visits", "bob", "2"}} {
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: c.owner, Target: c.id})
		require.True(t, res.OK, res.Message)
		require.Equal(t, c.value, string(res.Content))
		require.Equal(t, c.owner, res.Artifact.CreatedBy)
		require.Equal(t, genesis.Freeware, res.Artifact.Contract)
		disk, err := k.QuotaStatus(ctx, c.owner, kernel.Disk)
		require.NoError(t, err)
		require.Positive(t, disk.Used)
	}
	// The executable has no standing of its own.
	_, err := k.Principal(ctx, "counter")
	require.ErrorIs(t, err, kernel.ErrNotFound)
	require.NoError(t, k.CheckLedger(ctx))
}

func TestParseArgs(t *testing.T) {
	five := int64(5)
	tests := []struct {
		name, method, args string
		want               args
		err                string
	}{
		{"get", "get", `{"counter":"c"}`, args{Counter: "c"}, ""},
		{"increment by", "increment", `{"counter":"c","by":5}`, args{Counter: "c", By: &five}, ""},
		{"get takes no by", "get", `{"counter":"c","by":5}`, args{}, `"by"`},
		{"negative", "increment", `{"counter":"c","by":-1}`, args{}, `"by"`},
		{"no counter", "get", `{"by":1}`, args{}, `need "counter"`},
		{"empty", "get", ``, args{}, "counter: args"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseArgs(tc.method, []byte(tc.args))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestReproducible rebuilds the executable with the README's command and
// requires the committed counter.wasm byte for byte.
func TestReproducible(t *testing.T) {
	if runtime.Version() != builtWith {
		testenv.SkipOrFail(t, fmt.Sprintf("counter.wasm was built with %s; this test runs %s", builtWith, runtime.Version()))
	}
	out := filepath.Join(t.TempDir(), "counter.wasm")
	cmd := exec.Command("go", append(buildArgs, "-o", out, ".")...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "CGO_ENABLED=0")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", msg)
	rebuilt, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(committed(t), rebuilt),
		"counter.wasm differs from a rebuild (%d vs %d bytes): rebuild with the README command (make examples) and commit",
		len(committed(t)), len(rebuilt))
}

// TestOutputShape pins the JSON of a count.
func TestOutputShape(t *testing.T) {
	b, err := json.Marshal(count{Counter: "c", Value: 3})
	require.NoError(t, err)
	require.JSONEq(t, `{"counter":"c","value":3}`, string(b))
}
