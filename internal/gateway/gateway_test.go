package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

// body is a denial's body as a client decodes it.
type body struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	RetryAfterSeconds *int   `json:"retryAfterSeconds"`
}

func decode(t *testing.T, s string) body {
	t.Helper()
	var b body
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("body is not the denial JSON: %v\n%s", err, s)
	}
	if b.RetryAfterSeconds == nil {
		t.Fatalf("body has no retryAfterSeconds: %s", s)
	}
	return b
}

func mustResponse(t *testing.T, rt ResponseType) Response {
	t.Helper()
	r, ok := ResponseFor(rt)
	if !ok {
		t.Fatalf("no response for %s", rt)
	}
	return r
}

func TestAccessDeniedPrintsTheAuthorizersReason(t *testing.T) {
	r := mustResponse(t, AccessDenied)
	if r.Status != 403 {
		t.Errorf("status %d, want 403", r.Status)
	}
	for _, reason := range []Reason{Disabled, Revoked, Expired, NotYetValid, WrongEnvironment, InsufficientScope, MethodNotAllowed, OriginNotAllowed, IPNotAllowed} {
		got := decode(t, r.Render(map[string]string{CtxCode: string(reason), CtxMessage: "the key is " + string(reason), CtxRetryAfterSeconds: "0", CtxRetryAfterField: RetryAfterField(0)}))
		if got.Code != string(reason) || got.Message != "the key is "+string(reason) || *got.RetryAfterSeconds != 0 {
			t.Errorf("%s rendered as %+v", reason, got)
		}
	}
}

func TestLimitDenialCarriesRetryAfterAsNumber(t *testing.T) {
	r := mustResponse(t, AccessDenied)
	for reason, retry := range map[Reason]int{RateLimited: 7, QuotaExceeded: 86400} {
		got := decode(t, r.Render(map[string]string{CtxCode: string(reason), CtxMessage: "over the limit", CtxRetryAfterSeconds: itoa(retry), CtxRetryAfterField: RetryAfterField(int64(retry))}))
		if got.Code != string(reason) || *got.RetryAfterSeconds != retry {
			t.Errorf("%s rendered as %+v, want retryAfterSeconds %d", reason, got, retry)
		}
	}
}

// API Gateway renders ACCESS_DENIED for IAM refusals of admin calls too,
// with no authorizer context: the body must still be valid JSON.
func TestAccessDeniedWithoutContextIsValidJSON(t *testing.T) {
	r := mustResponse(t, AccessDenied)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.Render(nil)), &got); err != nil {
		t.Fatalf("an IAM refusal renders invalid JSON: %v: %s", err, r.Render(nil))
	}
	if got["code"] != "" {
		t.Fatalf("code %v, want empty", got["code"])
	}
}

func TestUnauthorizedIsGenericWhateverTheContext(t *testing.T) {
	r := mustResponse(t, Unauthorized)
	if r.Status != 401 {
		t.Errorf("status %d, want 401", r.Status)
	}
	// API Gateway passes no context with Unauthorized; even if one were
	// there, the body must not depend on it.
	a := r.Render(nil)
	b := r.Render(map[string]string{CtxCode: "unknown_key", CtxMessage: "x"})
	if a != b {
		t.Errorf("401 body depends on context:\n%s\n%s", a, b)
	}
	if got := decode(t, a); got.Code != "unauthorized" {
		t.Errorf("code %q, want unauthorized", got.Code)
	}
}

func TestAuthorizerFailuresAreUnavailable(t *testing.T) {
	for _, rt := range []ResponseType{AuthorizerFailure, AuthorizerConfigurationError} {
		r := mustResponse(t, rt)
		got := decode(t, r.Render(nil))
		if r.Status != 503 || got.Code != string(Unavailable) || *got.RetryAfterSeconds < 1 {
			t.Errorf("%s: status %d body %+v, want 503 unavailable with a retry", rt, r.Status, got)
		}
	}
}

