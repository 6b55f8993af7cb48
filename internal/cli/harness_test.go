package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
)

// This file is the test harness: a stand-in admin API (an httptest server
// that records every request and answers with canned responses shaped as the
// admin API's contract) and a way to run the CLI against it.

// seen is one request the stand-in API received.
type seen struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	Body                         []byte
}

// reply is a canned answer; a negative status drops the connection.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeAPI is the stand-in admin API.
type fakeAPI struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []seen
	respond func(n int, r seen) reply // n counts requests from 0
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("read request body: %v", err)
	}
	s := seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Body: body}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, s)
	f.mu.Unlock()
	rep := f.respond(n, s)
	if rep.status < 0 { // drop the connection without an answer
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			f.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (f *fakeAPI) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// newLocalAPI starts the stand-in on loopback, as the local gateway runs.
func newLocalAPI(t *testing.T, respond func(n int, r seen) reply) *fakeAPI {
	f := &fakeAPI{t: t, respond: respond}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// deployedURL is the API URL of a deployed stack, as CloudFormation
// reports it; newDeployedAPI routes it to the stand-in.
const deployedURL = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod"

// newDeployedAPI starts the stand-in over TLS and returns a transport that
// sends every connection to it, so that the CLI talks to a non-loopback
// https URL (and signs) while the test stays on this machine.
func newDeployedAPI(t *testing.T, respond func(n int, r seen) reply) (*fakeAPI, http.RoundTripper) {
	f := &fakeAPI{t: t, respond: respond}
	f.srv = httptest.NewTLSServer(f)
	t.Cleanup(f.srv.Close)
	addr := f.srv.Listener.Addr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test server's own certificate
	}
	t.Cleanup(tr.CloseIdleConnections)
	return f, tr
}

// result is what one CLI run produced.
type result struct {
	code           int
	stdout, stderr string
	sleeps         []time.Duration
}

// testNow is the clock of every test run.
var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type runOpts struct {
	env       map[string]string
	transport http.RoundTripper
	terminal  bool
	// stdin is what standard input holds; typing says a person types it
	// at a terminal.
	stdin  string
	typing bool
	// jitter, when set, replaces the random spread of retry waits.
	jitter func(time.Duration) time.Duration
}

func runCLI(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	var res result
	d := defaultDeps()
	d.transport = o.transport
	d.isTerminal = func(io.Writer) bool { return o.terminal }
	d.now = func() time.Time { return testNow }
	d.stdin = strings.NewReader(o.stdin)
	d.stdinTerminal = func() bool { return o.typing }
	if o.jitter != nil {
		d.jitter = o.jitter
	}
	d.sleep = func(_ context.Context, dur time.Duration) error {
		res.sleeps = append(res.sleeps, dur)
		return nil
	}
	env := func(k string) string { return o.env[k] }
	res.code = run(context.Background(), args, &stdout, &stderr, env, d)
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

// local returns run options that point the CLI at a local stand-in.
func local(f *fakeAPI) runOpts {
	return runOpts{env: map[string]string{"KEYGATE_API_URL": f.srv.URL}}
}

// newPlaintext returns a real keygate key, as the API would issue it.
func newPlaintext(t *testing.T) string {
	t.Helper()
	f, err := apikey.NewFormat(apikey.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	k, err := f.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	return k.Plaintext
}

const testID = "key_0123456789abcdefghjkmnpqrs"

// keyBody returns a key as the admin API shows it; plaintext, when not
// empty, is included as `key` (only the issuing response does that).
func keyBody(t *testing.T, id, plaintext string, extra map[string]any) string {
	t.Helper()
	k := map[string]any{
		"id": id, "name": "billing worker", "ownerId": "acme", "type": "secret", "environment": "live",
		"status": "active", "hint": "kg_sk_live_3xQa", "scopes": []string{"read", "write"},
		"createdAt": "2026-11-26T12:00:00Z", "updatedAt": "2026-11-26T12:00:00Z", "notBefore": nil, "expiresAt": nil,
		"rateLimits": []key.RateLimit{{Name: "second", Limit: 10, WindowSeconds: 1}},
		"quota":      map[string]any{"limit": 100000, "period": "month"}, "metadata": map[string]any{"team": "billing"},
		"allowedOrigins": []string{}, "allowedCidrs": []string{}, "stages": []string{}, "version": 1,
	}
	if plaintext != "" {
		k["hint"] = plaintext[:len("kg_sk_live_")+4]
		k["key"] = plaintext
	}
	for n, v := range extra {
		k[n] = v
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// problemBody returns an RFC 9457 problem as the admin API writes it.
func problemBody(status int, code, field, detail string) string {
	b, _ := json.Marshal(map[string]any{"type": "urn:keygate:problem:" + code, "title": http.StatusText(status),
		"status": status, "code": code, "field": field, "detail": detail})
	return string(b)
}

func problemReply(status int, code, field, detail string) reply {
	return reply{status: status, body: problemBody(status, code, field, detail),
		header: map[string]string{"Content-Type": "application/problem+json"}}
}

// decodeBody decodes a request body the CLI sent.
func decodeBody(t *testing.T, r seen) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request body is not a JSON object: %v: %q", err, r.Body)
	}
	return m
}

// jsonEqual reports whether got, encoded as JSON, equals want (JSON text).
func jsonEqual(t *testing.T, got any, want string) {
	t.Helper()
	gb, _ := json.Marshal(got)
	var g, w any
	_ = json.Unmarshal(gb, &g)
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	gs, _ := json.Marshal(g)
	ws, _ := json.Marshal(w)
	if !bytes.Equal(gs, ws) {
		t.Errorf("got %s\nwant %s", gs, ws)
	}
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}
