package kernel

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/kernelhost/kernelhost/abi"
)

var le = binary.LittleEndian

const recordVersion = 1

// errCorrupt marks a record that does not decode: the store holds bytes this
// kernel did not write. It surfaces as INTERNAL.
var errCorrupt = errors.New("kernel: corrupt record")

// principalRec is the stored form of a principal: balance, quota
// allocations in Resources order, and the persistent usage (llm_budget spent,
// disk bytes stored). Renewable usage lives in memory (quota.go).
type principalRec struct {
	Balance    uint64
	CreatedAt  int64
	Quota      [numResources]int64
	BudgetUsed int64
	DiskUsed   int64
}

const principalRecLen = 1 + 8 + 8 + 8*numResources + 8 + 8

func (p *principalRec) encode() []byte {
	b := make([]byte, 0, principalRecLen)
	b = append(b, recordVersion)
	b = le.AppendUint64(b, p.Balance)
	b = le.AppendUint64(b, uint64(p.CreatedAt))
	for _, q := range p.Quota {
		b = le.AppendUint64(b, uint64(q))
	}
	b = le.AppendUint64(b, uint64(p.BudgetUsed))
	return le.AppendUint64(b, uint64(p.DiskUsed))
}

func decodePrincipal(b []byte) (principalRec, error) {
	if len(b) != principalRecLen || b[0] != recordVersion {
		return principalRec{}, fmt.Errorf("principal record of %d bytes: %w", len(b), errCorrupt)
	}
	r := reader{b: b, off: 1}
	p := principalRec{Balance: r.u64(), CreatedAt: int64(r.u64())}
	for i := range p.Quota {
		p.Quota[i] = int64(r.u64())
	}
	p.BudgetUsed = int64(r.u64())
	p.DiskUsed = int64(r.u64())
	return p, nil
}

// artifactRec is the stored form of an artifact's description. Content is
// stored under its own key so that checks never load it.
type artifactRec struct {
	Type      string
	CreatedBy string
	Contract  string
	Hash      [32]byte
	Size      uint64
	Revision  uint64
	CreatedAt int64
	UpdatedAt int64
	Meta      []abi.KV // sorted by key, as the ABI wants it
	// DiskPayer is the principal whose disk quota the content is charged
	// to: the creator, recorded at creation as a billing fact of its own so
	// that the kernel never consults created_by; "" for kernel-managed
	// artifacts (rights), which are not billed.
	DiskPayer string
}

