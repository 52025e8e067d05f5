package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// The dashboard's browser tests drive headless Chromium (Debian's chromium,
// installed by make tools) with chromedp against a real 'kernelhost serve'
// child process. Without chromium they skip, unless
// KERNELHOST_REQUIRE_CHROMIUM=1 (.ci/run), which fails them instead.
// Screenshots of each view go to $KERNELHOST_ARTIFACTS/dashboard when that
// is set, else to the test's temporary directory (the test logs where).

// chromiumEnv names the variable that makes a missing chromium a failure.
const chromiumEnv = "KERNELHOST_REQUIRE_CHROMIUM"

// browser starts headless Chromium for the test and returns its context,
// bounded so that a broken page fails the test instead of hanging it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv(chromiumEnv) == "1" {
			t.Fatalf("no chromium on PATH and %s=1: run make tools", chromiumEnv)
		}
		t.Skipf("no chromium on PATH (make tools installs it; %s=1 makes this a failure)", chromiumEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1280, 800),
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run its sandbox as root
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	// The first call starts the browser, which lives as long as that
	// call's context: it gets none with a deadline (chromedp's rule); the
	// test's steps do.
	require.NoError(t, chromedp.Do(bctx), "start chromium")
	ctx, cancelT := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	return ctx
}

// shots is where the test writes its screenshots.
func shots(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("KERNELHOST_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "dashboard")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	t.Logf("screenshots in %s", dir)
	return dir
}

// screenshot writes the page as it is now to dir/name.png.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// waitJS waits until the JavaScript expression is true, failing with what
// the page shows when it never is. The bound only keeps a broken page
// from hanging the test.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if _, err := chromedp.Run(pctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0))); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, expr, err, text)
	}
}

