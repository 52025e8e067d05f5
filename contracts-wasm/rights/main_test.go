package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/guest"
)

func TestParseQuota(t *testing.T) {
	tests := []struct {
		name string
		args string
		want quotaArgs
		err  string
	}{
		{"both", `{"principal":"bob","resource":"disk"}`, quotaArgs{"bob", "disk"}, ""},
		{"principal defaults to the caller", `{"resource":"llm_rate"}`, quotaArgs{"alice", "llm_rate"}, ""},
		{"no resource", `{"principal":"bob"}`, quotaArgs{}, `need "resource"`},
		{"empty args", ``, quotaArgs{}, `need "resource"`},
		{"unknown field", `{"resource":"disk","from":"bob"}`, quotaArgs{}, `unknown field "from"`},
		{"not an object", `[1]`, quotaArgs{}, "INVALID_ARGUMENT"},
		{"trailing data", `{"resource":"disk"} {}`, quotaArgs{}, "INVALID_ARGUMENT"},
		{"null", `null`, quotaArgs{}, `need "resource"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseQuota("alice", []byte(tc.args))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseTransfer(t *testing.T) {
	tests := []struct {
		name string
		args string
		want transferArgs
		err  string
	}{
		{"ok", `{"to":"bob","resource":"llm_rate","amount":5}`, transferArgs{"bob", "llm_rate", 5}, ""},
		{"no recipient", `{"resource":"llm_rate","amount":5}`, transferArgs{}, `need "to"`},
		{"no resource", `{"to":"bob","amount":5}`, transferArgs{}, `need "to"`},
		{"a from is refused", `{"from":"victim","to":"bob","resource":"llm_rate","amount":5}`, transferArgs{}, `unknown field "from"`},
		{"a caller is refused", `{"caller":"victim","to":"bob","resource":"llm_rate","amount":5}`, transferArgs{}, `unknown field "caller"`},
		{"amount not a number", `{"to":"bob","resource":"llm_rate","amount":"5"}`, transferArgs{}, "INVALID_ARGUMENT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTransfer([]byte(tc.args))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestInvokeNative runs the registry natively, where the SDK has no kernel
// to call: every method fails cleanly, nothing panics.
func TestInvokeNative(t *testing.T) {
	tests := []struct {
		name, method, args, err string
	}{
		{"get_quota", "get_quota", `{"resource":"disk"}`, guest.ErrNoKernel.Error()},
		{"available_capacity", "available_capacity", `{"resource":"disk"}`, guest.ErrNoKernel.Error()},
		{"transfer_quota", "transfer_quota", `{"to":"bob","resource":"disk","amount":1}`, guest.ErrNoKernel.Error()},
		{"bad args", "transfer_quota", `{`, "INVALID_ARGUMENT"},
		{"unknown method", "steal", ``, `unknown method "steal"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := abi.AppendRequest(nil, &abi.Request{Action: abi.ActionInvoke, Caller: "alice", TargetID: "genesis/rights", Method: tc.method, Args: []byte(tc.args)})
			require.NoError(t, err)
			var v abi.RequestView
			require.NoError(t, v.Parse(b))
			_, err = invoke(&v)
			require.ErrorContains(t, err, tc.err)
		})
	}
}
