package abi

import (
	"bytes"
	"fmt"
)

// RequestView is a zero-allocation, read-only view of an encoded request.
// Parse checks the whole encoding once; afterwards every accessor is a slice
// of the original bytes. The returned slices alias the buffer passed to
// Parse: they are valid only while that buffer is unchanged, and callers must
// not modify them.
//
// A RequestView is not safe for concurrent use while Parse runs; once parsed
// it may be read from many goroutines.
type RequestView struct {
	b              []byte
	caller         span
	targetID       span
	targetType     span
	createdBy      span
	accessContract span
	method         span
	args           span
	meta           kvList
	config         kvList
	rights         kvList // caller_rights: n entries (resource str, amount u64)
}

// kvList locates an encoded list of pairs: n pairs starting at off.
type kvList struct{ off, n uint32 }

// Parse validates b as an encoded request of this ABI version and points the
// view at it. It allocates nothing. Trailing bytes after the last defined
// field are ignored, so that later minor revisions of version 1 can append
// fields that older guests skip.
func (v *RequestView) Parse(b []byte) error {
	*v = RequestView{}
	if len(b) < requestFixed {
		return fmt.Errorf("request: %d bytes < header %d: %w", len(b), requestFixed, ErrMalformed)
	}
	if string(b[:4]) != RequestMagic {
		return fmt.Errorf("request: bad magic %q: %w", b[:4], ErrMalformed)
	}
	if ver := le.Uint16(b[4:]); ver != Version {
		return fmt.Errorf("request: version %d, want %d: %w", ver, Version, ErrVersion)
	}
	if f := le.Uint32(b[8:]); f&^knownRequestFlags != 0 {
		return fmt.Errorf("request: unknown flags %#x: %w", f, ErrMalformed)
	}
	off := uint32(requestFixed)
	fields := [...]struct {
		dst  *span
		max  uint32
		what string
	}{
		{&v.caller, MaxIDLen, "caller"},
		{&v.targetID, MaxIDLen, "target id"},
		{&v.targetType, MaxTypeLen, "target type"},
		{&v.createdBy, MaxIDLen, "created_by"},
		{&v.accessContract, MaxIDLen, "access contract"},
		{&v.method, MaxMethodLen, "method"},
		{&v.args, MaxArgsLen, "args"},
	}
	var err error
	for i := range fields {
		if *fields[i].dst, off, err = readSpan(b, off, fields[i].max, fields[i].what); err != nil {
			return err
		}
	}
	if v.meta, off, err = parseKVs(b, off, "metadata", "metadata key", "metadata value"); err != nil {
		return err
	}
	if v.config, off, err = parseKVs(b, off, "config", "config key", "config value"); err != nil {
		return err
	}
	if int(off) < len(b) {
		// caller_rights: optional, absent when the request ends at config.
		if v.rights, _, err = parseRights(b, off); err != nil {
			return err
		}
	}
	v.b = b
	return nil
}

// parseRights parses the caller_rights list at off.
func parseRights(b []byte, off uint32) (kvList, uint32, error) {
	if uint64(off)+4 > uint64(len(b)) {
		return kvList{}, off, fmt.Errorf("caller rights: count truncated at %d: %w", off, ErrMalformed)
	}
	n := le.Uint32(b[off:])
	if n > MaxCallerRights {
		return kvList{}, off, fmt.Errorf("caller rights: %d entries > %d: %w", n, MaxCallerRights, ErrMalformed)
	}
	l := kvList{off + 4, n}
	off += 4
	var prev span
	for i := uint32(0); i < n; i++ {
		var r span
		var err error
		if r, off, err = readSpan(b, off, MaxResourceLen, "caller rights resource"); err != nil {
			return kvList{}, off, err
		}
		if r.n == 0 || (i > 0 && bytes.Compare(prev.bytes(b), r.bytes(b)) >= 0) {
			return kvList{}, off, fmt.Errorf("caller rights: resources not sorted, unique and non-empty at entry %d: %w", i, ErrMalformed)
		}
		if uint64(off)+8 > uint64(len(b)) {
			return kvList{}, off, fmt.Errorf("caller rights: amount truncated at %d: %w", off, ErrMalformed)
		}
		off += 8
		prev = r
	}
	return l, off, nil
}

// parseKVs takes the field names as constants so that the success path
// builds no strings.
func parseKVs(b []byte, off uint32, what, keyWhat, valWhat string) (kvList, uint32, error) {
	if uint64(off)+4 > uint64(len(b)) {
		return kvList{}, off, fmt.Errorf("%s: count truncated at %d: %w", what, off, ErrMalformed)
	}
	n := le.Uint32(b[off:])
	if n > MaxMetaPairs {
		return kvList{}, off, fmt.Errorf("%s: %d pairs > %d: %w", what, n, MaxMetaPairs, ErrMalformed)
	}
	l := kvList{off + 4, n}
	off += 4
	var prev span
	for i := uint32(0); i < n; i++ {
		var k span
		var err error
		if k, off, err = readSpan(b, off, MaxMetaKeyLen, keyWhat); err != nil {
			return kvList{}, off, err
		}
		if k.n == 0 {
			return kvList{}, off, fmt.Errorf("%s: empty key: %w", what, ErrMalformed)
		}
		if i > 0 && bytes.Compare(prev.bytes(b), k.bytes(b)) >= 0 {
			return kvList{}, off, fmt.Errorf("%s: keys not sorted and unique at pair %d: %w", what, i, ErrMalformed)
		}
		if _, off, err = readSpan(b, off, MaxMetaValueLen, valWhat); err != nil {
			return kvList{}, off, err
		}
		prev = k
	}
	return l, off, nil
}

