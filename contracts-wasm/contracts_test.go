package contracts_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/kernelhost/kernelhost/abi"
	contracts "github.com/kernelhost/kernelhost/contracts-wasm"
)

// rule is who may perform an action under a contract.
type rule int

const (
	anyone     rule = iota + 1
	controller      // the "controller" metadata value, else created_by
)

var knownActions = []abi.Action{
	abi.ActionRead, abi.ActionWrite, abi.ActionEdit,
	abi.ActionDelete, abi.ActionInvoke, abi.ActionSetContract,
}

// rules is the genesis rule table (contracts-wasm/README.md), per contract and
// action. Every known action has an entry; anything else is denied.
var rules = map[string]map[abi.Action]rule{
	contracts.NameFreeware: {
		abi.ActionRead: anyone, abi.ActionInvoke: anyone,
		abi.ActionWrite: controller, abi.ActionEdit: controller,
		abi.ActionDelete: controller, abi.ActionSetContract: controller,
	},
	contracts.NamePrivate: {
		abi.ActionRead: controller, abi.ActionInvoke: controller,
		abi.ActionWrite: controller, abi.ActionEdit: controller,
		abi.ActionDelete: controller, abi.ActionSetContract: controller,
	},
	contracts.NamePublic: {
		abi.ActionRead: anyone, abi.ActionInvoke: anyone,
		abi.ActionWrite: anyone, abi.ActionEdit: anyone,
		abi.ActionDelete: controller, abi.ActionSetContract: controller,
	},
}

// model is the Go reference of the rules: the decision a contract must return
// for a well-formed request.
func model(contract string, v *abi.RequestView) abi.Decision {
	r, known := rules[contract][v.Action()]
	if !known {
		return abi.Decision{Reason: contract + ": unknown action"}
	}
	switch r {
	case anyone:
		return abi.Decision{Allowed: true}
	case controller:
		c := v.Controller()
		if len(c) > 0 && bytes.Equal(v.Caller(), c) {
			return abi.Decision{Allowed: true}
		}
	}
	return abi.Decision{Reason: contract + ": only the controller may " + v.Action().String()}
}

// scenario is who asks, about what: the caller, the target and its metadata.
type scenario struct {
	name         string
	caller       string
	targetID     string
	createdBy    string
	meta         []abi.KV
	config       []abi.KV
	isController bool // expected: caller is the controller
}

var scenarios = []scenario{
	{name: "controller via metadata", caller: "alice", targetID: "notes/1", createdBy: "bob",
		meta: kvs("controller", "alice"), isController: true},
	{name: "controller among other keys", caller: "alice", targetID: "notes/1", createdBy: "bob",
		meta: kvs("a", "x", "control", "mallory", "controller", "alice", "controller2", "mallory", "zeta", "y"), isController: true},
	{name: "created_by fallback", caller: "bob", targetID: "notes/1", createdBy: "bob", isController: true},
	{name: "created_by fallback with similar keys", caller: "bob", targetID: "notes/1", createdBy: "bob",
		meta: kvs("control", "mallory", "controller ", "mallory", "controllers", "mallory"), isController: true},
	{name: "creator overridden by controller", caller: "bob", targetID: "notes/1", createdBy: "bob",
		meta: kvs("controller", "alice")},
	{name: "empty controller matches nobody", caller: "bob", targetID: "notes/1", createdBy: "bob",
		meta: kvs("controller", "")},
	{name: "stranger", caller: "mallory", targetID: "notes/1", createdBy: "bob",
		meta: kvs("controller", "alice")},
	{name: "stranger without metadata", caller: "mallory", targetID: "notes/1", createdBy: "bob"},
	{name: "prefix of controller", caller: "alic", targetID: "notes/1", createdBy: "bob",
		meta: kvs("controller", "alice")},
	{name: "config is not metadata", caller: "mallory", targetID: "notes/1", createdBy: "bob",
		config: kvs("controller", "mallory")},
	// A principal whose id equals the artifact's id gains nothing by it:
	// principal and artifact ids are separate namespaces.
	{name: "caller id equals target id", caller: "agent/7", targetID: "agent/7", createdBy: "bob"},
	{name: "caller id equals target id, controller", caller: "agent/7", targetID: "agent/7", createdBy: "bob",
		meta: kvs("controller", "agent/7"), isController: true},
	{name: "creator of a target named like another", caller: "bob", targetID: "agent/7", createdBy: "bob", isController: true},
	{name: "empty caller and target", caller: "", targetID: "", createdBy: ""},
}

