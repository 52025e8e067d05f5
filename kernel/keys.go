package kernel

import "encoding/binary"

// Key layout. Every key the kernel writes is listed here; nothing else in
// the package builds keys. Ids never contain NUL, so NUL separates parts.
//
//	m/schema                  schema version (decimal string), see SchemaVersion
//	p/<principal>             principal record: balance, created_at
//	a/<artifact>              artifact record: type, created_by, contract, hash, size, revision, times, metadata, disk payer
//	c/<artifact>              artifact content (raw bytes)
//	u/<contract>\x00<artifact> governs index: contract governs artifact (empty value)
//	g/<payer>\x00<contract>   consent grant: caps, spent, terms hash (code + config) at grant time
//	d/<principal>             default spending limit per action (u64 LE), set by the principal
//	s/<principal>\x00<exe>    standing grant: principal lets executable exe act as it; terms hash at grant time
//	r/<holder>\x00<right>     rights-by-holder index: resource and amount of a right (rights.go)
//	e/<seq: 8 bytes BE>       audit event (binary record, eventcodec.go)
//	l/minted/<xx>, l/burned/<xx>  ledger totals in 16 shards by principal (u64 LE; ledgerShard), so that
//	                          actions of unrelated principals never write one key; a plain l/minted or
//	                          l/burned, written before the shards, counts too
//	w/<principal>\x00<resource>\x00<node: 8 bytes BE>  one node's rate-window usage, bucketed (ratestore.go)
//	l/node                    the last node number given to a kernel that opened the store (u64 LE)
//	l/seq                     number of the last audit event (u64 LE), written by every batch that adds events (commit.go)
//	q/<caller>\x00<request_id> the result of an action with a request_id (requests.go)
//	Q/<caller>\x00<time: 8 bytes BE><request_id>  its expiry index
//	G/<sponsor>\x00<principal> LLM consent: sponsor pays principal's gateway calls within caps (llm.go)
//	R/<n: 8 bytes BE>         input record n, when Config.Record is set (record.go); l/rseq the last n
//	x/...                     never written by the kernel: room for the embedding program (the CLI keeps tokens there)
//
// Values are little-endian binary records with a leading version byte
// (records.go; events: eventcodec.go). Events are not JSON in the store
// (schema 3): the CLI and the HTTP API render them as JSON.
var (
	keySchema = []byte("m/schema")
	keyMinted = []byte("l/minted")
	keyBurned = []byte("l/burned")
	keySeq    = []byte("l/seq")
	keyNode   = []byte("l/node")
	// keyRecordSeq is the number of the last input record (record.go).
	keyRecordSeq = []byte("l/rseq")

	prefixPrincipal = []byte("p/")
	prefixArtifact  = []byte("a/")
	prefixContent   = []byte("c/")
	prefixGoverns   = []byte("u/")
	prefixGrant     = []byte("g/")
	prefixEvent     = []byte("e/")
	prefixRight     = []byte("r/")
	prefixStanding  = []byte("s/")
	prefixSpending  = []byte("d/")
	prefixRate      = []byte("w/")
	prefixRequest   = []byte("q/")
	prefixReqTime   = []byte("Q/")
	prefixLLMGrant  = []byte("G/")
	prefixRecord    = []byte("R/")
)

// SchemaVersion is the version of the key layout and record encodings. Open
// refuses a store written with another version, except schema 3, which it
// upgrades in place: schema 4 only adds keys (l/seq, l/node, rate rows,
// ledger shards) that it derives or starts empty, and a schema-3 kernel
// must not open the result (it would miss the sharded totals).
const SchemaVersion = "4"

func key(prefix []byte, id string) []byte {
	k := make([]byte, 0, len(prefix)+len(id))
	return append(append(k, prefix...), id...)
}

// keyPrefix is the prefix of every key2(prefix, id, ...), in one
// allocation: a scan of it (a caller's rights, on every check) is on the
// path of every action.
func keyPrefix(prefix []byte, id string) []byte {
	k := make([]byte, 0, len(prefix)+len(id)+1)
	k = append(append(k, prefix...), id...)
	return append(k, 0)
}

func key2(prefix []byte, a, b string) []byte {
	k := make([]byte, 0, len(prefix)+len(a)+1+len(b))
	k = append(append(k, prefix...), a...)
	k = append(k, 0)
	return append(k, b...)
}

func principalKey(id string) []byte            { return key(prefixPrincipal, id) }
func artifactKey(id string) []byte             { return key(prefixArtifact, id) }
func contentKey(id string) []byte              { return key(prefixContent, id) }
func governsKey(contract, a string) []byte     { return key2(prefixGoverns, contract, a) }
func governsPrefix(contract string) []byte     { return keyPrefix(prefixGoverns, contract) }
func grantKey(payer, contract string) []byte   { return key2(prefixGrant, payer, contract) }
func spendingLimitKey(principal string) []byte { return key(prefixSpending, principal) }
func standingKey(principal, exe string) []byte {
	return key2(prefixStanding, principal, exe)
}
func standingPrefix(principal string) []byte { return keyPrefix(prefixStanding, principal) }

func rightKey(holder, right string) []byte   { return key2(prefixRight, holder, right) }
func rightHolderPrefix(holder string) []byte { return keyPrefix(prefixRight, holder) }

// ledgerShard is the shard of ledger total k that principal id's mints
// or burns go to: k, "/", two hex digits of FNV-1a(id) mod 16.
func ledgerShard(k []byte, id string) []byte {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	const hex = "0123456789abcdef"
	s := h % 16
	return append(append(append(make([]byte, 0, len(k)+3), k...), '/', '0'), hex[s])
}

func eventKey(seq uint64) []byte {
	k := make([]byte, 0, len(prefixEvent)+8)
	return binary.BigEndian.AppendUint64(append(k, prefixEvent...), seq)
}
