// Command escrow is a market for tokenized rights, written in Go with the
// abi/guest SDK: an executable (SPEC.md section 8) that acts as the principal
// named by its own "principal" metadata (for example "market"), which must
// have granted it standing (grant_standing), so that it can hold rights and
// act as that principal (guest.DoAs). The grant binds the escrow's code and
// metadata: changing either voids it.
//
// Methods (args are JSON):
//
//	sell   {"right": "r1", "price": 40}  the caller (the seller) deposits right r1 with the
//	                                     escrow and lists it at price scrip
//	buy    {"right": "r1", "price": 40}  the caller pays the listed price to the seller and
//	                                     receives r1; price must equal the listing's
//	cancel {"right": "r1"}               the seller takes r1 back and the listing goes
//
// Each method is one invocation, so one kernel transaction: the right and the
// scrip move together or not at all. Any failed step (a buyer short of scrip,
// a right the escrow does not hold, a price that differs from the listing)
// makes the method return an error, and the kernel rolls back every step.
//
// A listing is an artifact "<principal>/listing/<right>" of type "listing",
// written by the escrow as its principal under genesis/freeware (anyone reads it,
// only the escrow changes it), holding {"right","seller","price","resource",
// "amount"}. The caller's steps (depositing the right, paying) are the
// caller's own actions: the escrow can do nothing its caller could not.
//
// Build it as a WASI reactor (see README.md):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o escrow.wasm .
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/abi/guest"
)

// args are the arguments of every method.
type args struct {
	Right string `json:"right"`
	Price int64  `json:"price"`
}

// listing is the content of a listing artifact, and the output of sell,
// buy and cancel.
type listing struct {
	Right    string `json:"right"`
	Seller   string `json:"seller"`
	Price    int64  `json:"price"`
	Resource string `json:"resource"`
	Amount   int64  `json:"amount"`
}

// rightContent is the content of a right artifact, as the kernel stores it.
type rightContent struct {
	Resource string `json:"resource"`
	Amount   int64  `json:"amount"`
	Holder   string `json:"holder"`
}

// listingContract governs listings: anyone reads, only the escrow (their
// creator and controller) changes them.
const listingContract = "genesis/freeware"

// parseArgs decodes and checks the args of method.
func parseArgs(method string, b []byte) (args, error) {
	var a args
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("escrow: args: %v", err)
	}
	if a.Right == "" {
		return a, errors.New(`escrow: args need "right", the id of a right`)
	}
	switch method {
	case "sell", "buy":
		if a.Price <= 0 {
			return a, fmt.Errorf(`escrow: %s needs a positive "price" in scrip`, method)
		}
	case "cancel":
		if a.Price != 0 {
			return a, errors.New(`escrow: cancel takes no "price"`)
		}
	default:
		return a, fmt.Errorf("escrow: unknown method %q: use sell, buy or cancel", method)
	}
	return a, nil
}

// listingID is the id of the listing of right held by the escrow's principal self.
func listingID(self, right string) string { return self + "/listing/" + right }

// step wraps a failed kernel action with what the escrow was doing.
func step(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("escrow: %s: %w", what, err)
}

// readRight reads right id as the escrow's principal and decodes its content.
func readRight(self, id string) (rightContent, error) {
	res, err := guest.DoAs(self, map[string]string{"kind": "read", "target": id})
	if err != nil {
		return rightContent{}, step("read right "+id, err)
	}
	if res.Artifact == nil || res.Artifact.Type != "right" {
		return rightContent{}, fmt.Errorf("escrow: %s is not a right", id)
	}
	var rc rightContent
	if err := json.Unmarshal(res.Content, &rc); err != nil {
		return rightContent{}, fmt.Errorf("escrow: right %s: %v", id, err)
	}
	return rc, nil
}

// readListing reads the listing of right as the escrow's principal self.
func readListing(self, right string) (listing, error) {
	res, err := guest.DoAs(self, map[string]string{"kind": "read", "target": listingID(self, right)})
	var kerr *guest.Error
	if errors.As(err, &kerr) && kerr.Code == abi.NotFound.String() {
		return listing{}, fmt.Errorf("escrow: %s is not for sale", right)
	}
	if err != nil {
		return listing{}, step("read listing", err)
	}
	var l listing
	if err := json.Unmarshal(res.Content, &l); err != nil {
		return listing{}, fmt.Errorf("escrow: listing of %s: %v", right, err)
	}
	return l, nil
}

