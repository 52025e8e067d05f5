package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// emit prints v as JSON with --output json, else calls text.
func (g *globals) emit(v any, text func(w io.Writer)) error {
	if g.json() {
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(g.out)
	return nil
}

// actionError is a failed kernel action, printed as its code and message.
type actionError struct{ res kernel.Result }

func (e actionError) Error() string {
	s := e.res.ErrorCode + ": " + e.res.Message
	if e.res.Retriable {
		s += " (retriable"
		if e.res.RetryAfter > 0 {
			s += fmt.Sprintf(": retry in %s", roundUp(e.res.RetryAfter))
		}
		s += ")"
	}
	return s
}

func roundUp(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}

// codedError is a kernel error from an admin method, printed as code and
// message without the "kernel:" prefixes.
func codedError(err error) error {
	if err == nil {
		return nil
	}
	var ke *kernel.Error
	if asKernel(err, &ke) {
		msg := ke.Msg
		if ke.Err != nil {
			msg += ": " + ke.Err.Error()
		}
		return fmt.Errorf("%s: %s", ke.Code, msg)
	}
	return err
}

// emitResult prints a kernel result and turns a failure into an error. A
// replayed result (the action's --request-id ran before) says so on
// stderr: nothing ran this time.
func (g *globals) emitResult(res kernel.Result, text func(w io.Writer)) error {
	if res.Replayed {
		fmt.Fprintf(g.errOut, "kernelhost: this request id ran before (event %d): its first result follows; nothing ran this time\n", res.Event)
	}
	if g.json() {
		if err := g.emit(api.ResultOf(res), nil); err != nil {
			return err
		}
	} else if res.OK {
		text(g.out)
	}
	if !res.OK {
		return actionError{res}
	}
	return nil
}

// chargesText describes charges in words.
func chargesText(cs []kernel.Charge) string {
	if len(cs) == 0 {
		return "nothing charged"
	}
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		to := "burned"
		if c.Payee != "" {
			to = "to " + c.Payee
		}
		parts = append(parts, fmt.Sprintf("%s paid %d %s", c.Payer, c.Amount, to))
	}
	return strings.Join(parts, "; ")
}

func decisionText(d *abi.Decision) string {
	if d == nil {
		return "none (no contract answered)"
	}
	verdict := "DENY"
	if d.Allowed {
		verdict = "ALLOW"
	}
	s := fmt.Sprintf("%s cost=%d", verdict, d.Cost)
	payer := d.Payer
	if payer == "" {
		payer = "(caller)"
	}
	payee := d.Payee
	if payee == "" {
		payee = "(burned)"
	}
	s += fmt.Sprintf(" payer=%s payee=%s", payer, payee)
	if d.Reason != "" {
		s += fmt.Sprintf(" reason=%q", d.Reason)
	}
	return s
}

func metaText(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func writeArtifactInfo(w io.Writer, a *kernel.ArtifactInfo) {
	fmt.Fprintf(w, "id:              %s\n", a.ID)
	fmt.Fprintf(w, "type:            %s\n", a.Type)
	fmt.Fprintf(w, "created_by:      %s\n", a.CreatedBy)
	fmt.Fprintf(w, "access_contract: %s\n", a.Contract)
	fmt.Fprintf(w, "size:            %d bytes\n", a.Size)
	fmt.Fprintf(w, "revision:        %d\n", a.Revision)
	fmt.Fprintf(w, "sha256:          %s\n", a.Hash)
	fmt.Fprintf(w, "created_at:      %s\n", a.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "updated_at:      %s\n", a.UpdatedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "metadata:        %s\n", metaText(a.Metadata))
}

// eventText is one audit event on one line.
func eventText(e kernel.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%-4d %s %-8s %-14s", e.Seq, e.Time.Format("15:04:05.000"), e.Caller, e.Kind)
	if e.Target != "" {
		fmt.Fprintf(&b, " %s", e.Target)
	}
	if e.To != "" {
		fmt.Fprintf(&b, " -> %s", e.To)
	}
	if e.Resource != "" {
		fmt.Fprintf(&b, " %d %s", e.Amount, e.Resource)
	} else if e.Kind == kernel.KindTransfer && e.Amount > 0 {
		fmt.Fprintf(&b, " %d", e.Amount)
	}
	fmt.Fprintf(&b, "  %s", e.Code)
	if len(e.Charges) > 0 {
		fmt.Fprintf(&b, " (%s)", chargesText(e.Charges))
	}
	if e.Code != "OK" && e.Message != "" {
		fmt.Fprintf(&b, " — %s", e.Message)
	}
	return b.String()
}