func (a *artifactRec) encode() []byte {
	n := 1 + 16 + len(a.Type) + len(a.CreatedBy) + len(a.Contract) + len(a.DiskPayer) + 32 + 32 + 4
	for _, kv := range a.Meta {
		n += 8 + len(kv.Key) + len(kv.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = appendStr(b, a.Type)
	b = appendStr(b, a.CreatedBy)
	b = appendStr(b, a.Contract)
	b = append(b, a.Hash[:]...)
	b = le.AppendUint64(b, a.Size)
	b = le.AppendUint64(b, a.Revision)
	b = le.AppendUint64(b, uint64(a.CreatedAt))
	b = le.AppendUint64(b, uint64(a.UpdatedAt))
	b = le.AppendUint32(b, uint32(len(a.Meta)))
	for _, kv := range a.Meta {
		b = appendStr(b, kv.Key)
		b = appendStr(b, kv.Value)
	}
	return appendStr(b, a.DiskPayer)
}

// decodeArtifact decodes an artifact record. Its strings share one copy of
// b (a check decodes two records, each of about ten strings, and this is on
// the path of every artifact action), so b may be reused once it returns.
func decodeArtifact(b []byte) (artifactRec, error) {
	r := reader{b: b}
	if r.byte() != recordVersion {
		return artifactRec{}, fmt.Errorf("artifact record version: %w", errCorrupt)
	}
	s := string(b)
	var a artifactRec
	a.Type = r.sub(s)
	a.CreatedBy = r.sub(s)
	a.Contract = r.sub(s)
	copy(a.Hash[:], r.take(32))
	a.Size = r.u64()
	a.Revision = r.u64()
	a.CreatedAt = int64(r.u64())
	a.UpdatedAt = int64(r.u64())
	n := r.u32()
	if n > abi.MaxMetaPairs {
		r.err = true
	}
	if !r.err && n > 0 {
		a.Meta = make([]abi.KV, n)
		for i := range a.Meta {
			a.Meta[i] = abi.KV{Key: r.sub(s), Value: r.sub(s)}
		}
	}
	a.DiskPayer = r.sub(s)
	if r.err || r.off != len(b) {
		return artifactRec{}, fmt.Errorf("artifact record: %w", errCorrupt)
	}
	return a, nil
}

// grantRec is the stored form of a consent grant.
type grantRec struct {
	// Terms is the terms hash (termsOf) of the contract when consent was
	// given: any change of its code or configuration voids the grant.
	Terms      [32]byte
	PerCallCap uint64
	TotalCap   uint64
	Spent      uint64
}

func (g *grantRec) encode() []byte {
	b := make([]byte, 0, 1+32+24)
	b = append(b, recordVersion)
	b = append(b, g.Terms[:]...)
	b = le.AppendUint64(b, g.PerCallCap)
	b = le.AppendUint64(b, g.TotalCap)
	return le.AppendUint64(b, g.Spent)
}

func decodeGrant(b []byte) (grantRec, error) {
	if len(b) != 57 || b[0] != recordVersion {
		return grantRec{}, fmt.Errorf("grant record of %d bytes: %w", len(b), errCorrupt)
	}
	var g grantRec
	copy(g.Terms[:], b[1:33])
	g.PerCallCap = le.Uint64(b[33:])
	g.TotalCap = le.Uint64(b[41:])
	g.Spent = le.Uint64(b[49:])
	return g, nil
}

// standingRec is the stored form of a standing grant: the terms hash
// (termsOf) of the executable when standing was granted.
type standingRec struct {
	Terms [32]byte
}

func (s *standingRec) encode() []byte {
	return append([]byte{recordVersion}, s.Terms[:]...)
}

func decodeStanding(b []byte) (standingRec, error) {
	if len(b) != 33 || b[0] != recordVersion {
		return standingRec{}, fmt.Errorf("standing record of %d bytes: %w", len(b), errCorrupt)
	}
	var s standingRec
	copy(s.Terms[:], b[1:])
	return s, nil
}

// termsOf is the hash of everything about an artifact that a consent or
// standing grant agrees to: its code (content hash) and its configuration
// (metadata). A grant whose terms differ from the artifact's current terms
// is void: rewriting the code, or editing a price, payee or any other
// metadata key, needs fresh agreement.
func termsOf(a *artifactRec) [32]byte {
	h := sha256.New()
	h.Write([]byte("kernelhost/terms/v1\x00"))
	h.Write(a.Hash[:])
	var n [4]byte
	for _, kv := range a.Meta {
		le.PutUint32(n[:], uint32(len(kv.Key)))
		h.Write(n[:])
		h.Write([]byte(kv.Key))
		le.PutUint32(n[:], uint32(len(kv.Value)))
		h.Write(n[:])
		h.Write([]byte(kv.Value))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func encodeU64(v uint64) []byte { return le.AppendUint64(make([]byte, 0, 8), v) }

func decodeU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("counter of %d bytes: %w", len(b), errCorrupt)
	}
	return le.Uint64(b), nil
}

func appendStr(b []byte, s string) []byte {
	b = le.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// reader decodes records; any overrun sets err instead of panicking.
type reader struct {
	b   []byte
	off int
	err bool
}

func (r *reader) take(n int) []byte {
	if r.err || n < 0 || r.off+n > len(r.b) {
		r.err = true
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) byte() byte {
	if s := r.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.take(4); s != nil {
		return le.Uint32(s)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if s := r.take(8); s != nil {
		return le.Uint64(s)
	}
	return 0
}

// sub reads a length-prefixed string as a substring of s, which holds the
// same bytes as r.b: no copy of its own.
func (r *reader) sub(s string) string {
	n := int(r.u32())
	start := r.off
	if r.take(n); r.err {
		return ""
	}
	return s[start : start+n]
}
