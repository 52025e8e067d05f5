package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/client"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/llm"
	"github.com/kernelhost/kernelhost/kernel"
)

// defaultLLMKeyEnv is the environment variable the gateway's API key is
// read from unless --llm-key-env names another.
const defaultLLMKeyEnv = "KERNELHOST_LLM_API_KEY"

// llmFlags are serve's flags of the LLM gateway (package llm).
type llmFlags struct {
	endpoint, prices, keyEnv string
	maxTokens                int64
	timeout                  time.Duration
}

func (f *llmFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "llm-endpoint", "", "serve POST /v1/llm/chat through this OpenAI-compatible API (e.g. http://127.0.0.1:8000/v1); needs --llm-prices")
	fs.StringVar(&f.prices, "llm-prices", "", `the gateway's price table, a JSON file: {"model": {"input_per_1k": µ$, "output_per_1k": µ$}}`)
	fs.StringVar(&f.keyEnv, "llm-key-env", defaultLLMKeyEnv, "the environment variable holding the API key sent upstream (never give the key itself on the command line)")
	fs.Int64Var(&f.maxTokens, "llm-max-tokens", llm.DefaultMaxTokens, "max_tokens of a call that gives none (sent upstream; what is reserved)")
	fs.DurationVar(&f.timeout, "llm-timeout", llm.DefaultTimeout, "bound on one LLM call, a stream included")
}

// gateway builds the gateway the flags describe, or nil when there is no
// --llm-endpoint. The key comes from the environment only: a variable
// named with --llm-key-env must be set; the default one may be unset (a
// local server without a key).
func (f *llmFlags) gateway(cmd *cobra.Command, k *kernel.Kernel, log *slog.Logger) (*llm.Gateway, error) {
	if f.endpoint == "" {
		if f.prices != "" {
			return nil, usagef("--llm-prices without --llm-endpoint: give the API to call with --llm-endpoint URL")
		}
		return nil, nil
	}
	if f.prices == "" {
		return nil, usagef("--llm-endpoint needs --llm-prices FILE: the gateway refuses every model it has no price for")
	}
	if _, err := llm.ParseEndpoint(f.endpoint); err != nil {
		return nil, usageError{err.Error()}
	}
	if f.maxTokens < 1 || f.maxTokens > llm.MaxTokens {
		return nil, usagef("--llm-max-tokens %d: give 1 to %d", f.maxTokens, llm.MaxTokens)
	}
	if f.timeout <= 0 {
		return nil, usagef("--llm-timeout %s: give a positive duration", f.timeout)
	}
	prices, err := llm.LoadPrices(f.prices)
	if err != nil {
		return nil, err
	}
	if f.keyEnv == "" {
		return nil, usagef("--llm-key-env names no variable: give the name of the one holding the API key")
	}
	key, set := os.LookupEnv(f.keyEnv)
	key = strings.TrimSpace(key)
	if key == "" && cmd.Flags().Changed("llm-key-env") {
		return nil, fmt.Errorf("--llm-key-env %s: the variable is unset or empty: export %s=<the API key>", f.keyEnv, f.keyEnv)
	}
	gw, err := llm.New(llm.Config{
		Kernel: k, Endpoint: f.endpoint, APIKey: llm.Secret(key), Prices: prices,
		DefaultMaxTokens: f.maxTokens, Timeout: f.timeout, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("llm gateway", "endpoint", gw.URL(), "models", gw.Models(), "key_env", f.keyEnv, "key_set", set && key != "")
	// Executables' LLM host calls go through it too, as their caller,
	// within their invoke's max_llm_cost.
	k.SetLLMGateway(gw)
	return gw, nil
}

func newLLMCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "llm",
		Short: "LLM calls through a server's metered gateway",
		Long: `llm talks to the LLM gateway of a running server ('kernelhost serve
--llm-endpoint URL --llm-prices FILE'), as the principal of the token: every
call reserves llm_rate and llm_budget before it is sent and is charged what
the provider reports it used.`,
		Example: `  KERNELHOST_TOKEN=kh_... kernelhost --server http://127.0.0.1:8080 llm chat --model gpt-4o-mini "Say hi"`,
	}
	cmd.AddCommand(newLLMChatCmd(g))
	return cmd
}

