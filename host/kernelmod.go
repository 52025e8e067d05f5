package host

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// errHostCallBounds traps a guest that hands a kernel function a region
// outside its memory.
var errHostCallBounds = errors.New("host: kernel function given a region outside memory")

// instantiateKernelModule defines module "kernel" (SPEC.md "Host API") in rt.
// Each function finds the running invocation through the call's context:
// every call into a guest runs under its instance's *callCtx, whose calls
// field is set only during an Invoke.
func instantiateKernelModule(ctx context.Context, rt wazero.Runtime) error {
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(kernelModule).
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(kernelCall), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export("call").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(kernelResult), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("result").
		NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(kernelLog), []api.ValueType{i32, i32}, nil).Export("log").
		Instantiate(ctx)
	return err
}

// errStopped traps a guest that calls the kernel after the watchdog stopped
// its call.
var errStopped = errors.New("host: call stopped by the watchdog")

// invocation returns the call context of the running invoke, or nil during
// a check. It traps a call the watchdog stopped.
func invocation(ctx context.Context) *callCtx {
	c, ok := ctx.(*callCtx)
	if !ok || c.calls == nil {
		return nil
	}
	if c.stopped.Load() {
		panic(errStopped)
	}
	return c
}

// kernelCall: call(req_ptr, req_len, out_ptr, out_cap) -> i32. Performs one
// kernel request (JSON) and writes as much of the JSON response as fits in
// out; returns the response's full length, or -1 outside an invocation. It
// costs costKernelCall and costHostByte per byte of the request, then per
// byte of the response it writes (charge; hostcall.go).
func kernelCall(ctx context.Context, mod api.Module, stack []uint64) {
	c := invocation(ctx)
	if c == nil {
		charge(ctx, costHostCall)
		stack[0] = api.EncodeI32(-1)
		return
	}
	reqPtr, reqLen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	outPtr, outCap := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
	charge(ctx, costKernelCall+costHostByte*uint64(reqLen))
	req, ok := mod.Memory().Read(reqPtr, reqLen)
	if !ok {
		panic(errHostCallBounds)
	}
	// Copy: the kernel may keep the request while guest memory changes.
	c.last = c.calls.Call(append([]byte(nil), req...))
	charge(ctx, costHostByte*uint64(min(uint32(len(c.last)), outCap)))
	stack[0] = api.EncodeI32(int32(writeOut(ctx, mod, c.last, outPtr, outCap)))
}

// kernelResult: result(out_ptr, out_cap) -> i32. Copies the latest response
// again, for a guest whose buffer was too small; returns its full length, or
// -1 outside an invocation. It costs costHostCall and costHostByte per byte
// it writes.
func kernelResult(ctx context.Context, mod api.Module, stack []uint64) {
	c := invocation(ctx)
	if c == nil {
		charge(ctx, costHostCall)
		stack[0] = api.EncodeI32(-1)
		return
	}
	outPtr, outCap := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	charge(ctx, costHostCall+costHostByte*uint64(min(uint32(len(c.last)), outCap)))
	stack[0] = api.EncodeI32(int32(writeOut(ctx, mod, c.last, outPtr, outCap)))
}

// kernelLog: log(ptr, len). Records a message of the executable; ignored
// outside an invocation. It costs costHostCall and costHostByte per byte of
// the message.
func kernelLog(ctx context.Context, mod api.Module, stack []uint64) {
	c := invocation(ctx)
	if c == nil {
		charge(ctx, costHostCall)
		return
	}
	n := api.DecodeU32(stack[1])
	charge(ctx, costHostCall+costHostByte*uint64(n))
	msg, ok := mod.Memory().Read(api.DecodeU32(stack[0]), n)
	if !ok {
		panic(errHostCallBounds)
	}
	c.calls.Log(append([]byte(nil), msg...))
}

func writeOut(ctx context.Context, mod api.Module, resp []byte, ptr, capacity uint32) int {
	n := min(uint32(len(resp)), capacity)
	markHost(ctx, ptr, n) // reset.go
	if n > 0 && !mod.Memory().Write(ptr, resp[:n]) {
		panic(errHostCallBounds)
	}
	return len(resp)
}
