package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
	"github.com/kernelhost/kernelhost/store"
)

// MaxBulkPrincipals bounds the list of one POST /v1/principals: the
// principals of one kernel transaction (kernel.PrincipalsPerTxn), so that
// a list is created whole, tokens included, or not at all. More go in
// more requests, each at the same cost per principal.
const MaxBulkPrincipals = kernel.PrincipalsPerTxn

// CreatePrincipalsResponse is the answer to POST /v1/principals with a
// list: each principal with its token (shown this once), in the order of
// the list.
type CreatePrincipalsResponse struct {
	OK         bool                      `json:"ok"`
	Principals []CreatePrincipalResponse `json:"principals"`
}

// jsonList reports whether body is a JSON array (its first byte past white
// space is '['): POST /v1/principals then creates a list.
func jsonList(body []byte) bool {
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// createPrincipals creates the list of principals in body, with their
// tokens, in one transaction (kernel.CreatePrincipals, the tokens written
// by its hook where the tokens live in the world's store): the cost of a
// commit is shared by the list, as init shares it. Every entry is checked
// as the single form checks it (strict names, no unknown field, no key
// twice, a balance of 0 or more) before anything is written; a bad entry,
// an id listed twice or one that exists refuses the whole list.
func (s *Server) createPrincipals(w http.ResponseWriter, r *http.Request, body []byte) {
	if err := kernel.CheckDuplicateKeys(body); err != nil {
		writeErr(w, err)
		return
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "malformed JSON body: "+err.Error()))
		return
	}
	switch {
	case len(raw) == 0:
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "an empty list: give at least one principal"))
		return
	case len(raw) > MaxBulkPrincipals:
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument,
			fmt.Sprintf("%d principals in one request exceed %d: send the rest in another request", len(raw), MaxBulkPrincipals)))
		return
	}
	ps := make([]kernel.NewPrincipal, len(raw))
	ids := make([]string, len(raw))
	for i, m := range raw {
		var req CreatePrincipalRequest
		if err := decodeStrict(m, &req); err != nil {
			writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, fmt.Sprintf("principals[%d]: %v", i, err)))
			return
		}
		if req.Balance < 0 {
			writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, fmt.Sprintf("principals[%d]: balance must not be negative", i)))
			return
		}
		ps[i] = kernel.NewPrincipal{ID: req.ID, Balance: uint64(req.Balance)}
		ids[i] = req.ID
	}
	toks, ok := s.createWithTokens(w, r, ps)
	if !ok {
		return
	}
	out := CreatePrincipalsResponse{OK: true, Principals: make([]CreatePrincipalResponse, len(ids))}
	for i, id := range ids {
		p, err := s.cfg.Kernel.Principal(r.Context(), id)
		if err != nil {
			writeErr(w, err)
			return
		}
		out.Principals[i] = CreatePrincipalResponse{OK: true, Principal: p, Token: toks[i]}
	}
	s.cfg.Logger.Info("principals created", "count", len(ids), "first", ids[0])
	writeJSON(w, http.StatusCreated, out)
}

// createWithTokens creates ps and a token for each, in order: in one
// transaction per kernel batch (one for at most MaxBulkPrincipals) where
// the tokens live in the world's store, the tokens written by
// kernel.CreatePrincipals's hook; with tokens kept in a file (tests,
// embedders), the principals and then their tokens one by one. It
// answers the failure itself and returns false.
func (s *Server) createWithTokens(w http.ResponseWriter, r *http.Request, ps []kernel.NewPrincipal) ([]string, bool) {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	byID := make(map[string]string, len(ps))
	inStore := false
	_, err := s.cfg.Kernel.CreatePrincipals(r.Context(), ps, func(tx store.Txn, batch []kernel.NewPrincipal) error {
		// A batch that runs again (the committer retries) issues anew: the
		// tokens kept are those of the run that committed, the last.
		names := make([]string, len(batch))
		for i, p := range batch {
			names[i] = p.ID
		}
		t, in, err := s.cfg.Auth.IssueTx(tx, names)
		if in && err == nil {
			inStore = true
			for i, id := range names {
				byID[id] = t[i]
			}
		}
		return err
	})
	if err != nil {
		writeErr(w, err)
		return nil, false
	}
	toks := make([]string, len(ids))
	if inStore {
		for i, id := range ids {
			toks[i] = byID[id]
		}
		return toks, true
	}
	for i, id := range ids {
		if toks[i], err = s.cfg.Auth.Issue(id); err != nil {
			s.cfg.Logger.Error("issue token", "principal", id, "err", err)
			writeError(w, http.StatusInternalServerError, api.NewError(abi.Internal,
				fmt.Sprintf("principal %q was created but its token could not be saved: run 'kernelhost principal token %s' on the server (and for the principals after it in the list)", id, id)))
			return nil, false
		}
	}
	return toks, true
}

// decodeStrict decodes the JSON object b into v as decodeJSON does: names
// exactly as v's json tags spell them, no unknown field, nothing after it.
func decodeStrict(b []byte, v any) error {
	if err := exactNames(b, v); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed entry: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the entry")
	}
	return nil
}
