package abitest

import "github.com/kernelhost/kernelhost/abi"

// CheckRequest returns a new copy of the benchmark request of the freeware
// rule: a write of workspace/agent-0042/notes.md (1834 bytes, three metadata
// pairs, the controller named in metadata) by its controller, agent-0042.
// Its encoding is about 300 bytes.
func CheckRequest() *abi.Request {
	return &abi.Request{
		Action:         abi.ActionWrite,
		TargetExists:   true,
		Time:           1_700_000_000_000_000_000,
		Caller:         "agent-0042",
		TargetID:       "workspace/agent-0042/notes.md",
		TargetType:     "data",
		CreatedBy:      "agent-0007",
		AccessContract: "genesis/freeware",
		Size:           1834,
		Revision:       12,
		Metadata: []abi.KV{
			{Key: "controller", Value: "agent-0042"},
			{Key: "description", Value: "working notes"},
			{Key: "topic", Value: "market-making"},
		},
		PayloadSize: 2048,
		Config:      []abi.KV{{Key: "description", Value: "anyone reads; only the controller changes"}},
	}
}
