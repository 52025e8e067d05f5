package kernel

import (
	"encoding/binary"
	"fmt"
)

// eventVersion is the leading byte of a stored audit event (e/<seq>).
// Events were JSON up to schema 2; binary records since schema 3, because
// every action appends one and encoding/json was the largest cost of
// appending it. The CLI and the HTTP API still render events as JSON.
//
// Version 2 appends the name of the token the action was authenticated
// with (Event.Token). An event without one is still written as version 1,
// byte for byte as before, and both versions decode: a store written
// before tokens had names reads as it did.
const (
	eventVersion      = 1
	eventVersionToken = 2
)

// Minimum encoded sizes of the repeated parts of an event, so that a
// count read from a corrupt record cannot make the decoder allocate more
// than the record could hold.
const (
	minChargeLen = 4 + 4 + 8 + 4 // payer, payee, amount, reason
	minIDLen     = 4
	amountLen    = 8
)

// setEventSeq sets the sequence number of an event encoded by
// appendBinary, in place: it follows the version byte.
func setEventSeq(b []byte, seq uint64) { le.PutUint64(b[1:9], seq) }

// binarySize is the exact length appendBinary adds for e.
func (e *Event) binarySize() int {
	n := 1 + 8 + 8 + // version, seq, time
		5*4 + len(e.Caller) + len(e.Kind) + len(e.Target) + len(e.To) + len(e.Resource) +
		8 + 8 + 8 + 4 + 1 + // amount, cpu, fuel, depth, allowed
		3*4 + len(e.Reason) + len(e.Code) + len(e.Message) +
		4 + 8 + // charges count, revision
		4 + 4 + amountLen*len(e.Amounts) + // ids count, amounts count, amounts
		4 + len(e.Holder)
	if e.Token != "" {
		n += 4 + len(e.Token)
	}
	for i := range e.Charges {
		c := &e.Charges[i]
		n += minChargeLen + len(c.Payer) + len(c.Payee) + len(c.Reason)
	}
	for _, id := range e.IDs {
		n += minIDLen + len(id)
	}
	return n
}

// appendBinary appends the stored form of e to dst: a version byte, then
// every field in declaration order, little-endian; strings and lists are
// prefixed by their length (u32); Time is Unix nanoseconds (an event's time
// is the kernel clock's, in UTC); Allowed is one byte, 0 or 1; Token last,
// in version 2 only (see eventVersionToken). It never allocates when dst
// has room for binarySize bytes.
func (e *Event) appendBinary(dst []byte) []byte {
	v := byte(eventVersion)
	if e.Token != "" {
		v = eventVersionToken
	}
	b := append(dst, v)
	b = le.AppendUint64(b, e.Seq)
	b = le.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = appendStr(b, e.Caller)
	b = appendStr(b, string(e.Kind))
	b = appendStr(b, e.Target)
	b = appendStr(b, e.To)
	b = appendStr(b, e.Resource)
	b = le.AppendUint64(b, uint64(e.Amount))
	b = le.AppendUint64(b, uint64(e.CPU))
	b = le.AppendUint64(b, e.Fuel)
	b = le.AppendUint32(b, e.Depth)
	if e.Allowed {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendStr(b, e.Reason)
	b = appendStr(b, e.Code)
	b = appendStr(b, e.Message)
	b = le.AppendUint32(b, uint32(len(e.Charges)))
	for i := range e.Charges {
		c := &e.Charges[i]
		b = appendStr(b, c.Payer)
		b = appendStr(b, c.Payee)
		b = le.AppendUint64(b, c.Amount)
		b = appendStr(b, c.Reason)
	}
	b = le.AppendUint64(b, e.Revision)
	b = le.AppendUint32(b, uint32(len(e.IDs)))
	for _, id := range e.IDs {
		b = appendStr(b, id)
	}
	b = le.AppendUint32(b, uint32(len(e.Amounts)))
	for _, a := range e.Amounts {
		b = le.AppendUint64(b, uint64(a))
	}
	b = appendStr(b, e.Holder)
	if v == eventVersionToken {
		b = appendStr(b, e.Token)
	}
	return b
}

// encodeEvent is the key and value of the stored event e, in one
// allocation: appending an event is on the path of every action.
func encodeEvent(e *Event) (key, value []byte) {
	n := len(prefixEvent) + 8
	buf := make([]byte, 0, n+e.binarySize())
	key = binary.BigEndian.AppendUint64(append(buf, prefixEvent...), e.Seq)
	return key[:n:n], e.appendBinary(key[n:])
}

// decodeEvent decodes a stored event, of either version. The event's
// strings share one copy of b, so b may be reused once it returns
// (Iterate's values are). Lists that were empty decode as nil, as they did
// from JSON with omitempty. Any other version, a version 2 record with an
// empty token (the encoder writes those as version 1), truncated or trailing bytes, an Allowed byte other than 0
// or 1, or a count larger than the record could hold is errCorrupt.
func decodeEvent(b []byte) (Event, error) {
	r := reader{b: b}
	v := r.byte()
	if v != eventVersion && v != eventVersionToken {
		return Event{}, fmt.Errorf("event record version: %w", errCorrupt)
	}
	s := string(b) // the one copy every string of the event points into
	var e Event
	e.Seq = r.u64()
	e.Time = unixTime(int64(r.u64()))
	e.Caller = r.sub(s)
	e.Kind = Kind(r.sub(s))
	e.Target = r.sub(s)
	e.To = r.sub(s)
	e.Resource = r.sub(s)
	e.Amount = int64(r.u64())
	e.CPU = int64(r.u64())
	e.Fuel = r.u64()
	e.Depth = r.u32()
	switch r.byte() {
	case 0:
	case 1:
		e.Allowed = true
	default:
		r.err = true
	}
	e.Reason = r.sub(s)
	e.Code = r.sub(s)
	e.Message = r.sub(s)
	if n := r.count(minChargeLen); n > 0 {
		e.Charges = make([]Charge, n)
		for i := range e.Charges {
			c := &e.Charges[i]
			c.Payer = r.sub(s)
			c.Payee = r.sub(s)
			c.Amount = r.u64()
			c.Reason = r.sub(s)
		}
	}
	e.Revision = r.u64()
	if n := r.count(minIDLen); n > 0 {
		e.IDs = make([]string, n)
		for i := range e.IDs {
			e.IDs[i] = r.sub(s)
		}
	}
	if n := r.count(amountLen); n > 0 {
		e.Amounts = make([]int64, n)
		for i := range e.Amounts {
			e.Amounts[i] = int64(r.u64())
		}
	}
	e.Holder = r.sub(s)
	if v == eventVersionToken {
		if e.Token = r.sub(s); e.Token == "" {
			r.err = true
		}
	}
	if r.err || r.off != len(b) {
		return Event{}, fmt.Errorf("event record: %w", errCorrupt)
	}
	return e, nil
}

// count reads a list's length (u32) and checks that what is left of the
// record can hold that many elements of at least size bytes each, so that
// a corrupt count never becomes a huge allocation.
func (r *reader) count(size int) int {
	n := int(r.u32())
	if r.err || n > (len(r.b)-r.off)/size {
		r.err = true
		return 0
	}
	return n
}
