package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/kernel"
)

// runMainEnv, set to 1, makes the test binary run kernelhost itself (its
// arguments are kernelhost's) instead of its tests; see TestMain. Tests use
// it to run 'kernelhost serve' as a child process that they can kill -9,
// without building the binary a second time (under -race that takes longer
// than the test).
const runMainEnv = "KERNELHOST_TEST_RUN_MAIN"

// child is 'kernelhost serve' running as a child process.
type child struct {
	cmd    *exec.Cmd
	addr   string      // host:port it serves on
	stderr *syncBuffer // everything it wrote to stderr
	exited chan error  // receives cmd.Wait's error once it exits
}

// startServe runs 'kernelhost serve' on the world in dir as a child process
// (this test binary, see runMainEnv) and waits until it listens. flags are
// more global flags (--store).
func startServe(t *testing.T, dir string, flags ...string) *child {
	t.Helper()
	c := &child{stderr: &syncBuffer{}, exited: make(chan error, 1)}
	args := append(append([]string{"--data-dir", dir}, flags...), "serve", "--addr", "127.0.0.1:0")
	c.cmd = exec.Command(os.Args[0], args...)
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
	t.Cleanup(func() { _ = c.cmd.Process.Kill() }) // no-op once it exited
	listening := make(chan string, 1)
	re := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+)`)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			_, _ = c.stderr.Write([]byte(line + "\n"))
			if m := re.FindStringSubmatch(line); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
		}
	}()
	// The bound only keeps a broken child from hanging the test; a start
	// takes a few seconds under -race.
	select {
	case c.addr = <-listening:
	case err := <-c.exited:
		t.Fatalf("serve exited before listening (%v): %s", err, c.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not listen: %s", c.stderr.String())
	}
	return c
}

// noRace fails if the child's race detector reported a data race.
func (c *child) noRace(t *testing.T) {
	t.Helper()
	require.NotContains(t, c.stderr.String(), "DATA RACE", "the child serve raced")
}

// get GETs path from c with token and decodes the JSON answer into out.
func (c *child) get(t *testing.T, hc *http.Client, token, path string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+c.addr+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, b)
	require.NoError(t, json.Unmarshal(b, out), "GET %s: %s", path, b)
}

// transfer POSTs a transfer of 1 scrip to to with token. answered is false
// when no HTTP answer came (the connection failed); then res is zero.
func transfer(hc *http.Client, addr, token, to string) (status int, res api.Result, answered bool, err error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/actions",
		strings.NewReader(`{"kind":"transfer","to":"`+to+`","amount":1}`))
	if err != nil {
		return 0, api.Result{}, false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, api.Result{}, false, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		// The status line came but not the whole body: the client cannot
		// know the result, so this one is not acknowledged.
		return 0, api.Result{}, false, nil
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return resp.StatusCode, res, true, fmt.Errorf("answer %d is not a result: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, res, true, nil
}

// TestCrashKeepsAcknowledgedWrites: 'kernelhost serve' runs as a child
// process on a durable world; 16 clients, each on its own pair of
// principals, send transfers over keep-alive connections; once 200 are
// acknowledged the child is killed with SIGKILL while transfers are in
// flight. After a restart, every acknowledged transfer (the client got a
// 2xx result for it) is in the audit log under the event number its result
// named, as an OK transfer of the right parties; each client has at most
// one transfer that committed without being acknowledged (the one in flight
// when the process died: it may or may not have committed); every balance is
// exactly its genesis balance moved by the OK transfer events of the log;
// the restarted server numbers new events after every event of the log; and
// the kernel's own ledger check (minted = balances + burned) holds, with
// minted unchanged. Reference: issue 17.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	const (
		pairs   = 16
		balance = 1_000_000
		killAt  = 200 // acknowledged transfers before the kill
	)
	dir := filepath.Join(t.TempDir(), "world")
	spec := genesisSpec(t, pairs, balance)
	var initOut initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "init", "--genesis", spec, "-o", "json")), &initOut))
	tokens := map[string]string{}
	for _, p := range initOut.Principals {
		tokens[p.ID] = p.Token
	}
	minted := mintedOf(t, dir)
	require.Equal(t, uint64(2*pairs*balance), minted, "genesis mints the principals' balances")

	// Serve, transfer, kill -9 while transfers are in flight.
	srv := startServe(t, dir)
	var (
		acked     [pairs][]uint64 // per pair: the event numbers of acknowledged transfers
		unknown   [pairs]int      // per pair: transfers sent that got no answer
		total     atomic.Int64
		killNow   = make(chan struct{})
		killOnce  sync.Once
		wg        sync.WaitGroup
		clientErr = make(chan error, pairs)
	)
	for i := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			from, to := fmt.Sprintf("payer-%d", i), fmt.Sprintf("payee-%d", i)
			for {
				status, res, answered, err := transfer(hc, srv.addr, tokens[from], to)
				if err != nil {
					clientErr <- fmt.Errorf("%s: %w", from, err)
					return
				}
				if !answered {
					unknown[i]++
					return // the server is gone
				}
				if status/100 != 2 || !res.OK {
					clientErr <- fmt.Errorf("%s: transfer refused with %d %s: %s", from, status, res.ErrorCode, res.Message)
					return
				}
				acked[i] = append(acked[i], res.Event)
				if total.Add(1) >= killAt {
					killOnce.Do(func() { close(killNow) })
				}
			}
		}()
	}
	clientsDone := make(chan struct{})
	go func() { wg.Wait(); close(clientsDone) }()
	select {
	case <-killNow:
	case err := <-srv.exited:
		t.Fatalf("serve exited on its own (%v): %s", err, srv.stderr.String())
	case <-clientsDone:
		close(clientErr)
		var errs []error
		for err := range clientErr {
			errs = append(errs, err)
		}
		t.Fatalf("every client stopped before %d transfers were acknowledged: %v", killAt, errs)
	}
	require.NoError(t, srv.cmd.Process.Signal(os.Kill))
	require.Error(t, <-srv.exited, "killed")
	<-clientsDone
	close(clientErr)
	for err := range clientErr {
		require.NoError(t, err)
	}
	srv.noRace(t)
	var nAcked, nUnknown int
	for i := range pairs {
		nAcked += len(acked[i])
		nUnknown += unknown[i]
	}
	require.GreaterOrEqual(t, nAcked, killAt)
	t.Logf("killed with %d transfers acknowledged and %d in flight", nAcked, nUnknown)

	// Restart and read the log and the balances over HTTP.
	srv = startServe(t, dir)
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	logged := map[uint64]kernel.Event{}
	var maxSeq uint64
	for since := uint64(0); ; {
		var page server.EventsResponse
		srv.get(t, hc, initOut.AdminToken, fmt.Sprintf("/v1/events?since=%d&limit=%d", since, server.MaxEventsPerPage), &page)
		for _, ev := range page.Events {
			logged[ev.Seq] = ev
			maxSeq = max(maxSeq, ev.Seq)
		}
		if page.Next == since {
			break
		}
		since = page.Next
	}
	var committed [pairs]int // per pair: OK transfer events in the log
	for _, ev := range logged {
		if ev.Kind != kernel.KindTransfer || ev.Code != "OK" {
			continue
		}
		var i int
		_, err := fmt.Sscanf(ev.Caller, "payer-%d", &i)
		require.NoError(t, err, "only the clients transfer: %+v", ev)
		require.Equal(t, fmt.Sprintf("payee-%d", i), ev.To)
		require.Equal(t, int64(1), ev.Amount)
		committed[i]++
	}
	for i := range pairs {
		from, to := fmt.Sprintf("payer-%d", i), fmt.Sprintf("payee-%d", i)
		for _, seq := range acked[i] {
			ev, found := logged[seq]
			require.True(t, found, "%s: acknowledged transfer (event %d) lost in the crash", from, seq)
			require.Equal(t, kernel.KindTransfer, ev.Kind, "event %d", seq)
			require.Equal(t, "OK", ev.Code, "event %d", seq)
			require.Equal(t, from, ev.Caller, "event %d", seq)
			require.Equal(t, to, ev.To, "event %d", seq)
		}
		// Acknowledged ones all committed; of the unanswered ones (at most
		// the one in flight) any may have.
		require.GreaterOrEqual(t, committed[i], len(acked[i]), from)
		require.LessOrEqual(t, committed[i], len(acked[i])+unknown[i], "%s: more transfers committed than were sent", from)
		for id, want := range map[string]uint64{from: balance - uint64(committed[i]), to: balance + uint64(committed[i])} {
			var p server.PrincipalView
			srv.get(t, hc, initOut.AdminToken, "/v1/principals/"+id, &p)
			require.Equal(t, want, p.Balance, "%s: the balance is genesis moved by exactly the logged transfers", id)
		}
	}
	// The restarted server numbers events after the crash's: a reused
	// number would overwrite an acknowledged transfer's event.
	status, res, answered, err := transfer(hc, srv.addr, tokens["payer-0"], "payee-0")
	require.NoError(t, err)
	require.True(t, answered)
	require.Equal(t, http.StatusOK, status, res.Message)
	require.Greater(t, res.Event, maxSeq)

	// Stop it as SIGINT would; the kernel's own ledger check holds.
	require.NoError(t, srv.cmd.Process.Signal(os.Interrupt))
	require.NoError(t, <-srv.exited, srv.stderr.String())
	srv.noRace(t)
	g := &globals{dataDir: dir, out: io.Discard, errOut: io.Discard, log: slog.New(slog.DiscardHandler)}
	require.NoError(t, g.withWorld(context.Background(), func(w *world) error {
		if err := w.k.CheckLedger(context.Background()); err != nil {
			return err
		}
		tot, err := w.k.Totals(context.Background())
		if err != nil {
			return err
		}
		require.Equal(t, minted, tot.Minted, "no scrip was minted")
		require.Zero(t, tot.Burned, "transfers burn nothing")
		return nil
	}))
}

// genesisSpec writes a genesis file with principals payer-i and payee-i
// (i < pairs), each with balance scrip, and returns its path.
func genesisSpec(t *testing.T, pairs int, balance uint64) string {
	t.Helper()
	var ps []string
	for i := range pairs {
		ps = append(ps, fmt.Sprintf(`{"id":"payer-%d","balance":%d}`, i, balance), fmt.Sprintf(`{"id":"payee-%d","balance":%d}`, i, balance))
	}
	path := filepath.Join(t.TempDir(), "genesis.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"principals":[`+strings.Join(ps, ",")+`]}`), 0o600))
	return path
}

// mintedOf returns the scrip minted in the world at dir.
func mintedOf(t *testing.T, dir string) uint64 {
	t.Helper()
	g := &globals{dataDir: dir, out: io.Discard, errOut: io.Discard, log: slog.New(slog.DiscardHandler)}
	var minted uint64
	require.NoError(t, g.withWorld(context.Background(), func(w *world) error {
		tot, err := w.k.Totals(context.Background())
		minted = tot.Minted
		return err
	}))
	return minted
}
