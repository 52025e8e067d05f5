package kernel

import "encoding/json"

// decisionJSON is abi.Decision under the names the HTTP API gives it
// (cmd/kernelhost/internal/api.Decision): snake case, payer, payee and
// reason left out when empty. abi.Decision itself carries no json tags:
// the abi package is compiled into committed guest modules (the rights
// registry), which must stay byte for byte as built, and tags would change
// them.
type decisionJSON struct {
	Allowed bool   `json:"allowed"`
	Cost    uint64 `json:"cost"`
	Payer   string `json:"payer,omitempty"`
	Payee   string `json:"payee,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// resultFields is Result without its methods, so that MarshalJSON can
// encode it without calling itself.
type resultFields Result

// MarshalJSON encodes r with its decision spelled as the HTTP API spells it
// ("allowed", "cost", "payer", "payee", "reason"), so that every reader of a
// Result's JSON, an executable's host call above all (abi/SPEC.md section
// 8), sees one spelling; encoding/json's default would be Go's field names
// ("Allowed", "Cost"). Decoding needs no counterpart: encoding/json matches
// the names to abi.Decision's fields whatever their case.
func (r Result) MarshalJSON() ([]byte, error) {
	out := struct {
		resultFields
		// Decision shadows resultFields.Decision: the shallower field of
		// a name is the one encoded.
		Decision *decisionJSON `json:"decision,omitempty"`
	}{resultFields: resultFields(r)}
	if d := r.Decision; d != nil {
		out.Decision = &decisionJSON{Allowed: d.Allowed, Cost: d.Cost, Payer: d.Payer, Payee: d.Payee, Reason: d.Reason}
	}
	return json.Marshal(out)
}
