package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "actions/s")
}

// BenchmarkHTTP measures the HTTP API end to end on a durable Badger store
// (SyncWrites on, as 'kernelhost serve' runs by default), with 16
// goroutines, each a keep-alive http.Client, against a real listener on
// 127.0.0.1 (issue 17). allocs/op counts client and server together.
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
