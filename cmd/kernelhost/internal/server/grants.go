package server

import (
	"net/http"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// A principal's grants, consent (grant_consent: a contract may name it as
// payer), LLM consent (grant_llm_consent: it pays another principal's LLM
// calls) and standing (grant_standing: an executable may act as it), are
// made and withdrawn by ordinary actions through POST /v1/actions. These
// routes show them, to that principal's token and the admin token only, as
// its rights are shown: what a principal agreed to pay or let act for it is
// its own affair.
func (s *Server) grantRoutes() {
	s.handle("/v1/principals/{id}/consents", methods{http.MethodGet: s.ownOrAdmin(s.listConsents)})
	s.handle("/v1/principals/{id}/consents/{contract...}", methods{http.MethodGet: s.ownOrAdmin(s.getConsent)})
	s.handle("/v1/principals/{id}/standings", methods{http.MethodGet: s.ownOrAdmin(s.listStandings)})
	s.handle("/v1/principals/{id}/llm_consents/{principal}", methods{http.MethodGet: s.ownOrAdmin(s.getLLMConsent)})
}

// ownOrAdmin admits the token of principal {id} and the admin token.
func (s *Server) ownOrAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, e := s.identity(r)
		if e != nil {
			writeError(w, http.StatusUnauthorized, *e)
			return
		}
		if !id.Admin && id.Principal != r.PathValue("id") {
			writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied,
				"a principal's grants are shown to itself and the admin token"))
			return
		}
		h(w, r)
	}
}

// ConsentsResponse is the answer to GET /v1/principals/{id}/consents: one
// page of id's consent grants, and the cursor of the next when there is one.
type ConsentsResponse struct {
	Payer      string         `json:"payer"`
	Consents   []kernel.Grant `json:"consents"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

func (s *Server) listConsents(w http.ResponseWriter, r *http.Request) {
	pg, e := parsePage(r, 1)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	payer := r.PathValue("id")
	gs, more, err := s.cfg.Kernel.ConsentsPage(r.Context(), payer, pg.after[0], pg.limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := ConsentsResponse{Payer: payer, Consents: gs}
	if resp.Consents == nil {
		resp.Consents = []kernel.Grant{}
	}
	if more {
		resp.NextCursor = encodeCursor(gs[len(gs)-1].Contract)
	}
	writeJSON(w, http.StatusOK, resp)
}

// ConsentResponse is the answer to GET
// /v1/principals/{id}/consents/{contract}.
type ConsentResponse struct {
	OK      bool         `json:"ok"`
	Consent kernel.Grant `json:"consent"`
}

func (s *Server) getConsent(w http.ResponseWriter, r *http.Request) {
	payer := r.PathValue("id")
	if _, err := s.cfg.Kernel.Principal(r.Context(), payer); err != nil {
		writeErr(w, err)
		return
	}
	g, err := s.cfg.Kernel.Consent(r.Context(), payer, r.PathValue("contract"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ConsentResponse{OK: true, Consent: g})
}

// StandingsResponse is the answer to GET /v1/principals/{id}/standings:
// one page of the executables id granted standing, each with whether the
// grant still holds, and the cursor of the next page when there is one.
type StandingsResponse struct {
	Principal  string            `json:"principal"`
	Standings  []kernel.Standing `json:"standings"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

func (s *Server) listStandings(w http.ResponseWriter, r *http.Request) {
	pg, e := parsePage(r, 1)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	p := r.PathValue("id")
	ss, more, err := s.cfg.Kernel.StandingsPage(r.Context(), p, pg.after[0], pg.limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := StandingsResponse{Principal: p, Standings: ss}
	if resp.Standings == nil {
		resp.Standings = []kernel.Standing{}
	}
	if more {
		resp.NextCursor = encodeCursor(ss[len(ss)-1].Executable)
	}
	writeJSON(w, http.StatusOK, resp)
}

// LLMConsentResponse is the answer to GET
// /v1/principals/{id}/llm_consents/{principal}: sponsor id's consent to pay
// principal's LLM calls.
type LLMConsentResponse struct {
	OK      bool              `json:"ok"`
	Consent kernel.LLMConsent `json:"consent"`
}

func (s *Server) getLLMConsent(w http.ResponseWriter, r *http.Request) {
	sponsor := r.PathValue("id")
	if _, err := s.cfg.Kernel.Principal(r.Context(), sponsor); err != nil {
		writeErr(w, err)
		return
	}
	c, err := s.cfg.Kernel.LLMConsent(r.Context(), sponsor, r.PathValue("principal"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, LLMConsentResponse{OK: true, Consent: c})
}
