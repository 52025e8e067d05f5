package testenv

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of
// stopping the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.skipped = fmt.Sprintf(format, a...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

// TestSkipOrFail: a missing tool or Go version skips, unless
// KERNELHOST_REQUIRE_TOOLCHAIN=1 (CI), where it fails.
func TestSkipOrFail(t *testing.T) {
	for _, tc := range []struct {
		env        string
		skip, fail bool
	}{
		{env: "", skip: true},
		{env: "0", skip: true},
		{env: "1", fail: true},
	} {
		t.Run("env="+tc.env, func(t *testing.T) {
			t.Setenv(RequireToolchainEnv, tc.env)
			r := &recorder{TB: t}
			SkipOrFail(r, "clang 14 not found")
			require.Equal(t, tc.skip, r.skipped != "", "skipped: %q", r.skipped)
			require.Equal(t, tc.fail, r.failed != "", "failed: %q", r.failed)
			require.Contains(t, r.skipped+r.failed, "clang 14 not found")
			require.Contains(t, r.skipped+r.failed, RequireToolchainEnv+"=1")
		})
	}
	t.Run("a missing tool", func(t *testing.T) {
		t.Setenv(RequireToolchainEnv, "1")
		r := &recorder{TB: t}
		require.Empty(t, Tool(r, "no-such-tool-kernelhost", "install it"))
		require.Contains(t, r.failed, "no-such-tool-kernelhost not found: install it")
	})
}
