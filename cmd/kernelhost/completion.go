package main

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/kernel"
)

// Shell completion ('kernelhost completion bash|zsh|fish|powershell')
// completes principal ids (--as, --to, --holder, principal and quota
// arguments), artifact ids (artifact arguments, --contract, --target,
// --exe), resources (--resource) and action kinds (--action, --kind), from
// the world the command line names: the local data directory, opened for
// reading (the shared lock: beside other readers, never beside a writer),
// or the server of --server / a context. A completion that cannot reach
// the world completes nothing and says nothing: it never blocks or prints
// an error into the shell's line.

// rootGlobals maps a root command to its globals, for the completion
// functions, which cobra hands only the command.
var rootGlobals sync.Map // *cobra.Command -> *globals

func globalsOf(cmd *cobra.Command) *globals {
	if g, ok := rootGlobals.Load(cmd.Root()); ok {
		return g.(*globals)
	}
	return nil
}

// completionTimeout bounds the world lookups of one completion: a shell
// waits for it on every Tab.
const completionTimeout = 3 * time.Second

// completionPage is how many ids a completion asks a server for: each is a
// read check charged to the token's cpu_rate.
const completionPage = 50

// completeWith runs list against cmd's world and returns its names that
// start with toComplete, sorted.
func completeWith(cmd *cobra.Command, toComplete string, list func(ctx context.Context, b backend) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	g := globalsOf(cmd)
	if g == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if g.log == nil { // completion skips PersistentPreRunE
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.command == "" {
		g.command = cmd.CommandPath() + " (completion)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	cmd.SetContext(ctx)
	var names []string
	err := g.withBackend(cmd, lockShared, func(b backend) error {
		var err error
		names, err = list(ctx, b)
		return err
	})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return matching(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

func matching(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// completePrincipals completes principal ids.
func completePrincipals(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return completeWith(cmd, toComplete, func(ctx context.Context, b backend) ([]string, error) {
		ps, err := b.principals(ctx)
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		return ids, err
	})
}

// completePrincipalArg completes the first positional argument with
// principal ids.
func completePrincipalArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completePrincipals(cmd, args, toComplete)
}

// completeArtifacts completes artifact ids (ids are not secret: the
// kernel's ArtifactIDs; over HTTP, what the token's listing shows).
func completeArtifacts(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return completeWith(cmd, toComplete, func(ctx context.Context, b backend) ([]string, error) {
		return b.artifactIDs(ctx, toComplete)
	})
}

// completeArtifactArg completes the first positional argument with
// artifact ids.
func completeArtifactArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeArtifacts(cmd, args, toComplete)
}

// completeResources completes resource names.
func completeResources(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	out := make([]string, len(kernel.Resources))
	for i, r := range kernel.Resources {
		out[i] = string(r)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeKinds completes action kinds.
func completeKinds(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	ks := kernel.Kinds()
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// registerCompletions adds the completion of the flags whose values are
// principals, artifacts, resources and kinds, wherever a command has them.
func registerCompletions(root *cobra.Command) {
	byFlag := map[string]cobra.CompletionFunc{
		"as": completePrincipals, "to": completePrincipals, "holder": completePrincipals, "principal": completePrincipals,
		"contract": completeArtifacts, "target": completeArtifacts, "exe": completeArtifacts,
		"resource": completeResources, "action": completeKinds, "kind": completeKinds,
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, fn := range byFlag {
			if c.Flags().Lookup(name) != nil {
				if _, ok := c.GetFlagCompletionFunc(name); !ok {
					_ = c.RegisterFlagCompletionFunc(name, fn)
				}
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
