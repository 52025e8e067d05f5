package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Recording and replay. With Config.Record set, every input that changes
// the world is kept in order, in the same transaction as its effects:
//
//	R/<n: 8 bytes BE>   a Record (JSON); l/rseq is the last n
//
// Inputs are the top-level actions that commit (reads included: they run
// through the committer while recording, so that every input has one place
// in one serial order), the administrative calls, and the LLM calls'
// reservations and settlements (with the usage the provider reported, so
// that a replay needs no provider). Each record keeps its time and the
// sha256 of its result. The committer runs the inputs one after another,
// each on the state the ones before it left, and every contract call
// starts from the same state and is metered by fuel: the same inputs in
// the same order on the same starting state give the same results.
// Replay checks exactly that, input by input, and StateHash compares the
// states they end in.
//
// Not recorded: Explain is refused while recording (its CPU charge would
// change the world outside the order); an action answered from its
// request_id record and an action of an unknown caller write nothing.

// RecordOp names what a record holds.
type RecordOp string

// Record ops.
const (
	RecordDo              RecordOp = "do"
	RecordCreatePrincipal RecordOp = "create_principal"
	RecordMint            RecordOp = "mint"
	RecordSetQuota        RecordOp = "set_quota"
	RecordLLMReserve      RecordOp = "llm_reserve"
	RecordLLMSettle       RecordOp = "llm_settle"
)

// Record is one recorded input.
type Record struct {
	Seq uint64   `json:"seq"`
	Op  RecordOp `json:"op"`
	// Now is the kernel clock's time for the input, in Unix nanoseconds.
	Now int64 `json:"now"`
	// Caller and Action: RecordDo (Action.Caller is not in Action's JSON).
	Caller string  `json:"caller,omitempty"`
	Action *Action `json:"action,omitempty"`
	// Token: RecordDo, the action's Action.Token (not in Action's JSON
	// either), so that a replay writes the same audit events.
	Token string `json:"token,omitempty"`
	// Principal, Amount, Resource: the administrative calls.
	Principal string   `json:"principal,omitempty"`
	Amount    int64    `json:"amount,omitempty"`
	Resource  Resource `json:"resource,omitempty"`
	// LLM and Usage: a reservation's call, a settlement's usage, and the
	// reservation it settles (the Seq of its RecordLLMReserve).
	LLM     *LLMCall  `json:"llm,omitempty"`
	Usage   *LLMUsage `json:"usage,omitempty"`
	Settles uint64    `json:"settles,omitempty"`
	// Tape is a RecordDo's LLM host calls, answered (llmexec.go), and
	// AbortCPU the cpu_rate (µs, by principal) of the attempts they
	// interrupted: a replay answers from the tape and charges that again.
	Tape     []LLMExchange    `json:"llm_tape,omitempty"`
	AbortCPU map[string]int64 `json:"llm_abort_cpu_us,omitempty"`
	// Result is the sha256 (hex) of the result's JSON (RecordDo), or of
	// the error code the call returned ("" for success) otherwise.
	Result string `json:"result_sha256"`
}

