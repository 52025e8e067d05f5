package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/kernel"
)

// tailJSON runs 'events tail -o json' with args and decodes its lines.
func tailJSON(t *testing.T, dir string, args ...string) ([]kernel.Event, string) {
	t.Helper()
	out := ok(t, dir, append([]string{"events", "tail", "-o", "json"}, args...)...)
	var evs []kernel.Event
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var ev kernel.Event
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		evs = append(evs, ev)
	}
	return evs, out
}

// TestEventsVisibleToParties: 'events tail --as P' prints only the events
// P is a party to, as P's token would read them; mallory's tail shows
// nothing of alice's diary, right or transfer; without --as the operator
// sees every event; --limit and --since page P's view without a gap.
// Reference: issue 14, item 4.
func TestEventsVisibleToParties(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	ok(t, dir, "principal", "create", "mallory", "--balance", "100")
	ok(t, dir, "artifact", "put", "diary", "--as", "alice", "--type", "text", "--contract", "genesis/private", "--text", "dear diary")
	ok(t, dir, "right", "mint", "secret", "--as", "alice", "--resource", "llm_rate", "--amount", "337", "--contract", "genesis/private")
	ok(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", "5")
	ok(t, dir, "artifact", "put", "note", "--as", "bob", "--type", "text", "--text", "hi")
	fails(t, dir, exitError, "artifact", "get", "diary", "--as", "mallory")
	fails(t, dir, exitError, "right", "redeem", "secret", "--as", "mallory")
	ok(t, dir, "scrip", "transfer", "--as", "mallory", "--to", "bob", "--amount", "1")

	summary := func(evs []kernel.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Caller+":"+string(ev.Kind)+":"+ev.Target+ev.To+":"+ev.Code)
		}
		return out
	}
	views := map[string][]string{
		"alice": {"alice:write:diary:OK", "alice:mint_right:secret:OK", "alice:transfer:bob:OK",
			"mallory:redeem_right:secret:PERMISSION_DENIED"},
		"bob": {"alice:transfer:bob:OK", "bob:write:note:OK", "mallory:transfer:bob:OK"},
		"mallory": {"mallory:read:diary:PERMISSION_DENIED", "mallory:redeem_right:secret:PERMISSION_DENIED",
			"mallory:transfer:bob:OK"},
	}
	for p, want := range views {
		evs, _ := tailJSON(t, dir, "--as", p)
		require.Equal(t, want, summary(evs), p)
		for _, ev := range evs {
			require.True(t, ev.Involves(p))
		}
		// One event per read, continued with --since, gives the same view.
		var paged []kernel.Event
		since := uint64(0)
		for range want {
			page, _ := tailJSON(t, dir, "--as", p, "--limit", "1", "--since", strconv.FormatUint(since, 10))
			require.Len(t, page, 1)
			paged = append(paged, page...)
			since = page[0].Seq
		}
		rest, _ := tailJSON(t, dir, "--as", p, "--since", strconv.FormatUint(since, 10))
		require.Empty(t, rest)
		require.Equal(t, evs, paged, p)
	}

	// mallory's tail says nothing stored in alice's right or diary.
	evs, raw := tailJSON(t, dir, "--as", "mallory")
	// (Not "337" alone: an event's time may hold those digits.)
	for _, s := range []string{`"amount":337`, "llm_rate", "dear diary", `"holder"`} {
		require.NotContains(t, raw, s)
	}
	require.NotContains(t, ok(t, dir, "events", "tail", "--as", "mallory"), " 337 ")
	require.Empty(t, evs[1].Holder)
	evs, _ = tailJSON(t, dir, "--as", "alice")
	require.Equal(t, "alice", evs[3].Holder, "the holder sees the probe of its right")

	// The operator sees every event.
	all, _ := tailJSON(t, dir)
	require.Subset(t, summary(all), append(append(views["alice"], views["bob"]...), views["mallory"]...))
	require.Contains(t, summary(all), "genesis:write:genesis/private:OK")

	require.Contains(t, fails(t, dir, exitError, "events", "tail", "--as", "nobody"), "NOT_FOUND")
	require.Contains(t, fails(t, dir, exitError, "events", "tail", "--as", "a//b"), "INVALID_ARGUMENT")
}

// TestEventsTailSaysWhenMore: 'events tail' without --follow prints at most
// --limit events and says on stderr, not stdout, that more follow and the
// --since to continue with; continuing so prints the rest without a gap or
// a repeat, and the last read says nothing. The same for --as P.
func TestEventsTailSaysWhenMore(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	for i := range 3 {
		ok(t, dir, "scrip", "transfer", "--as", "alice", "--to", "bob", "--amount", strconv.Itoa(i+1))
	}
	all, _ := tailJSON(t, dir)
	bobs, _ := tailJSON(t, dir, "--as", "bob")
	require.Len(t, bobs, 3)
	for _, tc := range []struct {
		name string
		args []string
		want []kernel.Event
	}{{"operator", nil, all}, {"bob", []string{"--as", "bob"}, bobs}} {
		t.Run(tc.name, func(t *testing.T) {
			var got []kernel.Event
			since := uint64(0)
			for calls := 0; ; calls++ {
				require.Less(t, calls, 100)
				args := append([]string{"events", "tail", "-o", "json", "--limit", "2", "--since", strconv.FormatUint(since, 10)}, tc.args...)
				out, errOut, code := cli(t, dir, args...)
				require.Equal(t, exitOK, code, errOut)
				var page []kernel.Event
				for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
					if line == "" {
						continue
					}
					var ev kernel.Event
					require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
					page = append(page, ev)
				}
				require.LessOrEqual(t, len(page), 2)
				got = append(got, page...)
				if errOut == "" {
					break
				}
				require.Len(t, page, 2)
				next := page[1].Seq
				require.Equal(t, fmt.Sprintf("kernelhost: more events follow beyond --limit 2: continue with --since %d\n", next), errOut)
				since = next
			}
			require.Equal(t, tc.want, got)
		})
	}
	_, errOut, code := cli(t, dir, "events", "tail", "--limit", strconv.Itoa(len(all)))
	require.Equal(t, exitOK, code)
	require.Empty(t, errOut, "exactly --limit events: nothing more to say")
}