// rightsSets are caller_rights lists for valid requests: none (the request
// ends at config), one entry, several.
var rightsSets = [][]abi.RightAmount{
	nil,
	{{Resource: "llm_rate", Amount: 5}},
	{{Resource: "cpu_rate", Amount: 1}, {Resource: "disk", Amount: 1 << 33}, {Resource: "llm_rate", Amount: 2}},
}

// kvs builds a metadata list from key, value pairs given in order.
func kvs(pairs ...string) []abi.KV {
	out := make([]abi.KV, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, abi.KV{Key: pairs[i], Value: pairs[i+1]})
	}
	return out
}

func (s scenario) request(a abi.Action) abi.Request {
	return abi.Request{
		Action: a, TargetExists: true, Time: 1_700_000_000_000_000_000,
		Caller: s.caller, TargetID: s.targetID, TargetType: "data", CreatedBy: s.createdBy,
		AccessContract: "genesis/contract", Size: 10, Revision: 3,
		Metadata: s.meta, Config: s.config,
	}
}

// TestContracts runs every rule of every genesis contract: each action for
// each kind of caller, and unknown action values.
func TestContracts(t *testing.T) {
	for name, wasm := range contracts.Genesis() {
		t.Run(name, func(t *testing.T) {
			g := newGuest(t, wasm) // one instance for all cases, as a pool reuses it
			actions := append(append([]abi.Action(nil), knownActions...), 0, 7, 99, 0xffff)
			for _, s := range scenarios {
				for _, a := range actions {
					t.Run(s.name+"/"+actionLabel(a), func(t *testing.T) {
						var want abi.Decision
						switch r, ok := rules[name][a]; {
						case !ok:
							want.Reason = name + ": unknown action"
						case r == anyone, r == controller && s.isController:
							want.Allowed = true
						default:
							want.Reason = name + ": only the controller may " + a.String()
						}
						req := s.request(a)
						got := g.decide(t, encode(t, &req))
						require.Equal(t, want, got)
					})
				}
			}
		})
	}
}

func actionLabel(a abi.Action) string {
	if a.Valid() {
		return a.String()
	}
	return "unknown-" + strconv.Itoa(int(a))
}

// malformed returns a valid request mutated by f.
func malformed(f func(b []byte) []byte) []byte {
	r := abi.Request{
		Action: abi.ActionRead, Caller: "alice", TargetID: "t", CreatedBy: "alice",
		Metadata: kvs("a", "1", "b", "2"),
	}
	b, _ := abi.AppendRequest(nil, &r)
	return f(b)
}

// Offsets in the encoding of malformed's base request.
const (
	offCaller   = 48
	offMetaCnt  = 48 + 4 + 5 + 4 + 1 + 4 + 0 + 4 + 5 + 4 + 0 + 4 + 0 + 4 + 0
	offFirstKey = offMetaCnt + 4
)

func put32(b []byte, off int, v uint32) []byte {
	binary.LittleEndian.PutUint32(b[off:], v)
	return b
}

// baseRequest returns malformed's base request, unchanged.
func baseRequest() []byte { return malformed(func(b []byte) []byte { return b }) }

// cut returns b without its last n bytes.
func cut(b []byte, n int) []byte { return b[:len(b)-n] }

// withRights returns malformed's base request (which ends at config)
// followed by a caller_rights list: count, then each entry as a resource
// length, the resource and an 8-byte amount, then tail. The lengths are
// given, not computed, so that they can lie.
func withRights(count uint32, tail []byte, entries ...string) []byte {
	b := baseRequest()
	b = binary.LittleEndian.AppendUint32(b, count)
	for _, r := range entries {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = append(b, r...)
		b = binary.LittleEndian.AppendUint64(b, 7)
	}
	return append(b, tail...)
}

