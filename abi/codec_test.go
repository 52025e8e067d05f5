package abi_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/abitest"
)

func sampleRequest() abi.Request {
	return abi.Request{
		Action:         abi.ActionWrite,
		TargetExists:   true,
		Time:           1_700_000_000_000_000_000,
		Depth:          2,
		Caller:         "alice",
		TargetID:       "notes/1",
		TargetType:     "data",
		CreatedBy:      "bob",
		AccessContract: "genesis/freeware",
		Size:           42,
		Revision:       7,
		Metadata:       []abi.KV{{"controller", "alice"}, {"topic", "x"}},
		PayloadSize:    100,
		Method:         "run",
		Args:           []byte{1, 2, 3},
		Config:         []abi.KV{{"price", "5"}},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  abi.Request
	}{
		{"full", sampleRequest()},
		{"empty", abi.Request{Action: abi.ActionRead}},
		{"max-ids", abi.Request{Action: abi.ActionDelete, Caller: strings.Repeat("c", abi.MaxIDLen), TargetID: strings.Repeat("t", abi.MaxIDLen)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := abi.AppendRequest(nil, &tc.req)
			require.NoError(t, err)
			got, err := abi.DecodeRequest(b)
			require.NoError(t, err)
			require.Equal(t, tc.req, got)
			// Re-encoding the decoded request gives the same bytes: the encoding is canonical.
			b2, err := abi.AppendRequest(nil, &got)
			require.NoError(t, err)
			require.Equal(t, b, b2)
		})
	}
}

func TestRequestViewAccessors(t *testing.T) {
	r := sampleRequest()
	b, err := abi.AppendRequest(nil, &r)
	require.NoError(t, err)
	var v abi.RequestView
	require.NoError(t, v.Parse(b))
	require.Equal(t, abi.ActionWrite, v.Action())
	require.True(t, v.TargetExists())
	require.Equal(t, "alice", string(v.Caller()))
	require.Equal(t, "bob", string(v.CreatedBy()))
	c, ok := v.Meta("controller")
	require.True(t, ok)
	require.Equal(t, "alice", string(c))
	_, ok = v.Meta("missing")
	require.False(t, ok)
	p, ok := v.Config("price")
	require.True(t, ok)
	require.Equal(t, "5", string(p))
	require.Equal(t, "alice", string(v.Controller()), "controller metadata wins over created_by")
	k, val := v.MetaAt(1)
	require.Equal(t, "topic", string(k))
	require.Equal(t, "x", string(val))
	k, _ = v.MetaAt(5)
	require.Nil(t, k)

	r.Metadata = nil
	b, err = abi.AppendRequest(b[:0], &r)
	require.NoError(t, err)
	require.NoError(t, v.Parse(b))
	require.Equal(t, "bob", string(v.Controller()), "without controller metadata, created_by")
}

func TestAppendRequestRejects(t *testing.T) {
	tests := []struct {
		name string
		mut  func(r *abi.Request)
		want error
	}{
		{"long caller", func(r *abi.Request) { r.Caller = strings.Repeat("x", abi.MaxIDLen+1) }, abi.ErrTooLarge},
		{"long type", func(r *abi.Request) { r.TargetType = strings.Repeat("x", abi.MaxTypeLen+1) }, abi.ErrTooLarge},
		{"unsorted metadata", func(r *abi.Request) { r.Metadata = []abi.KV{{"b", ""}, {"a", ""}} }, abi.ErrUnsorted},
		{"duplicate key", func(r *abi.Request) { r.Config = []abi.KV{{"a", ""}, {"a", ""}} }, abi.ErrUnsorted},
		{"empty key", func(r *abi.Request) { r.Metadata = []abi.KV{{"", "v"}} }, abi.ErrUnsorted},
		{"long value", func(r *abi.Request) { r.Metadata = []abi.KV{{"k", strings.Repeat("v", abi.MaxMetaValueLen+1)}} }, abi.ErrTooLarge},
		{"too many pairs", func(r *abi.Request) {
			r.Metadata = nil
			for i := 0; i <= abi.MaxMetaPairs; i++ {
				r.Metadata = append(r.Metadata, abi.KV{Key: string(rune('A'+i/26)) + string(rune('a'+i%26))})
			}
		}, abi.ErrTooLarge},
		{"huge args", func(r *abi.Request) { r.Args = make([]byte, abi.MaxArgsLen+1) }, abi.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleRequest()
			tc.mut(&r)
			dst := []byte("keep")
			out, err := abi.AppendRequest(dst, &r)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, []byte("keep"), out, "dst unchanged on error")
		})
	}
}

