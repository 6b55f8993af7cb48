package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/cli"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/localgw"
	"github.com/keygate/keygate/internal/logtest"
	"github.com/keygate/keygate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// local is a local stack for one test: DynamoDB Local (shared by the test
// binary, a table of its own) and the gateway on a free port, in process.
type local struct {
	url   string
	logs  *logtest.Buffer
	stack *Stack
}

func startLocal(t *testing.T, extra map[string]string) *local {
	t.Helper()
	return startLocalWith(t, extra, 0)
}

func startLocalWith(t *testing.T, extra map[string]string, schedule time.Duration) *local {
	t.Helper()
	return startLocalOpts(t, extra, func(o *Options) { o.Schedule = schedule })
}

// startLocalUpstream starts a local stack whose protected proxy sends to
// upstream.
func startLocalUpstream(t *testing.T, upstream *url.URL) *local {
	t.Helper()
	return startLocalOpts(t, nil, func(o *Options) { o.Upstream = upstream })
}

// startLocalOpts starts a local stack with the functions' environment
// extra and the options set changes.
func startLocalOpts(t *testing.T, extra map[string]string, set func(*Options)) *local {
	t.Helper()
	_, table := dynamotest.Table(t)
	env := map[string]string{
		"KEYGATE_DYNAMODB_ENDPOINT": dynamotest.Endpoint(t),
		"KEYGATE_TABLE":             table,
		"KEYGATE_PEPPER":            "e2e-pepper-0123456789abcdef0123456789abcdef",
		"KEYGATE_SIGNING_DIR":       t.TempDir(),
	}
	for k, v := range extra {
		env[k] = v
	}
	logs := &logtest.Buffer{}
	o := Options{
		Getenv:      envOf(env),
		Log:         slog.New(slog.NewJSONHandler(logs, nil)),
		FunctionLog: logs,
	}
	if set != nil {
		set(&o)
	}
	st, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st.Close(ctx)
	})
	return &local{url: st.URL, logs: logs, stack: st}
}

// keygate runs the CLI as a user would, against the local gateway.
func (l *local) keygate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return l.keygateEnv(t, nil, args...)
}

// keygateEnv runs the CLI with environment variables.
func (l *local) keygateEnv(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := cli.Run(ctx, append(args, "--api-url", l.url, "--output", "json"), &stdout, &stderr, envOf(env))
	return code, stdout.String(), stderr.String()
}

func (l *local) call(t *testing.T, method, path, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, l.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

type issued struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Status string `json:"status"`
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not the JSON expected: %v\n%s", err, s)
	}
	return v
}

