package localgw

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keygate/keygate/internal/gateway"
)

// EchoResponse is what the echo upstream answers: the request as the
// upstream received it, and the authorizer context read back from the
// gateway.Forward headers (by context key; absent headers are left out).
type EchoResponse struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      string            `json:"query"`
	Headers    map[string]string `json:"headers"`
	Authorizer map[string]string `json:"authorizer"`
}

// Echo is the built-in demo upstream of `make dev`: it answers every
// request with an EchoResponse as JSON, so that a developer sees exactly
// what an upstream behind keygate receives. Repeated headers are joined
// with ", ".
func Echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := EchoResponse{
			Method:     r.Method,
			Path:       r.URL.Path,
			Query:      r.URL.RawQuery,
			Headers:    map[string]string{},
			Authorizer: map[string]string{},
		}
		for k, vs := range r.Header {
			resp.Headers[k] = strings.Join(vs, ", ")
		}
		for _, f := range gateway.Forward {
			if v := r.Header.Get(f.Header); v != "" {
				resp.Authorizer[f.Context] = v
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(resp)
	})
}
