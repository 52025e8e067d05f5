package abi

import (
	"encoding/binary"
	"fmt"
)

var le = binary.LittleEndian

// AppendRequest appends the encoding of r to dst and returns the extended
// slice. It allocates only when dst lacks capacity, so a caller that reuses
// its buffer encodes with zero allocations. It fails, leaving dst's contents
// up to len(dst) untouched, when a field exceeds its limit or metadata is not
// sorted by unique key.
func AppendRequest(dst []byte, r *Request) ([]byte, error) {
	if err := checkRequest(r); err != nil {
		return dst, err
	}
	var flags uint32
	if r.TargetExists {
		flags |= flagTargetExists
	}
	dst = append(dst, RequestMagic...)
	dst = le.AppendUint16(dst, Version)
	dst = le.AppendUint16(dst, uint16(r.Action))
	dst = le.AppendUint32(dst, flags)
	dst = le.AppendUint32(dst, r.Depth)
	dst = le.AppendUint64(dst, r.Time)
	dst = le.AppendUint64(dst, r.Size)
	dst = le.AppendUint64(dst, r.Revision)
	dst = le.AppendUint64(dst, r.PayloadSize)
	dst = appendStr(dst, r.Caller)
	dst = appendStr(dst, r.TargetID)
	dst = appendStr(dst, r.TargetType)
	dst = appendStr(dst, r.CreatedBy)
	dst = appendStr(dst, r.AccessContract)
	dst = appendStr(dst, r.Method)
	dst = le.AppendUint32(dst, uint32(len(r.Args)))
	dst = append(dst, r.Args...)
	dst = appendKVs(dst, r.Metadata)
	dst = appendKVs(dst, r.Config)
	if len(r.CallerRights) > 0 {
		dst = le.AppendUint32(dst, uint32(len(r.CallerRights)))
		for i := range r.CallerRights {
			dst = appendStr(dst, r.CallerRights[i].Resource)
			dst = le.AppendUint64(dst, r.CallerRights[i].Amount)
		}
	}
	return dst, nil
}

func checkRequest(r *Request) error {
	if err := checkLen("caller", r.Caller, MaxIDLen); err != nil {
		return err
	}
	if err := checkLen("target id", r.TargetID, MaxIDLen); err != nil {
		return err
	}
	if err := checkLen("target type", r.TargetType, MaxTypeLen); err != nil {
		return err
	}
	if err := checkLen("created_by", r.CreatedBy, MaxIDLen); err != nil {
		return err
	}
	if err := checkLen("access contract", r.AccessContract, MaxIDLen); err != nil {
		return err
	}
	if err := checkLen("method", r.Method, MaxMethodLen); err != nil {
		return err
	}
	if len(r.Args) > MaxArgsLen {
		return fmt.Errorf("args: %d bytes > %d: %w", len(r.Args), MaxArgsLen, ErrTooLarge)
	}
	if err := CheckMetadata(r.Metadata); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if err := CheckMetadata(r.Config); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return checkRights(r.CallerRights)
}

// checkRights reports whether rs fits the ABI: at most MaxCallerRights
// entries, resources non-empty, within MaxResourceLen, sorted and unique.
func checkRights(rs []RightAmount) error {
	if len(rs) > MaxCallerRights {
		return fmt.Errorf("caller rights: %d entries > %d: %w", len(rs), MaxCallerRights, ErrTooLarge)
	}
	for i := range rs {
		if err := checkLen("caller rights resource", rs[i].Resource, MaxResourceLen); err != nil {
			return err
		}
		if rs[i].Resource == "" {
			return fmt.Errorf("caller rights: empty resource: %w", ErrUnsorted)
		}
		if i > 0 && rs[i-1].Resource >= rs[i].Resource {
			return fmt.Errorf("caller rights: resource %q after %q: %w", rs[i].Resource, rs[i-1].Resource, ErrUnsorted)
		}
	}
	return nil
}

// CheckMetadata reports whether kvs fits the ABI: at most MaxMetaPairs pairs,
// keys non-empty and within MaxMetaKeyLen, values within MaxMetaValueLen,
// sorted by key with no duplicates.
func CheckMetadata(kvs []KV) error {
	if len(kvs) > MaxMetaPairs {
		return fmt.Errorf("%d pairs > %d: %w", len(kvs), MaxMetaPairs, ErrTooLarge)
	}
	for i := range kvs {
		if kvs[i].Key == "" {
			return fmt.Errorf("empty key: %w", ErrUnsorted)
		}
		if err := checkLen("key", kvs[i].Key, MaxMetaKeyLen); err != nil {
			return err
		}
		if len(kvs[i].Value) > MaxMetaValueLen {
			return fmt.Errorf("value of %q: %d bytes > %d: %w", kvs[i].Key, len(kvs[i].Value), MaxMetaValueLen, ErrTooLarge)
		}
		if i > 0 && kvs[i-1].Key >= kvs[i].Key {
			return fmt.Errorf("key %q after %q: %w", kvs[i].Key, kvs[i-1].Key, ErrUnsorted)
		}
	}
	return nil
}

func checkLen(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s: %d bytes > %d: %w", what, len(s), max, ErrTooLarge)
	}
	return nil
}