// evalJS evaluates expr and returns its value, decoded as a T.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// setInput sets a form control's value as a person would (an input event).
func setInput(t *testing.T, ctx context.Context, sel, value string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (e.type === 'checkbox') e.checked = %s; else e.value = %q; e.dispatchEvent(new Event('input', {bubbles: true})); return true })()`,
		sel, map[bool]string{true: "true", false: "false"}[value == "true"], value)
	evalJS[bool](t, ctx, js)
}

// signIn opens the dashboard and signs in with token.
func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID(`token`)),
		chromedp.SendKeys(chromedp.ID(`token`), token),
		chromedp.Click(chromedp.ID(`signin-button`)),
	))
	waitJS(t, ctx, "signed in", `!document.getElementById('who').hidden`)
}

// apiDo sends a request to the server with token and decodes the answer.
func apiDo(t *testing.T, base, token, method, path, body string, out any) int {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
	return resp.StatusCode
}

// act performs an action as token and returns its event number.
func act(t *testing.T, base, token, body string) uint64 {
	t.Helper()
	var res struct {
		OK      bool   `json:"ok"`
		Code    string `json:"error_code"`
		Message string `json:"message"`
		Event   uint64 `json:"event"`
	}
	apiDo(t, base, token, http.MethodPost, "/v1/actions", body, &res)
	require.True(t, res.OK, "%s: %s %s", body, res.Code, res.Message)
	return res.Event // 0 for an action that records no event (a read)
}

// serveSpec inits a world from the genesis spec, keeps its tokens and
// starts 'kernelhost serve' on it.
func serveSpec(t *testing.T, spec string) (base string, tokens map[string]string, c *child) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "world")
	f := filepath.Join(t.TempDir(), "genesis.json")
	require.NoError(t, os.WriteFile(f, []byte(spec), 0o600))
	var init initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "init", "--genesis", f, "-o", "json")), &init))
	tokens = map[string]string{"admin": init.AdminToken}
	for _, p := range init.Principals {
		tokens[p.ID] = p.Token
	}
	c = startServe(t, dir)
	return "http://" + c.addr, tokens, c
}

// cellText is the JavaScript for the text of column col (1-based) of the
// row of list whose data attribute attr is value, or null when the row is
// not in the DOM.
func cellText(list, attr, value string, col int) string {
	return fmt.Sprintf(`(document.querySelector('#%s .row[data-%s=%q] span:nth-child(%d)') || {}).textContent`, list, attr, value, col)
}

// TestDashboardLiveUpdate: the admin signs in to a real server whose world
// holds 2,003 principals and sees them in a virtualised list (far fewer
// rows in the DOM than principals, and scrolling reaches the last one); a
// transfer made through the API then appears live, without a reload, in
// the events view and in both balances; the events filter by kind and
// principal; every view renders and is screenshotted.
func TestDashboardLiveUpdate(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	var spec strings.Builder
	spec.WriteString(`{"principals":[{"id":"alice","balance":1000},{"id":"bob","balance":100},{"id":"sponsor","balance":5000}`)
	const many = 2000
	for i := 0; i < many; i++ {
		fmt.Fprintf(&spec, `,{"id":"x-agent-%04d","balance":%d}`, i, i)
	}
	spec.WriteString(`]}`)
	base, tok, srv := serveSpec(t, spec.String())
	dir := shots(t)

	// Some history before the page opens.
	act(t, base, tok["alice"], `{"kind":"transfer","to":"bob","amount":5}`)
	act(t, base, tok["alice"], `{"kind":"write","target":"alice/notes","type":"text","contract":"genesis/public","content":"aGk="}`)

	signIn(t, ctx, base, tok["admin"])
	waitJS(t, ctx, "the admin's name", `document.getElementById('who-name').textContent.startsWith('admin')`)
	// Every principal, paged in: as many as the API lists (ours and genesis').
	var ids []string
	for cursor := ""; ; {
		var page struct {
			Principals []struct {
				ID string `json:"id"`
			} `json:"principals"`
			Next string `json:"next_cursor"`
		}
		require.Equal(t, http.StatusOK, apiDo(t, base, tok["admin"], http.MethodGet, "/v1/principals?limit=1000&cursor="+cursor, "", &page))
		for _, p := range page.Principals {
			ids = append(ids, p.ID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	require.Greater(t, len(ids), many)
	waitJS(t, ctx, "every principal paged in", `document.getElementById('stat-principals').textContent === '`+fmtThousands(len(ids))+`'`)
	waitJS(t, ctx, "bob's balance", cellText("principal-list", "id", "bob", 2)+` === '105'`)
	waitJS(t, ctx, "the ledger totals", `document.getElementById('stat-ledger-sub').textContent.includes('consistent')`)
	waitJS(t, ctx, "the stream is live", `document.getElementById('stream-state').dataset.state === 'live'`)

	// Virtualised: the DOM holds the rows in view, not 2,003.
	rows := evalJS[int](t, ctx, `document.querySelectorAll('#principal-list .row').length`)
	require.Less(t, rows, 100, "rows in the DOM")
	require.Greater(t, rows, 5)
	evalJS[int](t, ctx, `(() => { const l = document.getElementById('principal-list'); l.scrollTop = l.scrollHeight; return 0 })()`)
	last := ids[len(ids)-1]
	waitJS(t, ctx, "the last principal after scrolling", cellText("principal-list", "id", last, 1)+` === '`+last+`'`)
	rows = evalJS[int](t, ctx, `document.querySelectorAll('#principal-list .row').length`)
	require.Less(t, rows, 100, "rows in the DOM at the end of the list")
	// Keyboard: Home, then Down twice and Enter opens the third principal.
	require.NoError(t, chromedp.Do(ctx, chromedp.Focus(chromedp.ID(`principal-list`)),
		chromedp.KeyEvent(kb.Home), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.ArrowDown), chromedp.KeyEvent(kb.Enter)))
	waitJS(t, ctx, "the third principal opened by keyboard", `(document.querySelector('#principal-detail h3') || {}).textContent === '`+ids[2]+`'`)
	evalJS[int](t, ctx, `(() => { const l = document.getElementById('principal-list'); l.scrollTop = 0; return 0 })()`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#principal-list .row[data-id="bob"]`))))
	waitJS(t, ctx, "bob's quotas", `document.querySelectorAll('#principal-detail table tbody tr').length > 0`)
	screenshot(t, ctx, dir, "world")

	// A transfer through the API appears live: balances and events.
	loads := evalJS[int](t, ctx, `performance.getEntriesByType('navigation').length`)
	seq := act(t, base, tok["alice"], `{"kind":"transfer","to":"bob","amount":7}`)
	require.NotZero(t, seq)
	waitJS(t, ctx, "bob's balance after the transfer", cellText("principal-list", "id", "bob", 2)+` === '112'`)
	waitJS(t, ctx, "alice's balance after the transfer", cellText("principal-list", "id", "alice", 2)+` === '988'`)
	waitJS(t, ctx, "bob's balance in the detail", `document.getElementById('detail-balance').textContent === '112'`)
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent("2")))
	waitJS(t, ctx, "the events view", `!document.getElementById('view-events').hidden`)
	s := fmt.Sprint(seq)
	waitJS(t, ctx, "the transfer's event", cellText("event-list", "seq", s, 3)+` === 'transfer'`)
	require.Equal(t, "→ bob", evalString(t, ctx, cellText("event-list", "seq", s, 4)))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#event-list .row[data-seq="`+s+`"]`))))
	waitJS(t, ctx, "the event's charges", `document.getElementById('event-detail').textContent.includes('Charges') && document.querySelector('#event-detail table td') !== null`)
	require.Contains(t, evalString(t, ctx, `document.getElementById('event-detail').textContent`), "alice")
	screenshot(t, ctx, dir, "events")

	// Filters: kind transfer shows only transfers; a principal party to
	// none of them shows none.
	setInput(t, ctx, "#f-kind", "transfer")
	waitJS(t, ctx, "two transfers", `document.querySelectorAll('#event-list .row').length === 2`)
	kinds := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#event-list .row span:nth-child(3)')].map(e => e.textContent)`)
	require.Equal(t, []string{"transfer", "transfer"}, kinds)
	setInput(t, ctx, "#f-principal", "sponsor")
	waitJS(t, ctx, "no transfer of sponsor", `document.querySelectorAll('#event-list .row').length === 0`)
	setInput(t, ctx, "#f-principal", "")
	setInput(t, ctx, "#f-kind", "")
	waitJS(t, ctx, "every event again", `document.querySelectorAll('#event-list .row').length >= 3`)

	// A second transfer while the events view is open arrives on top.
	seq2 := act(t, base, tok["bob"], `{"kind":"transfer","to":"sponsor","amount":2}`)
	waitJS(t, ctx, "bob's transfer on top", `document.querySelector('#event-list .row[data-index="0"]').dataset.seq === '`+fmt.Sprint(seq2)+`'`)

	// The other views render.
	for _, v := range []string{"artifacts", "contracts", "flows"} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '`+v+`'`)))
		waitJS(t, ctx, "the "+v+" view", `!document.getElementById('view-`+v+`').hidden`)
		switch v {
		case "artifacts":
			waitJS(t, ctx, "alice/notes listed", cellText("artifact-list", "id", "alice/notes", 1)+` === 'alice/notes'`)
			// The listing names the governing contract and revision, for
			// the admin too (who cannot explain).
			waitJS(t, ctx, "alice/notes' contract", cellText("artifact-list", "id", "alice/notes", 3)+` === 'genesis/public'`)
			waitJS(t, ctx, "alice/notes' revision", cellText("artifact-list", "id", "alice/notes", 4)+` === '1'`)
		case "contracts":
			waitJS(t, ctx, "the genesis contracts", `document.querySelector('#contract-table tr[data-id="genesis/public"]') !== null`)
			waitJS(t, ctx, "what genesis/public governs", `Number((document.querySelector('#contract-table tr[data-id="genesis/public"] td:nth-child(2)') || {}).textContent) >= 1`)
		case "flows":
			waitJS(t, ctx, "the flows", `[...document.querySelectorAll('#flow-table tbody tr')].some(r => r.textContent.startsWith('alicebob'))`)
			waitJS(t, ctx, "the flow graph", `document.querySelectorAll('#flow-graph path.edge').length >= 2`)
		}
		screenshot(t, ctx, dir, v)
	}
	after := evalJS[int](t, ctx, `performance.getEntriesByType('navigation').length`)
	require.Equal(t, loads, after, "no reload")
	srv.noRace(t)
}

// fmtThousands writes n as the dashboard does (en-US grouping).
func fmtThousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// evalString evaluates expr to a string.
func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	return evalJS[string](t, ctx, `String(`+expr+`)`)
}

// TestDashboardVisibility: a bad token is refused with an accessible
// message; bob's token shows exactly the events bob is a party to, as the
// API gives them to bob (never alice's private ones, not even live ones
// that come in while he watches), never lists alice's private artifact,
// and opens an artifact with what explain says bob may do; when the server
// goes, the page says so (role=alert) and the stream state reads offline.
func TestDashboardVisibility(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	base, tok, srv := serveSpec(t, `{"principals":[{"id":"alice","balance":1000},{"id":"bob","balance":100},{"id":"carol","balance":50}]}`)
	dir := shots(t)

	// Bad token: refused, said in the sign-in form's alert.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/"),
		chromedp.WaitVisible(chromedp.ID(`token`)),
		chromedp.SendKeys(chromedp.ID(`token`), "kh_"+strings.Repeat("0", 64)),
		chromedp.Click(chromedp.ID(`signin-button`)),
	))
	waitJS(t, ctx, "the bad token refused", `document.getElementById('signin-error').textContent.includes('unknown or revoked')`)
	require.Equal(t, "alert", evalString(t, ctx, `document.getElementById('signin-error').getAttribute('role')`))
	hidden := evalJS[bool](t, ctx, `document.getElementById('nav').hidden`)
	require.True(t, hidden, "nothing but the sign-in form")
	screenshot(t, ctx, dir, "bad-token")

	// alice's private business, and some of bob's.
	act(t, base, tok["alice"], `{"kind":"write","target":"alice/diary","type":"text","contract":"genesis/private","content":"ZGVhciBkaWFyeQ==","metadata":{"mood":"secret"}}`)
	act(t, base, tok["alice"], `{"kind":"transfer","to":"carol","amount":11}`)
	act(t, base, tok["alice"], `{"kind":"write","target":"alice/notes","type":"text","contract":"genesis/public","content":"aGk=","metadata":{"topic":"open"}}`)
	act(t, base, tok["alice"], `{"kind":"transfer","to":"bob","amount":3}`)
	act(t, base, tok["bob"], `{"kind":"read","target":"alice/notes"}`)

	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('token').value = ''`)))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID(`token`), tok["bob"]),
		chromedp.Click(chromedp.ID(`signin-button`)),
	))
	waitJS(t, ctx, "signed in as bob", `document.getElementById('who-name').dataset.principal === 'bob'`)
	waitJS(t, ctx, "the stream is live", `document.getElementById('stream-state').dataset.state === 'live'`)

	// Live: a private transfer of alice's, then one to bob.
	private := act(t, base, tok["alice"], `{"kind":"transfer","to":"carol","amount":13}`)
	toBob := act(t, base, tok["alice"], `{"kind":"transfer","to":"bob","amount":4}`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = 'events'`)))
	waitJS(t, ctx, "the live transfer to bob", cellText("event-list", "seq", fmt.Sprint(toBob), 1)+` === '`+fmt.Sprint(toBob)+`'`)

	// Exactly bob's events, as the API shows them to bob.
	var page struct {
		Events []struct {
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}
	require.Equal(t, http.StatusOK, apiDo(t, base, tok["bob"], http.MethodGet, "/v1/events?limit=1000", "", &page))
	var want []string
	for i := len(page.Events) - 1; i >= 0; i-- {
		want = append(want, fmt.Sprint(page.Events[i].Seq))
	}
	require.NotEmpty(t, want)
	got := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#event-list .row')].sort((a, b) => a.dataset.index - b.dataset.index).map(r => r.dataset.seq)`)
	require.Equal(t, want, got)
	require.NotContains(t, got, fmt.Sprint(private))
	require.Equal(t, fmt.Sprintf("%d of %d events", len(want), len(want)), evalString(t, ctx, `document.getElementById('event-count').textContent`))
	// The resume point moved past the private event all the same.
	waitJS(t, ctx, "the last event number", `document.getElementById('stat-lastseq').textContent === 'last event #`+fmt.Sprint(toBob)+`'`)
	screenshot(t, ctx, dir, "visibility-events")

	// Artifacts: bob's listing has alice/notes, not alice/diary; opening
	// alice/notes shows its contract and what bob may do.
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = 'artifacts'`)))
	waitJS(t, ctx, "alice/notes listed", cellText("artifact-list", "id", "alice/notes", 1)+` === 'alice/notes'`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#artifact-list .row[data-id="alice/notes"]`))))
	waitJS(t, ctx, "its contract", `(document.querySelector('#artifact-facts [data-field="contract"]') || {}).textContent === 'genesis/public'`)
	waitJS(t, ctx, "who may do what", `document.querySelectorAll('#artifact-may tbody tr').length === 6`)
	require.Contains(t, evalString(t, ctx, `document.querySelector('#artifact-may tr[data-kind="read"]').textContent`), "allowed")
	require.Contains(t, evalString(t, ctx, `document.querySelector('#artifact-may tr[data-kind="delete"]').textContent`), "denied")
	require.Equal(t, "1", evalString(t, ctx, `document.querySelector('#artifact-facts [data-field="revision"]').textContent`))
	screenshot(t, ctx, dir, "visibility-artifact")

	// Nothing of alice's private business anywhere on the page, in any view.
	for _, v := range []string{"world", "events", "artifacts", "contracts", "flows"} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '`+v+`'`)))
		waitJS(t, ctx, "the "+v+" view", `!document.getElementById('view-`+v+`').hidden`)
		text := evalString(t, ctx, `document.body.innerText + document.body.textContent`)
		require.NotContains(t, text, "alice/diary", v)
		require.NotContains(t, text, "secret", v)
		if v == "flows" {
			require.NotContains(t, evalString(t, ctx, `document.getElementById('flow-table').textContent`), "carol", "alice's transfers to carol are hers and carol's")
		}
	}

	// The server goes: the page says so and keeps what it had.
	require.NoError(t, srv.cmd.Process.Kill())
	<-srv.exited
	waitJS(t, ctx, "the stream offline", `document.getElementById('stream-state').dataset.state === 'offline'`)
	waitJS(t, ctx, "the alert", `!document.getElementById('alert').hidden && document.getElementById('alert').textContent.includes('does not answer')`)
	require.Equal(t, "alert", evalString(t, ctx, `document.getElementById('alert').getAttribute('role')`))
	screenshot(t, ctx, dir, "server-gone")
}

// TestDemoServe: 'kernelhost demo --serve' plays the scenario, every step
// as expected (requireDemoOutput), prints the dashboard's URL and tokens,
// serves the demo's world (the dashboard and the API, on the wall clock)
// until interrupted, and then stops cleanly.
func TestDemoServe(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "demo", "--serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	out := &syncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); _ = pw.Close() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	urls := make(chan string, 1)
	admin := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = out.Write([]byte(line + "\n"))
			if u, found := strings.CutPrefix(strings.TrimSpace(line), "dashboard: "); found {
				urls <- u
			}
			if tk, found := strings.CutPrefix(strings.TrimSpace(line), "admin token: "); found {
				admin <- tk
			}
		}
	}()
	var dash string
	select {
	case dash = <-urls:
	case err := <-exited:
		t.Fatalf("demo exited before serving (%v): %s", err, out.String())
	case <-time.After(3 * time.Minute): // only keeps a broken child from hanging the test
		t.Fatalf("demo printed no dashboard URL: %s", out.String())
	}
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/ui/$`, dash)
	requireDemoOutput(t, out.String())
	tk := <-admin
	resp, err := http.Get(dash)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(b), "kernelhost dashboard")
	base := strings.TrimSuffix(dash, "/ui/")
	var totals struct {
		LedgerOK   bool `json:"ledger_ok"`
		Principals int  `json:"principals"`
	}
	require.Equal(t, http.StatusOK, apiDo(t, base, tk, http.MethodGet, "/v1/totals", "", &totals))
	require.True(t, totals.LedgerOK)
	require.GreaterOrEqual(t, totals.Principals, 5, "the demo's agents")

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		require.NoError(t, err, "demo: %s", out.String())
	case <-time.After(time.Minute):
		t.Fatalf("demo did not stop: %s", out.String())
	}
	require.Contains(t, out.String(), "demo: stopped serving")
	require.NotContains(t, out.String(), "DATA RACE")
}

