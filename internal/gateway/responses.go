package gateway

import (
	"strconv"
	"strings"
)

// CredentialHeaders are the request headers a key or token can arrive in.
// The protected proxy blanks them before the request reaches the upstream,
// so the upstream never holds a client's credential; it reads the identity
// from the Forward headers instead.
var CredentialHeaders = []string{"x-api-key", "Authorization"}

// ResponseType is an API Gateway gateway response type: the error API
// Gateway itself produces when a request does not reach the integration.
type ResponseType string

// The gateway response types keygate customises.
const (
	// Unauthorized: the authorizer raised the error "Unauthorized" (no
	// credential recognised). API Gateway carries no context with it.
	Unauthorized ResponseType = "UNAUTHORIZED"
	// AccessDenied: the authorizer returned a Deny policy; its context is
	// available to the template.
	AccessDenied ResponseType = "ACCESS_DENIED"
	// AuthorizerFailure: the authorizer returned an error other than
	// "Unauthorized", timed out or crashed: it could not decide.
	AuthorizerFailure ResponseType = "AUTHORIZER_FAILURE"
	// AuthorizerConfigurationError: the authorizer's response was not
	// understood (or it could not be invoked): it could not decide either.
	AuthorizerConfigurationError ResponseType = "AUTHORIZER_CONFIGURATION_ERROR"
)

// ContextVar is how a response template names an authorizer context value:
// "$context.authorizer.code" prints the context key "code".
const ContextVar = "$context.authorizer."

// Response is one gateway response: the status, the JSON body template and
// any headers of its own. Templates are plain substitution, as API Gateway
// applies them (gateway response templates are not run through VTL): every
// $context.authorizer.X is replaced by the context value X, or by nothing
// when it is absent.
//
// Header values are static: a gateway response's header mappings take a
// request parameter or a literal, never the authorizer's context (AWS:
// "The parameter values can take any incoming request parameter value or a
// static custom value",
// https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-swagger-extensions-gateway-responses.gatewayResponse.html).
// So the one 403 that serves every refusal cannot carry a Retry-After that
// only its rate-limit and quota denials should have: those say when to
// retry in the body's retryAfterSeconds; the 503s, whose wait is fixed,
// carry Retry-After too.
type Response struct {
	Type   ResponseType
	Status int
	Body   string
	// Extra are headers of this response only, added to ResponseHeaders.
	Extra map[string]string
}

// Responses is the response mapping, defined once: the stack turns each entry
// into a gateway response and the local gateway renders the same entries with
// Render, so a client sees the same bytes from both.
//
// A 401 can say nothing specific because API Gateway passes no context with
// "Unauthorized". A 403 prints the reason the authorizer put in its Deny
// context. retryAfterSeconds is a JSON number that the authorizer supplies as
// a whole fragment (CtxRetryAfterField) on every deny, 0 when retrying will
// not help, so that an IAM refusal of an admin call, which renders the same
// template with no context, still prints valid JSON:
// {"code":"","message":""}. Messages must not contain `"` or `\`, because
// the gateway does not escape what it substitutes.
var Responses = []Response{
	{
		Type:   Unauthorized,
		Status: 401,
		Body:   `{"code":"unauthorized","message":"a valid API key is required: send it in the x-api-key header or as Authorization: Bearer","retryAfterSeconds":0}`,
	},
	{
		Type:   AccessDenied,
		Status: 403,
		Body:   `{"code":"` + ContextVar + CtxCode + `","message":"` + ContextVar + CtxMessage + `"` + ContextVar + CtxRetryAfterField + `}`,
	},
	{
		Type:   AuthorizerFailure,
		Status: 503,
		Body:   unavailableBody,
		Extra:  unavailableHeaders,
	},
	{
		Type:   AuthorizerConfigurationError,
		Status: 503,
		Body:   unavailableBody,
		Extra:  unavailableHeaders,
	},
}

// ResponseHeaders are the headers of every response in Responses: JSON, and
// never cached (a denial is about this request, at this time). The stack
// declares them on each gateway response; the local gateway writes them.
var ResponseHeaders = map[string]string{
	"Content-Type":  "application/json",
	"Cache-Control": "no-store",
}

// UnavailableRetryAfter is the wait, in whole seconds, that an unavailable
// denial asks for, in its body and its Retry-After header.
const UnavailableRetryAfter = 1

var unavailableBody = `{"code":"` + string(Unavailable) + `","message":"the key could not be verified; retry shortly"` +
	RetryAfterField(UnavailableRetryAfter) + `}`

var unavailableHeaders = map[string]string{"Retry-After": strconv.Itoa(UnavailableRetryAfter)}

// Headers are the headers of response r: ResponseHeaders and its own.
func (r Response) Headers() map[string]string {
	h := make(map[string]string, len(ResponseHeaders)+len(r.Extra))
	for k, v := range ResponseHeaders {
		h[k] = v
	}
	for k, v := range r.Extra {
		h[k] = v
	}
	return h
}

// ResponseFor returns the mapping's response of type t, and false if keygate
// does not customise t (API Gateway's default response applies).
func ResponseFor(t ResponseType) (Response, bool) {
	for _, r := range Responses {
		if r.Type == t {
			return r, true
		}
	}
	return Response{}, false
}

// Render returns the response body for an authorizer context, substituting
// exactly as API Gateway does: each $context.authorizer.<name> (name being
// letters and digits) becomes ctx[name], or "" when ctx has no such key.
func (r Response) Render(ctx map[string]string) string {
	return Render(r.Body, ctx)
}

// Render substitutes the authorizer context into a gateway response
// template; see Response.Render.
func Render(template string, ctx map[string]string) string {
	var b strings.Builder
	b.Grow(len(template) + 64)
	for {
		i := strings.Index(template, ContextVar)
		if i < 0 {
			b.WriteString(template)
			return b.String()
		}
		b.WriteString(template[:i])
		rest := template[i+len(ContextVar):]
		n := 0
		for n < len(rest) && isNameByte(rest[n]) {
			n++
		}
		b.WriteString(ctx[rest[:n]])
		template = rest[n:]
	}
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}
