package kernel

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fullEvent sets every field of Event to a value other than its zero value,
// so that a field the codec forgets fails the round trip.
func fullEvent() Event {
	return Event{
		Seq:      1<<63 + 7,
		Time:     unixTime(1_700_000_000_123_456_789),
		Caller:   "agent-0099",
		Kind:     KindSplitRight,
		Target:   "rights/cpu-1",
		To:       "agent-0042",
		Resource: "cpu_rate",
		Amount:   -42,
		CPU:      1234,
		Fuel:     1 << 40,
		Depth:    3,
		Allowed:  true,
		Reason:   "controller wrote it ✓",
		Code:     "OK",
		Message:  "a message\x00with a NUL",
		Charges: []Charge{
			{Payer: "agent-0099", Payee: "agent-0042", Amount: 5, Reason: "contract"},
			{Payer: "agent-0099", Amount: 1<<64 - 1, Reason: "transfer"}, // burned
		},
		Revision: 9,
		IDs:      []string{"rights/cpu-1.1", "", "rights/cpu-1.2"},
		Amounts:  []int64{1, -1, 1<<63 - 1},
		Holder:   "agent-0007",
		Token:    "read-only",
	}
}

// versionOf is the version byte appendBinary writes for e: 2 only for an
// event that names a token.
func versionOf(e *Event) byte {
	if e.Token != "" {
		return eventVersionToken
	}
	return eventVersion
}

func TestEventCodecRoundTrip(t *testing.T) {
	full := fullEvent()
	v := reflect.ValueOf(full)
	for i := 0; i < v.NumField(); i++ {
		require.False(t, v.Field(i).IsZero(), "fullEvent leaves %s zero: the round trip would not test it", v.Type().Field(i).Name)
	}
	for _, tc := range []struct {
		name string
		ev   Event
	}{
		{"every field", full},
		{"minimal", Event{Seq: 1, Time: unixTime(0), Caller: "alice", Kind: KindRead, Code: "NOT_FOUND"}},
		{"negative time", Event{Seq: 2, Time: unixTime(-1), Caller: "alice", Kind: KindTransfer}},
		{"extreme time", Event{Time: unixTime(-1 << 63)}},
		{"one charge, no lists", Event{Seq: 3, Time: unixTime(5), Charges: []Charge{{Payer: "p", Amount: 1}}}},
		{"long strings", Event{Time: unixTime(1), Message: strings.Repeat("m", 3<<20), Reason: strings.Repeat("r", 70000)}},
		{"token only", Event{Seq: 4, Time: unixTime(6), Caller: "alice", Kind: KindRead, Code: "OK", Token: "default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.ev.appendBinary(nil)
			require.Len(t, b, tc.ev.binarySize())
			require.Equal(t, versionOf(&tc.ev), b[0])
			got, err := decodeEvent(b)
			require.NoError(t, err)
			require.Equal(t, tc.ev, got)

			key, value := encodeEvent(&tc.ev)
			require.Equal(t, eventKey(tc.ev.Seq), key)
			require.Equal(t, b, value)
			require.Equal(t, len(key), cap(key), "the key's capacity ends at the key: an append to it cannot reach the value")
		})
	}
}

func TestEventCodecStringsDoNotAliasInput(t *testing.T) {
	ev := fullEvent()
	b := ev.appendBinary(nil)
	got, err := decodeEvent(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = 0xff // Iterate may reuse its value buffers after the callback
	}
	require.Equal(t, fullEvent(), got)
}

func TestDecodeEventRejects(t *testing.T) {
	ev := fullEvent()
	good := ev.appendBinary(nil)
	require.Equal(t, byte(eventVersionToken), good[0])
	noToken := fullEvent()
	noToken.Token = ""
	v1 := noToken.appendBinary(nil)
	oldJSON, err := json.Marshal(ev)
	require.NoError(t, err)

	// allowedAt is the offset of the Allowed byte in good.
	allowedAt := 1 + 8 + 8 + 5*4 + len(ev.Caller) + len(ev.Kind) + len(ev.Target) + len(ev.To) + len(ev.Resource) + 8 + 8 + 8 + 4
	require.Equal(t, byte(1), good[allowedAt])
	badAllowed := append([]byte(nil), good...)
	badAllowed[allowedAt] = 2

	// A charges count far beyond the record's length.
	chargesAt := allowedAt + 1 + 3*4 + len(ev.Reason) + len(ev.Code) + len(ev.Message)
	require.Equal(t, uint32(len(ev.Charges)), le.Uint32(good[chargesAt:]))
	hugeCount := append([]byte(nil), good...)
	le.PutUint32(hugeCount[chargesAt:], 1<<31)

	// A string length beyond the record's end.
	longStr := append([]byte(nil), good...)
	le.PutUint32(longStr[17:], 1<<30)

	cases := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"version 3", append([]byte{3}, good[1:]...)},
		{"version 1 with a token", append([]byte{eventVersion}, good[1:]...)},
		{"version 2 without a token", append([]byte{eventVersionToken}, v1[1:]...)},
		{"version 2 with an empty token", append(append([]byte{eventVersionToken}, v1[1:]...), 0, 0, 0, 0)},
		{"schema 2 JSON", oldJSON},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"allowed byte 2", badAllowed},
		{"huge count", hugeCount},
		{"string past the end", longStr},
	}
	for n := 0; n < len(good); n++ {
		cases = append(cases, struct {
			name string
			b    []byte
		}{"truncated", good[:n]})
	}
	for _, tc := range cases {
		_, err := decodeEvent(tc.b)
		require.ErrorIs(t, err, errCorrupt, "%s (%d bytes)", tc.name, len(tc.b))
	}
}

