package lint

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// TestNoSharedReferences: no file in the repository points outside it at
// the design notes of its first engineers (a "shared" directory beside the
// clone): a newcomer's clone has none. docs/ARCHITECTURE.md is where the
// design lives.
func TestNoSharedReferences(t *testing.T) {
	// Spelled in two parts, so that this file does not match itself.
	needles := []string{".." + "/shared", "/work" + "/shared"}
	var hits []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || info.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				hits = append(hits, path+": "+n)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Empty(t, hits, "point at docs/ARCHITECTURE.md instead")
}

// TestReadmeGoVersion: the Go version the README asks for is go.mod's.
func TestReadmeGoVersion(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	require.NotNil(t, m, "go.mod has a go line")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	q := regexp.MustCompile("Only Go is needed: ([0-9.]+) or later, the `go` line of go.mod").FindSubmatch(readme)
	require.NotNil(t, q, "README's quick start states the Go version")
	require.Equal(t, string(m[1]), string(q[1]))
}

// TestLicense: the repository carries the Apache License 2.0, whole.
func TestLicense(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	require.NoError(t, err)
	s := string(b)
	require.True(t, strings.HasPrefix(strings.TrimSpace(s), "Apache License\n                           Version 2.0, January 2004"), "%.100s", s)
	require.Contains(t, s, "END OF TERMS AND CONDITIONS")
	require.Contains(t, s, "APPENDIX: How to apply the Apache License to your work.")
}
