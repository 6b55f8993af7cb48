package gateway

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORS is the protected proxy's cross-origin policy, so that browsers can
// use publishable keys from other origins: preflight OPTIONS requests on
// the proxy are answered by the gateway itself, without the authorizer (a
// preflight carries no key), and every gateway response (a denial) carries
// Access-Control-Allow-Origin, so that a page can read why it was refused.
// The stack declares it as the proxy's CORS preflight and on its gateway
// responses; the local gateway renders the same headers. The zero value
// (no origins) is off: OPTIONS then goes through the authorizer like any
// method, and no response carries CORS headers.
//
// Responses the upstream (or a keygate function) gives on an allowed
// request pass through unchanged: their CORS headers are the upstream's.
type CORS struct {
	// AllowOrigins are the origins allowed ("https://app.example.com",
	// scheme, host and port, compared exactly), or just "*" for any.
	AllowOrigins []string
	// AllowMethods are the methods a preflight allows.
	AllowMethods []string
	// AllowHeaders are the request headers a preflight allows; the
	// credential headers (CredentialHeaders) are always among them.
	AllowHeaders []string
	// MaxAge is how long a browser may cache a preflight's answer.
	MaxAge time.Duration
}

// The CORS defaults: the methods and headers an API with keys needs.
var (
	DefaultCORSMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	DefaultCORSHeaders = []string{"Content-Type", "x-api-key", "Authorization"}
)

// DefaultCORSMaxAge is the default preflight cache lifetime.
const DefaultCORSMaxAge = 10 * time.Minute

// PreflightStatus is the status of an answered preflight (API Gateway's
// CORS preflight mock integration answers 204).
const PreflightStatus = 204

// list splits a comma-separated list, or reads a JSON list of strings (as
// cdk.json may hold one), into its items, trimmed, without empty ones.
func list(text string) ([]string, error) {
	items := strings.Split(text, ",")
	if t := strings.TrimSpace(text); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal([]byte(t), &items); err != nil {
			return nil, errors.New("must be a list of strings")
		}
	}
	var out []string
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out, nil
}

// ParseCORSOrigins reads a list of origins (comma separated, or a JSON
// list), or "*". Each origin is scheme://host[:port] with no path, no
// wildcard and no trailing slash, as browsers send the Origin header.
func ParseCORSOrigins(text string) ([]string, error) {
	items, err := list(text)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range items {
		if o == "*" {
			out = append(out, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Contains(u.Host, "*") ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ToLower(o) != o {
			return nil, errors.New("must be * or origins such as https://app.example.com (scheme, host and port only, lowercase), comma separated")
		}
		out = append(out, o)
	}
	if slices.Contains(out, "*") && len(out) > 1 {
		return nil, errors.New("* allows every origin: list origins or * alone")
	}
	return out, nil
}

// ParseTokens reads a list (comma separated, or a JSON list) of HTTP
// methods or header names (tokens, RFC 9110), as CORS lists them.
func ParseTokens(text string) ([]string, error) {
	items, err := list(text)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range items {
		for _, c := range t {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
				return nil, errors.New("must be a comma-separated list of names such as GET or x-api-key")
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// Enabled reports whether the policy allows any origin.
func (c CORS) Enabled() bool { return len(c.AllowOrigins) > 0 }

// Headers are the allowed request headers: AllowHeaders (or the default)
// with the credential headers added if missing.
func (c CORS) Headers() []string {
	h := c.AllowHeaders
	if len(h) == 0 {
		h = DefaultCORSHeaders
	}
	h = slices.Clone(h)
	for _, ch := range CredentialHeaders {
		if !slices.ContainsFunc(h, func(x string) bool { return strings.EqualFold(x, ch) }) {
			h = append(h, ch)
		}
	}
	return h
}

// Methods are the allowed methods: AllowMethods or the default.
func (c CORS) Methods() []string {
	if len(c.AllowMethods) == 0 {
		return slices.Clone(DefaultCORSMethods)
	}
	return slices.Clone(c.AllowMethods)
}

// Age is MaxAge or the default, in whole seconds.
func (c CORS) Age() int {
	if c.MaxAge <= 0 {
		return int(DefaultCORSMaxAge / time.Second)
	}
	return int(c.MaxAge / time.Second)
}

// OriginHeader is the Access-Control-Allow-Origin a preflight answers a
// request from origin with, as the stack's preflight (API Gateway's CORS
// mock integration, as the CDK declares it) does: "*", or the request's
// origin when it is allowed, or else the first allowed origin, which a
// browser refuses to match.
func (c CORS) OriginHeader(origin string) string {
	if !c.Enabled() {
		return ""
	}
	if c.AllowOrigins[0] == "*" {
		return "*"
	}
	if slices.Contains(c.AllowOrigins, origin) {
		return origin
	}
	return c.AllowOrigins[0]
}

// PreflightHeaders are the headers of an answered preflight from origin.
func (c CORS) PreflightHeaders(origin string) map[string]string {
	h := map[string]string{
		"Access-Control-Allow-Origin":  c.OriginHeader(origin),
		"Access-Control-Allow-Methods": strings.Join(c.Methods(), ","),
		"Access-Control-Allow-Headers": strings.Join(c.Headers(), ","),
		"Access-Control-Max-Age":       strconv.Itoa(c.Age()),
	}
	if c.AllowOrigins[0] != "*" {
		h["Vary"] = "Origin"
	}
	return h
}

// ResponseOrigin is how every gateway response (a denial) sets
// Access-Control-Allow-Origin, in API Gateway's terms: a static value
// (Static true: "*" or the one allowed origin), or the request's Origin
// header itself when several origins are allowed (Static false), because a
// gateway response's headers can only be static or copied from the
// request: API Gateway cannot pick among origins there. A denial says only
// why a request was refused, so letting any origin read it gives nothing
// away; the upstream's own responses carry the upstream's CORS headers.
func (c CORS) ResponseOrigin() (value string, static bool) {
	if len(c.AllowOrigins) == 1 {
		return c.AllowOrigins[0], true
	}
	return "Origin", false
}

// ResponseHeaders returns the CORS headers of a gateway response to a
// request whose Origin header is origin, as API Gateway renders them from
// ResponseOrigin; nil when the policy is off or the header would be empty.
func (c CORS) ResponseHeaders(origin string) map[string]string {
	if !c.Enabled() {
		return nil
	}
	v, static := c.ResponseOrigin()
	if !static {
		if origin == "" {
			return nil
		}
		return map[string]string{"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
	}
	h := map[string]string{"Access-Control-Allow-Origin": v}
	if v != "*" {
		h["Vary"] = "Origin"
	}
	return h
}
