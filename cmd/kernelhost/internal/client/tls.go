package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// maxCAFileBytes bounds a CA file: a bundle of a few hundred certificates.
const maxCAFileBytes = 4 << 20

// TLSConfig returns the TLS configuration of a client that trusts exactly
// the certificates in caFile (PEM: a private CA, or a server's self-signed
// certificate), as Python's ssl.create_default_context(cafile=...) does;
// caFile "" means the system's roots (nil).
func TLSConfig(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	fi, err := os.Stat(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	if fi.Size() > maxCAFileBytes {
		return nil, fmt.Errorf("CA file %s: %d bytes exceed %d: give the CA's certificate, PEM", caFile, fi.Size(), maxCAFileBytes)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("CA file " + caFile + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// HTTPClient returns an http.Client for New whose https connections trust
// exactly caFile's certificates (see TLSConfig); nil for caFile "", which
// New reads as a client of its own with the system's roots.
func HTTPClient(caFile string) (*http.Client, error) {
	tc, err := TLSConfig(caFile)
	if err != nil || tc == nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}