// Action returns the requested action. Guests must deny actions they do not
// know.
func (v *RequestView) Action() Action { return Action(le.Uint16(v.b[6:])) }

// TargetExists reports whether the target artifact is stored.
func (v *RequestView) TargetExists() bool { return le.Uint32(v.b[8:])&flagTargetExists != 0 }

// Depth returns the nesting depth of the action.
func (v *RequestView) Depth() uint32 { return le.Uint32(v.b[12:]) }

// Time returns the kernel's logical time for the action.
func (v *RequestView) Time() uint64 { return le.Uint64(v.b[16:]) }

// Size returns the target's content size in bytes.
func (v *RequestView) Size() uint64 { return le.Uint64(v.b[24:]) }

// Revision returns the target's revision.
func (v *RequestView) Revision() uint64 { return le.Uint64(v.b[32:]) }

// PayloadSize returns the number of bytes the action would store.
func (v *RequestView) PayloadSize() uint64 { return le.Uint64(v.b[40:]) }

// Caller returns the acting principal's id.
func (v *RequestView) Caller() []byte { return v.caller.bytes(v.b) }

// TargetID returns the target artifact's id.
func (v *RequestView) TargetID() []byte { return v.targetID.bytes(v.b) }

// TargetType returns the target artifact's type.
func (v *RequestView) TargetType() []byte { return v.targetType.bytes(v.b) }

// CreatedBy returns the principal that created the target.
func (v *RequestView) CreatedBy() []byte { return v.createdBy.bytes(v.b) }

// AccessContract returns the id of the contract judging the request.
func (v *RequestView) AccessContract() []byte { return v.accessContract.bytes(v.b) }

// Method returns the invoke method name.
func (v *RequestView) Method() []byte { return v.method.bytes(v.b) }

// Args returns the invoke arguments.
func (v *RequestView) Args() []byte { return v.args.bytes(v.b) }

// MetaLen returns the number of metadata pairs of the target.
func (v *RequestView) MetaLen() int { return int(v.meta.n) }

// Meta returns the target's metadata value for key and whether it is set.
func (v *RequestView) Meta(key string) ([]byte, bool) { return v.lookup(v.meta, key) }

// ConfigLen returns the number of config pairs of the deciding contract.
func (v *RequestView) ConfigLen() int { return int(v.config.n) }

// Config returns the deciding contract's own metadata value for key.
func (v *RequestView) Config(key string) ([]byte, bool) { return v.lookup(v.config, key) }

// MetaAt returns the i-th metadata pair in key order.
func (v *RequestView) MetaAt(i int) (key, value []byte) { return v.pairAt(v.meta, i) }

// ConfigAt returns the i-th config pair in key order.
func (v *RequestView) ConfigAt(i int) (key, value []byte) { return v.pairAt(v.config, i) }

// CallerRightsLen returns the number of resources the caller holds rights
// in (0 when the request carries no caller_rights).
func (v *RequestView) CallerRightsLen() int { return int(v.rights.n) }

// CallerRightAt returns the i-th caller_rights entry in resource order: the
// resource name and the amount the caller holds in rights of it.
func (v *RequestView) CallerRightAt(i int) (resource []byte, amount uint64) {
	if i < 0 || uint32(i) >= v.rights.n {
		return nil, 0
	}
	off := v.rights.off
	for j := 0; ; j++ {
		n := le.Uint32(v.b[off:])
		if j == i {
			return v.b[off+4 : off+4+n], le.Uint64(v.b[off+4+n:])
		}
		off += 4 + n + 8
	}
}

// CallerRight returns the amount of resource (e.g. "llm_rate") the caller
// holds in rights, 0 when none.
func (v *RequestView) CallerRight(resource string) uint64 {
	off := v.rights.off
	for j := uint32(0); j < v.rights.n; j++ {
		n := le.Uint32(v.b[off:])
		if string(v.b[off+4:off+4+n]) == resource {
			return le.Uint64(v.b[off+4+n:])
		}
		off += 4 + n + 8
	}
	return 0
}

// Controller returns the target's controller as the genesis contracts define
// it: the "controller" metadata value when set, otherwise created_by. This is
// a contract-side convention offered for convenience; the kernel never
// applies it.
func (v *RequestView) Controller() []byte {
	if c, ok := v.Meta("controller"); ok {
		return c
	}
	return v.CreatedBy()
}

func (v *RequestView) pairAt(l kvList, i int) (key, value []byte) {
	if i < 0 || uint32(i) >= l.n {
		return nil, nil
	}
	off := l.off
	for j := 0; ; j++ {
		kn := le.Uint32(v.b[off:])
		vOff := off + 4 + kn
		vn := le.Uint32(v.b[vOff:])
		if j == i {
			return v.b[off+4 : vOff], v.b[vOff+4 : vOff+4+vn]
		}
		off = vOff + 4 + vn
	}
}

func (v *RequestView) lookup(l kvList, key string) ([]byte, bool) {
	off := l.off
	for j := uint32(0); j < l.n; j++ {
		kn := le.Uint32(v.b[off:])
		k := v.b[off+4 : off+4+kn]
		vOff := off + 4 + kn
		vn := le.Uint32(v.b[vOff:])
		if string(k) == key {
			return v.b[vOff+4 : vOff+4+vn], true
		}
		off = vOff + 4 + vn
	}
	return nil, false
}

func (v *RequestView) collect(l kvList) []KV {
	if l.n == 0 {
		return nil
	}
	out := make([]KV, l.n)
	for i := range out {
		k, val := v.pairAt(l, i)
		out[i] = KV{string(k), string(val)}
	}
	return out
}
