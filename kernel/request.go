package kernel

import "github.com/kernelhost/kernelhost/abi"

// requestFor builds the request that an access contract whose own metadata
// is config is asked about action act of caller on the stored artifact id
// (record art), at kernel time now. payload is the number of bytes the
// action would store; method and args are invoke's.
//
// (*work).judge and Explain both build their requests here, so that Explain
// shows exactly the request Do sends. Callers set Depth themselves.
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
