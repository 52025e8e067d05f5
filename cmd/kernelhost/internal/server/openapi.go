package server

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 document of the API, written by hand beside
// docs/http.md. TestOpenAPICoversRoutes holds it to the routes registered:
// every route is in it, and every path and method in it is a route.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3 document the server answers at
// /v1/openapi.json. The slice is shared: do not modify it.
func OpenAPI() []byte { return openAPIDoc }

// openAPI answers GET /v1/openapi.json, without a token: it describes the
// API, nothing of the world.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	writeBody(w, http.StatusOK, openAPIDoc)
}
