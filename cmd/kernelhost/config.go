package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
)

// Where a command goes: to a running server (client mode), with --server
// URL ($KERNELHOST_SERVER) and a token ($KERNELHOST_TOKEN), or a named
// context of the config file (--context, $KERNELHOST_CONTEXT, or the file's
// current_context), which holds a server and its token; or else to the
// world in --data-dir / --store, opened by the command itself (local mode).
// Flags beat the environment, which beats the config file: --data-dir or
// --store on the command line means local mode even when
// $KERNELHOST_SERVER or a current context is set.
//
// A token goes only to the server it was given for: a context's token to
// the context's server, $KERNELHOST_TOKEN to --server or a context that has
// none of its own. A config file or token file that holds a token must be
// readable by its owner only (like ssh's keys), else it is refused.
const (
	serverEnv  = "KERNELHOST_SERVER"
	tokenEnv   = "KERNELHOST_TOKEN"
	contextEnv = "KERNELHOST_CONTEXT"
	configEnv  = "KERNELHOST_CONFIG"
	// caEnv names the CA file that https servers' certificates are
	// checked against (--ca-file; a context's ca_file).
	caEnv = "KERNELHOST_CA_FILE"
)

// kconfig is the config file: named contexts and the current one.
//
//	{"current_context": "alice@prod",
//	 "contexts": [{"name": "alice@prod", "server": "https://kh.example", "token_file": "alice.token"},
//	              {"name": "admin@local", "server": "http://127.0.0.1:8080", "token": "kh_..."}]}
type kconfig struct {
	CurrentContext string     `json:"current_context,omitempty"`
	Contexts       []kcontext `json:"contexts"`
}

