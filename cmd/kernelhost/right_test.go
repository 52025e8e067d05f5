package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// rightsOf lists rights with 'right ls -o json' (all when holder is "").
func rightsOf(t *testing.T, dir, holder string) []kernel.Right {
	t.Helper()
	args := []string{"right", "ls", "-o", "json"}
	if holder != "" {
		args = append(args, "--holder", holder)
	}
	var rs []kernel.Right
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, args...)), &rs))
	return rs
}

// llmTotal is alice's plus bob's llm_rate quota plus every outstanding
// llm_rate right: what the right commands must conserve.
func llmTotal(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	for _, id := range []string{"alice", "bob"} {
		var qs []kernel.QuotaStatus
		require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "quota", "show", id, "-o", "json")), &qs))
		for _, q := range qs {
			if q.Resource == kernel.LLMRate {
				total += q.Quota
			}
		}
	}
	for _, r := range rightsOf(t, dir, "") {
		if r.Resource == kernel.LLMRate {
			total += r.Amount
		}
	}
	return total
}

func TestRight(t *testing.T) {
	t.Parallel()
	dir := newWorld(t)
	total := llmTotal(t, dir)
	require.Equal(t, "no rights\n", ok(t, dir, "right", "ls"))
	require.Empty(t, rightsOf(t, dir, ""), "an empty list is [] in JSON")

	require.Equal(t, "alice minted right alice/llm-300: 300 llm_rate\n",
		ok(t, dir, "right", "mint", "alice/llm-300", "--as", "alice", "--resource", "llm_rate", "--amount", "300"))
	require.Regexp(t, `llm_rate\s+700\s+0\s+700`, ok(t, dir, "quota", "show", "alice"))
	require.Regexp(t, `alice/llm-300\s+llm_rate\s+300\s+alice\s+alice\s+genesis/freeware`, ok(t, dir, "right", "ls"))
	// The content is readable as an artifact, through its contract.
	require.JSONEq(t, `{"resource":"llm_rate","amount":300,"holder":"alice"}`, ok(t, dir, "artifact", "get", "alice/llm-300", "--as", "bob"))

	require.Equal(t, "alice transferred right alice/llm-300 to bob\n",
		ok(t, dir, "right", "transfer", "alice/llm-300", "--as", "alice", "--to", "bob"))
	require.Empty(t, rightsOf(t, dir, "alice"))
	rs := rightsOf(t, dir, "bob")
	require.Len(t, rs, 1)
	require.Equal(t, kernel.Right{ID: "alice/llm-300", Resource: kernel.LLMRate, Amount: 300, Holder: "bob", CreatedBy: "alice",
		Contract: "genesis/freeware", Revision: 2}, rs[0])

	// The minter has no claim left.
	require.Contains(t, fails(t, dir, exitError, "right", "redeem", "alice/llm-300", "--as", "alice"), "PERMISSION_DENIED")
	require.Contains(t, fails(t, dir, exitError, "right", "split", "alice/llm-300", "--as", "alice", "--amounts", "100,200"), "PERMISSION_DENIED")

	require.Equal(t, "bob split right alice/llm-300 into alice/llm-300.1 (100), alice/llm-300.2 (200)\n",
		ok(t, dir, "right", "split", "alice/llm-300", "--as", "bob", "--amounts", "100,200"))
	var res api.Result
	require.NoError(t, json.Unmarshal([]byte(ok(t, dir, "right", "split", "alice/llm-300.2", "--as", "bob",
		"--amounts", "50,150", "--ids", "bob/a,bob/b", "-o", "json")), &res))
	require.True(t, res.OK)
	require.Equal(t, []string{"bob/a", "bob/b"}, res.IDs)
	require.Equal(t, "bob merged bob/a, bob/b into right alice/llm-300.1: 300 llm_rate\n",
		ok(t, dir, "right", "merge", "alice/llm-300.1", "--as", "bob", "--ids", "bob/a,bob/b"))
	require.Equal(t, total, llmTotal(t, dir), "conserved")

	require.Equal(t, "bob redeemed right alice/llm-300.1: 300 llm_rate back into its quota (now 1300)\n",
		ok(t, dir, "right", "redeem", "alice/llm-300.1", "--as", "bob"))
	require.Empty(t, rightsOf(t, dir, ""))
	require.Equal(t, total, llmTotal(t, dir), "conserved")

	// Errors: one line each, with the kernel's code, or a usage error.
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{exitError, "NOT_FOUND", []string{"right", "redeem", "nothing", "--as", "bob"}},
		{exitError, "NOT_FOUND", []string{"right", "transfer", "nothing", "--as", "bob", "--to", "alice"}},
		{exitError, "NOT_FOUND", []string{"right", "ls", "--holder", "nobody"}},
		{exitError, "QUOTA_EXCEEDED", []string{"right", "mint", "r", "--as", "alice", "--resource", "llm_rate", "--amount", "5000"}},
		{exitError, "INVALID_ARGUMENT", []string{"right", "mint", "bad id", "--as", "alice", "--resource", "llm_rate", "--amount", "1"}},
		{exitUsage, "use one of cpu_rate", []string{"right", "mint", "r", "--as", "alice", "--resource", "gold", "--amount", "1"}},
		{exitUsage, "positive", []string{"right", "mint", "r", "--as", "alice", "--resource", "disk", "--amount", "0"}},
		{exitUsage, "positive", []string{"right", "split", "r", "--as", "alice", "--amounts", "1,-1"}},
		{exitUsage, `invalid argument "1,x"`, []string{"right", "split", "r", "--as", "alice", "--amounts", "1,x"}},
		{exitUsage, `required flag(s) "as"`, []string{"right", "redeem", "r"}},
		{exitUsage, `required flag(s) "ids"`, []string{"right", "merge", "r", "--as", "bob"}},
		{exitUsage, "accepts 1 arg", []string{"right", "transfer", "--as", "bob", "--to", "alice"}},
	} {
		require.Contains(t, fails(t, dir, tc.code, tc.args...), tc.want, "%v", tc.args)
	}

	// A failed action in JSON is the result, and an error line.
	out, errOut, code := cli(t, dir, "right", "redeem", "nothing", "--as", "bob", "-o", "json")
	require.Equal(t, exitError, code)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, "NOT_FOUND", res.ErrorCode)
	require.Contains(t, errOut, "NOT_FOUND")

	events := ok(t, dir, "events", "tail")
	for _, kind := range []string{"mint_right", "transfer_right", "split_right", "merge_rights", "redeem_right"} {
		require.Contains(t, events, kind)
	}
	require.Contains(t, ok(t, dir, "right", "--help"), "Examples:")
}
