package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/auth"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/server"
)

// addTokenCmds gives 'principal token' its subcommands create, list and
// revoke: a principal's named tokens (docs/http.md, "Tokens"). Locally
// they act with the admin's authority; with --server, with the token's
// (its principal's unrestricted token, or the admin token).
func addTokenCmds(g *globals, token *cobra.Command) {
	token.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
}

// tokenCreated is what token create prints with --output json.
type tokenCreated struct {
	Token  auth.Token `json:"token"`
	Secret string     `json:"secret"`
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var (
		scopes    []string
		caps      []string
		window    time.Duration
		expiresIn time.Duration
		expiresAt string
	)
	cmd := &cobra.Command{
		Use:   "create ID NAME",
		Short: "Create a named token of a principal: scopes, spending caps, expiry; print its secret once",
		Long: `create gives principal ID a new token NAME that grants part of its authority:
the scopes it may use (--scope: an action kind such as read, write, transfer,
invoke; query for every GET and explain; * for everything; the preset
read-only, which is read and query), what it may spend per window (--cap
KEY=N, KEY scrip, cpu_rate, llm_rate or llm_budget; --window, default 1h),
and until when (--expires-in or --expires-at). The secret is printed this
once; only its hash is stored. A revocation takes effect at once on every
node. Over HTTP it needs the principal's unrestricted token (such as its
default one) or the admin token.`,
		Example: `  kernelhost principal token create alice reader --scope read-only
  kernelhost principal token create alice agent --scope read --scope write --scope invoke \
      --cap scrip=500 --cap cpu_rate=2000000 --window 1h --expires-in 24h`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := server.CreateTokenRequest{Name: args[1], Scopes: scopes}
			if len(caps) > 0 {
				req.Caps = map[string]int64{}
				for _, c := range caps {
					k, v, ok := strings.Cut(c, "=")
					n, err := strconv.ParseInt(v, 10, 64)
					if !ok || err != nil || n < 0 {
						return usagef("--cap %q: give KEY=N, N a non-negative integer (KEY scrip, cpu_rate, llm_rate or llm_budget)", c)
					}
					req.Caps[k] = n
				}
			}
			if window%time.Second != 0 || window < 0 || expiresIn%time.Second != 0 || expiresIn < 0 {
				return usagef("--window and --expires-in are whole seconds (e.g. 90s, 1h)")
			}
			req.WindowSeconds = int64(window / time.Second)
			req.ExpiresInSeconds = int64(expiresIn / time.Second)
			if expiresAt != "" {
				at, err := time.Parse(time.RFC3339, expiresAt)
				if err != nil {
					return usagef("--expires-at %q: give an RFC 3339 time, e.g. 2026-12-31T23:00:00Z", expiresAt)
				}
				req.ExpiresAt = &at
			}
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				t, secret, err := b.createToken(cmd.Context(), args[0], req)
				if err != nil {
					return err
				}
				return g.emit(tokenCreated{t, secret}, func(out io.Writer) {
					fmt.Fprintf(out, "created token %s of %s (scopes %s)\n", t.Name, t.Principal, strings.Join(t.Scopes, " "))
					fmt.Fprintf(out, "secret (shown this once): %s\n", secret)
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&scopes, "scope", nil, "a scope the token holds (repeatable): an action kind, query, *, llm_call or read-only")
	f.StringArrayVar(&caps, "cap", nil, "KEY=N: the most the token spends per window (repeatable)")
	f.DurationVar(&window, "window", 0, "the caps' window (default 1h)")
	f.DurationVar(&expiresIn, "expires-in", 0, "the token expires this long from now (server's clock)")
	f.StringVar(&expiresAt, "expires-at", "", "the token expires at this RFC 3339 time")
	return cmd
}

func newTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "list ID",
		Short:             "List a principal's tokens: names, scopes, caps, spending this window, expiry, last use (never secrets)",
		Example:           `  kernelhost principal token list alice`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withBackend(cmd, lockShared, func(b backend) error {
				ts, err := b.tokens(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if ts == nil {
					ts = []auth.Token{}
				}
				return g.emit(ts, func(out io.Writer) { writeTokens(out, ts) })
			})
		},
	}
}

// writeTokens prints tokens as a table.
func writeTokens(out io.Writer, ts []auth.Token) {
	fmt.Fprintf(out, "%-16s %-28s %-28s %-20s %s\n", "NAME", "SCOPES", "CAPS (SPENT/CAP PER WINDOW)", "EXPIRES", "LAST USED")
	for _, t := range ts {
		var cs []string
		for k, v := range t.Caps {
			cs = append(cs, fmt.Sprintf("%s %d/%d", k, t.Spent[k], v))
		}
		slices.Sort(cs)
		c := "-"
		if len(cs) > 0 {
			c = strings.Join(cs, ", ") + " per " + t.Window().String()
		}
		exp, used := "-", "-"
		if t.ExpiresAt != nil {
			exp = t.ExpiresAt.Format(time.RFC3339)
		}
		if t.LastUsed != nil {
			used = t.LastUsed.Format(time.RFC3339)
		}
		fmt.Fprintf(out, "%-16s %-28s %-28s %-20s %s\n", t.Name, strings.Join(t.Scopes, " "), c, exp, used)
	}
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "revoke ID NAME",
		Short:             "Revoke a principal's token (default included): refused at once on every node",
		Example:           `  kernelhost principal token revoke alice reader`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completePrincipalArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withBackend(cmd, lockExclusive, func(b backend) error {
				if err := b.revokeToken(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				return g.emit(map[string]string{"principal": args[0], "revoked": args[1]}, func(out io.Writer) {
					fmt.Fprintf(out, "revoked token %s of %s\n", args[1], args[0])
				})
			})
		},
	}
}
