// Package peers compares kernelhost's permission check with the policy
// engines people would otherwise embed (cedar-go, OPA's Go SDK), on one
// policy and the same requests. It is its own module so that those engines'
// dependencies never enter kernelhost's; see bench/README.md.
//
// The policy is the genesis freeware contract's: anyone reads and invokes;
// only the controller (the "controller" metadata value when set, else
// created_by) writes, edits, deletes and sets the contract.
package peers

import (
	"context"
	"fmt"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/abitest"
)

// CheckRequest is the request of host's BenchmarkCheck (abitest.CheckRequest),
// so that every row decides the same input: a write of
// workspace/agent-0042/notes.md by its controller, with a few metadata and
// config pairs. The caller owns the result.
func CheckRequest() *abi.Request { return abitest.CheckRequest() }

// Native is the freeware rule as plain Go on the decoded request, the same
// function as host's nativeFreeware: the floor of every comparison.
//
//go:noinline
func Native(req *abi.Request) bool {
	switch req.Action {
	case abi.ActionRead, abi.ActionInvoke:
		return true
	case abi.ActionWrite, abi.ActionEdit, abi.ActionDelete, abi.ActionSetContract:
	default:
		return false
	}
	controller := req.CreatedBy
	for i := range req.Metadata {
		if req.Metadata[i].Key == "controller" {
			controller = req.Metadata[i].Value
			break
		}
	}
	return req.Caller == controller
}

// CedarPolicy is the freeware rule in Cedar. The resource entity carries
// created_by and, when the metadata names one, controller (both Agent
// entities) and the metadata as a record.
const CedarPolicy = `
permit (
  principal,
  action in [Action::"read", Action::"invoke"],
  resource
);
permit (
  principal,
  action in [Action::"write", Action::"edit", Action::"delete", Action::"set_contract"],
  resource
) when {
  (resource has controller && principal == resource.controller) ||
  (!(resource has controller) && principal == resource.created_by)
};
`

// Cedar decides with a parsed Cedar policy set. It is safe for concurrent
// use.
type Cedar struct{ ps *cedar.PolicySet }

// NewCedar parses CedarPolicy.
func NewCedar() (*Cedar, error) {
	ps, err := cedar.NewPolicySetFromBytes("freeware.cedar", []byte(CedarPolicy))
	if err != nil {
		return nil, fmt.Errorf("peers: parse cedar policy: %w", err)
	}
	return &Cedar{ps: ps}, nil
}

// Decide builds the Cedar request and entities from req (as an application
// would per call) and authorizes it.
func (c *Cedar) Decide(req *abi.Request) bool {
	resource := cedar.NewEntityUID("Artifact", cedar.String(req.TargetID))
	meta := make(cedar.RecordMap, len(req.Metadata))
	attrs := cedar.RecordMap{
		"type":       cedar.String(req.TargetType),
		"created_by": cedar.NewEntityUID("Agent", cedar.String(req.CreatedBy)),
		"size":       cedar.Long(req.Size),
		"revision":   cedar.Long(req.Revision),
	}
	for _, kv := range req.Metadata {
		meta[cedar.String(kv.Key)] = cedar.String(kv.Value)
		if kv.Key == "controller" {
			attrs["controller"] = cedar.NewEntityUID("Agent", cedar.String(kv.Value))
		}
	}
	attrs["metadata"] = cedar.NewRecord(meta)
	entities := cedar.EntityMap{resource: cedar.Entity{UID: resource, Attributes: cedar.NewRecord(attrs)}}
	d, _ := c.ps.IsAuthorized(entities, cedar.Request{
		Principal: cedar.NewEntityUID("Agent", cedar.String(req.Caller)),
		Action:    cedar.NewEntityUID("Action", cedar.String(req.Action.String())),
		Resource:  resource,
		Context:   cedar.NewRecord(cedar.RecordMap{"payload_size": cedar.Long(req.PayloadSize)}),
	})
	return d == cedar.Allow
}

// RegoPolicy is the freeware rule in Rego v1. The input is the request as a
// JSON-like document (see OPA.Decide).
const RegoPolicy = `package kernelhost.freeware

default allow := false

allow if input.action in {"read", "invoke"}

allow if {
	input.action in {"write", "edit", "delete", "set_contract"}
	input.caller == controller
}

controller := c if {
	c := input.metadata.controller
} else := input.created_by
`

// OPA decides with a prepared Rego query. It is safe for concurrent use.
type OPA struct{ pq rego.PreparedEvalQuery }

// NewOPA compiles RegoPolicy and prepares the query data.kernelhost.freeware.allow.
func NewOPA(ctx context.Context) (*OPA, error) {
	pq, err := rego.New(
		rego.Query("data.kernelhost.freeware.allow"),
		rego.Module("freeware.rego", RegoPolicy),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("peers: prepare rego: %w", err)
	}
	return &OPA{pq: pq}, nil
}

// Decide builds the input document from req (as an application would per
// call) and evaluates the prepared query.
func (o *OPA) Decide(ctx context.Context, req *abi.Request) (bool, error) {
	meta := make(map[string]any, len(req.Metadata))
	for _, kv := range req.Metadata {
		meta[kv.Key] = kv.Value
	}
	input := map[string]any{
		"action":      req.Action.String(),
		"caller":      req.Caller,
		"target_id":   req.TargetID,
		"target_type": req.TargetType,
		"created_by":  req.CreatedBy,
		"size":        req.Size,
		"revision":    req.Revision,
		"metadata":    meta,
		"payload":     req.PayloadSize,
	}
	rs, err := o.pq.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return false, fmt.Errorf("peers: eval rego: %w", err)
	}
	return rs.Allowed(), nil
}