func TestEndToEnd(t *testing.T) {
	l := startLocal(t, nil)

	// Issue a key with the CLI, and another with plain HTTP.
	code, out, errOut := l.keygate(t, "keys", "create", "--name", "e2e", "--owner", "e2e", "--scope", "read", "--metadata", "plan=pro")
	if code != cli.ExitOK {
		t.Fatalf("keygate keys create: exit %d\n%s", code, errOut)
	}
	a := decodeJSON[issued](t, out)
	if !key.ValidID(a.ID) || a.Key == "" || a.Status != "active" {
		t.Fatalf("issued %+v", a)
	}
	status, hdr, body := l.call(t, "POST", "/v1/keys", `{"name":"limited","ownerId":"e2e","environment":"test",
		"rateLimits":[{"name":"burst","limit":2,"windowSeconds":`+itoa(key.MaxWindowSeconds)+`}]}`)
	if status != 201 || hdr.Get("Location") == "" {
		t.Fatalf("POST /v1/keys: %d %s", status, body)
	}
	b := decodeJSON[issued](t, body)

	// The key opens /api; the echo upstream shows the context headers and
	// no credential.
	status, _, body = l.call(t, "GET", "/api/hello?x=1", "", "x-api-key", a.Key)
	if status != 200 {
		t.Fatalf("GET /api/hello with a fresh key: %d %s", status, body)
	}
	echo := decodeJSON[localgw.EchoResponse](t, body)
	if echo.Method != "GET" || echo.Path != "/hello" || echo.Query != "x=1" {
		t.Errorf("upstream received %s %s ?%s", echo.Method, echo.Path, echo.Query)
	}
	for k, want := range map[string]string{
		gateway.CtxKeyID: a.ID, gateway.CtxOwnerID: "e2e", gateway.CtxScopes: "read",
		gateway.CtxType: "secret", gateway.CtxEnvironment: "test", gateway.CtxPlan: "pro",
	} {
		if echo.Authorizer[k] != want {
			t.Errorf("authorizer context %s = %q, want %q (all: %v)", k, echo.Authorizer[k], want, echo.Authorizer)
		}
	}
	if echo.Headers["X-Keygate-Key-Id"] != a.ID || strings.Contains(body, a.Key) {
		t.Errorf("upstream headers %v", echo.Headers)
	}
	if status, _, _ = l.call(t, "POST", "/api", `{}`, "Authorization", "Bearer "+a.Key); status != 200 {
		t.Errorf("POST /api with a bearer key: %d", status)
	}

	// No credential recognised: the generic 401.
	unauthorized, _ := gateway.ResponseFor(gateway.Unauthorized)
	unknown, err := l.stack.Format.Generate(apikey.Secret, apikey.Test)
	if err != nil {
		t.Fatal(err)
	}
	for name, hdr := range map[string][]string{
		"missing":   nil,
		"malformed": {"x-api-key", "kg_sk_test_notakey"},
		"unknown":   {"x-api-key", unknown.Plaintext},
	} {
		status, _, body = l.call(t, "GET", "/api/hello", "", hdr...)
		if status != 401 || body != unauthorized.Render(nil) {
			t.Errorf("%s key: %d %s", name, status, body)
		}
	}

	// A rate limit: the third request in the window is refused, with when
	// to retry.
	for i := 1; i <= 2; i++ {
		if status, _, body = l.call(t, "GET", "/api/limited", "", "x-api-key", b.Key); status != 200 {
			t.Fatalf("request %d under the limit: %d %s", i, status, body)
		}
	}
	status, _, body = l.call(t, "GET", "/api/limited", "", "x-api-key", b.Key)
	d := decodeJSON[denial](t, body)
	if status != 403 || d.Code != string(gateway.RateLimited) || d.RetryAfterSeconds == nil || *d.RetryAfterSeconds < 1 {
		t.Errorf("over the limit: %d %s; want 403 rate_limited with retryAfterSeconds", status, body)
	}

	// Exchange the key for an access token with the CLI: the token opens
	// /api with the key's context, and the JWKS that verifies it is public.
	code, out, errOut = l.keygateEnv(t, map[string]string{"KEYGATE_API_KEY": a.Key}, "tokens", "create", "--ttl", "5m")
	if code != cli.ExitOK {
		t.Fatalf("keygate tokens create: exit %d\n%s", code, errOut)
	}
	tok := decodeJSON[struct {
		Token string `json:"token"`
	}](t, out)
	status, _, body = l.call(t, "GET", "/api/token", "", "Authorization", "Bearer "+tok.Token)
	if status != 200 || decodeJSON[localgw.EchoResponse](t, body).Authorizer[gateway.CtxKeyID] != a.ID {
		t.Errorf("GET /api with the access token: %d %s", status, body)
	}
	if status, _, body = l.call(t, "GET", "/.well-known/jwks.json", ""); status != 200 || !strings.Contains(body, `"keys"`) {
		t.Errorf("GET /.well-known/jwks.json: %d %s", status, body)
	}

	// Rotate the limited key with the CLI: the new key works at once.
	code, out, errOut = l.keygate(t, "keys", "rotate", b.ID, "--grace-period", "0")
	if code != cli.ExitOK {
		t.Fatalf("keygate keys rotate: exit %d\n%s", code, errOut)
	}
	rotated := decodeJSON[issued](t, out)
	if status, _, body = l.call(t, "GET", "/api/rotated", "", "x-api-key", rotated.Key); status != 200 || rotated.ID == b.ID {
		t.Errorf("the rotated key %s: %d %s", rotated.ID, status, body)
	}

	// Revoke with the CLI: the next request is refused as revoked (the
	// manual: revocation bites at the next request).
	if code, _, errOut = l.keygate(t, "keys", "revoke", a.ID, "--yes"); code != cli.ExitOK {
		t.Fatalf("keygate keys revoke: exit %d\n%s", code, errOut)
	}
	status, _, body = l.call(t, "GET", "/api/hello", "", "x-api-key", a.Key)
	if d = decodeJSON[denial](t, body); status != 403 || d.Code != string(gateway.Revoked) {
		t.Errorf("revoked key: %d %s; want 403 revoked", status, body)
	}
	code, out, _ = l.keygate(t, "keys", "get", a.ID)
	if got := decodeJSON[issued](t, out); code != cli.ExitOK || got.Status != "revoked" || got.Key != "" {
		t.Errorf("keygate keys get after revoke: exit %d %+v", code, got)
	}

	// The plaintext keys appear in no log line of the gateway or the
	// functions.
	logs := l.logs.String()
	if !strings.Contains(logs, a.ID) {
		t.Fatalf("the logs do not mention the key id: nothing was captured?\n%s", logs)
	}
	for _, k := range []string{a.Key, b.Key, rotated.Key} {
		if strings.Contains(logs, k) || strings.Contains(logs, k[11:]) {
			t.Errorf("a plaintext key is in the logs")
		}
	}
}

