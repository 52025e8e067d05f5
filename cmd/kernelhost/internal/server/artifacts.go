package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/cmd/kernelhost/internal/api"
	"github.com/kernelhost/kernelhost/kernel"
)

// UploadMargin is what a raw upload's body may exceed the kernel's largest
// content by (Config.MaxUploadBytes' default): content just over the limit
// reaches the kernel, which names its exact limit (INVALID_ARGUMENT), rather
// than being cut off with a 413.
const UploadMargin = 64 << 10

// uploadTypes are the media types a raw upload may declare.
var uploadTypes = map[string]bool{"application/wasm": true, "application/octet-stream": true, "text/plain": true}

// uploadParams are the query parameters of PUT /v1/artifacts/{id}: the
// write action's fields other than its target and content.
var uploadParams = map[string]bool{"type": true, "contract": true, "metadata": true, "max_cost": true, "request_id": true}

func (s *Server) artifactRoutes() {
	s.handle("/v1/artifacts", methods{http.MethodGet: s.listArtifacts})
	s.handle("/v1/artifacts/{id...}", methods{
		http.MethodGet: s.principal(s.getArtifact),
		http.MethodPut: s.principal(s.putArtifact),
	})
}

// ArtifactsResponse is the answer to GET /v1/artifacts: one page of the
// artifacts the token may see (ids and types, never content or metadata),
// the cursor of the next page when more may follow, and for a principal's
// token what the read checks cost.
type ArtifactsResponse struct {
	Prefix     string                  `json:"prefix"`
	Artifacts  []kernel.ListedArtifact `json:"artifacts"`
	NextCursor string                  `json:"next_cursor,omitempty"`
	// Examined counts the artifacts whose read check ran (a principal's
	// token); CPUCharged is the cpu_rate those checks were charged, in µs.
	Examined   int   `json:"examined"`
	CPUCharged int64 `json:"cpu_rate_charged_us"`
	// QuotaExceeded is set when the caller's cpu_rate ran out before the
	// page was full: the page holds what was examined before, and
	// next_cursor goes on from there.
	QuotaExceeded *api.Result `json:"quota_exceeded,omitempty"`
}

// listArtifacts answers GET /v1/artifacts?prefix=&limit=&cursor=. A
// principal's token sees the artifacts its read checks allow
// (kernel.ListArtifacts: each judged by its own contract, charged to its
// cpu_rate, nothing recorded); the admin token sees every artifact
// (kernel.ArtifactsPage). A principal whose cpu_rate runs out before it
// examined anything gets the QUOTA_EXCEEDED result (429 with Retry-After).
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) {
	id, e := s.identity(r)
	if e != nil {
		writeError(w, http.StatusUnauthorized, *e)
		return
	}
	pg, e := parsePage(r, 1)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	prefix := r.URL.Query().Get("prefix")
	resp := ArtifactsResponse{Prefix: prefix}
	if id.Admin {
		as, more, err := s.cfg.Kernel.ArtifactsPage(r.Context(), prefix, pg.after[0], pg.limit)
		if err != nil {
			writeErr(w, err)
			return
		}
		resp.Artifacts = as
		if more {
			resp.NextCursor = encodeCursor(as[len(as)-1].ID)
		}
	} else {
		hold, ok := s.reserveCPU(w, id) // tokens.go: a cap on cpu_rate
		if !ok {
			return
		}
		l, err := s.cfg.Kernel.ListArtifacts(r.Context(), id.Principal, prefix, pg.after[0], pg.limit)
		s.settleCPU(id, hold, l.CPU)
		if err != nil {
			writeErr(w, err)
			return
		}
		if l.Quota != nil && l.Examined == 0 {
			writeResult(w, *l.Quota)
			return
		}
		resp.Artifacts, resp.Examined, resp.CPUCharged = l.Artifacts, l.Examined, l.CPU
		if l.Next != "" {
			resp.NextCursor = encodeCursor(l.Next)
		}
		if l.Quota != nil {
			q := api.ResultOf(*l.Quota)
			resp.QuotaExceeded = &q
		}
	}
	if resp.Artifacts == nil {
		resp.Artifacts = []kernel.ListedArtifact{}
	}
	writeJSON(w, http.StatusOK, resp)
}