func TestRenderSubstitutesLikeAPIGateway(t *testing.T) {
	ctx := map[string]string{"code": "revoked", "n": "5"}
	cases := map[string]string{
		"":                           "",
		"plain":                      "plain",
		"$context.authorizer.code":   "revoked",
		`"$context.authorizer.code"`: `"revoked"`,
		"$context.authorizer.code,$context.authorizer.n}": "revoked,5}",
		"[$context.authorizer.absent]":                    "[]",
		"$context.authorizer.codes":                       "",
		"$context.error.messageString":                    "$context.error.messageString",
	}
	for in, want := range cases {
		if got := Render(in, ctx); got != want {
			t.Errorf("Render(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUncustomisedTypeFallsBackToAPIGateway(t *testing.T) {
	if _, ok := ResponseFor("THROTTLED"); ok {
		t.Error("THROTTLED is not customised, yet ResponseFor found it")
	}
}

func TestRoutesAreUniqueAndAdminIsIAM(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range append(Routes, Proxy(DefaultProxyBase)...) {
		id := r.Method + " " + r.Path
		if seen[id] {
			t.Errorf("route %s declared twice", id)
		}
		seen[id] = true
		switch {
		case r.Path == "/v1/tokens":
			if r.Auth != AuthKeygate || r.Function != FnTokens {
				t.Errorf("%s: %s -> %s, want keygate -> tokens", id, r.Auth, r.Function)
			}
		case strings.HasPrefix(r.Path, "/v1/"):
			if r.Auth != AuthIAM {
				t.Errorf("admin route %s authorized by %s, want iam", id, r.Auth)
			}
		case r.Path == "/.well-known/jwks.json":
			if r.Auth != AuthNone {
				t.Errorf("%s must be public, is %s", id, r.Auth)
			}
		}
	}
	if got := Functions(Routes); strings.Join(got, ",") != "issuer,rotator,tokens" {
		t.Errorf("Functions(Routes) = %v", got)
	}
}

func TestProxyCoversBaseAndEverythingBelow(t *testing.T) {
	got := Proxy("/demo/")
	if len(got) != 2 || got[0].Path != "/demo" || got[1].Path != "/demo/{proxy+}" {
		t.Fatalf("Proxy(demo) = %+v", got)
	}
	for _, r := range got {
		if r.Auth != AuthKeygate || r.Function != Upstream || r.Method != "ANY" {
			t.Errorf("proxy route %+v must send any method to the upstream behind the keygate authorizer", r)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestCORSOriginsAndHeaders(t *testing.T) {
	for _, bad := range []string{"app.example.com", "https://*.example.com", "https://app.example.com/", "https://App.example.com",
		"ftp://x.example", "https://a.example,*", "https://u@a.example"} {
		if _, err := ParseCORSOrigins(bad); err == nil {
			t.Errorf("ParseCORSOrigins(%q) accepted a bad list", bad)
		}
	}
	one, _ := ParseCORSOrigins("https://app.example.com")
	two, _ := ParseCORSOrigins("https://app.example.com, http://localhost:5173")
	star, _ := ParseCORSOrigins("*")
	for _, c := range []struct {
		origins      []string
		origin, want string
	}{
		{one, "https://evil.example", "https://app.example.com"}, // static: the browser refuses the mismatch
		{two, "http://localhost:5173", "http://localhost:5173"},  // copied from the request
		{two, "", ""},
		{star, "https://x.example", "*"},
		{nil, "https://x.example", ""},
	} {
		got := CORS{AllowOrigins: c.origins}.ResponseHeaders(c.origin)["Access-Control-Allow-Origin"]
		if got != c.want {
			t.Errorf("%v from %q: %q, want %q", c.origins, c.origin, got, c.want)
		}
	}
	p := CORS{AllowOrigins: two, AllowHeaders: []string{"Content-Type"}}
	if h := p.PreflightHeaders("https://evil.example"); h["Access-Control-Allow-Origin"] != "https://app.example.com" ||
		h["Access-Control-Allow-Headers"] != "Content-Type,x-api-key,Authorization" || h["Vary"] != "Origin" {
		t.Errorf("preflight headers %v", h)
	}
}
