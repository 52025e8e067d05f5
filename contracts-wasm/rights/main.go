// Command rights is the genesis rights registry (artifact "genesis/rights"):
// an executable, written with the abi/guest SDK, that answers questions about
// quotas and moves quota by calling the kernel host API. It holds no state of
// its own and has no standing (no principal with its id), so it can do
// nothing its caller could not do directly: every answer is the kernel's, and
// every transfer is the kernel's transfer_quota performed as the invoking
// caller.
//
// Methods (args are JSON objects; unknown fields are refused):
//
//	get_quota          {"principal": "alice", "resource": "llm_rate"}
//	                   -> {"principal","resource","quota","used","available","retry_after_ns"}
//	available_capacity {"principal": "alice", "resource": "llm_rate"}
//	                   -> {"principal","resource","available"}
//	transfer_quota     {"to": "bob", "resource": "llm_rate", "amount": 100}
//	                   -> the kernel's action result
//
// principal defaults to the caller. A kernel failure (such as
// QUOTA_EXCEEDED) is returned as the error "CODE: message", so the invocation
// fails and nothing it did remains.
//
// Build it reproducibly (make contracts at the repository root):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o rights.wasm .
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/guest"
)

// quotaArgs are the arguments of get_quota and available_capacity.
type quotaArgs struct {
	Principal string `json:"principal"`
	Resource  string `json:"resource"`
}

// transferArgs are the arguments of transfer_quota. There is no "from": the
// quota always leaves the invoking caller.
type transferArgs struct {
	To       string `json:"to"`
	Resource string `json:"resource"`
	Amount   int64  `json:"amount"`
}

// status is the output of get_quota.
type status struct {
	Principal string `json:"principal"`
	guest.QuotaStatus
}

// capacity is the output of available_capacity.
type capacity struct {
	Principal string `json:"principal"`
	Resource  string `json:"resource"`
	Available int64  `json:"available"`
}

// decodeArgs decodes the JSON object args into v, refusing fields other
// than known (by their exact names). Empty args are an empty object.
//
// NB: not json.Decoder (DisallowUnknownFields): reading through io.Reader
// links os.File.Read, whose wasi fd_read import the host refuses.
func decodeArgs(args []byte, v any, known ...string) error {
	if len(bytes.TrimSpace(args)) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(args, &fields); err != nil {
		return fmt.Errorf("INVALID_ARGUMENT: rights: args are not a JSON object: %v", err)
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !slices.Contains(known, name) {
			return fmt.Errorf("INVALID_ARGUMENT: rights: args: unknown field %q (known: %s)", name, strings.Join(known, ", "))
		}
	}
	if err := json.Unmarshal(args, v); err != nil {
		return fmt.Errorf("INVALID_ARGUMENT: rights: args: %v", err)
	}
	return nil
}

// parseQuota decodes the arguments of a query, defaulting the principal to
// the caller.
func parseQuota(caller string, args []byte) (quotaArgs, error) {
	var a quotaArgs
	if err := decodeArgs(args, &a, "principal", "resource"); err != nil {
		return a, err
	}
	if a.Principal == "" {
		a.Principal = caller
	}
	if a.Resource == "" {
		return a, errors.New(`INVALID_ARGUMENT: rights: args need "resource"`)
	}
	return a, nil
}

// parseTransfer decodes the arguments of transfer_quota. The kernel
// validates the values themselves.
func parseTransfer(args []byte) (transferArgs, error) {
	var a transferArgs
	if err := decodeArgs(args, &a, "to", "resource", "amount"); err != nil {
		return a, err
	}
	if a.To == "" || a.Resource == "" {
		return a, errors.New(`INVALID_ARGUMENT: rights: args need "to", "resource" and "amount"`)
	}
	return a, nil
}

// transferQuota is the kernel action the registry performs, in the kernel's
// action JSON.
type transferQuota struct {
	Kind     string `json:"kind"`
	To       string `json:"to"`
	Resource string `json:"resource"`
	Amount   int64  `json:"amount"`
}

// invoke serves one invocation.
func invoke(req *abi.RequestView) ([]byte, error) {
	caller := string(req.Caller())
	switch method := string(req.Method()); method {
	case "get_quota", "available_capacity":
		a, err := parseQuota(caller, req.Args())
		if err != nil {
			return nil, err
		}
		st, err := guest.Quota(a.Principal, a.Resource)
		if err != nil {
			return nil, err
		}
		if method == "get_quota" {
			return json.Marshal(status{Principal: a.Principal, QuotaStatus: st})
		}
		return json.Marshal(capacity{Principal: a.Principal, Resource: st.Resource, Available: st.Available})
	case "transfer_quota":
		a, err := parseTransfer(req.Args())
		if err != nil {
			return nil, err
		}
		// NB: guest.Do, never guest.DoAsSelf: the quota leaves the caller.
		res, err := guest.Do(transferQuota{Kind: "transfer_quota", To: a.To, Resource: a.Resource, Amount: a.Amount})
		if err != nil {
			return nil, err
		}
		return res.Raw, nil
	default:
		return nil, fmt.Errorf("INVALID_ARGUMENT: rights: unknown method %q: use get_quota, available_capacity or transfer_quota", method)
	}
}

func init() { guest.RegisterInvoke(invoke) }

// main is never called: the host runs _initialize (package init) and then
// the exports of abi/guest.
func main() {}
