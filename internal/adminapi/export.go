package adminapi

import "net/http"

// The exports below let keygate's other HTTP handlers (the token function's
// internal/tokenapi) answer exactly as the admin API does: the same problem
// documents, headers and body rules. They add nothing of their own.

// NewProblem builds a problem for an edge condition with the given status,
// stable code, offending field ("" for none) and detail.
func NewProblem(status int, code, field, detail string) *Problem {
	return newProblem(status, code, field, detail)
}

// WriteProblem renders err as an RFC 9457 problem: a *Problem as is, a fault
// error by its code, anything else as a generic internal error.
func WriteProblem(w http.ResponseWriter, err error) { writeProblem(w, problemOf(err)) }

// StatusOf is the HTTP status WriteProblem answers err with.
func StatusOf(err error) int { return problemOf(err).Status }

// WriteJSON renders a successful JSON response (Cache-Control: no-store).
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// DecodeBody reads a JSON request body into v under the admin API's rules:
// application/json, at most MaxBodyBytes, one object, no unknown fields.
// Each failure is a *Problem naming the field where it can.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decode(b, v)
}
