// Command go-executable is a counter written in Go with the abi/guest SDK:
// an executable (SPEC.md section 8) that keeps each count in an artifact of
// its own, read and written through the kernel host API. Every read and write
// is an ordinary action of the invoking caller, judged by the counter
// artifact's access contract: a stranger cannot move someone else's counter,
// and a counter someone creates is theirs (created_by is the caller, not the
// executable).
//
// Methods (args are JSON):
//
//	increment {"counter": "alice/visits", "by": 1} -> {"counter": "alice/visits", "value": 7}
//	get       {"counter": "alice/visits"}          -> {"counter": "alice/visits", "value": 7}
//
// "by" defaults to 1; a counter that does not exist yet counts 0.
//
// Build it as a WASI reactor (see README.md):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o counter.wasm .
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/guest"
)

// args are the arguments of both methods.
type args struct {
	Counter string `json:"counter"`
	By      *int64 `json:"by"`
}

// count is the output of both methods.
type count struct {
	Counter string `json:"counter"`
	Value   int64  `json:"value"`
}

// parseArgs decodes and checks args for method.
func parseArgs(method string, b []byte) (args, error) {
	var a args
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("counter: args: %v", err)
	}
	if a.Counter == "" {
		return a, errors.New(`counter: args need "counter", the id of the artifact that holds the count`)
	}
	if a.By != nil && (method != "increment" || *a.By < 1) {
		return a, errors.New(`counter: "by" is a positive amount of increment`)
	}
	return a, nil
}

// read returns the count stored in artifact id, 0 if there is none.
func read(id string) (int64, error) {
	res, err := guest.Do(map[string]string{"kind": "read", "target": id})
	var kerr *guest.Error
	if errors.As(err, &kerr) && kerr.Code == abi.NotFound.String() {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(string(res.Content), 10, 64)
	if perr != nil {
		return 0, fmt.Errorf("counter: %s does not hold a count: %v", id, perr)
	}
	return n, nil
}

// invoke serves one invocation as the invoking caller.
func invoke(req *abi.RequestView) ([]byte, error) {
	method := string(req.Method())
	if method != "increment" && method != "get" {
		return nil, fmt.Errorf("counter: unknown method %q: use increment or get", method)
	}
	a, err := parseArgs(method, req.Args())
	if err != nil {
		return nil, err
	}
	n, err := read(a.Counter)
	if err != nil {
		return nil, err
	}
	if method == "increment" {
		by := int64(1)
		if a.By != nil {
			by = *a.By
		}
		if n > math.MaxInt64-by {
			return nil, fmt.Errorf("counter: %s would overflow", a.Counter)
		}
		next := n + by
		// A write as the caller: the counter artifact's contract decides.
		_, err := guest.Do(map[string]string{"kind": "write", "target": a.Counter, "type": "data", "text": strconv.FormatInt(next, 10)})
		if err != nil {
			return nil, err
		}
		guest.Log(fmt.Sprintf("%s: %d -> %d by %s", a.Counter, n, next, req.Caller()))
		n = next
	}
	return json.Marshal(count{Counter: a.Counter, Value: n})
}

func init() { guest.RegisterInvoke(invoke) }

// main is never called: the host runs _initialize (package init) and then
// the exports of abi/guest.
func main() {}
