package fuel

// reader decodes the WebAssembly binary format from b. Every method reports
// failure with ok == false and never reads past len(b). Offsets in errors are
// off + base, the position in the whole module.
type reader struct {
	b    []byte
	off  int
	base int
}

func (r *reader) pos() int { return r.base + r.off }

func (r *reader) eof() bool { return r.off >= len(r.b) }

func (r *reader) byte() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	c := r.b[r.off]
	r.off++
	return c, true
}

func (r *reader) skip(n int) bool {
	if n < 0 || n > len(r.b)-r.off {
		return false
	}
	r.off += n
	return true
}

// u32 reads an unsigned LEB128 of at most 5 bytes whose unused bits are zero.
func (r *reader) u32() (uint32, bool) {
	var v uint32
	for i := 0; i < 5; i++ {
		c, ok := r.byte()
		if !ok {
			return 0, false
		}
		if i == 4 && c&0xf0 != 0 {
			return 0, false
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, true
		}
	}
	return 0, false
}

// sleb reads a signed LEB128 of at most bits bits (32, 33 or 64) and checks
// that the unused bits of its last byte are a sign extension.
func (r *reader) sleb(bits int) (int64, bool) {
	var v int64
	var shift int
	maxBytes := (bits + 6) / 7
	for i := 0; i < maxBytes; i++ {
		c, ok := r.byte()
		if !ok {
			return 0, false
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			if i == maxBytes-1 {
				// The bits of the last byte beyond bits must all equal the
				// sign bit.
				used := bits - 7*i // bits this byte contributes, sign included
				rest := int8(c<<1) >> 1 >> (used - 1)
				if rest != 0 && rest != -1 {
					return 0, false
				}
			}
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, true
		}
	}
	return 0, false
}

// count reads a vector length and checks that at least minSize bytes per
// element remain, so that no hostile count makes a caller loop or allocate
// beyond the input.
func (r *reader) count(minSize int) (int, bool) {
	n, ok := r.u32()
	if !ok || uint64(n)*uint64(minSize) > uint64(len(r.b)-r.off) {
		return 0, false
	}
	return int(n), true
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
