package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// requireSubcommands makes every command that only groups others (root,
// artifact, contract, ...) refuse an argument that names none of them:
// exit 2 with "unknown command" and cobra's suggestions ("did you mean
// get?"), where cobra would print the group's help and exit 0 (it does so
// for any command without a Run). Without an argument the group prints its
// help, as before. A mistyped subcommand followed by a flag of the
// intended one ('artifact gett x --as bob') is the same mistake, not an
// unknown flag. Call it once the tree is built; it covers cobra's default
// completion command too.
func requireSubcommands(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.HasSubCommands() || c.Runnable() {
			return
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownSubcommand(cmd, args[0])
		}
		parentFlagErr := c.FlagErrorFunc()
		c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
			if args := cmd.Flags().Args(); len(args) > 0 && cmd.HasSubCommands() {
				return unknownSubcommand(cmd, args[0])
			}
			return parentFlagErr(cmd, err)
		})
	}
	walk(root)
}

// unknownSubcommand is the usage error for name under group cmd.
func unknownSubcommand(cmd *cobra.Command, name string) error {
	hint := "run '" + cmd.CommandPath() + " --help' for its commands"
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only on its own path
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		hint = "did you mean " + strings.Join(s, " or ") + "?"
	}
	return usagef("unknown command %q for %q: %s", name, cmd.CommandPath(), hint)
}
