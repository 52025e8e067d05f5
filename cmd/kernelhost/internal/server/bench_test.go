package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/host"
	"github.com/kernelhost/kernelhost/internal/testenv"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// benchClients is the number of concurrent keep-alive clients of
// BenchmarkHTTP (the "-16" of its sub-benchmark names).
const benchClients = 16

// benchTarget is the artifact the read benchmark reads: 1834 bytes of text
// under the C genesis freeware contract, as in kernel's BenchmarkAction.
const benchTarget = "workspace/agent-0042/notes.md"

// benchWorld is a kernelhost serve in miniature: a durable Badger store
// (SyncWrites on, as 'kernelhost serve' opens it), the wasm host with the
// genesis contracts, the server on a real listener on 127.0.0.1:0, and
// 2*benchClients principals with tokens: payer-i and payee-i, one pair per
// client, so that transfers of different clients never touch the same keys.
type benchWorld struct {
	url    string
	k      *kernel.Kernel
	payers []string // tokens of payer-0 .. payer-15
}

func newBenchWorld(b *testing.B) *benchWorld {
	b.Helper()
	ctx := context.Background()
	st, err := store.OpenBadger(b.TempDir(), store.BadgerOptions{})
	require.NoError(b, err)
	h, err := host.New(ctx, host.DefaultConfig().WithCacheDir(testenv.CacheDir()))
	require.NoError(b, err)
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: h, Clock: time.Now, DefaultContract: genesis.DefaultContract,
		// A long run measures the steady state rather than cpu_rate running
		// out; the pre-check runs all the same.
		DefaultQuotas: map[kernel.Resource]int64{kernel.CPURate: 1 << 50, kernel.LLMRate: 1 << 50},
	})
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = k.Close(ctx)
		_ = h.Close(ctx)
		_ = st.Close()
	})
	spec := genesis.Spec{}
	for i := range benchClients {
		spec.Principals = append(spec.Principals,
			genesis.PrincipalSpec{ID: fmt.Sprintf("payer-%d", i), Balance: 1 << 40},
			genesis.PrincipalSpec{ID: fmt.Sprintf("payee-%d", i), Balance: 1 << 40})
	}
	require.NoError(b, genesis.Install(ctx, k, spec))
	res := k.Do(ctx, kernel.Action{
		Kind: kernel.KindWrite, Caller: "payee-0", Target: benchTarget, Type: "data",
		Content: bytes.Repeat([]byte("n"), 1834), Metadata: map[string]string{"controller": "payee-0"},
	})
	require.True(b, res.OK, "create %s: %s", benchTarget, res.Message)

	a, _, err := auth.Create(filepath.Join(b.TempDir(), "auth.json"))
	require.NoError(b, err)
	w := &benchWorld{k: k}
	for i := range benchClients {
		tok, err := a.Issue(fmt.Sprintf("payer-%d", i))
		require.NoError(b, err)
		w.payers = append(w.payers, tok)
	}
	srv, err := server.New(server.Config{Kernel: k, Auth: a, Pools: h})
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	// The http.Server of cmd_serve.go, timeouts included.
	hs := &http.Server{
		Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 40 * time.Second,
		WriteTimeout: 40 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() { _ = hs.Close() })
	w.url = "http://" + ln.Addr().String()
	return w
}

// benchRequest is what one client sends, again and again.
type benchRequest struct {
	method, path, body string
}

