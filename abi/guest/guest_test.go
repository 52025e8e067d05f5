package guest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
)

// freeware is the freeware rule, as a contract author would write it.
func freeware(req *abi.RequestView) abi.Decision {
	switch a := req.Action(); a {
	case abi.ActionRead, abi.ActionInvoke:
		return abi.Decision{Allowed: true}
	case abi.ActionWrite, abi.ActionEdit, abi.ActionDelete, abi.ActionSetContract:
		if c := req.Controller(); len(c) > 0 && string(req.Caller()) == string(c) {
			return abi.Decision{Allowed: true}
		}
		return abi.Decision{Reason: "freeware: only the controller may " + a.String()}
	default:
		return abi.Decision{Reason: "freeware: unknown action"}
	}
}

func encodeReq(t testing.TB, r abi.Request) []byte {
	t.Helper()
	b, err := abi.AppendRequest(nil, &r)
	require.NoError(t, err)
	return b
}

// run copies req into the handler's buffer as a host would and checks it.
func run(t testing.TB, h *handler, req []byte) abi.Decision {
	t.Helper()
	buf := h.alloc(uint32(len(req)))
	require.NotNil(t, buf)
	copy(buf, req)
	b, ok := h.region(0, uint64(len(req)))
	require.True(t, ok)
	d, err := abi.DecodeDecision(h.check(b, ok))
	require.NoError(t, err)
	return d
}

func TestHandlerCheck(t *testing.T) {
	write := abi.Request{Action: abi.ActionWrite, Caller: "alice", CreatedBy: "bob", Metadata: []abi.KV{{Key: "controller", Value: "alice"}}}
	stranger := write
	stranger.Caller = "mallory"
	valid := encodeReq(t, write)
	withRights := write
	withRights.CallerRights = []abi.RightAmount{{Resource: "llm_rate", Amount: 5}}
	tests := []struct {
		name   string
		decide Decider
		req    []byte
		want   abi.Decision
	}{
		{"allowed", freeware, valid, abi.Decision{Allowed: true}},
		{"denied", freeware, encodeReq(t, stranger), abi.Decision{Reason: "freeware: only the controller may write"}},
		{"unknown action", freeware, encodeReq(t, abi.Request{Action: 99}), abi.Decision{Reason: "freeware: unknown action"}},
		{"empty request", freeware, nil, abi.Decision{Reason: ReasonMalformed}},
		{"truncated", freeware, valid[:len(valid)-1], abi.Decision{Reason: ReasonMalformed}},
		{"bad magic", freeware, append([]byte("KHDC"), valid[4:]...), abi.Decision{Reason: ReasonMalformed}},
		{"trailing bytes ignored", freeware, append(encodeReq(t, withRights), 1, 2, 3), abi.Decision{Allowed: true}},
		{"garbage caller rights", freeware, append(append([]byte(nil), valid...), 1, 2, 3), abi.Decision{Reason: ReasonMalformed}},
		{"caller rights seen", func(v *abi.RequestView) abi.Decision {
			return abi.Decision{Allowed: v.CallerRight("llm_rate") == 5 && v.CallerRight("disk") == 0}
		}, encodeReq(t, withRights), abi.Decision{Allowed: true}},
		{"no decider", nil, valid, abi.Decision{Reason: ReasonNoDecider}},
		{"cost payer payee", func(*abi.RequestView) abi.Decision {
			return abi.Decision{Allowed: true, Cost: 7, Payer: "p", Payee: "q", Reason: "r"}
		}, valid, abi.Decision{Allowed: true, Cost: 7, Payer: "p", Payee: "q", Reason: "r"}},
		{"long reason truncated", func(*abi.RequestView) abi.Decision {
			return abi.Decision{Reason: strings.Repeat("x", abi.MaxReasonLen+10)}
		}, valid, abi.Decision{Reason: strings.Repeat("x", abi.MaxReasonLen)}},
		{"long payer is invalid", func(*abi.RequestView) abi.Decision {
			return abi.Decision{Allowed: true, Payer: strings.Repeat("p", abi.MaxIDLen+1)}
		}, valid, abi.Decision{Reason: ReasonInvalidDecision}},
		{"long payee is invalid", func(*abi.RequestView) abi.Decision {
			return abi.Decision{Allowed: true, Payee: strings.Repeat("p", abi.MaxIDLen+1)}
		}, valid, abi.Decision{Reason: ReasonInvalidDecision}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler()
			h.decide = tc.decide
			require.Equal(t, tc.want, run(t, h, tc.req))
		})
	}
}

func TestHandlerRegion(t *testing.T) {
	h := newHandler()
	require.NotNil(t, h.alloc(10))
	n := uint64(len(h.req))
	tests := []struct {
		name   string
		off, n uint64
		ok     bool
	}{
		{"whole", 0, n, true},
		{"empty", 0, 0, true},
		{"tail", n - 1, 1, true},
		{"empty at end", n, 0, true},
		{"past end", n - 1, 2, false},
		{"offset past end", n + 1, 0, false},
		{"overflow", 1, ^uint64(0), false},
		{"huge offset", ^uint64(0), 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := h.region(tc.off, tc.n)
			require.Equal(t, tc.ok, ok)
			if ok {
				require.Len(t, b, int(tc.n))
			}
		})
	}
	d, err := abi.DecodeDecision(h.check(nil, false))
	require.NoError(t, err)
	require.Equal(t, abi.Decision{Reason: ReasonMalformed}, d, "a request outside the region is denied")
}

func TestHandlerAlloc(t *testing.T) {
	h := newHandler()
	a := h.alloc(0)
	require.Len(t, a, minAlloc)
	require.Same(t, &a[0], &h.alloc(minAlloc)[0], "a request that fits reuses the buffer")
	b := h.alloc(minAlloc + 1)
	require.Len(t, b, minAlloc+1)
	require.Same(t, &b[0], &h.alloc(100)[0])
	require.NotNil(t, h.alloc(maxAlloc))
	require.Nil(t, h.alloc(maxAlloc+1))
	require.Nil(t, h.alloc(^uint32(0)))
}

// TestHandlerCheck_allocs checks the SDK's promise: no allocation per call
// for well-formed requests.
func TestHandlerCheck_allocs(t *testing.T) {
	h := newHandler()
	h.decide = freeware
	req := encodeReq(t, abi.Request{Action: abi.ActionWrite, Caller: "alice", CreatedBy: "alice",
		Metadata: []abi.KV{{Key: "a", Value: "1"}, {Key: "z", Value: "2"}}, Config: []abi.KV{{Key: "k", Value: "v"}}})
	copy(h.alloc(uint32(len(req))), req)
	allocs := testing.AllocsPerRun(100, func() {
		buf := h.alloc(uint32(len(req)))
		b, ok := h.region(0, uint64(len(req)))
		_ = buf
		h.check(b, ok)
	})
	require.Zero(t, allocs)
}

func TestRegister(t *testing.T) {
	old := std.decide
	t.Cleanup(func() { std.decide = old })
	Register(freeware)
	require.NotNil(t, std.decide)
	Register(nil)
	require.Nil(t, std.decide)
}

func BenchmarkCheck_warm(b *testing.B) {
	h := newHandler()
	h.decide = freeware
	req := encodeReq(b, abi.Request{Action: abi.ActionWrite, Caller: "alice", CreatedBy: "alice"})
	copy(h.alloc(uint32(len(req))), req)
	r, ok := h.region(0, uint64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		h.check(r, ok)
	}
}