func TestRequestParseMalformed(t *testing.T) {
	r := sampleRequest()
	good, err := abi.AppendRequest(nil, &r)
	require.NoError(t, err)
	patch := func(off int, v uint32) []byte {
		b := bytes.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, abi.ErrMalformed},
		{"short header", good[:20], abi.ErrMalformed},
		{"bad magic", append([]byte("XXXX"), good[4:]...), abi.ErrMalformed},
		{"version 2", func() []byte { b := bytes.Clone(good); b[4] = 2; return b }(), abi.ErrVersion},
		{"unknown flag", patch(8, 2), abi.ErrMalformed},
		{"caller too long", patch(48, abi.MaxIDLen+1), abi.ErrMalformed},
		{"caller past end", patch(48, 1<<31), abi.ErrMalformed},
		{"truncated in fields", good[:60], abi.ErrMalformed},
		{"truncated metadata", good[:len(good)-10], abi.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v abi.RequestView
			require.ErrorIs(t, v.Parse(tc.b), tc.want)
			_, err := abi.DecodeRequest(tc.b)
			require.ErrorIs(t, err, tc.want)
		})
	}
	t.Run("trailing bytes ignored", func(t *testing.T) {
		// Bytes after the last field a parser knows are a later revision's.
		rr := r
		rr.CallerRights = []abi.RightAmount{{Resource: "llm_rate", Amount: 300}}
		b, err := abi.AppendRequest(nil, &rr)
		require.NoError(t, err)
		got, err := abi.DecodeRequest(append(b, 9, 9, 9))
		require.NoError(t, err)
		require.Equal(t, rr, got)
	})
	t.Run("caller rights absent", func(t *testing.T) {
		got, err := abi.DecodeRequest(good)
		require.NoError(t, err)
		require.Nil(t, got.CallerRights)
		var v abi.RequestView
		require.NoError(t, v.Parse(good))
		require.Equal(t, 0, v.CallerRightsLen())
		require.Zero(t, v.CallerRight("llm_rate"))
	})
	rights := func(entries ...any) []byte {
		b := binary.LittleEndian.AppendUint32(bytes.Clone(good), uint32(len(entries)/2))
		for i := 0; i+1 < len(entries); i += 2 {
			res := entries[i].(string)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(res)))
			b = append(b, res...)
			b = binary.LittleEndian.AppendUint64(b, entries[i+1].(uint64))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"caller rights: garbage after config", append(bytes.Clone(good), 9, 9, 9)},
		{"caller rights: too many", binary.LittleEndian.AppendUint32(bytes.Clone(good), abi.MaxCallerRights+1)},
		{"caller rights: unsorted", rights("llm_rate", uint64(1), "disk", uint64(2))},
		{"caller rights: duplicate", rights("disk", uint64(1), "disk", uint64(2))},
		{"caller rights: empty resource", rights("", uint64(1))},
		{"caller rights: long resource", rights(strings.Repeat("r", abi.MaxResourceLen+1), uint64(1))},
		{"caller rights: amount truncated", rights("disk", uint64(1))[:len(rights("disk", uint64(1)))-3]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v abi.RequestView
			require.ErrorIs(t, v.Parse(tc.b), abi.ErrMalformed)
		})
	}
	t.Run("caller rights: zero entries", func(t *testing.T) {
		var v abi.RequestView
		require.NoError(t, v.Parse(rights()))
		require.Equal(t, 0, v.CallerRightsLen())
	})
}

