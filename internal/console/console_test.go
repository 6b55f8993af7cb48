package console

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI stands in for the admin API where a test needs answers of a
// given shape; it records every request. (The browser tests run the real
// admin API on DynamoDB Local.)
type fakeAPI struct {
	mu     sync.Mutex
	calls  []Request
	answer func(r Request) (int, any)
}

func (f *fakeAPI) Do(_ context.Context, r Request) (*Response, error) {
	f.mu.Lock()
	f.calls = append(f.calls, r)
	f.mu.Unlock()
	status, body := 404, any(map[string]string{"code": "not_found", "detail": "no such route"})
	if f.answer != nil {
		status, body = f.answer(r)
	}
	b, _ := json.Marshal(body)
	return &Response{Status: status, Header: http.Header{}, Body: b}, nil
}

func (f *fakeAPI) requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.calls...)
}

// served is a console on a loopback port and a browser-like client.
type served struct {
	c      *Console
	base   string
	port   string
	client *http.Client
}

var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func serve(t *testing.T, api API) *served {
	t.Helper()
	l, err := Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	port := strconv.Itoa(p)
	c, err := New(Options{API: api, Target: "test API", Now: func() time.Time { return now }}, p)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(c)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &served{c: c, base: "http://127.0.0.1:" + port, port: port, client: &http.Client{
		Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (s *served) get(t *testing.T, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	return s.send(t, http.MethodGet, path, nil, hdr...)
}

func (s *served) send(t *testing.T, method, path string, form url.Values, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn follows the printed link and returns the session's CSRF token.
func (s *served) signIn(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(s.c.LoginURL())
	resp, _ := s.get(t, u.RequestURI())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	_, page := s.get(t, "/keys/new")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the new-key form:\n%s", page)
	}
	return m[1]
}

func TestOnlyRequestsToTheConsolesOwnHostAreServed(t *testing.T) {
	s := serve(t, &fakeAPI{})
	s.signIn(t)
	for _, host := range []string{"evil.example:" + s.port, "evil.example", "127.0.0.1:1", "127.0.0.2:" + s.port, "[::1]:" + s.port} {
		if resp, body := s.get(t, "/owners", "Host", host); resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(body, "<form") {
			t.Errorf("Host %s: %d, want 421 and no page", host, resp.StatusCode)
		}
	}
	if resp, _ := s.get(t, "/owners"); resp.StatusCode != http.StatusOK {
		t.Errorf("Host 127.0.0.1:%s: %d, want 200", s.port, resp.StatusCode)
	}
	// localhost is the console too (its cookies are its own: sign in there).
	if resp, _ := s.get(t, "/owners", "Host", "localhost:"+s.port); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Host localhost:%s: %d, want 401 (served, not signed in)", s.port, resp.StatusCode)
	}
}

func TestTheSignInLinkSignsInOneBrowserOnce(t *testing.T) {
	s := serve(t, &fakeAPI{})
	for _, path := range []string{"/owners", "/keys/new", "/assets/console.js", "/assets/vendor/htmx.min.js", "/"} {
		if resp, body := s.get(t, path); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "keygate console") {
			t.Errorf("%s without a session: %d %q, want 401 saying how to sign in", path, resp.StatusCode, body)
		}
	}
	u, _ := url.Parse(s.c.LoginURL())
	if resp, _ := s.get(t, "/login?token=wrong"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a wrong token: %d, want 403", resp.StatusCode)
	}
	resp, _ := s.get(t, u.RequestURI())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/owners" {
		t.Fatalf("the link: %d to %q, want 303 to /owners (the token leaves the address bar)", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/" ||
		cookies[0].Name != "keygate_console_"+s.port || cookies[0].Value == "" || strings.Contains(cookies[0].Value, u.Query().Get("token")) {
		t.Fatalf("session cookie %+v, want one HttpOnly, SameSite=Strict cookie for this port, unrelated to the token", cookies)
	}
	if resp, _ := s.get(t, "/owners"); resp.StatusCode != http.StatusOK {
		t.Errorf("with the session: %d", resp.StatusCode)
	}
	// Another browser (no cookie) with the same link gets nothing.
	other := serveClient(s)
	if resp, _ := other.get(t, u.RequestURI()); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the link used a second time: %d, want 403", resp.StatusCode)
	}
	if resp, _ := other.get(t, "/owners"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a second browser: %d, want 401", resp.StatusCode)
	}
	// The browser already signed in is simply sent on.
	if resp, _ := s.get(t, u.RequestURI()); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the link again in the signed-in browser: %d, want 303", resp.StatusCode)
	}
	// A forged cookie is no session.
	forged := serveClient(s)
	forged.client.Jar.SetCookies(&url.URL{Scheme: "http", Host: "127.0.0.1:" + s.port},
		[]*http.Cookie{{Name: "keygate_console_" + s.port, Value: u.Query().Get("token")}})
	if resp, _ := forged.get(t, "/owners"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a cookie holding the token: %d, want 401", resp.StatusCode)
	}
}

