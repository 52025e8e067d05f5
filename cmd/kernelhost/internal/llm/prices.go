package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// Bounds of a price table. MaxPrice is the kernel's bound on a price
// (kernel.ReserveLLM refuses more), so that no cost overflows.
const (
	MaxPrice          = int64(1) << 30
	MaxModelLen       = abi.MaxTypeLen * 4 // the kernel's bound on a model name
	maxPriceFileBytes = 1 << 20
)

// Price is one model's price in micro-dollars (µ$) per 1,000 tokens.
type Price struct {
	InputPer1K  int64 `json:"input_per_1k"`
	OutputPer1K int64 `json:"output_per_1k"`
}

// Prices is the gateway's price table, by model name as the upstream API
// spells it. A model not in it is refused before anything is sent.
type Prices map[string]Price

// Models returns the table's model names in order.
func (p Prices) Models() []string {
	out := make([]string, 0, len(p))
	for m := range p {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// LoadPrices reads and validates a price table file (see ParsePrices).
func LoadPrices(path string) (Prices, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPriceFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("price table %s: %w", path, err)
	}
	if len(b) > maxPriceFileBytes {
		return nil, fmt.Errorf("price table %s is larger than %d bytes", path, maxPriceFileBytes)
	}
	p, err := ParsePrices(b)
	if err != nil {
		return nil, fmt.Errorf("price table %s: %w", path, err)
	}
	return p, nil
}

// ParsePrices decodes a price table strictly:
//
//	{"gpt-4o-mini": {"input_per_1k": 150, "output_per_1k": 600}}
//
// One object of at least one model; each model 1-256 bytes of printable
// UTF-8 with both fields, integers from 0 to MaxPrice micro-dollars per
// 1,000 tokens. An unknown field, a key given twice, a fraction, a missing
// field or trailing data is an error: a price means one thing.
func ParsePrices(b []byte) (Prices, error) {
	if err := kernel.CheckDuplicateKeys(b); err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := strictDecode(b, &raw); err != nil {
		return nil, fmt.Errorf("want a JSON object of models, {\"model\": {\"input_per_1k\": N, \"output_per_1k\": N}}: %w", err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("no model: give at least one")
	}
	out := make(Prices, len(raw))
	for model, v := range raw {
		if err := checkModelName(model); err != nil {
			return nil, err
		}
		var fields map[string]json.RawMessage
		if err := strictDecode(v, &fields); err != nil || fields == nil {
			return nil, fmt.Errorf("model %q: want {\"input_per_1k\": N, \"output_per_1k\": N}", model)
		}
		var p Price
		for name, dst := range map[string]*int64{"input_per_1k": &p.InputPer1K, "output_per_1k": &p.OutputPer1K} {
			fv, ok := fields[name]
			if !ok {
				return nil, fmt.Errorf("model %q: %s is missing", model, name)
			}
			if err := json.Unmarshal(fv, dst); err != nil {
				return nil, fmt.Errorf("model %q: %s must be an integer of micro-dollars per 1,000 tokens, not %.32s", model, name, fv)
			}
			if *dst < 0 || *dst > MaxPrice {
				return nil, fmt.Errorf("model %q: %s must be between 0 and %d micro-dollars per 1,000 tokens", model, name, MaxPrice)
			}
			delete(fields, name)
		}
		for name := range fields {
			return nil, fmt.Errorf("model %q: unknown field %.64q (want input_per_1k and output_per_1k)", model, name)
		}
		out[model] = p
	}
	return out, nil
}

// checkModelName refuses a model name the kernel would refuse, or that a
// log line or metric label would mangle.
func checkModelName(m string) error {
	if m == "" || len(m) > MaxModelLen {
		return fmt.Errorf("model name %.64q must be 1-%d bytes", m, MaxModelLen)
	}
	if strings.IndexFunc(m, func(r rune) bool { return r == unicode.ReplacementChar || !unicode.IsPrint(r) }) >= 0 {
		return fmt.Errorf("model name %.64q must be printable UTF-8", m)
	}
	return nil
}

// strictDecode decodes one JSON value from b into v, refusing trailing data.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}