var malformedCases = []struct {
	name string
	req  []byte
}{
	{"empty", nil},
	{"one byte", []byte{'K'}},
	{"header only", malformed(func(b []byte) []byte { return b[:48] })},
	{"bad magic", malformed(func(b []byte) []byte { b[3] = 'X'; return b })},
	{"decision magic", malformed(func(b []byte) []byte { copy(b, abi.DecisionMagic); return b })},
	{"version 0", malformed(func(b []byte) []byte { b[4] = 0; return b })},
	{"version 2", malformed(func(b []byte) []byte { b[4] = 2; return b })},
	{"unknown flag", malformed(func(b []byte) []byte { b[8] |= 2; return b })},
	{"high flag", malformed(func(b []byte) []byte { b[11] = 0x80; return b })},
	{"caller past end", malformed(func(b []byte) []byte { return put32(b, offCaller, uint32(len(b))) })},
	{"caller over limit", malformed(func(b []byte) []byte {
		b = put32(b[:offCaller], offCaller-4, 0)[:offCaller]
		b = binary.LittleEndian.AppendUint32(b, abi.MaxIDLen+1)
		return append(b, make([]byte, abi.MaxIDLen+1+200)...)
	})},
	{"caller length 0xffffffff", malformed(func(b []byte) []byte { return put32(b, offCaller, 0xffffffff) })},
	{"truncated in metadata", malformed(func(b []byte) []byte { return b[:offFirstKey+2] })},
	{"no config count", malformed(func(b []byte) []byte { return b[:len(b)-4] })},
	{"too many pairs", malformed(func(b []byte) []byte { return put32(b, offMetaCnt, abi.MaxMetaPairs+1) })},
	{"pair count 0xffffffff", malformed(func(b []byte) []byte { return put32(b, offMetaCnt, 0xffffffff) })},
	{"more pairs than bytes", malformed(func(b []byte) []byte { return put32(b, offMetaCnt, 3) })},
	{"unsorted keys", malformed(func(b []byte) []byte { b[offFirstKey+4] = 'c'; return b })},
	{"duplicate keys", malformed(func(b []byte) []byte { b[offFirstKey+4] = 'b'; return b })},
	{"empty key", malformed(func(b []byte) []byte {
		// replace key "a" (len 1) by "" and value "1" by "a1" so lengths still add up
		return put32(put32(b, offFirstKey, 0), offFirstKey+4, 2)[:len(b)]
	})},
	{"key over limit", malformed(func(b []byte) []byte { return put32(b, offFirstKey, abi.MaxMetaKeyLen+1) })},
	// caller_rights (revision 1.1): whatever follows config must be a valid
	// rightlist, whether or not the contract reads it. FuzzFreeware found
	// the first: the C header used to ignore everything after config.
	{"rights count truncated", append(baseRequest(), 0, 0)},
	{"bytes after config that are no rightlist", append(baseRequest(), "future fields"...)},
	{"too many rights", withRights(abi.MaxCallerRights+1, make([]byte, 64))},
	{"rights count 0xffffffff", withRights(0xffffffff, make([]byte, 64))},
	{"more rights than bytes", withRights(2, nil, "cpu_rate")},
	{"rights resource past end", cut(withRights(1, nil, "cpu_rate"), 8+2)},
	{"rights resource length 0xffffffff", put32(withRights(1, nil, "cpu_rate"), len(baseRequest())+4, 0xffffffff)},
	{"rights resource over limit", withRights(1, nil, strings.Repeat("r", abi.MaxResourceLen+1))},
	{"rights empty resource", withRights(1, nil, "")},
	{"rights unsorted", withRights(2, nil, "llm_rate", "cpu_rate")},
	{"rights duplicate", withRights(2, nil, "llm_rate", "llm_rate")},
	{"rights amount truncated", cut(withRights(1, nil, "cpu_rate"), 1)},
}

// TestContracts_malformed checks that every contract denies malformed bytes
// with "malformed request" instead of trapping.
func TestContracts_malformed(t *testing.T) {
	for name, wasm := range contracts.Genesis() {
		t.Run(name, func(t *testing.T) {
			g := newGuest(t, wasm)
			for _, tc := range malformedCases {
				t.Run(tc.name, func(t *testing.T) {
					var v abi.RequestView
					require.Error(t, v.Parse(tc.req), "the Go view must reject it too")
					got := g.decide(t, tc.req)
					require.Equal(t, abi.Decision{Reason: "malformed request"}, got)
				})
			}
		})
	}
}