// serveClient is a second browser for the same console.
func serveClient(s *served) *served {
	jar, _ := cookiejar.New(nil)
	c := *s
	c.client = &http.Client{Jar: jar, CheckRedirect: s.client.CheckRedirect}
	return &c
}

func TestWritesNeedTheCSRFTokenAndTheConsolesOrigin(t *testing.T) {
	api := &fakeAPI{answer: func(r Request) (int, any) {
		return 201, map[string]any{"id": "key_x", "name": "n", "ownerId": "acme", "status": "active", "key": "kg_sk_test_x"}
	}}
	s := serve(t, api)
	csrf := s.signIn(t)
	form := url.Values{"name": {"n"}, "ownerId": {"acme"}, "type": {"secret"}, "environment": {"test"}}
	withToken := func(token string) url.Values {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if token != "" {
			f.Set("csrf", token)
		}
		return f
	}
	for name, c := range map[string]struct {
		form url.Values
		hdr  []string
	}{
		"no token":              {withToken(""), nil},
		"a wrong token":         {withToken("x" + csrf), nil},
		"another site's origin": {withToken(csrf), []string{"Origin", "http://evil.example"}},
		"another port's origin": {withToken(csrf), []string{"Origin", "http://127.0.0.1:1"}},
		"an opaque origin":      {withToken(csrf), []string{"Origin", "null"}},
		"a cross-site fetch":    {withToken(csrf), []string{"Sec-Fetch-Site", "cross-site"}},
		"a same-site fetch":     {withToken(csrf), []string{"Sec-Fetch-Site", "same-site"}},
	} {
		if resp, _ := s.send(t, http.MethodPost, "/keys", c.form, c.hdr...); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, resp.StatusCode)
		}
	}
	if n := len(api.requests()); n != 0 {
		t.Fatalf("refused writes reached the admin API %d times", n)
	}
	resp, body := s.send(t, http.MethodPost, "/keys", withToken(csrf), "Origin", s.base, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusCreated || len(api.requests()) != 1 || !strings.Contains(body, "kg_sk_test_x") {
		t.Fatalf("a write from the console's page: %d, %d API calls\n%s", resp.StatusCode, len(api.requests()), body)
	}
	if resp, _ := s.send(t, http.MethodDelete, "/keys/key_x", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405 (writes are form POSTs)", resp.StatusCode)
	}
}

func TestPagesForbidScriptsFromElsewhereCachingAndFraming(t *testing.T) {
	s := serve(t, &fakeAPI{})
	s.signIn(t)
	resp, body := s.get(t, "/owners")
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy allows unsafe sources: %q", csp)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "same-origin" {
		t.Errorf("headers %v", h)
	}
	// Nothing is loaded from another origin, and htmx keeps no history
	// copies of pages (which would put a new key into localStorage).
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(body) {
		t.Errorf("the page loads something from another origin:\n%s", body)
	}
	if !strings.Contains(body, `"historyCacheSize":0`) || !strings.Contains(body, `"historyEnabled":false`) {
		t.Errorf("htmx's history cache is not off:\n%s", body)
	}
	for _, asset := range []string{"/assets/vendor/htmx.min.js", "/assets/vendor/chart.umd.min.js", "/assets/console.js", "/assets/console.css"} {
		if resp, _ := s.get(t, asset); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", asset, resp.StatusCode)
		}
	}
}
