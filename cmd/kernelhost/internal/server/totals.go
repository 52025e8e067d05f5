package server

import (
	"net/http"

	"github.com/kernelhost/kernelhost/kernel"
)

// TotalsResponse is the answer to GET /v1/totals: the world's totals in one
// snapshot (kernel.Audit). A broken ledger is ledger_ok false, still 200:
// the answer is the report of it.
type TotalsResponse struct {
	OK bool `json:"ok"`
	kernel.Audit
}

// totals answers GET /v1/totals (admin token): minted, burned, the sum of
// balances and whether the ledger checks, quota and right totals per
// resource.
func (s *Server) totals(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Kernel.Audit(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TotalsResponse{OK: true, Audit: a})
}