// putArtifact answers PUT /v1/artifacts/{id}: a write action of the caller
// whose content is the raw request body (Content-Type application/wasm,
// application/octet-stream or text/plain), so that a module goes up as its
// bytes, not as base64 in JSON (a third larger, and bounded by
// kernel.MaxActionJSON). The write's other fields are query parameters:
// type, contract, metadata (a JSON object), max_cost, request_id; any other
// parameter, or one given twice, is INVALID_ARGUMENT. The body is bounded by
// Config.MaxUploadBytes (413 beyond). The answer is the write's result, as
// POST /v1/actions answers it.
func (s *Server) putArtifact(w http.ResponseWriter, r *http.Request, caller string) {
	a, e := uploadAction(r)
	if e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	if e := uploadType(r); e != nil {
		writeError(w, http.StatusUnsupportedMediaType, *e)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, api.NewError(abi.InvalidArgument,
				fmt.Sprintf("upload exceeds %d bytes: the kernel takes modules up to %d bytes and other content up to %d",
					s.cfg.MaxUploadBytes, s.cfg.Kernel.ContentLimit(kernel.TypeContract), s.cfg.Kernel.ContentLimit("data"))))
			return
		}
		writeError(w, http.StatusBadRequest, api.NewError(abi.InvalidArgument, "read request body: "+err.Error()))
		return
	}
	a.Kind, a.Caller, a.Target, a.Content = kernel.KindWrite, caller, r.PathValue("id"), body
	s.do(w, r, a)
}

// uploadType checks a raw upload's Content-Type: it must be given, and be
// one of uploadTypes (parameters such as charset allowed). A JSON or form
// body is refused rather than stored as content by mistake.
func uploadType(r *http.Request) *api.Error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !uploadTypes[mt] {
		e := api.NewError(abi.InvalidArgument, fmt.Sprintf("Content-Type %.100q: a raw upload is application/wasm, application/octet-stream or text/plain (send JSON actions to POST /v1/actions)", ct))
		return &e
	}
	return nil
}

// uploadAction reads a raw upload's query parameters into the write action
// they describe (without kind, caller, target and content), strictly: each
// parameter known and given once, metadata a JSON object of strings
// decoded as strictly as an action's.
func uploadAction(r *http.Request) (kernel.Action, *api.Error) {
	bad := func(format string, args ...any) (kernel.Action, *api.Error) {
		e := api.NewError(abi.InvalidArgument, fmt.Sprintf(format, args...))
		return kernel.Action{}, &e
	}
	q, err := url.ParseQuery(r.URL.RawQuery) // refuses ';' as a separator
	if err != nil {
		return bad("malformed query: %v", err)
	}
	var a kernel.Action
	for k, vs := range q {
		if !uploadParams[k] {
			return bad("unknown parameter %.64q: a raw upload takes type, contract, metadata, max_cost and request_id", k)
		}
		if len(vs) != 1 {
			return bad("parameter %q is given %d times: give it once", k, len(vs))
		}
	}
	a.Type, a.Contract, a.RequestID = q.Get("type"), q.Get("contract"), q.Get("request_id")
	if v, ok := q["max_cost"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 {
			return bad("max_cost %.32q: give a non-negative integer", v[0])
		}
		a.MaxCost = &n
	}
	if v, ok := q["metadata"]; ok {
		m, err := decodeMetadata(v[0])
		if err != nil {
			return bad("metadata: %v", err)
		}
		a.Metadata = m
	}
	return a, nil
}

// decodeMetadata decodes a raw upload's metadata parameter as strictly as
// an action's metadata: one JSON object of strings, each key once, nothing
// after it.
func decodeMetadata(v string) (map[string]string, error) {
	if err := kernel.CheckDuplicateKeys([]byte(v)); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(v))
	var m map[string]string
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("give a JSON object of strings, such as {\"title\":\"Q1\"}")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}