// run sends b.N requests from benchClients goroutines, each with its own
// keep-alive http.Client and its own request (req(i) for client i), and
// reports actions/s. Every answer must be 200.
func (w *benchWorld) run(b *testing.B, req func(i int) benchRequest) {
	clients := make([]*http.Client, benchClients)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		b.Cleanup(clients[i].CloseIdleConnections)
	}
	send := func(c *http.Client, i int, r benchRequest) error {
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		hr, err := http.NewRequest(r.method, w.url+r.path, body)
		if err != nil {
			return err
		}
		hr.Header.Set("Authorization", "Bearer "+w.payers[i])
		resp, err := c.Do(hr)
		if err != nil {
			return err
		}
		out, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, out)
		}
		return nil
	}
	// One request per client first: connections open and instances warm
	// outside the timed part.
	for i, c := range clients {
		require.NoError(b, send(c, i, req(i)))
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, benchClients)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, cpuOK := processCPU()
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req(i)
			for left.Add(-1) >= 0 {
				if err := send(c, i, r); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, _ := processCPU()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "actions/s")
	if cpuOK {
		// Client, server, kernel and store together, over every core.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkHTTP measures the HTTP API end to end on a durable Badger store
// (SyncWrites on, as 'kernelhost serve' runs by default), with 16
// goroutines, each a keep-alive http.Client, against a real listener on
// 127.0.0.1 (issue 17). allocs/op and cpu-ns/op (the process's CPU time,
// user and system, per action) count client, server, kernel and store
// together; ns/op is wall time per action, the inverse of actions/s.
//
//   - read-16: POST /v1/actions {"kind":"read"} of a 1834-byte artifact
//     under the C genesis freeware contract;
//   - transfer-16: POST /v1/actions {"kind":"transfer"} of 1 scrip, client
//     i from payer-i to payee-i (no two clients touch the same principals);
//   - get-16: GET /v1/principals/{id}, a plain read of a principal and its
//     quotas: the floor the action paths are compared with.
func BenchmarkHTTP(b *testing.B) {
	w := newBenchWorld(b)
	b.Run(fmt.Sprintf("read-%d", benchClients), func(b *testing.B) {
		w.run(b, func(int) benchRequest {
			return benchRequest{http.MethodPost, "/v1/actions", `{"kind":"read","target":"` + benchTarget + `"}`}
		})
	})
	b.Run(fmt.Sprintf("transfer-%d", benchClients), func(b *testing.B) {
		w.run(b, func(i int) benchRequest {
			return benchRequest{http.MethodPost, "/v1/actions", fmt.Sprintf(`{"kind":"transfer","to":"payee-%d","amount":1}`, i)}
		})
	})
	b.Run(fmt.Sprintf("get-%d", benchClients), func(b *testing.B) {
		w.run(b, func(i int) benchRequest {
			return benchRequest{http.MethodGet, fmt.Sprintf("/v1/principals/payee-%d", i), ""}
		})
	})
}

// BenchmarkServeHTTP is what the server adds to an action, without network
// or disk: Server.ServeHTTP into an httptest.ResponseRecorder on a
// kerneltest world (in-memory store, the fake freeware contract), beside
// the same action through Kernel.Do (the /kernel rows). The difference is
// the server's own work per request: routing, authentication, reading and
// decoding the body, metrics, encoding the answer.
func BenchmarkServeHTTP(b *testing.B) {
	ctx := context.Background()
	w := kerneltest.NewWorld(b, func(c *kernel.Config) {
		c.DefaultQuotas = map[kernel.Resource]int64{kernel.CPURate: 1 << 50, kernel.LLMRate: 1 << 50}
	})
	w.Principal(b, "alice", 1<<40)
	w.Principal(b, "bob", 1<<40)
	res := w.Do(kernel.Action{Kind: kernel.KindWrite, Caller: "bob", Target: "bob/notes", Type: "data",
		Content: bytes.Repeat([]byte("n"), 1834)})
	require.True(b, res.OK, res.Message)
	a, _, err := auth.Create(filepath.Join(b.TempDir(), "auth.json"))
	require.NoError(b, err)
	tok, err := a.Issue("alice")
	require.NoError(b, err)
	s, err := server.New(server.Config{Kernel: w.K, Auth: a})
	require.NoError(b, err)
	serve := func(b *testing.B, method, path, body string) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
			}
		}
	}
	for _, tc := range []struct {
		name, body string
		action     kernel.Action
	}{
		{"read", `{"kind":"read","target":"bob/notes"}`, kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "bob/notes"}},
		{"transfer", `{"kind":"transfer","to":"bob","amount":1}`, kernel.Action{Kind: kernel.KindTransfer, Caller: "alice", To: "bob", Amount: 1}},
	} {
		b.Run(tc.name+"/kernel", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if res := w.K.Do(ctx, tc.action); !res.OK {
					b.Fatalf("%s: %s", tc.name, res.Message)
				}
			}
		})
		b.Run(tc.name+"/server", func(b *testing.B) { serve(b, http.MethodPost, "/v1/actions", tc.body) })
	}
	b.Run("get/server", func(b *testing.B) { serve(b, http.MethodGet, "/v1/principals/bob", "") })
}