// kcontext is one named context: a server and the token to use with it
// (inline, or in a file: relative paths are relative to the config file).
type kcontext struct {
	Name      string `json:"name"`
	Server    string `json:"server"`
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"token_file,omitempty"`
	// CAFile is the PEM file of the CA (or self-signed certificate) that
	// the https server's certificate is checked against, relative to the
	// config file; --ca-file and $KERNELHOST_CA_FILE beat it.
	CAFile string `json:"ca_file,omitempty"`
}

// remoteTarget is a resolved client mode: the server and the token.
type remoteTarget struct {
	server  string
	token   string
	context string // the context's name, when one gave them
	caFile  string // the CA file of https: --ca-file, $KERNELHOST_CA_FILE or the context's; "" the system's roots
}

// configPath returns the config file's path: --config, $KERNELHOST_CONFIG,
// or kernelhost/config.json in the user's config directory.
func (g *globals) configPath() string {
	if g.config != "" {
		return g.config
	}
	if p := os.Getenv(configEnv); p != "" {
		return p
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "kernelhost", "config.json")
}

// loadConfig reads the config file at path; a missing file is an empty
// config unless must.
func loadConfig(path string, must bool) (kconfig, error) {
	var c kconfig
	if path == "" {
		if must {
			return c, errors.New("no config file: set --config or $KERNELHOST_CONFIG")
		}
		return c, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !must {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read config %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("config %s: %v (format: docs/cli.md, 'Contexts')", path, err)
	}
	seen := map[string]bool{}
	for i, ctx := range c.Contexts {
		switch {
		case ctx.Name == "":
			return c, fmt.Errorf("config %s: context %d has no name", path, i+1)
		case seen[ctx.Name]:
			return c, fmt.Errorf("config %s: context %q is named twice", path, ctx.Name)
		case ctx.Token != "" && ctx.TokenFile != "":
			return c, fmt.Errorf("config %s: context %q has a token and a token_file: keep one", path, ctx.Name)
		}
		seen[ctx.Name] = true
		if ctx.Token != "" {
			if err := ownerOnly(path); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// ownerOnly refuses a file holding a token that others may read.
func ownerOnly(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%s holds a token and others may read it (mode %04o): chmod 600 %s", path, m, path)
	}
	return nil
}

// find returns the context named name.
func (c kconfig) find(name string) (kcontext, bool) {
	for _, x := range c.Contexts {
		if x.Name == name {
			return x, true
		}
	}
	return kcontext{}, false
}

// remote resolves client mode for cmd: the target, or nil for local mode.
func (g *globals) remote(cmd *cobra.Command) (*remoteTarget, error) {
	if g.resolved {
		return g.target, g.targetErr
	}
	g.resolved = true
	g.target, g.targetErr = g.resolveRemote(cmd)
	return g.target, g.targetErr
}

func (g *globals) resolveRemote(cmd *cobra.Command) (*remoteTarget, error) {
	flags := cmd.Flags()
	changed := func(name string) bool { f := flags.Lookup(name); return f != nil && f.Changed }
	local := ""
	for _, name := range []string{"data-dir", "store"} {
		if changed(name) {
			local = "--" + name
		}
	}
	serverFlag, contextFlag := changed("server"), changed("context")
	switch {
	case serverFlag && contextFlag:
		return nil, usagef("give --server or --context, not both")
	case local != "" && (serverFlag || contextFlag):
		other := "--server"
		if contextFlag {
			other = "--context"
		}
		return nil, usagef("give %s (a running server) or %s (the world on this machine), not both", other, local)
	case local != "":
		return nil, nil
	}
	server := strings.TrimSpace(g.server)
	if !serverFlag {
		server = strings.TrimSpace(os.Getenv(serverEnv))
	}
	if server != "" && !contextFlag {
		tok := strings.TrimSpace(os.Getenv(tokenEnv))
		if tok == "" {
			return nil, usagef("--server %s needs a token: set %s (printed by 'kernelhost init' or 'principal create'), or use a context (--context)", server, tokenEnv)
		}
		return &remoteTarget{server: server, token: tok, caFile: g.caPath()}, nil
	}
	name := g.context
	if !contextFlag {
		name = os.Getenv(contextEnv)
	}
	path := g.configPath()
	c, err := loadConfig(path, name != "")
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = c.CurrentContext
	}
	if name == "" {
		return nil, nil
	}
	x, ok := c.find(name)
	if !ok {
		return nil, usagef("no context %q in %s: 'kernelhost context ls' lists them", name, path)
	}
	if x.Server == "" {
		return nil, fmt.Errorf("context %q in %s names no server", name, path)
	}
	tok := x.Token
	if x.TokenFile != "" {
		tok, err = readTokenFile(x.TokenFile, path)
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", name, err)
		}
	}
	if tok == "" {
		tok = strings.TrimSpace(os.Getenv(tokenEnv))
	}
	if tok == "" {
		return nil, fmt.Errorf("context %q in %s has no token: give it a token_file, or set %s", name, path, tokenEnv)
	}
	ca := g.caPath()
	if ca == "" && x.CAFile != "" {
		ca = relativeTo(x.CAFile, path)
	}
	return &remoteTarget{server: x.Server, token: tok, context: name, caFile: ca}, nil
}

// caPath is the CA file of --ca-file, else $KERNELHOST_CA_FILE ("" for
// neither).
func (g *globals) caPath() string {
	if g.caFile != "" {
		return g.caFile
	}
	return strings.TrimSpace(os.Getenv(caEnv))
}

// relativeTo resolves p (a file a config file names: ~/ for the home
// directory, else relative to the config file's directory).
func relativeTo(p, config string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(filepath.Dir(config), p)
	}
	return p
}

// readTokenFile reads a token file (relative to the config file's
// directory), which only its owner may read.
func readTokenFile(p, config string) (string, error) {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[2:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(config), p)
	}
	if err := ownerOnly(p); err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// newClient returns the client of target, warning on stderr when the
// token would cross the network unencrypted.
func (g *globals) newClient(t *remoteTarget) (*client.Client, error) {
	hc, err := client.HTTPClient(t.caFile)
	if err != nil {
		return nil, usageError{err.Error() + ": fix --ca-file, $" + caEnv + " or the context's ca_file"}
	}
	c, err := client.New(t.server, t.token, hc)
	if err != nil {
		return nil, usageError{err.Error()}
	}
	if u, _ := client.ParseServer(t.server); u != nil && u.Scheme == "http" && !client.Loopback(u) {
		fmt.Fprintf(g.errOut, "kernelhost: warning: the token goes to %s unencrypted (http://): use https:// beyond this machine\n", u.Host)
	}
	return c, nil
}
