package genesis_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/genesis"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/kernel/kerneltest"
	"github.com/kernelhost/kernelhost/store"
)

// exampleModules are the committed modules of examples/, by path from the
// repository root, with the artifact type each is deployed as.
var exampleModules = []struct{ path, typ string }{
	{"examples/go-contract/freeware.wasm", kernel.TypeContract},
	{"examples/go-executable/counter.wasm", kernel.TypeExecutable},
	{"examples/rights-market/escrow/escrow.wasm", kernel.TypeExecutable},
	{"examples/c-contract/pay_per_read.wasm", kernel.TypeContract},
	{"examples/wat-contract/frozen.wasm", kernel.TypeContract},
}

// TestExampleModulesListed: exampleModules names every committed module
// under examples/, so that a new example cannot miss the quota tests.
func TestExampleModulesListed(t *testing.T) {
	var found []string
	require.NoError(t, filepath.WalkDir(filepath.Join("..", "examples"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".wasm") {
			rel, err := filepath.Rel("..", path)
			require.NoError(t, err)
			found = append(found, filepath.ToSlash(rel))
		}
		return err
	}))
	var listed []string
	for _, m := range exampleModules {
		listed = append(listed, m.path)
	}
	slices.Sort(found)
	slices.Sort(listed)
	require.Equal(t, found, listed)
}

// fakeWorld is fakeKernel with genesis installed from spec.
func fakeWorld(t *testing.T, quotas map[kernel.Resource]int64, spec genesis.Spec, mods ...[]byte) *kernel.Kernel {
	t.Helper()
	k := fakeKernel(t, quotas, mods...)
	require.NoError(t, genesis.Install(ctx, k, spec))
	return k
}

// fakeKernel opens a kernel on an in-memory store whose evaluator is the
// fake of kerneltest, knowing the genesis modules and mods (as contracts
// allowing everything, or executables doing nothing), with default quotas
// quotas (nil: the kernel's). Nothing is compiled: what it tests is the
// kernel's accounting and the genesis file, not the modules.
func fakeKernel(t *testing.T, quotas map[kernel.Resource]int64, mods ...[]byte) *kernel.Kernel {
	t.Helper()
	nop := func(*abi.Request, abi.HostCalls) (abi.InvokeResult, error) { return abi.InvokeResult{}, nil }
	ev := kerneltest.NewEvaluator()
	for _, m := range genesis.Contracts() {
		ev.Register(m, kerneltest.Freeware)
	}
	for _, m := range genesis.Executables() {
		ev.RegisterExecutable(m, nop)
	}
	for _, m := range mods {
		ev.Register(m, kerneltest.AllowAll)
		ev.RegisterExecutable(m, nop)
	}
	st := store.NewMem()
	k, err := kernel.Open(ctx, kernel.Config{
		Store: st, Evaluator: ev, Clock: func() time.Time { return time.Unix(1_700_000_000, 0) },
		DefaultContract: genesis.DefaultContract, DefaultQuotas: quotas,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, k.Close(ctx))
		require.NoError(t, st.Close())
	})
	return k
}

func readExample(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
	require.NoError(t, err)
	return b
}

// TestDefaultQuotasFitExamples: a principal created after genesis, with no
// quota set, in a world whose kernel takes genesis.DefaultQuotas, deploys
// every module under examples/ at once, as the examples deploy them. With
// the kernel's own default (1,000,000 bytes of disk), the three Go guests
// do not fit: that was the bug.
func TestDefaultQuotasFitExamples(t *testing.T) {
	var mods [][]byte
	for _, m := range exampleModules {
		mods = append(mods, readExample(t, m.path))
	}
	deploy := func(k *kernel.Kernel) map[string]kernel.Result {
		require.NoError(t, k.CreatePrincipal(ctx, "carol", 0))
		out := map[string]kernel.Result{}
		for i, m := range exampleModules {
			out[m.path] = k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "carol",
				Target: "carol/" + filepath.Base(m.path), Type: m.typ, Content: mods[i]})
		}
		return out
	}

	k := fakeWorld(t, genesis.DefaultQuotas(), genesis.Spec{}, mods...)
	var stored int64
	for path, res := range deploy(k) {
		require.True(t, res.OK, "%s: %s %s", path, res.Code, res.Message)
	}
	for _, m := range mods {
		stored += kernel.StoredBytes(len(m), nil)
	}
	disk, err := k.QuotaStatus(ctx, "carol", kernel.Disk)
	require.NoError(t, err)
	require.Equal(t, int64(genesis.DefaultDiskQuota), disk.Quota)
	require.Equal(t, stored, disk.Used)
	require.Less(t, stored, int64(genesis.DefaultDiskQuota)/3*2, "room to spare beside the examples")

	// The other resources are the kernel's defaults.
	for r, v := range kernel.DefaultQuotas {
		if r != kernel.Disk {
			q, err := k.Quota(ctx, "carol", r)
			require.NoError(t, err)
			require.Equal(t, v, q, r)
		}
	}

	// The kernel's default: each Go guest alone exceeds it, and the first
	// that fails charges nothing.
	old := fakeWorld(t, nil, genesis.Spec{}, mods...)
	results := deploy(old)
	for _, m := range exampleModules {
		res := results[m.path]
		if len(readExample(t, m.path)) > int(kernel.DefaultQuotas[kernel.Disk]) {
			require.Equal(t, abi.QuotaExceeded, res.Code, m.path)
			require.Contains(t, res.Message, "disk")
		} else {
			require.True(t, res.OK, "%s: %s", m.path, res.Message)
		}
	}
}

