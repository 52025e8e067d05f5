package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testCA writes, into dir, a CA certificate (ca.pem) and a server
// certificate it signed for 127.0.0.1 and localhost (server.crt,
// server.key), and returns their paths.
func testCA(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kernelhost test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.crt", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// serveInProcess runs 'kernelhost serve' with args on the world in dir
// until the test ends, and returns the address it printed for scheme and
// its stderr.
func serveInProcess(t *testing.T, dir, scheme string, args ...string) (addr string, errOut *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errOut = &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, append([]string{"--data-dir", dir, "serve"}, args...), io.Discard, errOut)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			require.Equal(t, exitOK, code, errOut.String())
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	re := regexp.MustCompile(`on ` + scheme + `://(\S+):(\d+) `)
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(errOut.String())
		if m != nil {
			host := m[1]
			if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsUnspecified() {
				host = "127.0.0.1" // a wildcard address is reached at the loopback
			}
			addr = net.JoinHostPort(host, m[2])
		}
		return m != nil
	}, 20*time.Second, 10*time.Millisecond, "serve did not start")
	return addr, errOut
}

// TestTLSServe: serve --tls-cert/--tls-key serves HTTPS on 127.0.0.1 with
// a certificate made here; the CLI in client mode talks to it with
// --ca-file (and $KERNELHOST_CA_FILE, and a context's ca_file), and
// refuses it without (an unknown authority); plain HTTP to it fails,
// never reaching the API.
func TestTLSServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "world")
	var init initOutput
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "init", "-o", "json")), &init))
	ca, cert, key := testCA(t, t.TempDir())
	addr, errOut := serveInProcess(t, dir, "https", "--addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key)
	require.Contains(t, errOut.String(), "(TLS;")
	url := "https://" + addr
	t.Setenv(tokenEnv, init.AdminToken)
	t.Setenv(caEnv, "")

	run := func(args ...string) (string, string, int) {
		var out, e strings.Builder
		code := runContext(context.Background(), args, &out, &e)
		return out.String(), e.String(), code
	}
	out, e, code := run("--server", url, "--ca-file", ca, "principal", "list", "-o", "json")
	require.Equal(t, exitOK, code, e)
	require.Contains(t, out, `"genesis"`)
	require.NotContains(t, e, "unencrypted")

	// Without the CA the server's certificate is refused.
	_, e, code = run("--server", url, "principal", "list")
	require.NotEqual(t, exitOK, code)
	require.Contains(t, e, "certificate")

	// The CA file from the environment, and from a context.
	t.Setenv(caEnv, ca)
	_, e, code = run("--server", url, "principal", "list")
	require.Equal(t, exitOK, code, e)
	t.Setenv(caEnv, "")
	cfgDir := t.TempDir()
	require.NoError(t, os.Rename(ca, filepath.Join(cfgDir, "ca.pem")))
	b, err := json.Marshal(kconfig{Contexts: []kcontext{{Name: "tls", Server: url, Token: init.AdminToken, CAFile: "ca.pem"}}})
	require.NoError(t, err)
	cfg := filepath.Join(cfgDir, "config.json")
	require.NoError(t, os.WriteFile(cfg, b, 0o600))
	_, e, code = run("--config", cfg, "--context", "tls", "principal", "list")
	require.Equal(t, exitOK, code, e)
	_, e, code = run("--server", url, "--ca-file", filepath.Join(cfgDir, "config.json"), "principal", "list")
	require.Equal(t, exitUsage, code)
	require.Contains(t, e, "no PEM certificate")

	// Plain HTTP to the TLS port gets no API answer.
	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err, "Go's TLS server answers plain HTTP with a 400 of its own")
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "HTTPS")
	require.NotContains(t, string(body), `"ok"`)
	_, e, code = run("--server", "http://"+addr, "principal", "list")
	require.NotEqual(t, exitOK, code, "the CLI over plain http fails")
	require.NotEmpty(t, e)

	// And the certificate the server presents is the one given.
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate only
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, "127.0.0.1", conn.ConnectionState().PeerCertificates[0].Subject.CommonName)
	require.GreaterOrEqual(t, conn.ConnectionState().Version, uint16(tls.VersionTLS12))
}

// TestPlainHTTPLoopbackOnly: serve without TLS refuses an address that is
// not a loopback one (0.0.0.0) unless --insecure-listen, which it then
// serves with a warning; on the loopback it serves plain HTTP saying so,
// without the warning; --tls-cert without --tls-key is a usage error.
func TestPlainHTTPLoopbackOnly(t *testing.T) {
	dir := newWorld(t)
	msg := fails(t, dir, exitUsage, "serve", "--addr", "0.0.0.0:0")
	require.Contains(t, msg, "refusing to serve plain HTTP")
	require.Contains(t, msg, "--tls-cert")
	require.Contains(t, msg, "--insecure-listen")
	msg = fails(t, dir, exitUsage, "serve", "--addr", "127.0.0.1:0", "--tls-cert", "x.crt")
	require.Contains(t, msg, "--tls-key")
	ok(t, dir, "principal", "list") // the refusals let go of the world

	t.Run("loopback", func(t *testing.T) {
		addr, errOut := serveInProcess(t, dir, "http", "--addr", "127.0.0.1:0")
		require.Contains(t, errOut.String(), "plain HTTP: give --tls-cert and --tls-key")
		require.NotContains(t, errOut.String(), "warning")
		resp, err := http.Get("http://" + addr + "/healthz")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
	t.Run("insecure-listen", func(t *testing.T) {
		addr, errOut := serveInProcess(t, dir, "http", "--addr", "0.0.0.0:0", "--insecure-listen")
		require.Contains(t, errOut.String(), "warning: --insecure-listen: serving plain HTTP on ")
		require.Contains(t, errOut.String(), "in the clear")
		resp, err := http.Get("http://" + addr + "/healthz")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
}
