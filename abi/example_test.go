package abi_test

import (
	"fmt"

	"github.com/kernelhost/kernelhost/abi"
)

// A host encodes a request, a guest views it without allocating and answers.
func ExampleRequestView() {
	req := abi.Request{
		Action:    abi.ActionWrite,
		Caller:    "alice",
		TargetID:  "notes/1",
		CreatedBy: "bob",
		Metadata:  []abi.KV{{Key: "controller", Value: "alice"}},
	}
	b, _ := abi.AppendRequest(nil, &req)

	var v abi.RequestView
	if err := v.Parse(b); err != nil {
		panic(err)
	}
	d := abi.Decision{Allowed: string(v.Caller()) == string(v.Controller())}
	out, _ := abi.AppendDecision(nil, &d)
	back, _ := abi.DecodeDecision(out)
	fmt.Println(v.Action(), back.Allowed)
	// Output: write true
}

func ExampleCode() {
	c := abi.QuotaExceeded
	fmt.Println(c, c.Category(), c.Retriable())
	// Output: QUOTA_EXCEEDED resource true
}