// serveAt runs 'kernelhost serve --addr addr' on the world in dir as a
// child process (as startServe does, but on an address of the test's
// choosing, so that a restarted server is found where the page left it).
func serveAt(t *testing.T, dir, addr string) *child {
	t.Helper()
	c := &child{stderr: &syncBuffer{}, exited: make(chan error, 1), addr: addr}
	c.cmd = exec.Command(os.Args[0], "--data-dir", dir, "serve", "--addr", addr)
	c.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	c.cmd.Stdout = io.Discard
	pr, pw := io.Pipe()
	c.cmd.Stderr = pw
	require.NoError(t, c.cmd.Start())
	go func() {
		err := c.cmd.Wait()
		_ = pw.Close()
		c.exited <- err
	}()
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	listening := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = c.stderr.Write([]byte(line + "\n"))
			if strings.Contains(line, "on http://"+addr) {
				select {
				case listening <- struct{}{}:
				default:
				}
			}
		}
	}()
	select {
	case <-listening:
	case err := <-c.exited:
		t.Fatalf("serve exited before listening (%v): %s", err, c.stderr.String())
	case <-time.After(2 * time.Minute): // only keeps a broken child from hanging the test
		t.Fatalf("serve did not listen: %s", c.stderr.String())
	}
	return c
}

