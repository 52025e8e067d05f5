package abi_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
)

func TestInvokeResultRoundTrip(t *testing.T) {
	for _, r := range []abi.InvokeResult{
		{OK: true},
		{OK: true, Output: []byte(`{"count":3}`)},
		{Output: []byte("escrow: not enough scrip")},
	} {
		b, err := abi.AppendInvokeResult(nil, &r)
		require.NoError(t, err)
		got, err := abi.DecodeInvokeResult(b)
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
	_, err := abi.AppendInvokeResult(nil, &abi.InvokeResult{Output: make([]byte, abi.MaxOutputLen+1)})
	require.ErrorIs(t, err, abi.ErrTooLarge)
}

func TestDecodeInvokeResultMalformed(t *testing.T) {
	good, _ := abi.AppendInvokeResult(nil, &abi.InvokeResult{OK: true, Output: []byte("x")})
	mod := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"empty":     nil,
		"magic":     mod(func(b []byte) []byte { b[0] = 'X'; return b }),
		"status":    mod(func(b []byte) []byte { b[6] = 2; return b }),
		"reserved":  mod(func(b []byte) []byte { b[7] = 1; return b }),
		"truncated": good[:len(good)-1],
		"trailing":  append(bytes.Clone(good), 0),
	} {
		_, err := abi.DecodeInvokeResult(b)
		require.ErrorIs(t, err, abi.ErrMalformed, name)
	}
	_, err := abi.DecodeInvokeResult(mod(func(b []byte) []byte { b[4] = 7; return b }))
	require.ErrorIs(t, err, abi.ErrVersion)
}

func FuzzDecodeInvokeResult(f *testing.F) {
	good, _ := abi.AppendInvokeResult(nil, &abi.InvokeResult{OK: true, Output: []byte("out")})
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := abi.DecodeInvokeResult(b)
		if err != nil {
			if !errors.Is(err, abi.ErrMalformed) && !errors.Is(err, abi.ErrVersion) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		enc, err := abi.AppendInvokeResult(nil, &r)
		require.NoError(t, err)
		require.Equal(t, b, enc)
	})
}
