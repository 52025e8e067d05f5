package kernel

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// Idempotent actions. An action with a RequestID stores its result, in its
// own transaction, under the caller and the id:
//
//	q/<caller>\x00<request_id>                     version, action hash, time, result
//	Q/<caller>\x00<time: 8 bytes BE><request_id>   expiry index (empty value)
//
// A repeat by the same caller within Config.RequestWindow finds it and
// returns it (Result.Replayed) before anything else happens: no check, no
// charge, no event. Because the record commits with the action's effects,
// a client that lost the answer (a timeout, a crash of the server) can
// always ask again: either the action committed and the repeat returns its
// result, or it did not and the repeat runs it, once. Two repeats racing
// meet in the committer (or, across nodes, in the store's serialisable
// transactions) and only one runs.
//
// Ids are the caller's own namespace: another principal's id is never
// found, so no principal can read or block another's results. A result
// that says to retry (Retriable: QUOTA_EXCEEDED that waiting cures,
// CONFLICT, UNAVAILABLE, INTERNAL) is not kept, so a repeat runs again.
// A read's content is not kept (it can be read again). Records leave with
// the window: a new record of the same caller deletes that caller's expired
// ones (at most maxExpiredPerWrite per write).

const (
	requestVersion     = 1
	maxExpiredPerWrite = 16
)

func requestKey(caller, id string) []byte {
	k := make([]byte, 0, len(prefixRequest)+len(caller)+1+len(id))
	return append(append(append(append(k, prefixRequest...), caller...), 0), id...)
}

func requestTimePrefix(caller string) []byte {
	k := make([]byte, 0, len(prefixReqTime)+len(caller)+1+8)
	return append(append(append(k, prefixReqTime...), caller...), 0)
}

// actionHash identifies what was asked: a repeat must ask the same.
func actionHash(a *Action) [32]byte {
	b, _ := json.Marshal(a) // cannot fail: plain fields, sorted map keys
	return sha256.Sum256(b)
}

// replay looks for the record of w's request id. It returns true when the
// repeat is answered from it (w.res set), or an error: INVALID_ARGUMENT for
// an id used for another action.
func (w *work) replay() (bool, *Error) {
	a := w.a
	b, err := w.tx.Get(requestKey(a.Caller, a.RequestID))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, storeErr(err)
	}
	if len(b) < 1+32+8 || b[0] != requestVersion {
		return false, storeErr(errCorrupt)
	}
	if int64(binary.BigEndian.Uint64(b[33:41]))+int64(w.k.cfg.RequestWindow) <= w.now {
		return false, nil // expired: the id is free again
	}
	h := actionHash(a)
	if !bytes.Equal(b[1:33], h[:]) {
		return false, errf(abi.InvalidArgument, "request_id %q was used for another action within the last %s: use a new id", a.RequestID, w.k.cfg.RequestWindow)
	}
	var rec requestRecord
	if err := json.Unmarshal(b[41:], &rec); err != nil {
		return false, storeErr(errCorrupt)
	}
	w.res = rec.Result
	w.res.Code = abi.Code(rec.Code)
	w.res.Replayed = true
	return true, nil
}

// requestRecord is the stored result; Code is not in Result's JSON.
type requestRecord struct {
	Result Result `json:"result"`
	Code   uint32 `json:"code"`
}

// keepResult stores w's result under its request id, in w's transaction,
// and deletes the caller's expired records.
func (w *work) keepResult() *Error {
	a := w.a
	if a.RequestID == "" || w.depth > 0 || w.res.Retriable {
		return nil
	}
	res := w.res
	res.Content = nil
	body, err := json.Marshal(requestRecord{Result: res, Code: uint32(res.Code)})
	if err != nil {
		return storeErr(err)
	}
	h := actionHash(a)
	v := make([]byte, 0, 1+32+8+len(body))
	v = append(append(append(v, requestVersion), h[:]...), binary.BigEndian.AppendUint64(nil, uint64(w.now))...)
	v = append(v, body...)
	if e := w.set(requestKey(a.Caller, a.RequestID), v); e != nil {
		return e
	}
	tp := requestTimePrefix(a.Caller)
	idx := append(binary.BigEndian.AppendUint64(bytes.Clone(tp), uint64(w.now)), a.RequestID...)
	if e := w.set(idx, []byte{}); e != nil {
		return e
	}
	// Expired records of the caller, oldest first.
	var expired [][]byte
	cutoff := w.now - int64(w.k.cfg.RequestWindow)
	ierr := w.tx.Iterate(tp, nil, func(key, _ []byte) error {
		if len(key) < len(tp)+8 || int64(binary.BigEndian.Uint64(key[len(tp):])) > cutoff || len(expired) >= maxExpiredPerWrite {
			return store.ErrStop
		}
		expired = append(expired, bytes.Clone(key))
		return nil
	})
	if ierr != nil {
		return storeErr(ierr)
	}
	for _, key := range expired {
		id := string(key[len(tp)+8:])
		if id != a.RequestID {
			if e := w.del(requestKey(a.Caller, id)); e != nil {
				return e
			}
		}
		if e := w.del(key); e != nil {
			return e
		}
	}
	return nil
}
