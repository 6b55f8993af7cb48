// Package apicall is one call to keygate's API as plain data: what the
// console asks of the admin API for a page, and what the smoke test sends
// to a deployment. The CLI's client implements Client for both, so each
// reaches exactly the API every command does (--api-url, --stack) and
// signs as they do, while neither depends on the CLI.
package apicall

import (
	"context"
	"net/http"
	"net/url"
)

// Request is one call.
type Request struct {
	Method string
	// Path is under the API's base URL, e.g. /v1/keys.
	Path  string
	Query url.Values
	// Body is a JSON document; nil sends none.
	Body []byte
	// Header holds what the call needs (If-Match, Idempotency-Key, a key
	// in x-api-key).
	Header http.Header
}

// Response is the API's answer, whatever its status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client sends calls. An error means no answer at all (unreachable, no
// credentials); its message says why.
type Client interface {
	Do(ctx context.Context, r Request) (*Response, error)
}

// ClientFunc makes a function a Client.
type ClientFunc func(ctx context.Context, r Request) (*Response, error)

// Do calls f.
func (f ClientFunc) Do(ctx context.Context, r Request) (*Response, error) { return f(ctx, r) }
