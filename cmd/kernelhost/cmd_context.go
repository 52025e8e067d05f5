package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// newContextCmd is 'kernelhost context': the named contexts of the config
// file (config.go), each a server and the token to use with it.
func newContextCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "List, show and choose the named contexts (a server and its token) of the config file",
		Long: `A context names a running server and the token to use with it, like
kubeconfig's contexts. The config file (--config, $KERNELHOST_CONFIG, or
kernelhost/config.json in the user's config directory) is JSON:

  {"current_context": "alice@prod",
   "contexts": [
     {"name": "alice@prod", "server": "https://kh.example.com", "token_file": "alice.token"},
     {"name": "admin@local", "server": "http://127.0.0.1:8080", "token": "kh_..."}]}

A token is inline ("token") or in a file ("token_file", relative to the
config file's directory); a file holding a token must be readable by its
owner only (chmod 600), else it is refused. Every command then runs against
the current context's server, or that of --context NAME
($KERNELHOST_CONTEXT); --data-dir or --store on the command line runs it on
the local world instead.`,
		Example: `  kernelhost context ls
  kernelhost context use alice@prod
  kernelhost --context admin@local principal list`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "ls",
		Short:   "List the contexts, marking the current one",
		Example: `  kernelhost context ls`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(g.configPath(), false)
			if err != nil {
				return err
			}
			type entry struct {
				Name    string `json:"name"`
				Server  string `json:"server"`
				Current bool   `json:"current"`
			}
			out := []entry{}
			for _, x := range c.Contexts {
				out = append(out, entry{x.Name, x.Server, x.Name == c.CurrentContext})
			}
			return g.emit(out, func(w io.Writer) {
				if len(out) == 0 {
					fmt.Fprintf(w, "no contexts in %s\n", g.configPath())
					return
				}
				for _, e := range out {
					mark := " "
					if e.Current {
						mark = "*"
					}
					fmt.Fprintf(w, "%s %-24s %s\n", mark, e.Name, e.Server)
				}
			})
		},
	}, &cobra.Command{
		Use:     "use NAME",
		Short:   "Make NAME the current context (every command then goes to its server)",
		Example: `  kernelhost context use alice@prod`,
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			c, _ := loadConfig(g.configPath(), false)
			var names []string
			for _, x := range c.Contexts {
				names = append(names, x.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.configPath()
			c, err := loadConfig(path, true)
			if err != nil {
				return err
			}
			if _, ok := c.find(args[0]); !ok {
				return usagef("no context %q in %s: 'kernelhost context ls' lists them", args[0], path)
			}
			c.CurrentContext = args[0]
			if err := saveConfig(path, c); err != nil {
				return err
			}
			return g.emit(map[string]string{"current_context": args[0]}, func(w io.Writer) {
				fmt.Fprintf(w, "current context: %s\n", args[0])
			})
		},
	}, &cobra.Command{
		Use:     "none",
		Short:   "Clear the current context: commands run on the local world again",
		Example: `  kernelhost context none`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.configPath()
			c, err := loadConfig(path, true)
			if err != nil {
				return err
			}
			c.CurrentContext = ""
			if err := saveConfig(path, c); err != nil {
				return err
			}
			return g.emit(map[string]string{"current_context": ""}, func(w io.Writer) {
				fmt.Fprintln(w, "no current context: commands run on the local world")
			})
		},
	})
	return cmd
}

// saveConfig writes c to path atomically, readable by its owner only (it
// may hold tokens).
func saveConfig(path string, c kconfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write config %s: %w", path, errors.Join(werr, cerr))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write config %s: %w", path, err)
	}
	return nil
}