// sell deposits the caller's right with the escrow and lists it.
func sell(self, caller string, a args) (listing, error) {
	// As the caller: only the right's holder can transfer it.
	if _, err := guest.Do(map[string]string{"kind": "transfer_right", "target": a.Right, "to": self}); err != nil {
		return listing{}, step("deposit "+a.Right, err)
	}
	rc, err := readRight(self, a.Right)
	if err != nil {
		return listing{}, err
	}
	if rc.Holder != self {
		return listing{}, fmt.Errorf("escrow: %s is held by %q after the deposit", a.Right, rc.Holder)
	}
	l := listing{Right: a.Right, Seller: caller, Price: a.Price, Resource: rc.Resource, Amount: rc.Amount}
	terms, _ := json.Marshal(l) // strings and integers always encode
	if _, err := guest.DoAs(self, map[string]string{"kind": "write", "target": listingID(self, a.Right),
		"type": "listing", "contract": listingContract, "text": string(terms)}); err != nil {
		return listing{}, step("list "+a.Right, err)
	}
	guest.Log(fmt.Sprintf("%s lists %s (%d %s) for %d", caller, a.Right, rc.Amount, rc.Resource, a.Price))
	return l, nil
}

// buy swaps the listed right for the caller's scrip.
func buy(self, caller string, a args) (listing, error) {
	l, err := readListing(self, a.Right)
	if err != nil {
		return listing{}, err
	}
	if l.Price != a.Price {
		return listing{}, fmt.Errorf("escrow: %s is listed at %d, not %d", a.Right, l.Price, a.Price)
	}
	if l.Seller == caller {
		return listing{}, errors.New("escrow: a seller cannot buy its own listing: use cancel")
	}
	rc, err := readRight(self, a.Right)
	if err != nil {
		return listing{}, err
	}
	if rc.Holder != self {
		return listing{}, fmt.Errorf("escrow: %s is held by %q, not the escrow", a.Right, rc.Holder)
	}
	// As the caller: the buyer pays the seller. INSUFFICIENT_FUNDS fails it.
	if _, err := guest.Do(map[string]any{"kind": "transfer", "to": l.Seller, "amount": l.Price}); err != nil {
		return listing{}, step("pay "+l.Seller, err)
	}
	// As the escrow: deliver the right and close the listing.
	if _, err := guest.DoAs(self, map[string]string{"kind": "transfer_right", "target": a.Right, "to": caller}); err != nil {
		return listing{}, step("deliver "+a.Right, err)
	}
	if _, err := guest.DoAs(self, map[string]string{"kind": "delete", "target": listingID(self, a.Right)}); err != nil {
		return listing{}, step("delist "+a.Right, err)
	}
	guest.Log(fmt.Sprintf("%s buys %s (%d %s) from %s for %d", caller, a.Right, rc.Amount, rc.Resource, l.Seller, l.Price))
	return l, nil
}

// cancel gives the listed right back to its seller.
func cancel(self, caller string, a args) (listing, error) {
	l, err := readListing(self, a.Right)
	if err != nil {
		return listing{}, err
	}
	if l.Seller != caller {
		return listing{}, fmt.Errorf("escrow: only the seller %q may cancel the listing of %s", l.Seller, a.Right)
	}
	if _, err := guest.DoAs(self, map[string]string{"kind": "transfer_right", "target": a.Right, "to": caller}); err != nil {
		return listing{}, step("return "+a.Right, err)
	}
	if _, err := guest.DoAs(self, map[string]string{"kind": "delete", "target": listingID(self, a.Right)}); err != nil {
		return listing{}, step("delist "+a.Right, err)
	}
	return l, nil
}

// invoke serves one invocation.
func invoke(req *abi.RequestView) ([]byte, error) {
	method := string(req.Method())
	a, err := parseArgs(method, req.Args())
	if err != nil {
		return nil, err
	}
	// The principal the escrow acts as is its own configuration: part of
	// the terms its principal's standing grant agreed to.
	p, ok := req.Meta("principal")
	if !ok || len(p) == 0 {
		return nil, errors.New(`escrow: no "principal" metadata: set it to the principal that granted this escrow standing`)
	}
	self, caller := string(p), string(req.Caller())
	if caller == self {
		return nil, errors.New("escrow: the escrow does not trade with itself")
	}
	if a.Price > math.MaxInt64/2 {
		return nil, fmt.Errorf("escrow: price %d is too large", a.Price)
	}
	var l listing
	switch method {
	case "sell":
		l, err = sell(self, caller, a)
	case "buy":
		l, err = buy(self, caller, a)
	default:
		l, err = cancel(self, caller, a)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(l)
}

func init() { guest.RegisterInvoke(invoke) }

// main is never called: the host runs _initialize (package init) and then
// the exports of abi/guest.
func main() {}