// resultHash is what a record keeps of a result: the sha256 of its JSON.
func resultHash(v any) string {
	b, _ := json.Marshal(v) // plain data
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// takeRecordSeq takes the next record number of the batch tx belongs to; 0
// when the kernel does not record or tx is not a batch's.
func takeRecordSeq(tx store.Txn) uint64 {
	o, ok := tx.(*overlay)
	if !ok || o.rnum == nil {
		return 0
	}
	n := *o.rnum
	*o.rnum++
	return n
}

// record writes r in tx, numbered there, when the kernel records.
func (k *Kernel) record(tx store.Txn, r Record) error {
	_, err := k.recordSeq(tx, r)
	return err
}

// recordSeq is record that also returns the record's number (0 when the
// kernel does not record).
func (k *Kernel) recordSeq(tx store.Txn, r Record) (uint64, error) {
	if !k.cfg.Record {
		return 0, nil
	}
	r.Seq = takeRecordSeq(tx)
	if r.Seq == 0 {
		return 0, errors.New("kernel: a recorded input outside a batch")
	}
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	return r.Seq, tx.Set(binary.BigEndian.AppendUint64(append([]byte{}, prefixRecord...), r.Seq), b)
}

// recordDo records w's top-level action and its result.
func (w *work) recordDo() *Error {
	if !w.k.cfg.Record || w.depth > 0 {
		return nil
	}
	a := *w.a
	r := Record{Op: RecordDo, Now: w.now, Caller: a.Caller, Token: a.Token, Action: &a, Result: resultHash(w.res), Tape: w.llmTapeUsed(), AbortCPU: w.ds.abortCPU}
	if err := w.k.record(w.tx, r); err != nil {
		return storeErr(err)
	}
	return nil
}

// adminResult is what an administrative call's record hashes.
func adminResult(err error) string {
	if err == nil {
		return resultHash("")
	}
	return resultHash(codeOf(err).String())
}

// Records returns the input records numbered after since, in order, at most
// limit (limit <= 0: 1000), from st (a recording world's store, or one a
// snapshot was loaded into).
func Records(st store.Store, since uint64, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []Record
	start := binary.BigEndian.AppendUint64(append([]byte{}, prefixRecord...), since+1)
	err := st.View(func(tx store.Txn) error {
		return tx.Iterate(prefixRecord, start, func(_, v []byte) error {
			if len(out) >= limit {
				return store.ErrStop
			}
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: record: %v", errCorrupt, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// LastRecord returns the number of the last input record in st, 0 if none.
func LastRecord(st store.Store) (uint64, error) {
	var n uint64
	err := st.View(func(tx store.Txn) error {
		var err error
		n, err = readCounter(tx, keyRecordSeq)
		return err
	})
	return n, err
}

// ReplayClock is the clock of a kernel that replays: Replay sets it to
// each record's time before running it.
type ReplayClock struct{ ns atomic.Int64 }

// Now returns the time of the record being replayed.
func (c *ReplayClock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set sets the clock.
func (c *ReplayClock) Set(ns int64) { c.ns.Store(ns) }

// Divergence is the first input whose replay did not give the recorded
// result.
type Divergence struct {
	Record Record
	// Got is the sha256 of the replayed result; Result the replayed
	// result itself, for a RecordDo.
	Got    string
	Result *Result
}

func (d *Divergence) Error() string {
	return fmt.Sprintf("replay diverges at record %d (%s at %d): recorded result %s, replayed %s", d.Record.Seq, d.Record.Op, d.Record.Now, d.Record.Result, d.Got)
}

// Replayer re-executes recorded inputs on a kernel opened on the starting
// state of the recording, with Clock set to the Replayer's clock and Record
// set (so that reads run through the committer, as they did, and the
// replay is itself a recording): Run them in order, from the first record
// after the snapshot.
type Replayer struct {
	K     *Kernel
	Clock *ReplayClock
	held  map[uint64]*LLMReservation // reservations by their record's Seq
	count int
}

// Count is the number of records replayed so far.
func (p *Replayer) Count() int { return p.count }

// Run replays one record. It returns a *Divergence when the result
// differs from the recorded one, and an error when the record cannot be
// replayed at all.
func (p *Replayer) Run(ctx context.Context, r Record) error {
	p.Clock.Set(r.Now)
	var got string
	var res *Result
	switch r.Op {
	case RecordDo:
		if r.Action == nil {
			return fmt.Errorf("kernel: replay: record %d has no action", r.Seq)
		}
		a := *r.Action
		a.Caller, a.Token = r.Caller, r.Token
		tape := r.Tape
		if tape == nil {
			tape = []LLMExchange{} // a replay: no call is asked, none answered but from the tape
		}
		out := p.K.doTape(ctx, a, tape, r.AbortCPU)
		res, got = &out, resultHash(out)
	case RecordCreatePrincipal:
		got = adminResult(p.K.CreatePrincipal(ctx, r.Principal, uint64(r.Amount)))
	case RecordMint:
		got = adminResult(p.K.Mint(ctx, r.Principal, r.Amount))
	case RecordSetQuota:
		got = adminResult(p.K.SetQuota(ctx, r.Principal, r.Resource, r.Amount))
	case RecordLLMReserve:
		if r.LLM == nil {
			return fmt.Errorf("kernel: replay: record %d has no call", r.Seq)
		}
		h, out := p.K.ReserveLLM(ctx, *r.LLM)
		if out.OK {
			if p.held == nil {
				p.held = make(map[uint64]*LLMReservation)
			}
			p.held[r.Seq] = h
		}
		got = resultHash(out)
	case RecordLLMSettle:
		h, ok := p.held[r.Settles]
		if !ok || r.Usage == nil {
			return fmt.Errorf("kernel: replay: record %d settles %d, which holds nothing", r.Seq, r.Settles)
		}
		delete(p.held, r.Settles)
		out := p.K.SettleLLM(ctx, h, *r.Usage)
		got = resultHash(out)
	default:
		return fmt.Errorf("kernel: replay: record %d: unknown op %q", r.Seq, r.Op)
	}
	p.count++
	if got != r.Result {
		return &Divergence{Record: r, Got: got, Result: res}
	}
	return nil
}

// StateHash is the sha256 of every key and value of st that is the
// world's state, in key order: everything but what depends on which
// process wrote it (rate-window rows, keyed by node, and l/node), the
// records themselves (R/, l/rseq) and the embedding program's keys (x/).
// Two worlds that went through the same inputs have the same hash.
func StateHash(st store.Store) ([32]byte, error) {
	h := sha256.New()
	var n [4]byte
	err := st.View(func(tx store.Txn) error {
		return tx.Iterate(nil, nil, func(k, v []byte) error {
			if bytes.HasPrefix(k, prefixRate) || bytes.HasPrefix(k, prefixRecord) || bytes.HasPrefix(k, []byte("x/")) ||
				bytes.Equal(k, keyNode) || bytes.Equal(k, keyRecordSeq) {
				return nil
			}
			binary.BigEndian.PutUint32(n[:], uint32(len(k)))
			h.Write(n[:])
			h.Write(k)
			binary.BigEndian.PutUint32(n[:], uint32(len(v)))
			h.Write(n[:])
			h.Write(v)
			return nil
		})
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, err
}

// errRecording refuses Explain while the kernel records.
func errRecording() *Error {
	return errf(abi.Unavailable, "explain is off while the world is recorded: its CPU charge would change the world outside the recorded order")
}
