package kernel

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// maxFastFields bounds the keys of an action decodeActionFast takes: no
// kind uses more than this many fields besides "kind".
const maxFastFields = 9

// fastKinds are the kinds of actionFields, for decodeActionFast's lookup
// by bytes.
var fastKinds = func() []Kind {
	ks := make([]Kind, 0, len(actionFields))
	for k := range actionFields {
		ks = append(ks, k)
	}
	return ks
}()

// fastField is one key and its raw value as decodeActionFast scans them:
// for a string, the bytes between the quotes (no escapes); for a number,
// its literal.
type fastField struct {
	key, val []byte
	str      bool
}

// decodeActionFast decodes, in one pass and without reflection, the shape
// nearly every action arrives in: one flat JSON object whose values are
// strings without escapes (valid UTF-8, no control characters) or integers,
// whose keys are distinct, exactly named fields that its "kind", a known
// kind, uses (actionFields). It reports ok false for anything else, without
// judging it: the full decoder then runs and gives every refusal its
// precise error. It never refuses, and for every input it takes it returns
// exactly what the full decoder returns (TestDecodeActionFastMatchesFull,
// FuzzDecodeActionFast). It exists for throughput: the full decoder walks
// the bytes three times through encoding/json, ~10 µs and 60 allocations
// for a read (issue 17).
func decodeActionFast(b []byte) (a Action, ok bool) {
	if len(b) > MaxActionJSON {
		return Action{}, false
	}
	var fs [maxFastFields + 1]fastField
	n := 0
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Action{}, false
	}
	i = skipSpace(b, i+1)
	for {
		if n == len(fs) {
			return Action{}, false
		}
		var f fastField
		if f.key, i, ok = scanString(b, i); !ok {
			return Action{}, false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return Action{}, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '"' {
			f.val, i, ok = scanString(b, i)
			f.str = true
		} else {
			f.val, i, ok = scanInteger(b, i)
		}
		if !ok {
			return Action{}, false
		}
		for _, g := range fs[:n] {
			if string(g.key) == string(f.key) {
				return Action{}, false // a duplicate: the full decoder refuses it
			}
		}
		fs[n] = f
		n++
		i = skipSpace(b, i)
		if i >= len(b) {
			return Action{}, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return Action{}, false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) {
		return Action{}, false // trailing data
	}

	// The kind first: it decides which fields are allowed.
	for _, f := range fs[:n] {
		if string(f.key) == "kind" {
			if !f.str {
				return Action{}, false
			}
			for _, k := range fastKinds {
				if string(k) == string(f.val) {
					a.Kind = k // the constant's string: no allocation
					break
				}
			}
		}
	}
	if a.Kind == "" {
		return Action{}, false
	}
	var content, text, args, argsText bool
	for _, f := range fs[:n] {
		key := string(f.key)
		if key == "kind" {
			continue
		}
		name := key
		if alias, isAlias := jsonAliases[key]; isAlias {
			name = alias
		}
		if !kindUses(a.Kind, name) {
			return Action{}, false
		}
		switch key {
		case "target", "type", "contract", "method", "to", "resource", "request_id":
			if !f.str {
				return Action{}, false
			}
			s := string(f.val)
			switch key {
			case "target":
				a.Target = s
			case "type":
				a.Type = s
			case "contract":
				a.Contract = s
			case "method":
				a.Method = s
			case "to":
				a.To = s
			case "resource":
				a.Resource = s
			case "request_id":
				a.RequestID = s
			}
		case "content", "args":
			if !f.str {
				return Action{}, false
			}
			// As encoding/json decodes a []byte: StdEncoding into a buffer
			// of DecodedLen (so "" is an empty, non-nil slice).
			dec := make([]byte, base64.StdEncoding.DecodedLen(len(f.val)))
			m, err := base64.StdEncoding.Decode(dec, f.val)
			if err != nil {
				return Action{}, false
			}
			if key == "content" {
				a.Content, content = dec[:m], true
			} else {
				a.Args, args = dec[:m], true
			}
		case "text", "args_text":
			if !f.str {
				return Action{}, false
			}
			if key == "text" {
				a.Content, text = []byte(string(f.val)), true
			} else {
				a.Args, argsText = []byte(string(f.val)), true
			}
		case "max_cost", "amount", "per_call_cap", "total_cap":
			if f.str {
				return Action{}, false
			}
			v, err := strconv.ParseInt(string(f.val), 10, 64)
			if err != nil {
				return Action{}, false
			}
			switch key {
			case "max_cost":
				mc := v // its own variable: v's address would move v to the heap for every integer
				a.MaxCost = &mc
			case "amount":
				a.Amount = v
			case "per_call_cap":
				a.PerCallCap = v
			case "total_cap":
				a.TotalCap = v
			}
		default:
			return Action{}, false // metadata, unset, amounts, ids: not scalars
		}
	}
	if content && text || args && argsText {
		return Action{}, false // refused by the full decoder
	}
	return a, true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString scans the JSON string starting at b[i] (a quote), returning
// its bytes without the quotes and the index after it. ok is false unless
// it is a string that decodes to exactly those bytes: no escape, no control
// character, valid UTF-8 (encoding/json replaces invalid bytes with U+FFFD).
func scanString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s = b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, i, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, i, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, i, false
}

// scanInteger scans the JSON number starting at b[i], returning its literal
// and the index after it. ok is false unless it is an integer as JSON
// writes one (-?(0|[1-9][0-9]*)), with no fraction or exponent.
func scanInteger(b []byte, i int) (lit []byte, next int, ok bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return nil, i, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] >= '0' && b[j] <= '9') {
		return nil, i, false
	}
	return b[i:j], j, true
}