func TestRequestCallerRights(t *testing.T) {
	r := sampleRequest()
	r.CallerRights = []abi.RightAmount{{Resource: "disk", Amount: 10}, {Resource: "llm_rate", Amount: 1 << 40}}
	b, err := abi.AppendRequest(nil, &r)
	require.NoError(t, err)
	var v abi.RequestView
	require.NoError(t, v.Parse(b))
	require.Equal(t, 2, v.CallerRightsLen())
	res, amt := v.CallerRightAt(1)
	require.Equal(t, "llm_rate", string(res))
	require.Equal(t, uint64(1<<40), amt)
	res, amt = v.CallerRightAt(2)
	require.Nil(t, res)
	require.Zero(t, amt)
	require.Equal(t, uint64(10), v.CallerRight("disk"))
	require.Equal(t, uint64(1<<40), v.CallerRight("llm_rate"))
	require.Zero(t, v.CallerRight("cpu_rate"))
	got, err := abi.DecodeRequest(b)
	require.NoError(t, err)
	require.Equal(t, r, got)

	for _, tc := range []struct {
		name string
		rs   []abi.RightAmount
		want error
	}{
		{"unsorted", []abi.RightAmount{{"llm_rate", 1}, {"disk", 1}}, abi.ErrUnsorted},
		{"duplicate", []abi.RightAmount{{"disk", 1}, {"disk", 1}}, abi.ErrUnsorted},
		{"empty resource", []abi.RightAmount{{"", 1}}, abi.ErrUnsorted},
		{"long resource", []abi.RightAmount{{strings.Repeat("r", abi.MaxResourceLen+1), 1}}, abi.ErrTooLarge},
		{"too many", make([]abi.RightAmount, abi.MaxCallerRights+1), abi.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := sampleRequest()
			bad.CallerRights = tc.rs
			out, err := abi.AppendRequest(nil, &bad)
			require.ErrorIs(t, err, tc.want)
			require.Empty(t, out)
		})
	}
}

func TestDecisionRoundTrip(t *testing.T) {
	tests := []abi.Decision{
		{},
		{Allowed: true},
		{Allowed: true, Cost: 1<<64 - 1, Payer: "sponsor", Payee: "author", Reason: "paid read"},
		{Reason: strings.Repeat("r", abi.MaxReasonLen)},
	}
	for _, d := range tests {
		b, err := abi.AppendDecision(nil, &d)
		require.NoError(t, err)
		require.LessOrEqual(t, len(b), abi.MaxDecisionSize)
		got, err := abi.DecodeDecision(b)
		require.NoError(t, err)
		require.Equal(t, d, got)
	}
	_, err := abi.AppendDecision(nil, &abi.Decision{Reason: strings.Repeat("r", abi.MaxReasonLen+1)})
	require.ErrorIs(t, err, abi.ErrTooLarge)
	_, err = abi.AppendDecision(nil, &abi.Decision{Payer: strings.Repeat("p", abi.MaxIDLen+1)})
	require.ErrorIs(t, err, abi.ErrTooLarge)
}

func TestDecodeDecisionMalformed(t *testing.T) {
	good, err := abi.AppendDecision(nil, &abi.Decision{Allowed: true, Payer: "p", Reason: "ok"})
	require.NoError(t, err)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, abi.ErrMalformed},
		{"bad magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), abi.ErrMalformed},
		{"version", mod(func(b []byte) []byte { b[4] = 9; return b }), abi.ErrVersion},
		{"allowed=2", mod(func(b []byte) []byte { b[6] = 2; return b }), abi.ErrMalformed},
		{"reserved", mod(func(b []byte) []byte { b[7] = 1; return b }), abi.ErrMalformed},
		{"trailing", append(bytes.Clone(good), 0), abi.ErrMalformed},
		{"truncated", good[:len(good)-1], abi.ErrMalformed},
		{"payer too long", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[16:], abi.MaxIDLen+1); return b }), abi.ErrMalformed},
		{"oversized", make([]byte, abi.MaxDecisionSize+1), abi.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := abi.DecodeDecision(tc.b)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestCodecAllocations(t *testing.T) {
	r := sampleRequest()
	buf := make([]byte, 0, 4096)
	var v abi.RequestView
	b, _ := abi.AppendRequest(buf, &r)
	allocs := testing.AllocsPerRun(100, func() {
		b, _ = abi.AppendRequest(buf[:0], &r)
		if err := v.Parse(b); err != nil {
			t.Fatal(err)
		}
		if _, ok := v.Meta("controller"); !ok {
			t.Fatal("no controller")
		}
	})
	require.Zero(t, allocs, "encode into a reused buffer and parse allocate nothing")

	d, _ := abi.AppendDecision(nil, &abi.Decision{Allowed: true})
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := abi.DecodeDecision(d); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs, "a decision with empty strings decodes without allocating")
}

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range abi.Codes() {
		name := c.String()
		require.NotEqual(t, "UNKNOWN", name)
		require.False(t, seen[name], "duplicate name %s", name)
		seen[name] = true
		back, ok := abi.ParseCode(name)
		require.True(t, ok)
		require.Equal(t, c, back)
		require.Equal(t, strings.ToUpper(name), name)
	}
	require.True(t, abi.QuotaExceeded.Retriable())
	require.Equal(t, abi.CategoryResource, abi.QuotaExceeded.Category())
	require.False(t, abi.PermissionDenied.Retriable())
	require.Equal(t, "UNKNOWN", abi.Code(9999).String())
	_, ok := abi.ParseCode("NOPE")
	require.False(t, ok)
}

