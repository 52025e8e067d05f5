package server

import (
	"context"
	"net/http"

	"github.com/kernelhost/kernelhost/kernel"
)

func (s *Server) quotaRoutes() {
	s.handle("/v1/quotas", methods{http.MethodGet: s.principal(s.ownQuotas)})
	s.handle("/v1/quotas/transfer", methods{http.MethodPost: s.principal(s.transferQuota)})
	s.handle("/v1/principals/{id}/quotas", methods{http.MethodGet: s.anyone(s.principalQuotas)})
	s.handle("/v1/principals/{id}/quotas/{resource}", methods{http.MethodPut: s.admin(s.setQuota)})
}

// principalView returns principal id with its quotas.
func (s *Server) principalView(ctx context.Context, id string) (PrincipalView, error) {
	p, err := s.cfg.Kernel.Principal(ctx, id)
	if err != nil {
		return PrincipalView{}, err
	}
	qs, err := s.cfg.Kernel.Quotas(ctx, id)
	if err != nil {
		return PrincipalView{}, err
	}
	return PrincipalView{OK: true, Principal: p, Quotas: qs}, nil
}

// QuotasResponse is the answer to the GET quota endpoints.
type QuotasResponse struct {
	Principal string               `json:"principal"`
	Quotas    []kernel.QuotaStatus `json:"quotas"`
}

func (s *Server) writeQuotas(w http.ResponseWriter, r *http.Request, id string) {
	qs, err := s.cfg.Kernel.Quotas(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, QuotasResponse{Principal: id, Quotas: qs})
}

func (s *Server) ownQuotas(w http.ResponseWriter, r *http.Request, caller string) {
	s.writeQuotas(w, r, caller)
}

func (s *Server) principalQuotas(w http.ResponseWriter, r *http.Request) {
	s.writeQuotas(w, r, r.PathValue("id"))
}

// TransferQuotaRequest is the body of POST /v1/quotas/transfer: the caller
// gives Amount of its Resource quota to To. RequestID makes it idempotent
// like any action's (kernel.Action.RequestID): a retry with the same id
// returns the first result ("replayed": true) and moves nothing.
type TransferQuotaRequest struct {
	To        string `json:"to"`
	Resource  string `json:"resource"`
	Amount    int64  `json:"amount"`
	RequestID string `json:"request_id,omitempty"`
}

func (s *Server) transferQuota(w http.ResponseWriter, r *http.Request, caller string) {
	var req TransferQuotaRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	s.do(w, r, kernel.Action{Kind: kernel.KindTransferQuota, Caller: caller, To: req.To, Resource: req.Resource, Amount: req.Amount, RequestID: req.RequestID})
}

// SetQuotaRequest is the body of PUT /v1/principals/{id}/quotas/{resource}.
type SetQuotaRequest struct {
	Quota int64 `json:"quota"`
}

func (s *Server) setQuota(w http.ResponseWriter, r *http.Request) {
	var req SetQuotaRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	id, res := r.PathValue("id"), kernel.Resource(r.PathValue("resource"))
	if err := s.cfg.Kernel.SetQuota(r.Context(), id, res, req.Quota); err != nil {
		writeErr(w, err)
		return
	}
	st, err := s.cfg.Kernel.QuotaStatus(r.Context(), id, res)
	if err != nil {
		writeErr(w, err)
		return
	}
	s.cfg.Logger.Info("quota set", "principal", id, "resource", res, "quota", req.Quota)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "principal": id, "quota": st})
}
