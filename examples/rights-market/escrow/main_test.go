package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name, method, args string
		want               args
		err                string
	}{
		{"sell", "sell", `{"right":"r1","price":40}`, args{Right: "r1", Price: 40}, ""},
		{"buy", "buy", `{"right":"r1","price":40}`, args{Right: "r1", Price: 40}, ""},
		{"cancel", "cancel", `{"right":"r1"}`, args{Right: "r1"}, ""},
		{"buy needs a price", "buy", `{"right":"r1"}`, args{}, `positive "price"`},
		{"negative price", "sell", `{"right":"r1","price":-1}`, args{}, `positive "price"`},
		{"cancel takes no price", "cancel", `{"right":"r1","price":1}`, args{}, `no "price"`},
		{"no right", "buy", `{"price":1}`, args{}, `need "right"`},
		{"not JSON", "buy", `nope`, args{}, "escrow: args"},
		{"unknown method", "steal", `{"right":"r1"}`, args{}, `unknown method "steal"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseArgs(tc.method, []byte(tc.args))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	require.Equal(t, "escrow/market/listing/r1", listingID("escrow/market", "r1"))
}

// TestNoKernel: outside wasip1 every host call fails cleanly.
func TestNoKernel(t *testing.T) {
	_, err := sell("escrow", "alice", args{Right: "r1", Price: 1})
	require.ErrorContains(t, err, "escrow: deposit r1: guest: no kernel")
}
