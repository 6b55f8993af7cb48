package localstack

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/cli"
)

// rawCall sends a request whose path goes on the request line exactly as
// written (no cleaning, no escaping by the client), as an attacker sends
// it, and returns the status and the body's code.
func (l *local) rawCall(t *testing.T, method, rawPath string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	u, err := url.Parse(l.url)
	if err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: method, URL: &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: "//" + u.Host + rawPath},
		Header: http.Header{}, Host: u.Host}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// issueKey issues a key with the CLI and returns its plaintext.
func (l *local) issueKey(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := l.keygate(t, append([]string{"keys", "create", "--name", "hardening", "--owner", "hardening"}, args...)...)
	if code != cli.ExitOK {
		t.Fatalf("keygate keys create: exit %d\n%s", code, errOut)
	}
	return decodeJSON[issued](t, out).Key
}

// TestPathVariantsOnTheLocalStack is the review's reproduction on make dev:
// with a route * /api/admin/* needing scope admin, a key holding only read
// gets 403 on every variant of the admin path, refused as invalid_path or
// scope-checked; HEAD needs the GET route's scopes; unmatched paths are
// denied when the deployment says so.
func TestPathVariantsOnTheLocalStack(t *testing.T) {
	l := startLocal(t, map[string]string{
		"KEYGATE_ROUTES": `[{"method":"*","path":"/api/admin/*","scopes":["admin"]},
			{"method":"GET","path":"/api/users/{id}","scopes":["users"]},{"method":"GET","path":"/api/public/*"}]`,
		"KEYGATE_UNMATCHED": "deny",
	})
	reader := l.issueKey(t, "--scope", "read")
	admin := l.issueKey(t, "--scope", "admin", "--scope", "users")
	cases := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/admin/x", 403, "insufficient_scope"},
		{"GET", "/api//admin/x", 403, "invalid_path"},
		{"GET", "/api/Admin/x", 403, "insufficient_scope"},
		{"GET", "/api/ADMIN/x", 403, "insufficient_scope"},
		{"GET", "/api/./admin/x", 403, "invalid_path"},
		{"GET", "/api/public/../admin/x", 403, "invalid_path"},
		{"GET", "/api/%2e%2e/admin/x", 403, "invalid_path"},
		{"GET", "/api/public/%252e%252e/admin", 403, "invalid_path"},
		{"GET", "/api/admin%2fx", 403, "insufficient_scope"}, // decoded once, as API Gateway does: /api/admin/x
		{"GET", "/api/%252fadmin", 403, "invalid_path"},
		{"GET", "/api/%61dmin/x", 403, "insufficient_scope"},
		{"GET", "/api/admin;x=1/y", 403, "invalid_path"},
		{"GET", "/api/admin./x", 403, "invalid_path"},
		{"HEAD", "/api/users/1", 403, ""}, // a HEAD response has no body
		{"GET", "/api/users/1", 403, "insufficient_scope"},
		{"GET", "/api/elsewhere", 403, "route_not_allowed"},
		{"GET", "/api/public/x", 200, ""},
	}
	for _, c := range cases {
		status, _, body := l.rawCall(t, c.method, c.path, "x-api-key", reader)
		if status != c.status || (c.code != "" && !strings.Contains(body, `"code":"`+c.code+`"`)) {
			t.Errorf("%s %s with a read key: %d %s, want %d %s", c.method, c.path, status, body, c.status, c.code)
		}
	}
	for _, p := range []string{"/api/admin/x", "/api/Admin/x", "/api/users/1"} {
		for _, m := range []string{"GET", "HEAD"} {
			if status, _, body := l.rawCall(t, m, p, "x-api-key", admin); status != 200 {
				t.Errorf("%s %s with an admin key: %d %s", m, p, status, body)
			}
		}
	}
}

// TestCORSOnTheLocalStack: with allowed origins, a preflight OPTIONS on the
// proxy is answered 204 with the CORS headers and no key (the authorizer
// never runs), and every denial carries Access-Control-Allow-Origin so the
// page can read it; admin routes answer no preflight. Without origins,
// OPTIONS goes through the authorizer as any method.
func TestCORSOnTheLocalStack(t *testing.T) {
	l := startLocal(t, map[string]string{
		"KEYGATE_CORS_ALLOW_ORIGINS": "https://app.example.com,https://admin.example.com",
		"KEYGATE_ROUTES":             `[{"method":"GET","path":"/api/admin/*","scopes":["admin"]}]`,
	})
	origin := "https://app.example.com"
	status, hdr, body := l.rawCall(t, "OPTIONS", "/api/orders/1", "Origin", origin,
		"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "x-api-key")
	if status != 204 || hdr.Get("Access-Control-Allow-Origin") != origin ||
		!strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "x-api-key") ||
		!strings.Contains(hdr.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(hdr.Get("Access-Control-Allow-Methods"), "GET") || hdr.Get("Access-Control-Max-Age") != "600" {
		t.Fatalf("preflight from an allowed origin: %d %v %s", status, hdr, body)
	}
	if strings.Contains(l.logs.String(), `"function":"authorizer"`) {
		t.Error("the preflight reached the authorizer")
	}
	// Another origin gets an answer a browser refuses to match.
	if _, hdr, _ := l.rawCall(t, "OPTIONS", "/api/orders/1", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET"); hdr.Get("Access-Control-Allow-Origin") == "https://evil.example" {
		t.Errorf("a preflight from another origin was allowed: %v", hdr)
	}
	// Denials carry the origin: no key (401), a refused key (403).
	if status, hdr, body := l.rawCall(t, "GET", "/api/orders/1", "Origin", origin); status != 401 || hdr.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("a 401 denial: %d %v %s", status, hdr, body)
	}
	plain := l.issueKey(t, "--scope", "read")
	if status, hdr, body := l.rawCall(t, "GET", "/api/admin/x", "Origin", origin, "x-api-key", plain); status != 403 ||
		hdr.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(body, "insufficient_scope") {
		t.Errorf("a 403 denial: %d %v %s", status, hdr, body)
	}
	if status, hdr, _ := l.rawCall(t, "OPTIONS", "/v1/keys", "Origin", origin, "Access-Control-Request-Method", "POST"); status != 403 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a preflight on an admin route: %d %v", status, hdr)
	}

	off := startLocal(t, nil)
	if status, hdr, _ := off.rawCall(t, "OPTIONS", "/api/orders/1", "Origin", origin, "Access-Control-Request-Method", "GET"); status != 401 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("without CORS, a preflight goes through the authorizer: %d %v", status, hdr)
	}
}
