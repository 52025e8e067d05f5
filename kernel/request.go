package kernel

import "github.com/kernelhost/kernelhost/abi"

// requestFor builds the request that an access contract whose own metadata
// is config is asked about action act of caller on the stored artifact id
// (record art), at kernel time now. payload is the number of bytes the
// action would store; method and args are invoke's.
//
// It fills exactly the fields (*work).judge fills, so that Explain shows the
// request Do would send. NB: keep the two in step; judge can call this
// directly once the quota work on do.go has landed.
func requestFor(act abi.Action, caller, id string, art *artifactRec, config []abi.KV, now int64, payload uint64, method string, args []byte) abi.Request {
	return abi.Request{
		Action:         act,
		TargetExists:   true,
		Time:           uint64(now),
		Caller:         caller,
		TargetID:       id,
		TargetType:     art.Type,
		CreatedBy:      art.CreatedBy,
		AccessContract: art.Contract,
		Size:           art.Size,
		Revision:       art.Revision,
		Metadata:       art.Meta,
		PayloadSize:    payload,
		Method:         method,
		Args:           args,
		Config:         config,
	}
}