// TestExampleSpec: genesis/example.json, as 'kernelhost init --genesis'
// reads it: its principals have room for every example module (whatever
// the kernel's default), and its artifacts are installed, the contract
// read from its file, the report governed by it.
func TestExampleSpec(t *testing.T) {
	spec, err := genesis.LoadSpec("example.json")
	require.NoError(t, err)
	require.NotEmpty(t, spec.Artifacts)
	payPerRead := readExample(t, "examples/c-contract/pay_per_read.wasm")
	var mods [][]byte
	for _, m := range exampleModules {
		mods = append(mods, readExample(t, m.path))
	}
	k := fakeWorld(t, nil, spec, mods...)
	for _, p := range spec.Principals {
		for i, m := range exampleModules {
			res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: p.ID,
				Target: p.ID + "/" + filepath.Base(m.path), Type: m.typ, Content: mods[i]})
			require.True(t, res.OK, "%s deploys %s: %s", p.ID, m.path, res.Message)
		}
	}
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "sponsor/pay-per-read"})
	require.True(t, res.OK, res.Message)
	require.Equal(t, payPerRead, res.Content, "the file's bytes, read relative to example.json")
	require.Equal(t, "sponsor", res.Artifact.CreatedBy)
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "sponsor/report"})
	require.True(t, res.OK, res.Message)
	require.Equal(t, "sponsor/pay-per-read", res.Artifact.Contract)
}