func newLLMChatCmd(g *globals) *cobra.Command {
	var model, system, request string
	var maxTokens int64
	var stream bool
	cmd := &cobra.Command{
		Use:   "chat [MESSAGE|-] --model MODEL",
		Short: "Send one chat completion through the server's LLM gateway",
		Long: `chat sends MESSAGE (or standard input, for -) as a user message to the
server's POST /v1/llm/chat and prints the reply; the tokens and micro-dollars
charged go to standard error. --stream prints the reply as it comes.
--request FILE (or - for standard input) sends a whole chat-completions
request instead, as docs/http.md describes it.

It needs a server: --server URL with the principal's token in
$KERNELHOST_TOKEN, or a context (--context). With -o json it prints the
provider's answer as it came (a stream as one JSON chunk a line).`,
		Example: `  KERNELHOST_TOKEN=kh_... kernelhost --server http://127.0.0.1:8080 llm chat --model gpt-4o-mini "Say hi"
  echo "Summarise: ..." | kernelhost --server http://127.0.0.1:8080 llm chat --model llama3 --max-tokens 200 -
  kernelhost --context alice@prod llm chat --request req.json -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := chatBody(cmd, args, model, system, request, maxTokens, stream)
			if err != nil {
				return err
			}
			t, err := g.remote(cmd)
			if err != nil {
				return err
			}
			if t == nil {
				return usagef("llm chat goes through a server's gateway: give --server URL (with $%s) or --context NAME", tokenEnv)
			}
			if _, err := g.newClient(t); err != nil { // checks the URL, warns on plain http beyond this machine
				return err
			}
			return g.llmChat(cmd.Context(), t, body)
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "the model (one of the server's price table)")
	f.StringVar(&system, "system", "", "a system message before MESSAGE")
	f.Int64Var(&maxTokens, "max-tokens", 0, "the most tokens of the reply (default: the server's --llm-max-tokens)")
	f.BoolVar(&stream, "stream", false, "stream the reply as it comes")
	f.StringVar(&request, "request", "", "send this chat-completions request (a JSON file, - for standard input) instead of MESSAGE")
	return cmd
}

// chatBody builds the request body of llm chat.
func chatBody(cmd *cobra.Command, args []string, model, system, request string, maxTokens int64, stream bool) ([]byte, error) {
	in := cmd.InOrStdin()
	if request != "" {
		for _, name := range []string{"model", "system", "max-tokens", "stream"} {
			if cmd.Flags().Changed(name) {
				return nil, usagef("--request sends the file as it is: give --%s in the file, not on the command line", name)
			}
		}
		if len(args) > 0 {
			return nil, usagef("--request sends the file as it is: leave out MESSAGE")
		}
		var b []byte
		var err error
		if request == "-" {
			b, err = io.ReadAll(io.LimitReader(in, llm.DefaultMaxBodyBytes+1))
		} else {
			b, err = os.ReadFile(request)
		}
		if err != nil {
			return nil, fmt.Errorf("read the request: %w", err)
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("--request %s is not a JSON chat-completions request", request)
		}
		return b, nil
	}
	if model == "" {
		return nil, usagef("give --model MODEL (one of the server's price table)")
	}
	if len(args) == 0 {
		return nil, usagef("give MESSAGE, or - to read it from standard input")
	}
	if maxTokens < 0 {
		return nil, usagef("--max-tokens %d: give 1 or more", maxTokens)
	}
	msg := args[0]
	if msg == "-" {
		b, err := io.ReadAll(io.LimitReader(in, llm.DefaultMaxBodyBytes+1))
		if err != nil {
			return nil, fmt.Errorf("read the message: %w", err)
		}
		msg = string(b)
	}
	type message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type streamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	req := struct {
		Model         string         `json:"model"`
		Messages      []message      `json:"messages"`
		MaxTokens     int64          `json:"max_tokens,omitempty"`
		Stream        bool           `json:"stream,omitempty"`
		StreamOptions *streamOptions `json:"stream_options,omitempty"`
	}{Model: model, MaxTokens: maxTokens, Stream: stream}
	if stream {
		req.StreamOptions = &streamOptions{IncludeUsage: true} // for the usage line
	}
	if system != "" {
		req.Messages = append(req.Messages, message{"system", system})
	}
	req.Messages = append(req.Messages, message{"user", msg})
	return json.Marshal(req)
}

// llmChat posts body to the gateway of t and prints the answer.
func (g *globals) llmChat(ctx context.Context, t *remoteTarget, body []byte) error {
	base, err := client.ParseServer(t.server)
	if err != nil {
		return usageError{err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.String()+"/v1/llm/chat", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kernelhost-cli")
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &client.Error{API: api.NewError(abi.Unavailable, fmt.Sprintf("cannot reach the server at %s: %v", base.Redacted(), errors.Unwrap(err)))}
	}
	defer resp.Body.Close()
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &client.Error{Status: resp.StatusCode}
		if json.Unmarshal(b, &e.API) != nil || e.API.ErrorCode == "" {
			e.API = api.NewError(abi.Internal, fmt.Sprintf("the server answered %d (%s) without a kernelhost error: is %s a kernelhost server?", resp.StatusCode, ct, base.Redacted()))
		}
		return e
	}
	if strings.HasPrefix(ct, "text/event-stream") {
		return g.printStream(resp.Body)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, llm.DefaultMaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if g.json() {
		_, err := g.out.Write(append(bytes.TrimRight(b, "\n"), '\n'))
		return err
	}
	var c struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("the provider's answer is not a chat completion: %w", err)
	}
	for i, ch := range c.Choices {
		if i > 0 {
			fmt.Fprintln(g.out)
		}
		if ch.Message.Content != nil {
			fmt.Fprintln(g.out, *ch.Message.Content)
		}
	}
	h := resp.Header
	fmt.Fprintf(g.errOut, "kernelhost: %s input + %s output tokens, %s µ$ charged (event %s)\n",
		h.Get(llm.HeaderInputTokens), h.Get(llm.HeaderOutputTokens), h.Get(llm.HeaderCost), h.Get(llm.HeaderEvent))
	return nil
}

// printStream prints a stream's chunks as they come: the reply's text,
// or with -o json each chunk's JSON on a line. An error event ends it
// with its error.
func (g *globals) printStream(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), llm.MaxEventBytes)
	var usage *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	}
	text := false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		data = strings.TrimSpace(data)
		if !ok || data == "" || data == "[DONE]" {
			continue
		}
		var chunk struct {
			Error   *api.Error `json:"error"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage *struct {
				PromptTokens     int64 `json:"prompt_tokens"`
				CompletionTokens int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			return fmt.Errorf("the stream holds a chunk that is not JSON: %w", err)
		}
		if chunk.Error != nil {
			if text {
				fmt.Fprintln(g.out)
			}
			if chunk.Error.ErrorCode == "" {
				chunk.Error.ErrorCode = abi.Unavailable.String()
			}
			return &client.Error{API: *chunk.Error}
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		if g.json() {
			fmt.Fprintln(g.out, data)
			continue
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.Content != "" {
				fmt.Fprint(g.out, ch.Delta.Content)
				text = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the stream broke off: %w", err)
	}
	if !g.json() {
		fmt.Fprintln(g.out)
	}
	if usage != nil {
		fmt.Fprintf(g.errOut, "kernelhost: the provider reports %d input + %d output tokens\n", usage.PromptTokens, usage.CompletionTokens)
	}
	return nil
}
