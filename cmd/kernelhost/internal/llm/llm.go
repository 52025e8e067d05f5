// Package llm is kernelhost's metered LLM gateway: POST /v1/llm/chat
// forwards a principal's chat-completions request to one OpenAI-compatible
// API (a hosted provider, vLLM, llama.cpp's server, Ollama) and meters it
// through the kernel's llm_rate and llm_budget quotas:
//
//  1. Validate the request (gateway fields only, text content only, a model
//     of the price table) and bound it: the prompt's tokens from its bytes
//     (promptBound), the completion's from max_tokens (or DefaultMaxTokens,
//     which then goes upstream) times n.
//  2. Reserve both bounds with kernel.ReserveLLM; QUOTA_EXCEEDED answers
//     at once and nothing is sent.
//  3. Forward the request with the gateway's API key (never the client's
//     token) and pass the answer back, a stream chunk by chunk.
//  4. Settle with kernel.SettleLLM, exactly once, whatever happened: to the
//     usage the provider reported; to the reservation when it reported
//     none (an error, a timeout, a client gone before the usage chunk); to
//     nothing when nothing was sent (the connection failed before the
//     request's headers were written).
//
// The API key lives only in this process's memory (Config.APIKey, a Secret
// that prints as "[redacted]"); any echo of it in what the provider
// answers is redacted before it reaches a client or a log.
package llm

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/kernel"
)

// Defaults of Config.
const (
	DefaultMaxTokens        = 1024
	DefaultMaxBodyBytes     = 4 << 20
	DefaultMaxResponseBytes = 16 << 20
	DefaultTimeout          = 10 * time.Minute
	DefaultKernelTimeout    = 30 * time.Second
	// MaxEventBytes bounds one event of an upstream stream.
	MaxEventBytes = 1 << 20
	// maxErrorBytes bounds what is read of an upstream error answer.
	maxErrorBytes = 64 << 10
)

// Secret is a credential. It formats, logs and encodes as "[redacted]", so
// that no log line, error or dump of a Config shows it.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]" for %#v.
func (Secret) GoString() string { return redacted }

// LogValue keeps the secret out of slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText keeps the secret out of JSON and other encodings.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Config configures a Gateway. Zero values mean the documented defaults.
type Config struct {
	// Kernel reserves and settles every call. Required.
	Kernel *kernel.Kernel
	// Endpoint is the upstream API: its base URL (".../v1"), to which
	// "/chat/completions" is added, or the full chat-completions URL.
	// Required; see ParseEndpoint.
	Endpoint string
	// APIKey, when set, goes upstream as "Authorization: Bearer <key>".
	APIKey Secret
	// Prices is the price table; a model not in it is refused. Required.
	Prices Prices
	// DefaultMaxTokens caps the completion of a request that gives no
	// max_tokens (it is sent upstream). Default 1024.
	DefaultMaxTokens int64
	// MaxBodyBytes bounds a request body. Default 4 MiB.
	MaxBodyBytes int64
	// MaxResponseBytes bounds a non-streaming answer. Default 16 MiB.
	MaxResponseBytes int64
	// Timeout bounds one call to the provider, a stream included. Default
	// 10 minutes.
	Timeout time.Duration
	// KernelTimeout bounds the reservation and the settlement. Default 30s.
	KernelTimeout time.Duration
	// Client sends the upstream requests. Default: one that never follows
	// a redirect (the key would follow it).
	Client *http.Client
	// Logger receives one line per call. Nil discards.
	Logger *slog.Logger
}

// Gateway is the LLM gateway. It is safe for concurrent use.
type Gateway struct {
	cfg   Config
	url   string // the chat-completions URL
	stats stats
}

// New returns a Gateway for cfg.
func New(cfg Config) (*Gateway, error) {
	if cfg.Kernel == nil {
		return nil, errors.New("llm: Config.Kernel is required")
	}
	if len(cfg.Prices) == 0 {
		return nil, errors.New("llm: a price table (--llm-prices) is required: the gateway refuses every model it has no price for")
	}
	for m, p := range cfg.Prices {
		if err := checkModelName(m); err != nil {
			return nil, fmt.Errorf("llm: %w", err)
		}
		if p.InputPer1K < 0 || p.OutputPer1K < 0 || p.InputPer1K > MaxPrice || p.OutputPer1K > MaxPrice {
			return nil, fmt.Errorf("llm: model %q: prices must be between 0 and %d", m, MaxPrice)
		}
	}
	u, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.DefaultMaxTokens < 0 || cfg.DefaultMaxTokens > MaxTokens || cfg.MaxBodyBytes < 0 || cfg.MaxResponseBytes < 0 || cfg.Timeout < 0 || cfg.KernelTimeout < 0 {
		return nil, errors.New("llm: negative or too large limit in Config")
	}
	if strings.ContainsAny(string(cfg.APIKey), "\r\n") {
		return nil, errors.New("llm: the API key holds a line break")
	}
	setDefault(&cfg.DefaultMaxTokens, DefaultMaxTokens)
	setDefault(&cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	setDefault(&cfg.Timeout, DefaultTimeout)
	setDefault(&cfg.KernelTimeout, DefaultKernelTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &Gateway{cfg: cfg, url: u, stats: stats{m: map[string]*ModelStats{}}}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// ParseEndpoint checks an --llm-endpoint URL and returns the
// chat-completions URL: http or https, a host, no user information (a
// credential in a URL lands in logs: the key comes from the environment),
// no query or fragment. A URL ending in /chat/completions is taken as
// it is; any other gets /chat/completions added
// ("http://127.0.0.1:8000/v1" is vLLM's).
func ParseEndpoint(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	switch {
	case s == "":
		return "", errors.New("llm: no endpoint: give --llm-endpoint URL, e.g. http://127.0.0.1:8000/v1")
	case err != nil:
		return "", fmt.Errorf("llm: --llm-endpoint %q is not a URL: use http://HOST:PORT/v1", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("llm: --llm-endpoint %q: use an http:// or https:// URL", s)
	case u.Host == "":
		return "", fmt.Errorf("llm: --llm-endpoint %q names no host", s)
	case u.User != nil:
		return "", errors.New("llm: --llm-endpoint: a URL with user information is refused (it would be logged): give the key in the environment variable named by --llm-key-env")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("llm: --llm-endpoint %q: give the API's URL without a query or fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if !strings.HasSuffix(u.Path, "/chat/completions") {
		u.Path += "/chat/completions"
	}
	return u.String(), nil
}

// URL returns the chat-completions URL the gateway posts to.
func (g *Gateway) URL() string { return g.url }

// Models returns the models of the price table, in order.
func (g *Gateway) Models() []string { return g.cfg.Prices.Models() }