// TestDashboardResume: the server is killed under a signed-in page, which
// says so (offline, role=alert) and keeps what it shows; once a server is
// back on the same address the page resumes the stream after the last
// event number it had: the next transfer appears, no event twice, none
// missing, and the alert goes.
func TestDashboardResume(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	dir := filepath.Join(t.TempDir(), "world")
	f := filepath.Join(t.TempDir(), "genesis.json")
	require.NoError(t, os.WriteFile(f, []byte(`{"principals":[{"id":"alice","balance":1000},{"id":"bob","balance":100}]}`), 0o600))
	var init initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "init", "--genesis", f, "-o", "json")), &init))
	tok := map[string]string{"admin": init.AdminToken}
	for _, p := range init.Principals {
		tok[p.ID] = p.Token
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	base := "http://" + addr
	srv := serveAt(t, dir, addr)

	signIn(t, ctx, base, tok["admin"])
	waitJS(t, ctx, "the stream is live", `document.getElementById('stream-state').dataset.state === 'live'`)
	require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = 'events'`)))
	first := act(t, base, tok["alice"], `{"kind":"transfer","to":"bob","amount":1}`)
	waitJS(t, ctx, "the first transfer", cellText("event-list", "seq", fmt.Sprint(first), 1)+` === '`+fmt.Sprint(first)+`'`)

	require.NoError(t, srv.cmd.Process.Kill())
	<-srv.exited
	waitJS(t, ctx, "the page offline", `document.getElementById('stream-state').dataset.state === 'offline' && !document.getElementById('alert').hidden`)
	require.Equal(t, fmt.Sprint(first), evalString(t, ctx, `document.querySelector('#event-list .row[data-index="0"]').dataset.seq`), "what it had stays")

	srv = serveAt(t, dir, addr)
	second := act(t, base, tok["alice"], `{"kind":"transfer","to":"bob","amount":2}`)
	waitJS(t, ctx, "the transfer made after the restart", cellText("event-list", "seq", fmt.Sprint(second), 1)+` === '`+fmt.Sprint(second)+`'`)
	waitJS(t, ctx, "live again", `document.getElementById('stream-state').dataset.state === 'live' && document.getElementById('alert').hidden`)
	var page struct {
		Events []struct {
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}
	require.Equal(t, http.StatusOK, apiDo(t, base, tok["admin"], http.MethodGet, "/v1/events?limit=1000", "", &page))
	var want []string
	for i := len(page.Events) - 1; i >= 0; i-- {
		want = append(want, fmt.Sprint(page.Events[i].Seq))
	}
	got := evalJS[[]string](t, ctx, `[...document.querySelectorAll('#event-list .row')].sort((a, b) => a.dataset.index - b.dataset.index).map(r => r.dataset.seq)`)
	require.Equal(t, want, got, "every event once, in order")
	require.Equal(t, fmt.Sprintf("%d of %d events", len(want), len(want)), evalString(t, ctx, `document.getElementById('event-count').textContent`))
	srv.noRace(t)
}