// TestContracts_trailingBytes checks that bytes after caller_rights are
// ignored (SPEC section 3), with or without rights in the list; bytes after
// config that are not a rightlist are malformed (malformedCases).
func TestContracts_trailingBytes(t *testing.T) {
	g := newGuest(t, contracts.Freeware())
	for _, rights := range [][]abi.RightAmount{nil, {{Resource: "cpu_rate", Amount: 3}, {Resource: "llm_rate", Amount: 1 << 40}}} {
		req := scenarios[0].request(abi.ActionWrite)
		req.CallerRights = rights
		b := encode(t, &req)
		if len(rights) == 0 {
			b = binary.LittleEndian.AppendUint32(b, 0) // an empty list, which the host never writes
		}
		b = append(b, "future fields"...)
		var v abi.RequestView
		require.NoError(t, v.Parse(b))
		require.Equal(t, abi.Decision{Allowed: true}, g.decide(t, b))
	}
}

// TestContracts_differential feeds the contracts valid and randomly damaged
// requests and compares with the Go view and the Go model of the rules:
// whatever Go rejects, the C parser rejects, and every valid request gets the
// model's decision.
func TestContracts_differential(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for name, wasm := range contracts.Genesis() {
		t.Run(name, func(t *testing.T) {
			g := newGuest(t, wasm)
			for i := 0; i < n; i++ {
				s := scenarios[rng.IntN(len(scenarios))]
				req := s.request(abi.Action(rng.IntN(9)))
				req.CallerRights = rightsSets[rng.IntN(len(rightsSets))]
				b := encode(t, &req)
				switch rng.IntN(4) {
				case 0: // valid
				case 1:
					b = b[:rng.IntN(len(b)+1)]
				default:
					for k := rng.IntN(3) + 1; k > 0; k-- {
						b[rng.IntN(len(b))] = byte(rng.Uint32())
					}
				}
				checkAgainstModel(t, g, name, b)
			}
		})
	}
}

func checkAgainstModel(t *testing.T, g *guest, name string, b []byte) {
	t.Helper()
	got := g.decide(t, b)
	var v abi.RequestView
	if err := v.Parse(b); err != nil {
		require.Equal(t, abi.Decision{Reason: "malformed request"}, got, "go: %v; bytes %x", err, b)
		return
	}
	require.Equal(t, model(name, &v), got, "bytes %x", b)
}

