package contracts_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
)

// buildProbe compiles testdata/probe.c with the Makefile's flags, or skips
// (fails under KERNELHOST_REQUIRE_TOOLCHAIN=1) without clang and wasm-ld.
func buildProbe(t *testing.T) []byte {
	t.Helper()
	for _, tool := range []string{"clang", "wasm-ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not found: install clang and lld (apt-get install -y clang lld) to test abi/kernelhost.h")
		}
	}
	out := filepath.Join(t.TempDir(), "probe.wasm")
	cmd := exec.Command("clang", "--target=wasm32", "-O2", "-nostdlib", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
		"-fno-ident", "-I../abi", "-Wl,--no-entry", "-Wl,--strip-all", "-Wl,-z,stack-size=16384", "-Wl,--stack-first",
		"-o", out, "testdata/probe.c")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "clang: %s", msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

// probeWant is what testdata/probe.c answers for r, computed from the Go
// request.
func probeWant(r *abi.Request) abi.Decision {
	var sb strings.Builder
	sb.WriteString(r.Action.String())
	sb.WriteString("|")
	for _, f := range []string{r.Caller, r.TargetID, r.TargetType, r.CreatedBy, r.AccessContract, r.Method, string(r.Args)} {
		sb.WriteString(f + "|")
	}
	get := func(kvs []abi.KV, key string) (string, bool) {
		for _, kv := range kvs {
			if kv.Key == key {
				return kv.Value, true
			}
		}
		return "", false
	}
	for _, l := range [][]abi.KV{r.Metadata, r.Config} {
		for _, kv := range l {
			sb.WriteString(kv.Key + "=" + kv.Value + ";")
		}
		sb.WriteString("|")
	}
	if v, ok := get(r.Metadata, "b"); ok {
		sb.WriteString(v)
	} else {
		sb.WriteString("-")
	}
	sb.WriteString("|")
	if _, ok := get(r.Config, "b"); ok {
		sb.WriteString("config-b")
	}
	sb.WriteString("|")
	controller, ok := get(r.Metadata, "controller")
	if !ok {
		controller = r.CreatedBy
	}
	if controller != "" && controller == r.Caller {
		sb.WriteString("controller")
	} else {
		sb.WriteString("other")
	}
	sb.WriteString("|")
	var rightsCost uint64
	for _, ra := range r.CallerRights {
		sb.WriteString(ra.Resource + ";")
		rightsCost += 17 * ra.Amount
		if ra.Resource == "llm_rate" {
			rightsCost += 19 * ra.Amount
		}
	}
	reason := sb.String()
	if len(reason) > abi.MaxReasonLen {
		reason = reason[:abi.MaxReasonLen]
	}
	d := abi.Decision{
		Allowed: r.TargetExists,
		Cost:    r.Time + 3*r.Size + 5*r.Revision + 7*r.PayloadSize + 11*uint64(r.Depth) + 13*uint64(r.Action) + rightsCost,
		Payer:   controller,
		Reason:  reason,
	}
	d.Payee, _ = get(r.Config, "payee")
	return d
}

// randomRequest returns a valid request with short random fields, so that
// the probe's reason rarely needs truncation and the payer fits.
func randomRequest(rng *rand.Rand) abi.Request {
	str := func(max int) string {
		const alphabet = "abc/_-\x00\xff"
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	pick := func(options ...string) string { return options[rng.IntN(len(options))] }
	kvs := func() []abi.KV {
		keys := map[string]bool{}
		for i := rng.IntN(6); i > 0; i-- {
			keys[pick("a", "b", "c", "controller", "payee", "controllers", "\xff", str(5)+"k")] = true
		}
		var out []abi.KV
		for k := range keys {
			out = append(out, abi.KV{Key: k, Value: pick("alice", "bob", "", str(8))})
		}
		slices.SortFunc(out, func(x, y abi.KV) int { return strings.Compare(x.Key, y.Key) })
		return out
	}
	rights := func() []abi.RightAmount {
		seen := map[string]bool{}
		var out []abi.RightAmount
		for i := rng.IntN(4); i > 0; i-- {
			r := pick("cpu_rate", "disk", "llm_budget", "llm_rate", "llm_rat", "llm_rates", "memory", "\xff", str(5)+"r")
			if !seen[r] {
				seen[r] = true
				out = append(out, abi.RightAmount{Resource: r, Amount: rng.Uint64()})
			}
		}
		slices.SortFunc(out, func(x, y abi.RightAmount) int { return strings.Compare(x.Resource, y.Resource) })
		return out
	}
	return abi.Request{
		Action:         abi.Action(rng.IntN(9)),
		TargetExists:   rng.IntN(2) == 0,
		Time:           rng.Uint64(),
		Depth:          rng.Uint32(),
		Caller:         pick("alice", "bob", "", str(6)),
		TargetID:       str(10),
		TargetType:     pick("data", "contract", str(6)),
		CreatedBy:      pick("alice", "bob", "", str(6)),
		AccessContract: str(10),
		Size:           rng.Uint64(),
		Revision:       rng.Uint64(),
		PayloadSize:    rng.Uint64(),
		Method:         str(8),
		Args:           []byte(str(12)),
		Metadata:       kvs(),
		Config:         kvs(),
		CallerRights:   rights(),
	}
}

// TestHeaderProbe checks every field kh_parse_request reads, and the lookup
// helpers of abi/kernelhost.h, against the Go codec on random requests.
func TestHeaderProbe(t *testing.T) {
	g := newGuest(t, buildProbe(t))
	rng := rand.New(rand.NewPCG(3, 4))
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		r := randomRequest(rng)
		require.Equal(t, probeWant(&r), g.decide(t, encode(t, &r)), "request %+v", r)
	}
	t.Run("long reason is truncated", func(t *testing.T) {
		r := abi.Request{Action: abi.ActionRead, Args: []byte(strings.Repeat("x", 2*abi.MaxReasonLen))}
		got := g.decide(t, encode(t, &r))
		require.Len(t, got.Reason, abi.MaxReasonLen)
		require.Equal(t, probeWant(&r), got)
	})
	t.Run("long payer is an invalid decision", func(t *testing.T) {
		r := abi.Request{Action: abi.ActionRead, Metadata: []abi.KV{{Key: "controller", Value: strings.Repeat("c", abi.MaxIDLen+1)}}}
		require.Equal(t, abi.Decision{Reason: "invalid decision"}, g.decide(t, encode(t, &r)))
	})
	t.Run("malformed", func(t *testing.T) {
		for _, tc := range malformedCases {
			require.Equal(t, abi.Decision{Reason: "malformed request"}, g.decide(t, tc.req), tc.name)
		}
	})
}
