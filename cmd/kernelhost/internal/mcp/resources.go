package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	gomcp "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/kernel"
)

// ArtifactURI is the start of an artifact's resource URI: the id follows
// as it is (ids hold only characters a URI path may hold, '/' included).
const ArtifactURI = "kernelhost://artifact/"

// listPage is how many artifacts one resources/list page examines at most.
const listPage = 100

// Codes of JSON-RPC errors of resource requests: the MCP spec's "resource
// not found", and a server error whose data is the ErrorBody.
const (
	codeResourceNotFound = -32002
	codeKernelError      = -32000
)

// addResources adds the artifact resources: a template for reading, and
// resources/list answered from GET /v1/artifacts, which lists only what the
// principal may read.
func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(&gomcp.ResourceTemplate{
		URITemplate: ArtifactURI + "{+id}",
		Name:        "artifact",
		Title:       "kernelhost artifact",
		Description: "An artifact's content, read as your principal through the read action: judged and possibly charged by its contract, at the server's default max_cost (use the read tool to agree to a higher price), and recorded.",
	}, s.readResource)
	s.mcp.AddReceivingMiddleware(func(next gomcp.MethodHandler) gomcp.MethodHandler {
		return func(ctx context.Context, method string, req gomcp.Request) (gomcp.Result, error) {
			if method != "resources/list" {
				return next(ctx, method, req)
			}
			return s.listResources(ctx, req)
		}
	})
}

// readResource reads an artifact as the principal.
func (s *Server) readResource(ctx context.Context, req *gomcp.ReadResourceRequest) (*gomcp.ReadResourceResult, error) {
	uri := req.Params.URI
	id, ok := strings.CutPrefix(uri, ArtifactURI)
	if !ok || id == "" {
		return nil, gomcp.ResourceNotFoundError(uri)
	}
	c, err := s.clientFor(req.Extra)
	if err != nil {
		return nil, rpcError(errorOf(err, ""))
	}
	out, err := s.act(ctx, c, kernel.Action{Kind: kernel.KindRead, Target: id}, "", true, nil)
	if err != nil {
		return nil, rpcError(errorOf(err, ""))
	}
	r := out.(ActionOutput)
	rc := &gomcp.ResourceContents{URI: uri}
	switch {
	case r.Text != nil:
		rc.Text, rc.MIMEType = *r.Text, "text/plain"
	case r.Artifact != nil && (r.Artifact.Type == kernel.TypeContract || r.Artifact.Type == kernel.TypeExecutable):
		rc.Blob, rc.MIMEType = r.ContentBase64, "application/wasm"
	default:
		rc.Blob, rc.MIMEType = r.ContentBase64, "application/octet-stream"
	}
	if rc.Blob == nil && rc.Text == "" {
		rc.Blob = []byte{} // an empty artifact: contents, not none
	}
	meta := gomcp.Meta{"kernelhost/request_id": r.RequestID}
	if r.Artifact != nil {
		meta["kernelhost/artifact"] = r.Artifact
	}
	if len(r.Charges) > 0 {
		meta["kernelhost/charges"] = r.Charges
	}
	if r.Event != 0 {
		meta["kernelhost/event"] = r.Event
	}
	return &gomcp.ReadResourceResult{Meta: meta, Contents: []*gomcp.ResourceContents{rc}, Cacheable: gomcp.Cacheable{CacheScope: "private"}}, nil
}

// listResources answers resources/list with a page of the artifacts the
// principal may read; the cursor is GET /v1/artifacts' own.
func (s *Server) listResources(ctx context.Context, req gomcp.Request) (gomcp.Result, error) {
	cursor := ""
	if lr, ok := req.(*gomcp.ListResourcesRequest); ok && lr.Params != nil {
		cursor = lr.Params.Cursor
	}
	c, err := s.clientFor(req.GetExtra())
	if err != nil {
		return nil, rpcError(errorOf(err, ""))
	}
	page, err := c.ArtifactsPage(ctx, "", cursor, listPage)
	if err != nil {
		return nil, rpcError(errorOf(err, ""))
	}
	res := &gomcp.ListResourcesResult{Resources: []*gomcp.Resource{}, NextCursor: page.NextCursor, Cacheable: gomcp.Cacheable{CacheScope: "private"}}
	for _, a := range page.Artifacts {
		res.Resources = append(res.Resources, &gomcp.Resource{URI: ArtifactURI + a.ID, Name: a.ID, Description: "a " + a.Type + " artifact"})
	}
	return res, nil
}

// rpcError is the JSON-RPC error of a failed resource request: NOT_FOUND is
// the spec's "resource not found"; anything else a server error with the
// ErrorBody as its data and in its message.
func rpcError(b ErrorBody) error {
	j, err := json.Marshal(b)
	if err != nil {
		return errors.New(b.ErrorCode + ": " + b.Message)
	}
	code := int64(codeKernelError)
	if b.ErrorCode == abi.NotFound.String() {
		code = codeResourceNotFound
	}
	return &jsonrpc.Error{Code: code, Message: b.ErrorCode + ": " + b.Message + " (" + b.Hint + ")", Data: j}
}