// TestSpecQuotasAndArtifacts installs a genesis file with quotas and
// artifacts through the real kernel and wasm host: quotas are set before
// the artifacts, whose disk each creator pays; content comes inline or
// from a file relative to the genesis file; a contract of the file governs
// a later artifact and runs on its reads; metadata is kept.
func TestSpecQuotasAndArtifacts(t *testing.T) {
	dir := t.TempDir()
	payPerRead := readExample(t, "examples/c-contract/pay_per_read.wasm")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "mods"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mods", "ppr.wasm"), payPerRead, 0o600))
	path := filepath.Join(dir, "genesis.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
	  "principals": [
	    {"id": "alice", "balance": 100, "quotas": {"disk": 100000, "llm_rate": 7, "llm_budget": 3}},
	    {"id": "bob", "balance": 50}
	  ],
	  "artifacts": [
	    {"id": "alice/pay", "type": "contract", "created_by": "alice", "file": "mods/ppr.wasm",
	     "metadata": {"price": "4", "payee": "alice"}},
	    {"id": "alice/report", "type": "text", "created_by": "alice", "contract": "alice/pay", "text": "Q1"},
	    {"id": "notes/empty", "type": "data", "created_by": "bob", "text": ""}
	  ]
	}`), 0o600))
	spec, err := genesis.LoadSpec(path)
	require.NoError(t, err)
	k := world(t, spec)

	q, err := k.Quota(ctx, "alice", kernel.LLMRate)
	require.NoError(t, err)
	require.Equal(t, int64(7), q)
	q, err = k.Quota(ctx, "alice", kernel.LLMBudget)
	require.NoError(t, err)
	require.Equal(t, int64(3), q)
	q, err = k.Quota(ctx, "bob", kernel.Disk)
	require.NoError(t, err)
	require.Equal(t, kernel.DefaultQuotas[kernel.Disk], q, "a resource left out keeps the default")

	disk, err := k.QuotaStatus(ctx, "alice", kernel.Disk)
	require.NoError(t, err)
	require.Equal(t, int64(100000), disk.Quota)
	want := kernel.StoredBytes(len(payPerRead), []abi.KV{{Key: "payee", Value: "alice"}, {Key: "price", Value: "4"}}) +
		kernel.StoredBytes(2, nil)
	require.Equal(t, want, disk.Used, "alice paid the disk of what she created")

	// bob reads the report: alice's contract charges him 4 for alice.
	res := k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "bob", Target: "alice/report"})
	require.True(t, res.OK, res.Message)
	require.Equal(t, "Q1", string(res.Content))
	require.Equal(t, "alice", res.Artifact.CreatedBy)
	require.Equal(t, "alice/pay", res.Artifact.Contract)
	for id, bal := range map[string]uint64{"alice": 104, "bob": 46} {
		p, err := k.Principal(ctx, id)
		require.NoError(t, err)
		require.Equal(t, bal, p.Balance, id)
	}
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "alice/pay"})
	require.True(t, res.OK, res.Message)
	require.Equal(t, payPerRead, res.Content)
	require.Equal(t, map[string]string{"price": "4", "payee": "alice"}, res.Artifact.Metadata)
	require.Equal(t, genesis.Freeware, res.Artifact.Contract)
	res = k.Do(ctx, kernel.Action{Kind: kernel.KindRead, Caller: "alice", Target: "notes/empty"})
	require.True(t, res.OK, res.Message)
	require.Empty(t, res.Content)
	require.Equal(t, "bob", res.Artifact.CreatedBy)
	require.NoError(t, k.CheckLedger(ctx))
}

// TestParseSpec: the example parses; every malformed file is refused with
// INVALID_ARGUMENT and a message naming what is wrong.
func TestParseSpec(t *testing.T) {
	s, err := genesis.LoadSpec("example.json")
	require.NoError(t, err)
	require.NotEmpty(t, s.Principals)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mod.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "empty.wasm"), nil, 0o600))
	big, err := os.Create(filepath.Join(dir, "big"))
	require.NoError(t, err)
	require.NoError(t, big.Truncate(genesis.MaxFileBytes+1)) // sparse: no disk
	require.NoError(t, big.Close())
	p := `{"id":"a"}`
	art := func(fields string) string {
		return `{"principals":[` + p + `],"artifacts":[{"id":"x","type":"data","created_by":"a",` + fields + `}]}`
	}
	long := strings.Repeat("k", abi.MaxMetaKeyLen+1)
	for _, tc := range []struct{ name, json, msg string }{
		{"not json", `not json`, "parse"},
		{"trailing data", `{"principals":[]} {}`, "after the top-level object"},
		{"unknown field", `{"principals":[{"id":"a","extra":1}]}`, "unknown field"},
		{"unknown top-level field", `{"principals":[],"default_quotas":{}}`, "unknown field"},
		{"key twice", `{"principals":[{"id":"a","balance":1,"balance":2}]}`, "balance"},
		{"negative balance", `{"principals":[{"id":"a","balance":-1}]}`, "parse"},
		{"principal twice", `{"principals":[{"id":"a"},{"id":"a"}]}`, "appears twice"},
		{"genesis principal", `{"principals":[{"id":"genesis"}]}`, "genesis principal"},
		{"bad principal id", `{"principals":[{"id":"a/../b"}]}`, "id"},
		{"empty principal id", `{"principals":[{"id":""}]}`, "id"},
		{"unknown resource", `{"principals":[{"id":"a","quotas":{"cpu":1}}]}`, "unknown resource"},
		{"negative quota", `{"principals":[{"id":"a","quotas":{"disk":-1}}]}`, "quota of disk"},
		{"quota too large", `{"principals":[{"id":"a","quotas":{"disk":1152921504606846977}}]}`, "quota of disk"},
		{"fractional quota", `{"principals":[{"id":"a","quotas":{"disk":1.5}}]}`, "parse"},
		{"artifact unknown field", art(`"text":"t","owner":"a"`), "unknown field"},
		{"no content", art(`"metadata":{}`), "no content"},
		{"text and file", art(`"text":"t","file":"mod.wasm"`), "not both"},
		{"missing file", art(`"file":"nope"`), "nope"},
		{"directory as file", art(`"file":"."`), "not a regular file"},
		{"device as file", art(`"file":"/dev/zero"`), "not a regular file"},
		{"file too large", art(`"file":"big"`), "exceeds"},
		{"no creator", `{"principals":[` + p + `],"artifacts":[{"id":"x","type":"data","text":"t"}]}`, "created_by is missing"},
		{"creator not in the file", `{"principals":[` + p + `],"artifacts":[{"id":"x","type":"data","created_by":"genesis","text":"t"}]}`, "not a principal of the file"},
		{"no type", `{"principals":[` + p + `],"artifacts":[{"id":"x","created_by":"a","text":"t"}]}`, "type"},
		{"bad type", `{"principals":[` + p + `],"artifacts":[{"id":"x","type":"Data","created_by":"a","text":"t"}]}`, "type"},
		{"right", `{"principals":[` + p + `],"artifacts":[{"id":"x","type":"right","created_by":"a","text":"t"}]}`, "mint_right"},
		{"bad artifact id", `{"principals":[` + p + `],"artifacts":[{"id":"x//y","type":"data","created_by":"a","text":"t"}]}`, "id"},
		{"genesis namespace", `{"principals":[` + p + `],"artifacts":[{"id":"genesis/freeware","type":"data","created_by":"a","text":"t"}]}`, "genesis principal's"},
		{"artifact twice", `{"principals":[` + p + `],"artifacts":[{"id":"x","type":"data","created_by":"a","text":"t"},{"id":"x","type":"data","created_by":"a","text":"u"}]}`, "appears twice"},
		{"unknown contract", art(`"text":"t","contract":"alice/pay"`), "neither a genesis contract"},
		{"executable as contract", art(`"text":"t","contract":"genesis/rights"`), "neither a genesis contract"},
		{"contract listed later", `{"principals":[` + p + `],"artifacts":[{"id":"x","type":"data","created_by":"a","text":"t","contract":"c"},{"id":"c","type":"contract","created_by":"a","file":"mod.wasm"}]}`, "listed before it"},
		{"data governing itself", art(`"text":"t","contract":"x"`), "only a contract can govern itself"},
		{"empty module", `{"principals":[` + p + `],"artifacts":[{"id":"c","type":"contract","created_by":"a","file":"empty.wasm"}]}`, "needs a wasm module"},
		{"empty executable", `{"principals":[` + p + `],"artifacts":[{"id":"c","type":"executable","created_by":"a","text":""}]}`, "needs a wasm module"},
		{"metadata key too long", art(`"text":"t","metadata":{"` + long + `":"v"}`), "metadata key"},
		{"metadata key empty", art(`"text":"t","metadata":{"":"v"}`), "metadata key"},
		{"metadata value too long", art(`"text":"t","metadata":{"k":"` + strings.Repeat("v", abi.MaxMetaValueLen+1) + `"}`), "metadata value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "genesis.json")
			require.NoError(t, os.WriteFile(path, []byte(tc.json), 0o600))
			_, err := genesis.LoadSpec(path)
			require.Error(t, err)
			require.ErrorIs(t, err, kernel.ErrInvalidArgument)
			require.Contains(t, err.Error(), tc.msg)
		})
	}

	// The good forms: a contract governing itself and a later artifact;
	// an absolute file path; ParseSpec reads files relative to the working
	// directory.
	ok := `{"principals":[` + p + `],"artifacts":[
		{"id":"c","type":"contract","created_by":"a","file":"` + filepath.Join(dir, "mod.wasm") + `","contract":"c"},
		{"id":"x","type":"data","created_by":"a","text":"t","contract":"c"}]}`
	s, err = genesis.ParseSpec(strings.NewReader(ok))
	require.NoError(t, err)
	require.Equal(t, []byte("\x00asm\x01\x00\x00\x00"), s.Artifacts[0].Content)
	_, err = genesis.ParseSpec(strings.NewReader(art(`"file":"mod.wasm"`)))
	require.ErrorContains(t, err, "mod.wasm", "relative to the working directory, not dir")

	// Over MaxSpecBytes.
	_, err = genesis.ParseSpec(strings.NewReader(`{"principals":[]}` + strings.Repeat(" ", genesis.MaxSpecBytes)))
	require.ErrorContains(t, err, "exceeds")
}

// TestInstallRefusesBadSpec: Install validates a spec built in Go before
// it writes anything: the world stays empty (no genesis principal), so
// that a corrected spec installs on the same kernel.
func TestInstallRefusesBadSpec(t *testing.T) {
	text := "t"
	for name, spec := range map[string]genesis.Spec{
		"principal twice":   {Principals: []genesis.PrincipalSpec{{ID: "a"}, {ID: "a"}}},
		"unknown resource":  {Principals: []genesis.PrincipalSpec{{ID: "a", Quotas: map[kernel.Resource]int64{"gpu": 1}}}},
		"creator not in it": {Artifacts: []genesis.ArtifactSpec{{ID: "x", Type: "data", CreatedBy: "a", Text: &text}}},
		"file not read":     {Principals: []genesis.PrincipalSpec{{ID: "a"}}, Artifacts: []genesis.ArtifactSpec{{ID: "x", Type: "data", CreatedBy: "a", File: "x.txt"}}},
		"text and content":  {Principals: []genesis.PrincipalSpec{{ID: "a"}}, Artifacts: []genesis.ArtifactSpec{{ID: "x", Type: "data", CreatedBy: "a", Text: &text, Content: []byte("c")}}},
	} {
		t.Run(name, func(t *testing.T) {
			k := fakeKernel(t, nil)
			err := genesis.Install(ctx, k, spec)
			require.ErrorIs(t, err, kernel.ErrInvalidArgument)
			_, err = k.Principal(ctx, genesis.Principal)
			require.ErrorIs(t, err, kernel.ErrNotFound, "nothing was written")
			ids, err := k.ArtifactIDs(ctx)
			require.NoError(t, err)
			require.Empty(t, ids)
		})
	}
}

// TestInstallArtifactOverQuota: what only the kernel judges fails Install
// with the kernel's code and names the artifact: here an artifact beyond
// its creator's disk quota, set in the same file.
func TestInstallArtifactOverQuota(t *testing.T) {
	text := strings.Repeat("x", 1000)
	spec := genesis.Spec{
		Principals: []genesis.PrincipalSpec{{ID: "a", Quotas: map[kernel.Resource]int64{kernel.Disk: 500}}},
		Artifacts:  []genesis.ArtifactSpec{{ID: "a/big", Type: "data", CreatedBy: "a", Text: &text}},
	}
	err := genesis.Install(ctx, fakeKernel(t, nil), spec)
	require.ErrorIs(t, err, kernel.ErrQuotaExceeded)
	require.Contains(t, err.Error(), `genesis: artifact "a/big"`)
	var ke *kernel.Error
	require.ErrorAs(t, err, &ke)
	require.Equal(t, abi.QuotaExceeded, ke.Code)
}

// TestSpecRulesMatchKernel: the genesis file's checks of ids, types and
// quota bounds (Spec.Validate) accept exactly what the kernel accepts, so
// that Validate refuses before Install writes anything what the kernel
// would refuse half-way.
func TestSpecRulesMatchKernel(t *testing.T) {
	k := fakeWorld(t, nil, genesis.Spec{})
	ids := []string{"a", "alice", "A-b_c.d:e@f", "a/b", "a/b/c", strings.Repeat("x", abi.MaxIDLen), strings.Repeat("x", abi.MaxIDLen+1),
		"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "a b", "a\x00b", "é", "a+b", "a%2fb", ".hidden", "a..b"}
	for i, id := range ids {
		kernelOK := k.CreatePrincipal(ctx, id, 0) == nil
		specOK := genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: id}}}.Validate() == nil
		require.Equal(t, kernelOK, specOK, "principal id %q", id)
		text := "t"
		target := "t" + string(rune('a'+i%26)) + "/" + id
		if id == "" {
			target = ""
		}
		kernelOK = k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "genesis", Target: target, Type: "data", Content: []byte("t")}).Code != abi.InvalidArgument
		specOK = genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "p"}},
			Artifacts: []genesis.ArtifactSpec{{ID: target, Type: "data", CreatedBy: "p", Text: &text}}}.Validate() == nil
		require.Equal(t, kernelOK, specOK, "artifact id %q", target)
	}
	for _, typ := range []string{"data", "text", "a-b_c9", strings.Repeat("t", abi.MaxTypeLen), strings.Repeat("t", abi.MaxTypeLen+1), "Data", "a b", "a.b", "a/b"} {
		text := "t"
		res := k.Do(ctx, kernel.Action{Kind: kernel.KindWrite, Caller: "genesis", Target: "types/" + strings.ReplaceAll(typ, " ", "_"), Type: typ, Content: []byte("t")})
		kernelOK := res.Code != abi.InvalidArgument
		specOK := genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "p"}},
			Artifacts: []genesis.ArtifactSpec{{ID: "x", Type: typ, CreatedBy: "p", Text: &text}}}.Validate() == nil
		require.Equal(t, kernelOK, specOK, "type %q: %s", typ, res.Message)
	}
	require.NoError(t, k.CreatePrincipal(ctx, "q", 0))
	for _, v := range []int64{0, 1 << 60, 1<<60 + 1, -1} {
		kernelOK := k.SetQuota(ctx, "q", kernel.Disk, v) == nil
		specOK := genesis.Spec{Principals: []genesis.PrincipalSpec{{ID: "p", Quotas: map[kernel.Resource]int64{kernel.Disk: v}}}}.Validate() == nil
		require.Equal(t, kernelOK, specOK, "quota %d", v)
	}
}
