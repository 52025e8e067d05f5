package server

import (
	"context"
	"net/http"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// Rights are changed by ordinary actions through POST /v1/actions
// (mint_right, transfer_right, split_right, merge_rights, redeem_right, as
// the caller, each only for the right's holder). These routes list them.
//
// A principal's rights are shown to that principal and to the admin token
// only, as kernel.Rights asks of the embedding program: the content of a
// right artifact is otherwise read through GET /v1/artifacts/{id}, judged by
// the right's access contract.
func (s *Server) rightRoutes() {
	s.handle("/v1/rights", methods{http.MethodGet: s.listRights})
	s.handle("/v1/principals/{id}/rights", methods{http.MethodGet: s.principalRights})
}

// RightsResponse is the answer to the GET rights endpoints: one page, and
// the cursor of the next when there is one. Holder is empty when Rights
// are every principal's.
type RightsResponse struct {
	Holder     string         `json:"holder,omitempty"`
	Rights     []kernel.Right `json:"rights"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// listRights answers GET /v1/rights: a principal's token lists the
// caller's rights; the admin token lists every principal's, or those of
// ?holder=.
func (s *Server) listRights(w http.ResponseWriter, r *http.Request) {
	id, e := s.identity(r)
	if e != nil {
		writeError(w, http.StatusUnauthorized, *e)
		return
	}
	holder := r.URL.Query().Get("holder")
	switch {
	case !id.Admin && holder != "" && holder != id.Principal:
		writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied,
			"a principal's rights are shown to itself and the admin token: read a right through GET /v1/artifacts/{id}, judged by its access contract"))
		return
	case !id.Admin:
		holder = id.Principal
	}
	s.writeRights(w, r, holder)
}

// principalRights answers GET /v1/principals/{id}/rights, for that
// principal's token or the admin token.
func (s *Server) principalRights(w http.ResponseWriter, r *http.Request) {
	id, e := s.identity(r)
	if e != nil {
		writeError(w, http.StatusUnauthorized, *e)
		return
	}
	holder := r.PathValue("id")
	if !id.Admin && id.Principal != holder {
		writeError(w, http.StatusForbidden, api.NewError(abi.PermissionDenied,
			"a principal's rights are shown to itself and the admin token: read a right through GET /v1/artifacts/{id}, judged by its access contract"))
		return
	}
	s.writeRights(w, r, holder)
}

// writeRights writes a page of holder's rights, or of every principal's
// when holder is empty (kernel.RightsPage; the cursor is the last right's
// holder and id). An unknown holder is NOT_FOUND.
func (s *Server) writeRights(w http.ResponseWriter, r *http.Request, holder string) {
	pg, e := parsePage(r, 2)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	if holder != "" && pg.after[0] != "" && pg.after[0] != holder {
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "cursor is not one this endpoint gave: it continues another holder's rights"))
		return
	}
	rs, more, err := s.rights(r.Context(), holder, pg)
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := RightsResponse{Holder: holder, Rights: rs}
	if resp.Rights == nil {
		resp.Rights = []kernel.Right{}
	}
	if more {
		last := rs[len(rs)-1]
		resp.NextCursor = encodeCursor(last.Holder, last.ID)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) rights(ctx context.Context, holder string, pg page) ([]kernel.Right, bool, error) {
	k := s.cfg.Kernel
	if holder != "" {
		if _, err := k.Principal(ctx, holder); err != nil {
			return nil, false, err
		}
	}
	return k.RightsPage(ctx, holder, pg.after[0], pg.after[1], pg.limit)
}
