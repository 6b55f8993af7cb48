package adminapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/keygate/keygate/internal/fault"
)

// ProblemType prefixes the `type` of every problem; the suffix is the code.
const ProblemType = "urn:keygate:problem:"

// The problem codes the admin API answers with, beyond the fault codes. Like
// fault codes, they are a contract with clients: never rename one.
const (
	CodeInvalidRequest        = "invalid_request"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeConflict              = "conflict"
	CodeIdempotencyInProgress = "idempotency_in_progress"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
	CodeIdempotencyUnreadable = "idempotency_unreadable"
	CodePreconditionFailed    = "precondition_failed"
	CodePreconditionRequired  = "precondition_required"
	CodeBodyTooLarge          = "body_too_large"
	CodeUnsupportedMediaType  = "unsupported_media_type"
	CodeThrottled             = "throttled"
	CodeUnavailable           = "unavailable"
	CodeInternal              = "internal"
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
// failure and problemOf passes it through unchanged.
func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// newProblem builds a problem for an edge condition (not a fault).
func newProblem(status int, code, field, detail string) *Problem {
	return &Problem{Type: ProblemType + code, Title: http.StatusText(status), Status: status, Code: code, Field: field, Detail: detail}
}

// problemOf maps any error to a problem: a *Problem as is, a fault error by
// its code (the only place fault codes become HTTP statuses), anything else
// as internal with a generic detail.
func problemOf(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	msg := fault.MessageOf(err)
	switch fault.CodeOf(err) {
	case fault.Invalid:
		return newProblem(http.StatusBadRequest, CodeInvalidRequest, fault.FieldOf(err), msg)
	case fault.NotFound:
		return newProblem(http.StatusNotFound, CodeNotFound, "", msg)
	case fault.Conflict:
		return newProblem(http.StatusConflict, CodeConflict, "", msg)
	case fault.PreconditionFailed:
		return newProblem(http.StatusPreconditionFailed, CodePreconditionFailed, "If-Match", msg)
	case fault.Throttled:
		p := newProblem(http.StatusServiceUnavailable, CodeThrottled, "", "the key store is busy; retry shortly")
		p.RetryAfterSeconds = 1
		return p
	case fault.Unavailable:
		p := newProblem(http.StatusServiceUnavailable, CodeUnavailable, "", "the key store is unavailable; retry shortly")
		p.RetryAfterSeconds = 1
		return p
	}
	return newProblem(http.StatusInternalServerError, CodeInternal, "", "internal error")
}

// writeProblem renders p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
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

// writeJSON renders a successful response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, problemOf(err))
		return
	}
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}
