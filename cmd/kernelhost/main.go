// Command kernelhost runs a kernelhost world: a WebAssembly-sandboxed
// contract host where principals act on artifacts judged by access
// contracts. See docs/cli.md and docs/http.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed: bad input, a denied action, a missing world
	exitUsage = 2 // the command line itself is wrong
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run runs kernelhost with args, cancelling on SIGINT or SIGTERM, and returns
// the exit code.
func run(args []string, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, out, errOut)
}

// runContext is run under ctx; tests call it directly.
func runContext(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := newRootCmd(out, errOut)
	defer rootGlobals.Delete(root)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	fmt.Fprintf(errOut, "kernelhost: %s\n", msg)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	return exitError
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// isCobraUsage recognises cobra's own command-line errors, which it returns
// as plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "required flag", "invalid argument", "accepts ", "requires at least", "flag needs an argument", "if any flags in the group"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// globals are the persistent flags and the writers every command uses.
type globals struct {
	dataDir  string
	store    string // --store: a PostgreSQL URL, or "" for Badger in dataDir (world.go)
	output   string
	logLevel string
	wait     time.Duration // --wait: how long a local command waits for the data directory's lock

	// Client mode (config.go): --server, --context and --config, and
	// what they resolved to (target nil: local mode).
	server, context, config string
	caFile                  string // --ca-file (config.go: caPath)
	resolved                bool
	target                  *remoteTarget
	targetErr               error

	command string         // the command line's command, "kernelhost artifact put", for the lock's record
	cmd     *cobra.Command // the command running (refuseRemote)

	// record and noRecord: --record and --record=false of init, serve and
	// demo (cmd_replay.go, recording).
	record, noRecord bool

	out, errOut io.Writer
	log         *slog.Logger
}

func (g *globals) json() bool { return g.output == "json" }

// newRootCmd builds the whole command tree writing to out and errOut. It
// reads KERNELHOST_DATA for the default data directory and KERNELHOST_STORE
// for the default store.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	g := &globals{out: out, errOut: errOut}
	defaultDir := os.Getenv("KERNELHOST_DATA")
	if defaultDir == "" {
		defaultDir = "./kernelhost-data"
	}
	root := &cobra.Command{
		Use:   "kernelhost",
		Short: "A WebAssembly-sandboxed contract host for agent worlds",
		Long: `kernelhost runs a world of principals (agents) acting on artifacts. Every
action on an artifact is judged by the artifact's access contract, a
WebAssembly module; the kernel holds identities, scrip balances, quotas and
an audit trail, and settles every charge atomically.

The world lives in --data-dir (default ./kernelhost-data, or $KERNELHOST_DATA),
or with --store (or $KERNELHOST_STORE) in a PostgreSQL database that several
'kernelhost serve' nodes share. Commands that act take --as PRINCIPAL: the
CLI is the local operator, who holds the data directory. Commands that only
read run side by side; one that writes runs alone, and one that cannot have
the data directory says who holds it.

Every command but init, serve, demo and replay also works against a running server:
--server URL ($KERNELHOST_SERVER) with a token ($KERNELHOST_TOKEN), or a
named context of the config file (--context NAME, $KERNELHOST_CONTEXT, or
its current_context; --config, $KERNELHOST_CONFIG, default
~/.config/kernelhost/config.json; see 'kernelhost context'). The token then
binds the caller: --as may be left out, and if given must name the token's
principal; the admin token runs the administrative commands.`,
		Example: `  kernelhost init --genesis genesis/example.json
  kernelhost artifact put notes/1 --as alice --type text --text "hello"
  kernelhost artifact get notes/1 --as bob
  kernelhost serve --addr 127.0.0.1:8080
  KERNELHOST_TOKEN=kh_... kernelhost --server http://127.0.0.1:8080 artifact get notes/1
  kernelhost demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.command, g.cmd = cmd.CommandPath(), cmd
			if g.wait < 0 {
				return usagef("--wait %s: give a duration of 0 or more", g.wait)
			}
			switch g.output {
			case "text", "json":
			default:
				return usagef("--output %q: use text or json", g.output)
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
				return usagef("--log-level %q: use debug, info, warn or error", g.logLevel)
			}
			g.log = slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: lvl}))
			return nil
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", defaultDir, "directory of the world (env KERNELHOST_DATA); with --store, of the node's compilation cache")
	pf.StringVar(&g.store, "store", "", "the world's store: a postgres:// URL, shared by every node that opens it (env KERNELHOST_STORE); default the Badger store in --data-dir")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	pf.DurationVar(&g.wait, "wait", 0, "how long to wait for the data directory while another command holds it (default: fail at once, naming the holder)")
	pf.StringVar(&g.server, "server", "", "run the command against this server (http://HOST:PORT) with the token of $KERNELHOST_TOKEN (env KERNELHOST_SERVER)")
	pf.StringVar(&g.context, "context", "", "run the command against the server of this context of the config file (env KERNELHOST_CONTEXT)")
	pf.StringVar(&g.config, "config", "", "the config file of the contexts (env KERNELHOST_CONFIG; default ~/.config/kernelhost/config.json)")
	pf.StringVar(&g.caFile, "ca-file", "", "check an https server's certificate against this CA (PEM) instead of the system's roots (env KERNELHOST_CA_FILE; a context's ca_file)")

	root.AddCommand(
		newInitCmd(g),
		newServeCmd(g),
		newLLMCmd(g),
		newMCPCmd(g),
		newPrincipalCmd(g),
		newArtifactCmd(g),
		newContractCmd(g),
		newScripCmd(g),
		newConsentCmd(g),
		newStandingCmd(g),
		newQuotaCmd(g),
		newRightCmd(g),
		newEventsCmd(g),
		newTotalsCmd(g),
		newContextCmd(g),
		newDemoCmd(g),
		newSnapshotCmd(g),
		newReplayCmd(g),
		newVersionCmd(g),
	)
	requireSubcommands(root)  // usage.go
	registerCompletions(root) // completion.go
	rootGlobals.Store(root, g)
	return root
}
