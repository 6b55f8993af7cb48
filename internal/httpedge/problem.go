// Package httpedge is where keygate's HTTP handlers (the admin API, the
// token routes) meet HTTP, and the only place errors become HTTP
// responses: RFC 9457 problem details (Problem, ProblemOf: the one mapping
// of fault codes to statuses), JSON responses, request bodies read under
// one set of rules, and a Mux whose handlers return their error instead of
// writing it, with panic recovery and status recording (Recorder, which the
// local gateway's access log uses too).
package httpedge

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/keygate/keygate/internal/fault"
)

// ProblemType prefixes the `type` of every problem; the suffix is the code.
const ProblemType = "urn:keygate:problem:"

// The problem codes every keygate HTTP handler may answer with. Like fault
// codes, they are a contract with clients: never rename one.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodePreconditionFailed   = "precondition_failed"
	CodeBodyTooLarge         = "body_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeThrottled            = "throttled"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
)

// Problem is an RFC 9457 problem detail with keygate's stable code and, for
// invalid input, the offending field (its wire name: a body field, a query
// parameter or a header). Detail never holds request input verbatim, and the
// JSON encoding escapes whatever it holds.
type Problem struct {
	Type              string `json:"type"`
	Title             string `json:"title"`
	Status            int    `json:"status"`
	Detail            string `json:"detail,omitempty"`
	Code              string `json:"code"`
	Field             string `json:"field,omitempty"`
	RetryAfterSeconds int    `json:"retryAfterSeconds,omitempty"`
}

// Error makes a problem an error, so handlers can return one like any other
// failure and ProblemOf passes it through unchanged.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// NewProblem builds a problem for an edge condition (not a fault) with the
// given status, stable code, offending field ("" for none) and detail.
func NewProblem(status int, code, field, detail string) *Problem {
	return &Problem{Type: ProblemType + code, Title: http.StatusText(status), Status: status, Code: code, Field: field, Detail: detail}
}

// ProblemOf maps any error to a problem: a *Problem as is, a fault error by
// its code (the only place fault codes become HTTP statuses), anything else
// as internal with a generic detail.
func ProblemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	msg := fault.MessageOf(err)
	switch fault.CodeOf(err) {
	case fault.Invalid:
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, fault.FieldOf(err), msg)
	case fault.NotFound:
		return NewProblem(http.StatusNotFound, CodeNotFound, "", msg)
	case fault.Conflict:
		return NewProblem(http.StatusConflict, CodeConflict, "", msg)
	case fault.PreconditionFailed:
		return NewProblem(http.StatusPreconditionFailed, CodePreconditionFailed, "If-Match", msg)
	case fault.Throttled:
		p := NewProblem(http.StatusServiceUnavailable, CodeThrottled, "", "the key store is busy; retry shortly")
		p.RetryAfterSeconds = 1
		return p
	case fault.Unavailable:
		p := NewProblem(http.StatusServiceUnavailable, CodeUnavailable, "", "the key store is unavailable; retry shortly")
		p.RetryAfterSeconds = 1
		return p
	}
	return NewProblem(http.StatusInternalServerError, CodeInternal, "", "internal error")
}

// WriteProblem renders err as an RFC 9457 problem
// (application/problem+json): a *Problem as is, a fault error by its code,
// anything else as a generic internal error.
func WriteProblem(w http.ResponseWriter, err error) {
	p := ProblemOf(err)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if p.RetryAfterSeconds > 0 {
		h.Set("Retry-After", strconv.Itoa(p.RetryAfterSeconds))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON renders a successful JSON response (Cache-Control: no-store).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteProblem(w, err)
		return
	}
	WriteRaw(w, status, b)
}

// WriteRaw renders an already encoded JSON body, as WriteJSON does.
func WriteRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}