// FuzzDecodeEvent: the decoder never panics on any bytes; what it accepts
// re-encodes to the same bytes (one encoding per event) and decodes to the
// same event; and an event built from the fuzzer's values survives
// decode(encode(e)) unchanged.
func FuzzDecodeEvent(f *testing.F) {
	full := fullEvent()
	f.Add(full.appendBinary(nil), "agent|read|x", int64(-5), uint64(7), true)
	f.Add([]byte{eventVersion}, "", int64(0), uint64(0), false)
	f.Add([]byte(`{"seq":1}`), "a|b|c|d|e|f|g|h|i|j", int64(1)<<62, uint64(1)<<63, false)
	f.Fuzz(func(t *testing.T, b []byte, s string, n int64, u uint64, allowed bool) {
		if ev, err := decodeEvent(b); err == nil {
			require.Equal(t, b, ev.appendBinary(nil), "an accepted record re-encodes to its own bytes")
			again, err := decodeEvent(ev.appendBinary(nil))
			require.NoError(t, err)
			require.Equal(t, ev, again)
		} else {
			require.True(t, errors.Is(err, errCorrupt), "%v", err)
		}

		p := strings.Split(s, "|")
		at := func(i int) string { return p[i%len(p)] }
		ev := Event{
			Seq: u, Time: unixTime(n), Caller: at(0), Kind: Kind(at(1)), Target: at(2), To: at(3),
			Resource: at(4), Amount: n, CPU: -n, Fuel: u >> 1, Depth: uint32(u), Allowed: allowed,
			Reason: at(5), Code: at(6), Message: s, Revision: u ^ 1, Holder: at(7), Token: at(8),
		}
		for i := 0; i < len(p)%4; i++ {
			ev.Charges = append(ev.Charges, Charge{Payer: at(i), Payee: at(i + 1), Amount: u + uint64(i), Reason: at(i + 2)})
		}
		if len(p) > 2 {
			ev.IDs = p
			ev.Amounts = []int64{n, int64(u), int64(len(p))}
		}
		got, err := decodeEvent(ev.appendBinary(nil))
		require.NoError(t, err)
		require.Equal(t, ev, got)
	})
}

// TestEventCodec_allocs pins the codec's allocations: encoding into a
// buffer with room allocates nothing, the stored key and value of an event
// are one allocation, and decoding allocates one string for all the
// event's strings plus one per non-empty list.
func TestEventCodec_allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own: make test-allocs")
	}
	// What a successful read appends: no lists.
	read := Event{Seq: 123, Time: unixTime(1_700_000_000_000_000_000), Caller: "agent-0099", Kind: KindRead,
		Target: "workspace/agent-0042/notes.md", Allowed: true, Reason: "freeware: anyone may read", Code: "OK", Revision: 1}
	full := fullEvent()
	buf := make([]byte, 0, 4096)
	for _, tc := range []struct {
		name                   string
		ev                     *Event
		encode, record, decode float64
	}{
		{"read", &read, 0, 1, 1},
		{"every field", &full, 0, 1, 4}, // strings, charges, ids, amounts
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.encode, testing.AllocsPerRun(100, func() { buf = tc.ev.appendBinary(buf[:0]) }), "appendBinary")
			require.Equal(t, tc.record, testing.AllocsPerRun(100, func() { _, _ = encodeEvent(tc.ev) }), "encodeEvent")
			b := tc.ev.appendBinary(nil)
			require.Equal(t, tc.decode, testing.AllocsPerRun(100, func() {
				if _, err := decodeEvent(b); err != nil {
					t.Fatal(err)
				}
			}), "decodeEvent")
		})
	}
}

// TestEventCodecDecodesVersion1: an event stored before events named
// their token (version 1, these exact bytes) still decodes, with no token,
// and a token-less event is still written as those bytes.
func TestEventCodecDecodesVersion1(t *testing.T) {
	want := Event{Seq: 7, Time: unixTime(1_000), Caller: "alice", Kind: KindRead, Target: "doc", Allowed: true, Code: "OK", Revision: 2}
	stored := []byte{
		1,                      // version
		7, 0, 0, 0, 0, 0, 0, 0, // seq
		0xe8, 3, 0, 0, 0, 0, 0, 0, // time
		5, 0, 0, 0, 'a', 'l', 'i', 'c', 'e', // caller
		4, 0, 0, 0, 'r', 'e', 'a', 'd', // kind
		3, 0, 0, 0, 'd', 'o', 'c', // target
		0, 0, 0, 0, // to
		0, 0, 0, 0, // resource
		0, 0, 0, 0, 0, 0, 0, 0, // amount
		0, 0, 0, 0, 0, 0, 0, 0, // cpu
		0, 0, 0, 0, 0, 0, 0, 0, // fuel
		0, 0, 0, 0, // depth
		1,          // allowed
		0, 0, 0, 0, // reason
		2, 0, 0, 0, 'O', 'K', // code
		0, 0, 0, 0, // message
		0, 0, 0, 0, // charges
		2, 0, 0, 0, 0, 0, 0, 0, // revision
		0, 0, 0, 0, // ids
		0, 0, 0, 0, // amounts
		0, 0, 0, 0, // holder
	}
	got, err := decodeEvent(stored)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Empty(t, got.Token)
	require.Equal(t, stored, want.appendBinary(nil), "a token-less event keeps the version 1 bytes")

	want.Token = "default"
	b := want.appendBinary(nil)
	require.Equal(t, byte(eventVersionToken), b[0])
	require.Equal(t, append(append([]byte{eventVersionToken}, stored[1:]...), 7, 0, 0, 0, 'd', 'e', 'f', 'a', 'u', 'l', 't'), b)
	got, err = decodeEvent(b)
	require.NoError(t, err)
	require.Equal(t, want, got)
}