type denial struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	RetryAfterSeconds *int   `json:"retryAfterSeconds"`
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// The rotator gets its scheduled event, as the stack's EventBridge rule
// sends it, every Schedule.
func TestTheRotatorRunsOnItsSchedule(t *testing.T) {
	l := startLocalWith(t, nil, 20*time.Millisecond)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(l.logs.String(), `"msg":"scheduled run","function":"rotator","result"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled run of the rotator in the logs:\n%s", l.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(l.logs.String(), "scheduled run failed") {
		t.Errorf("a scheduled run failed:\n%s", l.logs.String())
	}
}

// Usage per key is exact at once, and an owner's usage (per day and per
// key, JSON and CSV) matches the calls made well within a minute: the
// local stack runs the usage consumer on DynamoDB Local's stream as the
// deployed stack runs it on the table's.
func TestUsageReachesTheOwnerWithinAMinute(t *testing.T) {
	l := startLocal(t, nil)
	var keys []issued
	for _, name := range []string{"first", "second"} {
		status, _, body := l.call(t, "POST", "/v1/keys", `{"name":"`+name+`","ownerId":"billing","environment":"test"}`)
		if status != 201 {
			t.Fatalf("POST /v1/keys: %d %s", status, body)
		}
		keys = append(keys, decodeJSON[issued](t, body))
	}
	start := time.Now()
	for i, k := range keys {
		for range 3 + i {
			if status, _, body := l.call(t, "GET", "/api/metered", "", "x-api-key", k.Key); status != 200 {
				t.Fatalf("GET /api/metered: %d %s", status, body)
			}
		}
	}
	today := time.Now().UTC().Format(time.DateOnly)
	// The key's own usage: at once for a cold key; a burst like this one
	// makes the key hot in the authorizer's environment, which admits from
	// a reservation and reports within KEYGATE_REPORT_INTERVAL (2 s).
	want := "date,keyId,count,credits\r\n" + today + "," + keys[1].ID + ",4,4\r\n"
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		status, _, body := l.call(t, "GET", "/v1/keys/"+keys[1].ID+"/usage?from="+today+"&to="+today, "", "Accept", "text/csv")
		if status == 200 && body == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key usage CSV: %d %q, want %q", status, body, want)
		}
	}
	// The owner's: once the consumer has taken the stream.
	type ownerUsage struct {
		Total int64 `json:"total"`
		Keys  []struct {
			KeyID string `json:"keyId"`
			Count int64  `json:"count"`
		} `json:"keys"`
	}
	var got ownerUsage
	for {
		code, out, errOut := l.keygate(t, "usage", "--owner", "billing", "--from", today, "--to", today, "--by", "key")
		if code != cli.ExitOK {
			t.Fatalf("keygate usage: exit %d\n%s", code, errOut)
		}
		if got = decodeJSON[ownerUsage](t, out); got.Total == 7 {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("the owner's usage is still %+v a minute after the calls", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the owner's usage matched the calls %v after them", time.Since(start).Round(time.Millisecond))
	counts := map[string]int64{}
	for _, k := range got.Keys {
		counts[k.KeyID] = k.Count
	}
	if len(counts) != 2 || counts[keys[0].ID] != 3 || counts[keys[1].ID] != 4 {
		t.Fatalf("per key: %+v", got.Keys)
	}
	status, _, body := l.call(t, "GET", "/v1/owners/billing/usage?from="+today+"&to="+today, "", "Accept", "text/csv")
	if want := "date,count,credits\r\n" + today + ",7,7\r\n"; status != 200 || body != want {
		t.Fatalf("owner usage CSV: %d %q, want %q", status, body, want)
	}
}

// Stopping the local stack does what Lambda's SIGTERM makes an authorizer
// do: a hot key's admissions from its reservation, which no write has
// recorded yet (the report interval is long here), reach its usage.
func TestStoppingTheStackReportsReservedUsage(t *testing.T) {
	l := startLocal(t, map[string]string{"KEYGATE_REPORT_INTERVAL": "1m"})
	status, _, body := l.call(t, "POST", "/v1/keys", `{"name":"hot","ownerId":"billing","environment":"test"}`)
	if status != 201 {
		t.Fatalf("POST /v1/keys: %d %s", status, body)
	}
	k := decodeJSON[issued](t, body)
	const n = 40
	for range n {
		if status, _, body := l.call(t, "GET", "/api/hot", "", "x-api-key", k.Key); status != 200 {
			t.Fatalf("GET /api/hot: %d %s", status, body)
		}
	}
	st := store.New(store.LocalClient(dynamotest.Endpoint(t)), l.stack.Table, store.Options{})
	usage := func() int64 {
		days, err := st.Usage(context.Background(), k.ID, time.Now(), time.Now())
		if err != nil || len(days) == 0 {
			t.Fatal(days, err)
		}
		return days[len(days)-1].Count
	}
	if got := usage(); got >= n {
		t.Fatalf("usage %d of %d before the stop: the key was never admitted from a reservation, this test proves nothing", got, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l.stack.Close(ctx)
	if got := usage(); got != n {
		t.Fatalf("usage %d after the stack stopped, want %d", got, n)
	}
}