// FuzzFreeware compares the freeware contract with the Go view and model on
// arbitrary bytes.
func FuzzFreeware(f *testing.F) {
	for _, s := range scenarios {
		for _, a := range knownActions {
			req := s.request(a)
			b, err := abi.AppendRequest(nil, &req)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	for _, rights := range rightsSets[1:] {
		req := scenarios[0].request(abi.ActionWrite)
		req.CallerRights = rights
		b, err := abi.AppendRequest(nil, &req)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, tc := range malformedCases {
		f.Add(tc.req)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, contracts.Freeware())
	require.NoError(f, err)
	g := &guest{mod: mod, alloc: mod.ExportedFunction("kh_alloc"), check: mod.ExportedFunction("kh_check")}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAgainstModel(t, g, contracts.NameFreeware, b)
	})
}

// TestContracts_largeRequest sends requests at the SPEC limits, larger than
// the static arena, so that kh_alloc grows memory.
func TestContracts_largeRequest(t *testing.T) {
	meta := make([]abi.KV, abi.MaxMetaPairs)
	for i := range meta {
		meta[i] = abi.KV{Key: strings.Repeat("k", abi.MaxMetaKeyLen-2) + string(rune('A'+i/26)) + string(rune('a'+i%26)), Value: strings.Repeat("v", abi.MaxMetaValueLen)}
	}
	meta[0] = abi.KV{Key: "controller", Value: strings.Repeat("c", abi.MaxIDLen)} // sorts first
	cfg := append([]abi.KV(nil), meta[1:]...)
	req := abi.Request{
		Action: abi.ActionWrite, Caller: strings.Repeat("c", abi.MaxIDLen),
		TargetID: strings.Repeat("t", abi.MaxIDLen), TargetType: strings.Repeat("y", abi.MaxTypeLen),
		CreatedBy: strings.Repeat("b", abi.MaxIDLen), AccessContract: strings.Repeat("a", abi.MaxIDLen),
		Method: strings.Repeat("m", abi.MaxMethodLen), Args: make([]byte, abi.MaxArgsLen),
		Metadata: meta, Config: cfg,
	}
	b := encode(t, &req)
	for name, wasm := range contracts.Genesis() {
		t.Run(name, func(t *testing.T) {
			g := newGuest(t, wasm)
			var v abi.RequestView
			require.NoError(t, v.Parse(b))
			small := scenarios[0].request(abi.ActionRead)
			for _, r := range [][]byte{encode(t, &small), b, b[:len(b)/2], b, encode(t, &small)} {
				checkAgainstModel(t, g, name, r)
			}
			require.Equal(t, 2, g.allocCallCount, "the host keeps the big region for smaller requests")
		})
	}
}

// TestKhAlloc checks kh_alloc's regions: the static arena for small sizes, a
// grown region reused and extended in place for large ones, 0 when memory
// cannot grow.
func TestKhAlloc(t *testing.T) {
	g := newGuest(t, contracts.Freeware())
	mem := g.mod.Memory()
	arena, err := g.khAlloc(16)
	require.NoError(t, err)
	require.NotZero(t, arena)
	zero, err := g.khAlloc(0)
	require.NoError(t, err)
	require.Equal(t, arena, zero)
	full, err := g.khAlloc(16384)
	require.NoError(t, err)
	require.Equal(t, arena, full, "the static arena holds 16384 bytes")

	end := mem.Size()
	big, err := g.khAlloc(16385)
	require.NoError(t, err)
	require.Equal(t, end, big, "a large region starts at the old end of memory")
	require.Equal(t, end+65536, mem.Size())
	again, err := g.khAlloc(65536)
	require.NoError(t, err)
	require.Equal(t, big, again, "a region that fits is reused")
	require.Equal(t, end+65536, mem.Size())
	bigger, err := g.khAlloc(65536*3 + 1)
	require.NoError(t, err)
	require.Equal(t, big, bigger, "the last region is extended in place")
	require.Equal(t, end+65536*4, mem.Size())

	huge, err := g.khAlloc(0xffffffff)
	require.NoError(t, err, "failure is 0, not a trap")
	require.Zero(t, huge)
	small, err := g.khAlloc(1)
	require.NoError(t, err)
	require.Equal(t, arena, small)
}

// TestContracts_moduleShape checks what deploy-time validation will look at:
// no imports, the ABI exports with their signatures, one small memory.
func TestContracts_moduleShape(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	want := map[string][2][]api.ValueType{
		"kh_abi_version": {nil, {i32}},
		"kh_alloc":       {{i32}, {i32}},
		"kh_check":       {{i32, i32}, {i64}},
	}
	for name, wasm := range contracts.Genesis() {
		t.Run(name, func(t *testing.T) {
			require.Less(t, len(wasm), 8192, "genesis contracts stay small")
			cm, err := r.CompileModule(ctx, wasm)
			require.NoError(t, err)
			require.Empty(t, cm.ImportedFunctions())
			require.Empty(t, cm.ImportedMemories())
			require.Len(t, cm.ExportedFunctions(), len(want))
			for fn, sig := range want {
				def, ok := cm.ExportedFunctions()[fn]
				require.True(t, ok, fn)
				require.Equal(t, sig[0], nilIfEmpty(def.ParamTypes()), fn)
				require.Equal(t, sig[1], def.ResultTypes(), fn)
			}
			mems := cm.ExportedMemories()
			require.Contains(t, mems, "memory")
			require.Equal(t, uint32(1), mems["memory"].Min(), "one page of initial memory")
		})
	}
}

func nilIfEmpty(v []api.ValueType) []api.ValueType {
	if len(v) == 0 {
		return nil
	}
	return v
}

// TestGenesis checks the embedding API: names, copies, wasm magic.
func TestGenesis(t *testing.T) {
	tests := []struct {
		name string
		get  func() []byte
	}{
		{contracts.NameFreeware, contracts.Freeware},
		{contracts.NamePrivate, contracts.Private},
		{contracts.NamePublic, contracts.Public},
	}
	g := contracts.Genesis()
	require.Len(t, g, len(tests))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.get()
			require.Equal(t, []byte("\x00asm\x01\x00\x00\x00"), b[:8])
			require.Equal(t, b, g[tc.name])
			b[0] = 'X' // the caller owns its copy
			require.Equal(t, byte(0), tc.get()[0])
		})
	}
}