func TestActions(t *testing.T) {
	for a := abi.ActionRead; a.Valid(); a++ {
		back, ok := abi.ParseAction(a.String())
		require.True(t, ok)
		require.Equal(t, a, back)
	}
	require.False(t, abi.ActionInvalid.Valid())
	require.False(t, abi.Action(99).Valid())
	require.Equal(t, "unknown", abi.Action(99).String())
	_, ok := abi.ParseAction("invalid")
	require.False(t, ok)
}

func FuzzParseRequest(f *testing.F) {
	r := sampleRequest()
	good, _ := abi.AppendRequest(nil, &r)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte(abi.RequestMagic))
	empty, _ := abi.AppendRequest(nil, &abi.Request{})
	f.Add(empty)
	r.CallerRights = []abi.RightAmount{{Resource: "disk", Amount: 1}, {Resource: "llm_rate", Amount: 2}}
	withRights, _ := abi.AppendRequest(nil, &r)
	f.Add(withRights)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v abi.RequestView
		if err := v.Parse(b); err != nil {
			if !errors.Is(err, abi.ErrMalformed) && !errors.Is(err, abi.ErrVersion) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		// Every accessor of a parsed view is safe.
		for i := 0; i < v.MetaLen(); i++ {
			v.MetaAt(i)
		}
		for i := 0; i < v.ConfigLen(); i++ {
			v.ConfigAt(i)
		}
		v.Meta("controller")
		v.Controller()
		for i := 0; i < v.CallerRightsLen(); i++ {
			v.CallerRightAt(i)
		}
		v.CallerRight("llm_rate")
		// A parsed request re-encodes and decodes to the same value.
		req, err := abi.DecodeRequest(b)
		if err != nil {
			t.Fatalf("view parsed but decode failed: %v", err)
		}
		enc, err := abi.AppendRequest(nil, &req)
		if err != nil {
			t.Fatalf("decoded request does not re-encode: %v", err)
		}
		again, err := abi.DecodeRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		require.Equal(t, req, again)
	})
}

func FuzzDecodeDecision(f *testing.F) {
	good, _ := abi.AppendDecision(nil, &abi.Decision{Allowed: true, Cost: 3, Payer: "p", Payee: "q", Reason: "r"})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte(abi.DecisionMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := abi.DecodeDecision(b)
		if err != nil {
			if !errors.Is(err, abi.ErrMalformed) && !errors.Is(err, abi.ErrVersion) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		enc, err := abi.AppendDecision(nil, &d)
		if err != nil {
			t.Fatalf("decoded decision does not re-encode: %v", err)
		}
		require.Equal(t, b, enc, "decision encoding is canonical")
	})
}

// BenchmarkAppendRequest encodes a typical request into a reused buffer.
func BenchmarkAppendRequest(b *testing.B) {
	req := abitest.CheckRequest()
	buf, err := abi.AppendRequest(nil, req)
	require.NoError(b, err)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = abi.AppendRequest(buf[:0], req)
	}
}
