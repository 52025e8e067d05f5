package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/internal/testenv/pgtest"
	"github.com/kernelhost/kernelhost/kernel"
)

// call sends method path with token and body (nil: none) to the node at
// addr and decodes the JSON answer into out (nil: discard it). answered is
// false when no whole answer came: the connection failed, so the client
// cannot know what happened.
func call(hc *http.Client, addr, token, method, path, body string, out any) (status int, answered bool, err error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false, nil
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, true, fmt.Errorf("%s %s answered %d, not JSON: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, true, nil
}

// rateWindow is the rolling window of renewable quotas in a world that
// 'kernelhost serve' opens: kernel.Config's default, which it keeps.
const rateWindow = 60 * time.Second

// acked is an action a node acknowledged (200, ok): its event must be in
// the log, as this action.
type acked struct {
	event  uint64
	kind   kernel.Kind
	caller string
	target string
	to     string
	node   int
	after  bool // sent after the kill
}

// allEvents reads the whole audit trail from the node at addr, page by
// page, with the admin token.
func allEvents(t *testing.T, hc *http.Client, addr, admin string) []kernel.Event {
	t.Helper()
	var out []kernel.Event
	for since := uint64(0); ; {
		var page server.EventsResponse
		status, answered, err := call(hc, addr, admin, http.MethodGet, fmt.Sprintf("/v1/events?since=%d&limit=%d", since, server.MaxEventsPerPage), "", &page)
		require.NoError(t, err)
		require.True(t, answered)
		require.Equal(t, http.StatusOK, status)
		out = append(out, page.Events...)
		if page.Next == since || len(page.Events) == 0 {
			return out
		}
		since = page.Next
	}
}

// quotaSums returns, per resource, the quotas of every principal plus the
// outstanding rights of the world in store pg: what no action may change.
func quotaSums(t *testing.T, w *world) map[kernel.Resource]int64 {
	t.Helper()
	ctx := context.Background()
	sums, err := w.k.RightTotals(ctx)
	require.NoError(t, err)
	ps, err := w.k.Principals(ctx)
	require.NoError(t, err)
	for _, p := range ps {
		qs, err := w.k.Quotas(ctx, p.ID)
		require.NoError(t, err)
		for _, q := range qs {
			sums[q.Resource] += q.Quota
		}
	}
	return sums
}

// TestMultiNodeWorld: three 'kernelhost serve' processes on one PostgreSQL
// database (init once with --store) serve one world. 24 clients, each
// sending every action to the next node in turn, run 20 rounds of a
// transfer along a ring of principals, a consume_quota of 10 llm_rate as
// one shared principal (hot, created through node 0, its token used on
// every node), and every fifth round mint, split, transfer and redeem of a
// llm_rate right; one node is killed with SIGKILL mid-load and the clients
// go on through the other two. A token reissued by a CLI process on the
// store works on every node at once, and the old one stops.
//
// Afterwards: the audit trail read from each node (the killed one
// restarted) is the same, numbered 1..N without gap; every acknowledged
// action's event is there, as that action; every balance is its genesis
// balance moved by exactly the OK transfer events, transfers nobody
// acknowledged (in flight to the killed node) included, and each client has
// no more of those than it sent unanswered; the successful consumes of hot
// (acknowledged, and all the OK events) never exceed its llm_rate quota
// within the window, though four times the quota was attempted through all
// nodes at once; quotas plus outstanding rights are unchanged for every
// resource; the kernel's ledger check holds with nothing minted or burned;
// and actions succeeded through the survivors after the kill. Reference:
// issue 18.
func TestMultiNodeWorld(t *testing.T) {
	t.Parallel()
	const (
		nodes          = 3
		clientsPerNode = 8
		clients        = nodes * clientsPerNode
		rounds         = 20
		balance        = 1000
		hotAmount      = 10
		victim         = 2                // the node killed mid-load
		killAt         = clients * rounds // acknowledged actions before the kill: about a third of the load
	)
	dsn := pgtest.Start(t)
	ctx := context.Background()
	base := t.TempDir()
	dirs := make([]string, nodes) // each node's data dir: its own compilation cache
	for i := range dirs {
		dirs[i] = filepath.Join(base, fmt.Sprintf("node%d", i))
	}
	var ps []string
	for i := range clients {
		ps = append(ps, fmt.Sprintf(`{"id":"c-%d","balance":%d}`, i, balance))
	}
	spec := filepath.Join(base, "genesis.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"principals":[`+strings.Join(ps, ",")+`]}`), 0o600))
	var initOut initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dirs[0], "--store", dsn, "init", "--genesis", spec, "-o", "json")), &initOut))
	admin := initOut.AdminToken
	tokens := map[string]string{}
	for _, p := range initOut.Principals {
		tokens[p.ID] = p.Token
	}

	srv := make([]*child, nodes)
	for i := range srv {
		srv[i] = startServe(t, dirs[i], "--store", dsn)
	}
	hc := &http.Client{}
	defer hc.CloseIdleConnections()

	// hot, created through node 0: its token works on every node at once.
	var created server.CreatePrincipalResponse
	status, _, err := call(hc, srv[0].addr, admin, http.MethodPost, "/v1/principals", `{"id":"hot","balance":0}`, &created)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status)
	hot := created.Token
	var hotQuotas server.QuotasResponse
	for _, s := range srv {
		status, _, err := call(hc, s.addr, hot, http.MethodGet, "/v1/quotas", "", &hotQuotas)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, "node %s knows the token node 0 issued", s.addr)
	}
	var hotQuota int64
	for _, q := range hotQuotas.Quotas {
		if q.Resource == kernel.LLMRate {
			hotQuota = q.Quota
		}
	}
	require.Positive(t, hotQuota)
	// c-0's token reissued by another process on the store (the CLI):
	// the old one fails on every node, the new one works on every node.
	text := ok(t, filepath.Join(base, "cli"), "--store", dsn, "principal", "token", "c-0")
	fresh := regexpToken.FindString(text)
	require.NotEmpty(t, fresh, text)
	for _, s := range srv {
		status, _, err := call(hc, s.addr, tokens["c-0"], http.MethodGet, "/v1/quotas", "", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, status, "the replaced token is refused by %s", s.addr)
		status, _, err = call(hc, s.addr, fresh, http.MethodGet, "/v1/quotas", "", nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	}
	tokens["c-0"] = fresh

	var before map[kernel.Resource]int64
	var minted uint64
	require.NoError(t, localGlobals(dirs[0], dsn).withWorld(ctx, func(w *world) error {
		before = quotaSums(t, w)
		tot, err := w.k.Totals(ctx)
		minted = tot.Minted
		return err
	}))
	require.Equal(t, uint64(clients*balance), minted)

	// The load.
	var (
		killed    atomic.Bool
		nAcked    atomic.Int64
		killNow   = make(chan struct{})
		killOnce  sync.Once
		wg        sync.WaitGroup
		mu        sync.Mutex
		acks      []acked
		unknownTx [clients]int // per client: transfers sent that got no answer
		hotOK     int64        // llm_rate of hot acknowledged
		hotTried  int64
		clientErr = make(chan error, clients)
	)
	hotStart := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			me, next := fmt.Sprintf("c-%d", c), fmt.Sprintf("c-%d", (c+1)%clients)
			turn := c
			// act sends one action through the next live node. It returns
			// the result, and answered false when the node died under it.
			act := func(token, body string) (int, api.Result, bool, error) {
				// after is read first: an action sent after the kill never
				// goes to the victim.
				after := killed.Load()
				node := turn % nodes
				turn++
				if after && node == victim {
					node = turn % (nodes - 1) // the survivors: 0 and 1
					turn++
				}
				var res api.Result
				status, answered, err := call(hc, srv[node].addr, token, http.MethodPost, "/v1/actions", body, &res)
				if err != nil {
					return 0, res, false, err
				}
				if !answered {
					if node == victim && killed.Load() {
						return 0, res, false, nil
					}
					return 0, res, false, fmt.Errorf("node %d (alive) did not answer %s", node, body)
				}
				if status == http.StatusOK && res.OK {
					var a acked
					if err := json.Unmarshal([]byte(body), &struct {
						Kind   *kernel.Kind `json:"kind"`
						Target *string      `json:"target"`
						To     *string      `json:"to"`
					}{&a.kind, &a.target, &a.to}); err != nil {
						return 0, res, false, err
					}
					a.event, a.node, a.after = res.Event, node, after
					a.caller = me
					if token == hot {
						a.caller = "hot"
					}
					mu.Lock()
					acks = append(acks, a)
					mu.Unlock()
					if nAcked.Add(1) >= killAt {
						killOnce.Do(func() { close(killNow) })
					}
				}
				return status, res, true, nil
			}
			fail := func(format string, args ...any) {
				clientErr <- fmt.Errorf("%s: "+format, append([]any{me}, args...)...)
			}
			for round := range rounds {
				// A transfer along the ring. CONFLICT (409) is a refusal
				// the client may retry; nothing else is expected.
				status, res, answered, err := act(tokens[me], `{"kind":"transfer","to":"`+next+`","amount":1}`)
				if err != nil {
					fail("%v", err)
					return
				}
				if !answered {
					mu.Lock()
					unknownTx[c]++
					mu.Unlock()
				} else if status != http.StatusOK && res.ErrorCode != "CONFLICT" {
					fail("transfer: %d %s: %s", status, res.ErrorCode, res.Message)
					return
				}
				// hot's llm_rate, from every client through every node.
				status, res, answered, err = act(hot, fmt.Sprintf(`{"kind":"consume_quota","resource":"llm_rate","amount":%d}`, hotAmount))
				if err != nil {
					fail("%v", err)
					return
				}
				mu.Lock()
				hotTried += hotAmount
				if answered && status == http.StatusOK {
					hotOK += hotAmount
				}
				mu.Unlock()
				if answered && status != http.StatusOK && res.ErrorCode != "QUOTA_EXCEEDED" && res.ErrorCode != "CONFLICT" {
					fail("consume_quota: %d %s: %s", status, res.ErrorCode, res.Message)
					return
				}
				if round%5 != 0 {
					continue
				}
				// A right of the client's own llm_rate: minted, split, one
				// part given to the next client, the other redeemed, each
				// step through the next node. A step not acknowledged
				// (the killed node, or CONFLICT) ends the sequence.
				id := fmt.Sprintf("r/%s/%d", me, round)
				for _, body := range []string{
					`{"kind":"mint_right","target":"` + id + `","resource":"llm_rate","amount":4}`,
					`{"kind":"split_right","target":"` + id + `","amounts":[1,3]}`,
					`{"kind":"transfer_right","target":"` + id + `.1","to":"` + next + `"}`,
					`{"kind":"redeem_right","target":"` + id + `.2"}`,
				} {
					status, res, answered, err := act(tokens[me], body)
					if err != nil {
						fail("%v", err)
						return
					}
					if !answered || res.ErrorCode == "CONFLICT" {
						break
					}
					if status != http.StatusOK {
						fail("%s: %d %s: %s", body, status, res.ErrorCode, res.Message)
						return
					}
				}
			}
		}()
	}
	clientsDone := make(chan struct{})
	go func() { wg.Wait(); close(clientsDone) }()
	select {
	case <-killNow:
		killed.Store(true)
		require.NoError(t, srv[victim].cmd.Process.Signal(os.Kill))
		require.Error(t, <-srv[victim].exited, "killed")
	case <-clientsDone:
		t.Fatalf("the load ended before %d actions were acknowledged", killAt)
	}
	<-clientsDone
	hotElapsed := time.Since(hotStart)
	close(clientErr)
	for err := range clientErr {
		require.NoError(t, err)
	}
	for _, s := range srv {
		s.noRace(t)
	}

	// The survivors keep serving: actions they acknowledged after the
	// kill, and one more transfer through each.
	afterKill := map[int]int{}
	for _, a := range acks {
		if a.after {
			require.NotEqual(t, victim, a.node)
			afterKill[a.node]++
		}
	}
	for node := range nodes {
		if node == victim {
			continue
		}
		var res api.Result
		status, answered, err := call(hc, srv[node].addr, tokens["c-1"], http.MethodPost, "/v1/actions", `{"kind":"transfer","to":"c-2","amount":1}`, &res)
		require.NoError(t, err)
		require.True(t, answered)
		require.Equal(t, http.StatusOK, status, "node %d after the kill: %s", node, res.Message)
		acks = append(acks, acked{event: res.Event, kind: kernel.KindTransfer, caller: "c-1", to: "c-2", node: node, after: true})
	}
	t.Logf("%d actions acknowledged (after the kill: %v), %d llm_rate of hot consumed of %d tried in %v, quota %d",
		len(acks), afterKill, hotOK, hotTried, hotElapsed, hotQuota)

	// The killed node restarts on the store; every node reads the same
	// trail, numbered 1..N.
	srv[victim] = startServe(t, dirs[victim], "--store", dsn)
	var trail []kernel.Event
	for node, s := range srv {
		evs := allEvents(t, hc, s.addr, admin)
		if trail == nil {
			trail = evs
			continue
		}
		require.Equal(t, trail, evs, "node %d reads the same trail as node 0", node)
	}
	for i, ev := range trail {
		require.Equal(t, uint64(i+1), ev.Seq, "events are numbered 1..N in order, without gap")
	}
	// Every acknowledged action's event is there, as that action.
	for _, a := range acks {
		require.Positive(t, a.event, "%+v: an acknowledged write names its event", a)
		require.LessOrEqual(t, a.event, uint64(len(trail)), "%+v: acknowledged event lost", a)
		ev := trail[a.event-1]
		require.Equal(t, a.kind, ev.Kind, "event %d", a.event)
		require.Equal(t, "OK", ev.Code, "event %d", a.event)
		require.Equal(t, a.caller, ev.Caller, "event %d", a.event)
		require.Equal(t, a.target, ev.Target, "event %d", a.event)
		require.Equal(t, a.to, ev.To, "event %d", a.event)
	}
	// Balances are genesis moved by exactly the OK transfers of the log;
	// no other action charged anything; hot's OK consumes stay in quota.
	want := map[string]int64{"hot": 0}
	for i := range clients {
		want[fmt.Sprintf("c-%d", i)] = balance
	}
	committedTx := map[string]int{}
	var hotLogged int64
	for _, ev := range trail {
		if ev.Code != "OK" {
			continue
		}
		switch {
		case ev.Kind == kernel.KindTransfer:
			want[ev.Caller] -= ev.Amount
			want[ev.To] += ev.Amount
			committedTx[ev.Caller]++
		case ev.Kind == kernel.KindConsumeQuota && ev.Caller == "hot":
			hotLogged += ev.Amount
			fallthrough
		default:
			require.Empty(t, ev.Charges, "event %d (%s) charged scrip", ev.Seq, ev.Kind)
		}
	}
	ackedTx := map[string]int{}
	for _, a := range acks {
		if a.kind == kernel.KindTransfer {
			ackedTx[a.caller]++
		}
	}
	for i := range clients {
		id := fmt.Sprintf("c-%d", i)
		require.GreaterOrEqual(t, committedTx[id], ackedTx[id], id)
		require.LessOrEqual(t, committedTx[id], ackedTx[id]+unknownTx[i], "%s: more transfers committed than were sent", id)
	}
	for id, w := range want {
		var p server.PrincipalView
		status, _, err := call(hc, srv[int(id[len(id)-1])%nodes].addr, admin, http.MethodGet, "/v1/principals/"+id, "", &p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, w, int64(p.Balance), "%s: genesis moved by exactly the logged transfers", id)
	}
	// hot's llm_rate: attempted far past its quota on all nodes at once,
	// never overspent within the window (a longer run may legitimately
	// spend one more quota per window it spanned).
	require.Greater(t, hotTried, int64(nodes)*hotQuota, "the load tries more than every node's own window would allow")
	windows := int64(hotElapsed/rateWindow) + 1
	require.LessOrEqual(t, hotOK, windows*hotQuota, "acknowledged consumes of hot over its quota")
	require.LessOrEqual(t, hotLogged, windows*hotQuota, "committed consumes of hot over its quota")
	require.GreaterOrEqual(t, hotLogged, hotOK)

	// Stop the nodes as SIGINT would; the world's invariants hold.
	for node, s := range srv {
		require.NoError(t, s.cmd.Process.Signal(os.Interrupt))
		require.NoError(t, <-s.exited, "node %d: %s", node, s.stderr.String())
		s.noRace(t)
	}
	require.NoError(t, localGlobals(dirs[0], dsn).withWorld(ctx, func(w *world) error {
		require.NoError(t, w.k.CheckLedger(ctx))
		tot, err := w.k.Totals(ctx)
		require.NoError(t, err)
		require.Equal(t, minted, tot.Minted, "no scrip was minted")
		require.Zero(t, tot.Burned, "nothing was burned")
		require.Equal(t, before, quotaSums(t, w), "quotas plus outstanding rights, per resource, are conserved")
		return nil
	}))
}
