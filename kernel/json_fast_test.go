package kernel

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fastInputs take decodeActionFast's one-pass path: flat objects of
// escape-free strings and integers, every field one its kind uses.
var fastInputs = []string{
	`{"kind":"read","target":"workspace/agent-0042/notes.md"}`,
	` { "kind" : "read" , "target" : "doc" , "max_cost" : 50 } ` + "\n",
	"{\r\n\t\"target\":\"doc\",\"kind\":\"read\"\t}",
	`{"kind":"read","target":"","max_cost":-0}`,
	`{"kind":"read","target":"doc","max_cost":-9223372036854775808}`,
	`{"kind":"transfer","to":"payee-3","amount":1}`,
	`{"kind":"transfer","to":"bob","amount":9223372036854775807}`,
	`{"kind":"transfer","to":"bob","amount":-1}`,
	`{"kind":"transfer","to":"bob","amount":0}`,
	`{"kind":"write","target":"n","type":"text","text":"hello","contract":"genesis/private","max_cost":3}`,
	`{"kind":"write","target":"n","text":""}`,
	`{"kind":"write","target":"n","content":""}`,
	`{"kind":"write","target":"n","content":"aGVsbG8="}`,
	"{\"kind\":\"edit\",\"target\":\"n\",\"text\":\"héllo, 世界 \u2028 <&> 😀 \ufffd\"}",
	`{"kind":"invoke","target":"escrow","method":"buy","args_text":"{}"}`,
	`{"kind":"invoke","target":"escrow","method":"buy","args":"e30="}`,
	`{"kind":"invoke","target":"escrow","method":"buy","args":""}`,
	`{"kind":"grant_consent","contract":"c","per_call_cap":5,"total_cap":50}`,
	`{"kind":"transfer_quota","to":"bob","resource":"llm_rate","amount":10}`,
	`{"kind":"consume_quota","resource":"llm_rate","amount":60}`,
	`{"kind":"set_spending_limit","amount":100}`,
	`{"kind":"mint_right","target":"r","resource":"llm_rate","amount":100,"contract":"c"}`,
	`{"kind":"transfer_right","target":"r","to":"bob"}`,
	`{"kind":"redeem_right","target":"r"}`,
	`{"kind":"delete","target":"a/../b"}`,
}

// slowInputs are left to the full decoder: it accepts some, refuses the
// others, each with its own error.
var slowInputs = []string{
	``, ` `, `null`, `[]`, `"read"`, `{}`, `{`, `{"kind":"read"`, `{"kind":"read",}`,
	`{"kind":"read","target":"doc"} {}`, `{"kind":"read","target":"doc"}x`,
	`{"kind":"read","target":"d\u006fc"}`, `{"kind":"read","target":"d\"oc"}`,
	"{\"kind\":\"read\",\"target\":\"d\x01oc\"}", "{\"kind\":\"read\",\"target\":\"d\xffoc\"}",
	"{\"kind\":\"read\",\"target\":\"\xed\xa0\x80\"}",
	`{"kind":"read","target":"doc","target":"other"}`, `{"kind":"read","kind":"read","target":"doc"}`,
	`{"kind":"read","Target":"doc"}`, `{"KIND":"read","target":"doc"}`, `{"kind":"READ","target":"doc"}`,
	`{"kind":"read","target":"doc","caller":"bob"}`, `{"kind":"edit","target":"doc","created_by":"bob"}`,
	`{"kind":"read","target":"doc","bogus":1}`, `{"kind":"read","target":"doc","to":"bob"}`,
	`{"kind":"no_such_kind","target":"doc"}`, `{"target":"doc"}`, `{"kind":7,"target":"doc"}`,
	`{"kind":null,"target":"doc"}`, `{"kind":"read","target":null}`, `{"kind":"read","target":7}`,
	`{"kind":"read","target":true}`, `{"kind":"read","target":"doc","max_cost":"5"}`,
	`{"kind":"transfer","to":"bob","amount":1.0}`, `{"kind":"transfer","to":"bob","amount":1e3}`,
	`{"kind":"transfer","to":"bob","amount":01}`, `{"kind":"transfer","to":"bob","amount":-}`,
	`{"kind":"transfer","to":"bob","amount":9223372036854775808}`, `{"kind":"transfer","to":"bob","amount":+1}`,
	`{"kind":"transfer","to":"bob","amount":1x}`,
	`{"kind":"write","target":"n","content":"aGk=","text":"hi"}`, `{"kind":"write","target":"n","content":"!!"}`,
	`{"kind":"write","target":"n","content":"aGVsbG8"}`, "{\"kind\":\"write\",\"target\":\"n\",\"content\":\"aGVs\\nbG8=\"}",
	`{"kind":"invoke","target":"e","args":"e30=","args_text":"{}"}`,
	`{"kind":"write","target":"n","text":"x","metadata":{"controller":"alice"}}`,
	`{"kind":"edit","target":"n","unset":["a"]}`, `{"kind":"split_right","target":"r","amounts":[1,2]}`,
	`{"kind":"merge_rights","target":"r","ids":["a","b"]}`,
	"\xef\xbb\xbf{\"kind\":\"read\",\"target\":\"doc\"}",
}

// TestDecodeActionFastMatchesFull: every input of the common shape takes
// the one-pass decoder and decodes exactly as the full decoder decodes it
// (nil and empty byte slices told apart); every other input is left to the
// full decoder, which DecodeAction then runs.
func TestDecodeActionFastMatchesFull(t *testing.T) {
	for _, in := range fastInputs {
		t.Run("fast "+in, func(t *testing.T) {
			got, ok := decodeActionFast([]byte(in))
			require.True(t, ok, "the common shape takes the fast path")
			want, err := decodeActionFull([]byte(in))
			require.NoError(t, err)
			require.Equal(t, want, got)
			viaAPI, err := DecodeAction([]byte(in))
			require.NoError(t, err)
			require.Equal(t, want, viaAPI)
		})
	}
	for _, in := range append(slowInputs, strings.Repeat(" ", MaxActionJSON)+`{"kind":"read","target":"doc"}`) {
		t.Run("slow "+in[:min(len(in), 80)], func(t *testing.T) {
			_, ok := decodeActionFast([]byte(in))
			require.False(t, ok, "left to the full decoder")
			want, wantErr := decodeActionFull([]byte(in))
			got, err := DecodeAction([]byte(in))
			require.Equal(t, wantErr, err)
			require.Equal(t, want, got)
		})
	}
}

// FuzzDecodeActionFast: for any input the one-pass decoder takes, the full
// decoder accepts it too and decodes the same action.
func FuzzDecodeActionFast(f *testing.F) {
	for _, in := range append(append([]string{}, fastInputs...), slowInputs...) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decodeActionFast(b)
		if !ok {
			return
		}
		want, err := decodeActionFull(b)
		require.NoError(t, err, "the fast path took %q, the full decoder refuses it", b)
		require.Equal(t, want, got, "%q", b)
	})
}

// TestDecodeActionFast_allocs pins what decoding the two hottest actions
// allocates: one string (the target, the recipient); the full decoder
// allocated 60 times for the read.
func TestDecodeActionFast_allocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own: make test-allocs")
	}
	for _, in := range []string{
		`{"kind":"read","target":"workspace/agent-0042/notes.md"}`,
		`{"kind":"transfer","to":"payee-3","amount":1}`,
	} {
		b := []byte(in)
		require.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
			if _, err := DecodeAction(b); err != nil {
				t.Fatal(err)
			}
		}), in)
	}
}
