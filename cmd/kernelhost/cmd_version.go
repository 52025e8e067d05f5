package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of kernelhost, its ABI and its store schema",
		Example: `  kernelhost version`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if v == "" {
				v = "(devel)"
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
					v = bi.Main.Version
				}
			}
			out := map[string]any{"version": v, "abi_version": abi.Version, "schema_version": kernel.SchemaVersion, "go": runtime.Version()}
			return g.emit(out, func(w io.Writer) {
				fmt.Fprintf(w, "kernelhost %s (contract ABI v%d, store schema %s, %s)\n", v, abi.Version, kernel.SchemaVersion, runtime.Version())
			})
		},
	}
}
