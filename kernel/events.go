package kernel

import (
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// initSeq writes l/seq, the number of the last audit event, into a store
// written before it existed (schema 3), from the events stored.
func (k *Kernel) initSeq() error {
	var have bool
	err := k.st.View(func(tx store.Txn) error {
		_, err := tx.Get(keySeq)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		have = err == nil
		return err
	})
	if err != nil || have {
		return err
	}
	last, err := k.lastEventSeq()
	if err != nil {
		return err
	}
	return k.st.Update(func(tx store.Txn) error {
		if _, err := tx.Get(keySeq); !errors.Is(err, store.ErrNotFound) {
			return err // another kernel on the store wrote it meanwhile
		}
		return tx.Set(keySeq, encodeU64(last))
	})
}

// lastEventSeq finds the highest stored event number by binary search over
// "is there an event at or after n", which needs only forward iteration.
func (k *Kernel) lastEventSeq() (uint64, error) {
	var last uint64
	err := k.st.View(func(tx store.Txn) error {
		exists := func(n uint64) (bool, error) {
			found := false
			err := tx.Iterate(prefixEvent, eventKey(n), func(key, _ []byte) error {
				found = true
				return store.ErrStop
			})
			return found, err
		}
		any, err := exists(1)
		if err != nil || !any {
			return err
		}
		lo, hi := uint64(1), uint64(1)<<62 // lo has an event at or after it; hi has none
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			ok, err := exists(mid)
			if err != nil {
				return err
			}
			if ok {
				lo = mid
			} else {
				hi = mid
			}
		}
		// lo is the last n with an event >= n, so events exist exactly at lo.
		last = lo
		return nil
	})
	return last, err
}

func (k *Kernel) appendEvent(tx store.Txn, ev *Event) error {
	key, value := encodeEvent(ev) // eventcodec.go
	return tx.Set(key, value)
}

// Events returns up to limit audit events with sequence numbers greater than
// since, in order. Numbers are gapless and a snapshot holds every event up
// to the last it shows (commit.go), so a reader that continues from the
// last Seq it saw never misses one. limit <= 0 means 1000.
func (k *Kernel) Events(ctx context.Context, since uint64, limit int) ([]Event, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	if limit <= 0 {
		limit = 1000
	}
	if err := k.com.sync(); err != nil {
		return nil, storeErr(err)
	}
	var out []Event
	err := k.st.View(func(tx store.Txn) error {
		return tx.Iterate(prefixEvent, eventKey(since+1), func(key, value []byte) error {
			if len(out) >= limit {
				return store.ErrStop
			}
			ev, err := decodeEvent(value) // eventcodec.go; errCorrupt
			if err != nil {
				return err
			}
			out = append(out, ev)
			return nil
		})
	})
	if err != nil {
		return nil, storeErr(err)
	}
	return out, nil
}

// maxEventScan bounds the stored events one EventsFor call examines, so
// that a principal party to few events cannot make one request read the
// whole audit trail: a page may then hold fewer than limit events, and the
// reader continues from the cursor it got.
const maxEventScan = 10000

// Involves reports whether principal is a party to the event: its caller,
// its recipient (To: of transfer, transfer_quota, transfer_right), the payer
// or payee of one of its charges, or, for right primitives, the holder of
// the right it acted on (Holder; so a holder sees others' refused attempts
// on its rights). An empty principal is party to nothing.
func (e Event) Involves(principal string) bool {
	if principal == "" {
		return false
	}
	if e.Caller == principal || e.To == principal || e.Holder == principal {
		return true
	}
	for _, c := range e.Charges {
		if c.Payer == principal || c.Payee == principal {
			return true
		}
	}
	return false
}

// viewFor returns the event as principal, a party to it, may see it: a
// right's holder is shown only to that holder when the caller was refused
// for not holding it (a successful primitive's holder is its caller), so
// that a non-holder's probe learns nothing stored in the right.
func (e Event) viewFor(principal string) Event {
	if e.Holder != "" && e.Holder != e.Caller && e.Holder != principal {
		e.Holder = ""
	}
	return e
}

// EventsFor returns the audit events with sequence numbers greater than
// since that principal is a party to (see Event.Involves), in order, as
// principal may see them, and next: the since to ask with for the events
// after these. It is what a principal's own reader (an API token, a CLI
// --as) gets; Events, every event as recorded, is for the operator.
//
// limit bounds the events returned (limit <= 0 means 1000); the events
// examined are bounded too (10000 per call). next is the sequence number of
// the last event examined, visible or not, or since when none was: only
// committed events are examined, so a reader that continues from next never
// misses an event nor sees one twice. A page may be short, or empty, with
// next > since while more remain; the reader has caught up when next ==
// since. Errors: INVALID_ARGUMENT for a malformed id, NOT_FOUND for an
// unknown principal, UNAVAILABLE once closed, INTERNAL.
func (k *Kernel) EventsFor(ctx context.Context, principal string, since uint64, limit int) ([]Event, uint64, error) {
	return k.eventsFor(ctx, principal, since, limit, maxEventScan)
}

func (k *Kernel) eventsFor(ctx context.Context, principal string, since uint64, limit, maxScan int) ([]Event, uint64, error) {
	if !validID(principal) {
		return nil, since, errf(abi.InvalidArgument, "principal %q is not a valid id", principal)
	}
	if !k.enter() {
		return nil, since, closedErr()
	}
	defer k.exit()
	if limit <= 0 {
		limit = 1000
	}
	if err := k.com.sync(); err != nil {
		return nil, since, storeErr(err)
	}
	var out []Event
	next := since
	err := k.st.View(func(tx store.Txn) error {
		if _, err := tx.Get(principalKey(principal)); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errf(abi.NotFound, "principal %q does not exist", principal)
			}
			return err
		}
		scanned := 0
		return tx.Iterate(prefixEvent, eventKey(since+1), func(key, value []byte) error {
			seq := binary.BigEndian.Uint64(key[len(prefixEvent):])
			if len(out) >= limit || scanned >= maxScan {
				return store.ErrStop
			}
			scanned++
			ev, err := decodeEvent(value) // eventcodec.go; errCorrupt
			if err != nil {
				return err
			}
			next = seq
			if ev.Involves(principal) {
				out = append(out, ev.viewFor(principal))
			}
			return nil
		})
	})
	if err != nil {
		return nil, since, storeErr(err)
	}
	return out, next, nil
}

// closedErr is the error of any operation on a closed kernel.
func closedErr() *Error { return errf(ErrClosed.(*sentinel).code, "kernel is closed") }

func unixTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