func appendStr(dst []byte, s string) []byte {
	dst = le.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendKVs(dst []byte, kvs []KV) []byte {
	dst = le.AppendUint32(dst, uint32(len(kvs)))
	for i := range kvs {
		dst = appendStr(dst, kvs[i].Key)
		dst = appendStr(dst, kvs[i].Value)
	}
	return dst
}

// DecodeRequest decodes an encoded request into a Request that owns its
// memory. Guests on the hot path use ParseRequest and a RequestView instead.
func DecodeRequest(b []byte) (Request, error) {
	var v RequestView
	if err := v.Parse(b); err != nil {
		return Request{}, err
	}
	r := Request{
		Action:         v.Action(),
		TargetExists:   v.TargetExists(),
		Time:           v.Time(),
		Depth:          v.Depth(),
		Caller:         string(v.Caller()),
		TargetID:       string(v.TargetID()),
		TargetType:     string(v.TargetType()),
		CreatedBy:      string(v.CreatedBy()),
		AccessContract: string(v.AccessContract()),
		Size:           v.Size(),
		Revision:       v.Revision(),
		PayloadSize:    v.PayloadSize(),
		Method:         string(v.Method()),
	}
	if a := v.Args(); len(a) > 0 {
		r.Args = append([]byte(nil), a...)
	}
	r.Metadata = v.collect(v.meta)
	r.Config = v.collect(v.config)
	if n := v.CallerRightsLen(); n > 0 {
		r.CallerRights = make([]RightAmount, n)
		for i := range r.CallerRights {
			res, amt := v.CallerRightAt(i)
			r.CallerRights[i] = RightAmount{Resource: string(res), Amount: amt}
		}
	}
	return r, nil
}

// AppendDecision appends the encoding of d to dst. Like AppendRequest it
// allocates only when dst lacks capacity.
func AppendDecision(dst []byte, d *Decision) ([]byte, error) {
	if err := checkLen("payer", d.Payer, MaxIDLen); err != nil {
		return dst, err
	}
	if err := checkLen("payee", d.Payee, MaxIDLen); err != nil {
		return dst, err
	}
	if err := checkLen("reason", d.Reason, MaxReasonLen); err != nil {
		return dst, err
	}
	dst = append(dst, DecisionMagic...)
	dst = le.AppendUint16(dst, Version)
	var allowed byte
	if d.Allowed {
		allowed = 1
	}
	dst = append(dst, allowed, 0)
	dst = le.AppendUint64(dst, d.Cost)
	dst = appendStr(dst, d.Payer)
	dst = appendStr(dst, d.Payee)
	dst = appendStr(dst, d.Reason)
	return dst, nil
}

// DecodeDecision decodes an encoded decision. The input must be exactly one
// decision: trailing bytes are an error, because a guest's reported length is
// part of what it promises. Strings are copied out of b, so b may be guest
// memory that changes afterwards. Empty strings allocate nothing.
func DecodeDecision(b []byte) (Decision, error) {
	if len(b) < decisionFixed {
		return Decision{}, fmt.Errorf("decision: %d bytes < header %d: %w", len(b), decisionFixed, ErrMalformed)
	}
	if len(b) > MaxDecisionSize {
		return Decision{}, fmt.Errorf("decision: %d bytes > %d: %w", len(b), MaxDecisionSize, ErrMalformed)
	}
	if string(b[:4]) != DecisionMagic {
		return Decision{}, fmt.Errorf("decision: bad magic %q: %w", b[:4], ErrMalformed)
	}
	if v := le.Uint16(b[4:]); v != Version {
		return Decision{}, fmt.Errorf("decision: version %d, want %d: %w", v, Version, ErrVersion)
	}
	if b[6] > 1 {
		return Decision{}, fmt.Errorf("decision: allowed byte %d is not 0 or 1: %w", b[6], ErrMalformed)
	}
	if b[7] != 0 {
		return Decision{}, fmt.Errorf("decision: reserved byte %d is not 0: %w", b[7], ErrMalformed)
	}
	d := Decision{Allowed: b[6] == 1, Cost: le.Uint64(b[8:])}
	off := uint32(decisionFixed)
	var s span
	var err error
	if s, off, err = readSpan(b, off, MaxIDLen, "payer"); err != nil {
		return Decision{}, err
	}
	d.Payer = s.str(b)
	if s, off, err = readSpan(b, off, MaxIDLen, "payee"); err != nil {
		return Decision{}, err
	}
	d.Payee = s.str(b)
	if s, off, err = readSpan(b, off, MaxReasonLen, "reason"); err != nil {
		return Decision{}, err
	}
	d.Reason = s.str(b)
	if int(off) != len(b) {
		return Decision{}, fmt.Errorf("decision: %d trailing bytes: %w", len(b)-int(off), ErrMalformed)
	}
	return d, nil
}

// span locates a field inside an encoded buffer.
type span struct{ off, n uint32 }

func (s span) bytes(b []byte) []byte { return b[s.off : s.off+s.n : s.off+s.n] }

func (s span) str(b []byte) string {
	if s.n == 0 {
		return ""
	}
	return string(b[s.off : s.off+s.n])
}

// readSpan reads a u32 length and that many bytes at off, bounded by max.
func readSpan(b []byte, off uint32, max uint32, what string) (span, uint32, error) {
	if uint64(off)+4 > uint64(len(b)) {
		return span{}, off, fmt.Errorf("%s: length truncated at %d: %w", what, off, ErrMalformed)
	}
	n := le.Uint32(b[off:])
	if n > max {
		return span{}, off, fmt.Errorf("%s: length %d > %d: %w", what, n, max, ErrMalformed)
	}
	start := off + 4
	if uint64(start)+uint64(n) > uint64(len(b)) {
		return span{}, off, fmt.Errorf("%s: %d bytes truncated at %d: %w", what, n, start, ErrMalformed)
	}
	return span{start, n}, start + n, nil
}
