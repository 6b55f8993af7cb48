// Package fault defines keygate's domain errors: a stable code, the field at
// fault and a message that is safe to show a client.
//
// Errors carry codes rather than HTTP statuses so that the domain and the
// store never decide how a failure is rendered; the admin API maps codes to
// RFC 9457 problems and the authorizer maps them to reason codes, each only at
// its own edge (the pattern of benbjohnson/wtf).
package fault

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Code classifies an error. The values are part of the admin API's contract
// (they appear as the `code` of a problem), so they are never renamed.
type Code string

// The codes every layer may return.
const (
	// Invalid means the caller sent something that breaks a rule; Field names it.
	Invalid Code = "invalid"
	// NotFound means the thing asked for does not exist.
	NotFound Code = "not_found"
	// Conflict means the write lost a race or would overwrite something.
	Conflict Code = "conflict"
	// PreconditionFailed means an If-Match version did not match.
	PreconditionFailed Code = "precondition_failed"
	// Throttled means DynamoDB (or another dependency) refused for load; retry later.
	Throttled Code = "throttled"
	// Unavailable means a dependency failed or timed out; the outcome is unknown.
	Unavailable Code = "unavailable"
	// Internal is anything else: a bug.
	Internal Code = "internal"
)

// Error is a coded error. Message must never contain a secret: it may reach a
// client, a log line or an audit record.
type Error struct {
	Code    Code
	Field   string // the offending field, in its wire name; empty when none
	Message string
	Err     error // the cause, for logs and errors.Is; never shown to clients
}

// Error implements error.
func (e *Error) Error() string {
	s := string(e.Code)
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause so that errors.Is and errors.As see through.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Fieldf returns an Invalid error about one field: validation errors name the
// field and the rule it broke.
func Fieldf(field, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with the given code whose cause is err.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, Internal for any
// other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// FieldOf returns the field named by the first *Error in err's chain.
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// MessageOf returns a message safe to show a client: the *Error's message, or
// a generic one for errors that carry no code (their text may hold internals).
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}

// Is reports whether err carries the given code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// Clip shortens text quoted in a message to its first n bytes at most, cut
// on a rune boundary and followed by "...", so that a long or hostile input can
// neither flood a message nor leave half a UTF-8 character in it. Text that
// may hold a key is redacted before it is clipped (apikey.Redact): a cut
// through a key would hide its start from any later redaction.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
