package localgw_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/localgw"
)

// fn is a hand-written stand-in for a function handler: invoke decides
// what it answers. The real handlers run in the local stack's end-to-end
// test; these tests pin what the gateway does with each kind of answer.
type fn struct {
	invoke func(ctx context.Context, payload []byte) ([]byte, error)
}

func (f fn) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return f.invoke(ctx, payload)
}

func factory(f func(ctx context.Context, payload []byte) ([]byte, error)) localgw.Factory {
	return func() (lambda.Handler, error) { return fn{f}, nil }
}

// harness is a gateway on a free port with the stack's route table, the
// protected proxy under /demo and the echo upstream.
type harness struct {
	url string
	mu  sync.Mutex
	// authorizer answers the REQUEST event; issuer answers proxy events.
	authorizer func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error)
	issuer     func(ctx context.Context, ev events.APIGatewayProxyRequest) (any, error)
	authEvents []events.APIGatewayCustomAuthorizerRequestTypeRequest
	// raw holds the last payload each function received.
	raw map[string][]byte
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{raw: map[string][]byte{}}
	echo := httptest.NewServer(localgw.Echo())
	t.Cleanup(echo.Close)
	up, _ := url.Parse(echo.URL)
	routes := append(append([]gateway.Route{}, gateway.Routes...), gateway.Proxy("demo")...)
	gw := localgw.New(localgw.Options{
		Routes:        routes,
		KeyQueryParam: "api_key",
		Functions: map[string]localgw.Factory{
			gateway.FnAuthorizer: factory(func(ctx context.Context, p []byte) ([]byte, error) {
				var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
				if err := json.Unmarshal(p, &ev); err != nil {
					t.Errorf("authorizer event is not JSON: %v", err)
				}
				h.mu.Lock()
				h.raw[gateway.FnAuthorizer] = p
				h.authEvents = append(h.authEvents, ev)
				decide := h.authorizer
				h.mu.Unlock()
				out, err := decide(ev)
				if err != nil {
					return nil, err
				}
				if b, ok := out.([]byte); ok {
					return b, nil
				}
				return json.Marshal(out)
			}),
			gateway.FnIssuer: factory(func(ctx context.Context, p []byte) ([]byte, error) {
				var ev events.APIGatewayProxyRequest
				if err := json.Unmarshal(p, &ev); err != nil {
					t.Errorf("proxy event is not JSON: %v", err)
				}
				h.mu.Lock()
				h.raw[gateway.FnIssuer] = p
				serve := h.issuer
				h.mu.Unlock()
				out, err := serve(ctx, ev)
				if err != nil {
					return nil, err
				}
				if b, ok := out.([]byte); ok {
					return b, nil
				}
				return json.Marshal(out)
			}),
		},
		Upstream: up,
		Stage:    "local",
		Logger:   slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewUnstartedServer(gw)
	srv.Config = localgw.NewServer(gw, slog.New(slog.DiscardHandler))
	srv.Start()
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func allow(ev events.APIGatewayCustomAuthorizerRequestTypeRequest, ctx map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return policy("Allow", ev.MethodArn, ctx)
}

func policy(effect, resource string, ctx map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: "key_test",
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version:   "2012-10-17",
			Statement: []events.IAMPolicyStatement{{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource}}},
		},
		Context: ctx,
	}
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func get(t *testing.T, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func TestAuthorizerGetsTheRESTRequestEvent(t *testing.T) {
	h := newHarness(t)
	h.setAuthorizer(func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
		return allow(ev, map[string]any{gateway.CtxKeyID: "key_a"}), nil
	})
	resp, _ := get(t, h.url+"/demo/orders/7?expand=items&expand=notes",
		"x-api-key", "kg_sk_test_x", "X-Forwarded-For", "203.0.113.9", "Accept", "a", "Accept", "b")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ev := h.event(0)
	want := "arn:aws:execute-api:local:000000000000:keygatelocal/local/GET/demo/orders/7"
	if ev.Type != "REQUEST" || ev.MethodArn != want || ev.HTTPMethod != "GET" || ev.Path != "/demo/orders/7" || ev.Resource != "/demo/{proxy+}" {
		t.Errorf("event: type %q arn %q method %q path %q resource %q", ev.Type, ev.MethodArn, ev.HTTPMethod, ev.Path, ev.Resource)
	}
	if ev.PathParameters["proxy"] != "orders/7" {
		t.Errorf("pathParameters %v", ev.PathParameters)
	}
	if ev.Headers["X-Api-Key"] != "kg_sk_test_x" || strings.Join(ev.MultiValueHeaders["Accept"], ",") != "a,b" || ev.Headers["Accept"] != "b" {
		t.Errorf("headers %v / %v", ev.Headers, ev.MultiValueHeaders)
	}
	if ev.QueryStringParameters["expand"] != "notes" || strings.Join(ev.MultiValueQueryStringParameters["expand"], ",") != "items,notes" {
		t.Errorf("query %v / %v", ev.QueryStringParameters, ev.MultiValueQueryStringParameters)
	}
	rc := ev.RequestContext
	if rc.Identity.SourceIP != "127.0.0.1" {
		t.Errorf("sourceIp %q: must be the TCP peer, never X-Forwarded-For", rc.Identity.SourceIP)
	}
	if rc.Stage != "local" || rc.RequestID != resp.Header.Get("x-amzn-RequestId") || rc.RequestID == "" || rc.ResourcePath != "/demo/{proxy+}" {
		t.Errorf("requestContext %+v, response request id %q", rc, resp.Header.Get("x-amzn-RequestId"))
	}
}

// denial is a gateway response body as a client decodes it.
type denial struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	RetryAfterSeconds *int   `json:"retryAfterSeconds"`
}

func TestDenialsAreTheStacksGatewayResponses(t *testing.T) {
	h := newHarness(t)
	rendered := func(rt gateway.ResponseType, ctx map[string]string) string {
		r, _ := gateway.ResponseFor(rt)
		return r.Render(ctx)
	}
	cases := []struct {
		name   string
		answer func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error)
		status int
		body   string
	}{
		{"Unauthorized error is 401", func(events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
			return nil, errors.New("Unauthorized")
		}, 401, rendered(gateway.Unauthorized, nil)},
		{"deny policy prints the reason", func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
			return policy("Deny", ev.MethodArn, map[string]any{"code": "rate_limited", "message": "over the limit", "retryAfterSeconds": 7, gateway.CtxRetryAfterField: gateway.RetryAfterField(7)}), nil
		}, 403, rendered(gateway.AccessDenied, map[string]string{"code": "rate_limited", "message": "over the limit", gateway.CtxRetryAfterField: `,"retryAfterSeconds":7`})},
		{"an allow for another method is a denial", func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
			return policy("Allow", strings.Replace(ev.MethodArn, "/GET/", "/POST/", 1), map[string]any{"code": "x", "message": "y", gateway.CtxRetryAfterField: gateway.RetryAfterField(0)}), nil
		}, 403, rendered(gateway.AccessDenied, map[string]string{"code": "x", "message": "y", gateway.CtxRetryAfterField: `,"retryAfterSeconds":0`})},
		{"an explicit deny beats a wildcard allow", func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
			p := policy("Allow", "arn:aws:execute-api:*", map[string]any{"code": "revoked", "message": "m", gateway.CtxRetryAfterField: gateway.RetryAfterField(0)})
			p.PolicyDocument.Statement = append(p.PolicyDocument.Statement, events.IAMPolicyStatement{Action: []string{"execute-api:*"}, Effect: "Deny", Resource: []string{ev.MethodArn}})
			return p, nil
		}, 403, rendered(gateway.AccessDenied, map[string]string{"code": "revoked", "message": "m", gateway.CtxRetryAfterField: `,"retryAfterSeconds":0`})},
		{"another error is an authorizer failure", func(events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
			return nil, errors.New("unavailable")
		}, 503, rendered(gateway.AuthorizerFailure, nil)},
		{"an answer that is not a policy is a configuration error", func(events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
			return []byte(`{"isAuthorized":true}`), nil
		}, 503, rendered(gateway.AuthorizerConfigurationError, nil)},
		{"a nested context value is a configuration error", func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
			return allow(ev, map[string]any{"scopes": []string{"read"}}), nil
		}, 503, rendered(gateway.AuthorizerConfigurationError, nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.setAuthorizer(c.answer)
			resp, body := get(t, h.url+"/demo/x", "x-api-key", "k")
			if resp.StatusCode != c.status || body != c.body {
				t.Fatalf("got %d %s\nwant %d %s", resp.StatusCode, body, c.status, c.body)
			}
			for k, v := range gateway.ResponseHeaders {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			// A client that could not be told yes or no learns when to
			// try again from the header too; a refusal's 403 cannot say.
			wantRetry := ""
			if c.status == 503 {
				wantRetry = "1"
			}
			if got := resp.Header.Get("Retry-After"); got != wantRetry {
				t.Errorf("Retry-After %q, want %q", got, wantRetry)
			}
			var d denial
			if err := json.Unmarshal([]byte(body), &d); err != nil || d.Code == "" || d.RetryAfterSeconds == nil {
				t.Errorf("body is not a denial a client can read: %v %s", err, body)
			}
		})
	}
}

func TestAllowForwardsContextAsHeadersAndDropsTheKey(t *testing.T) {
	h := newHarness(t)
	ctx := map[string]any{
		gateway.CtxKeyID: "key_a", gateway.CtxOwnerID: "acme", gateway.CtxType: "secret",
		gateway.CtxEnvironment: "test", gateway.CtxScopes: "read write", gateway.CtxPlan: "",
		gateway.CtxRateLimitRemaining: "minute=4", gateway.CtxQuotaRemaining: json.Number("99"),
	}
	h.setAuthorizer(func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) { return allow(ev, ctx), nil })
	resp, body := get(t, h.url+"/demo/a/b?c=d&api_key=kg_secret", "x-api-key", "kg_secret", "Authorization", "Bearer kg_secret", "X-Keygate-Key-Id", "forged", "X-Keygate-Plan", "forged")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var echo localgw.EchoResponse
	if err := json.Unmarshal([]byte(body), &echo); err != nil {
		t.Fatal(err)
	}
	// The key's query parameter is dropped like the credential headers.
	if echo.Method != "GET" || echo.Path != "/a/b" || echo.Query != "c=d" {
		t.Errorf("upstream got %s %s ?%s", echo.Method, echo.Path, echo.Query)
	}
	want := map[string]string{"keyId": "key_a", "ownerId": "acme", "type": "secret", "environment": "test", "scopes": "read write", "rateLimitRemaining": "minute=4", "quotaRemaining": "99"}
	if len(echo.Authorizer) != len(want) {
		t.Errorf("authorizer %v, want %v (a forged header must not survive)", echo.Authorizer, want)
	}
	for k, v := range want {
		if echo.Authorizer[k] != v {
			t.Errorf("authorizer[%s] = %q, want %q", k, echo.Authorizer[k], v)
		}
	}
	if strings.Contains(body, "kg_secret") {
		t.Errorf("the upstream received the credential: %s", body)
	}
	if echo.Headers["X-Keygate-Key-Id"] != "key_a" {
		t.Errorf("X-Keygate-Key-Id %q", echo.Headers["X-Keygate-Key-Id"])
	}
}

func TestAdminRoutesGetProxyEventsAsTheLocalActor(t *testing.T) {
	h := newHarness(t)
	var got events.APIGatewayProxyRequest
	var who string
	h.setIssuer(func(ctx context.Context, ev events.APIGatewayProxyRequest) (any, error) {
		got, who = ev, actor.From(ctx)
		return events.APIGatewayProxyResponse{
			StatusCode:        201,
			Headers:           map[string]string{"Content-Type": "application/json", "ETag": `"1"`},
			MultiValueHeaders: map[string][]string{"Vary": {"A", "B"}},
			Body:              "eyJvayI6dHJ1ZX0=", IsBase64Encoded: true,
		}, nil
	})
	req, _ := http.NewRequest(http.MethodPatch, h.url+"/v1/keys/key_abc?x=1", strings.NewReader(`{"name":"n"}`))
	req.Header.Set("If-Match", `"1"`)
	req.Header.Set("Content-Type", "application/json")
	resp, body := do(t, req)
	if resp.StatusCode != 201 || body != `{"ok":true}` || resp.Header.Get("ETag") != `"1"` || strings.Join(resp.Header.Values("Vary"), ",") != "A,B" {
		t.Fatalf("got %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if who != actor.Local {
		t.Errorf("actor %q, want %q", who, actor.Local)
	}
	if got.HTTPMethod != "PATCH" || got.Path != "/v1/keys/key_abc" || got.Resource != "/v1/keys/{id}" || got.PathParameters["id"] != "key_abc" ||
		got.Body != `{"name":"n"}` || got.Headers["If-Match"] != `"1"` || got.QueryStringParameters["x"] != "1" {
		t.Errorf("event %+v", got)
	}
	if got.RequestContext.Identity.SourceIP != "127.0.0.1" || got.RequestContext.Stage != "local" || got.RequestContext.RequestID == "" {
		t.Errorf("requestContext %+v", got.RequestContext)
	}
}

// TestAdminWritesMustBeJSON: the unsigned local admin API refuses every
// write that does not say it is JSON, so that no web page the admin visits
// can make one with a cross-site form or a simple (unpreflighted) fetch;
// the function is never invoked. Reads need no type; so does nothing
// behind the authorizer.
func TestAdminWritesMustBeJSON(t *testing.T) {
	h := newHarness(t)
	calls := 0
	h.setIssuer(func(ctx context.Context, ev events.APIGatewayProxyRequest) (any, error) {
		calls++
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "{}"}, nil
	})
	for _, c := range []struct {
		method, path, contentType string
		want                      int
	}{
		{"POST", "/v1/keys", "", 415},
		{"POST", "/v1/keys", "application/x-www-form-urlencoded", 415},
		{"POST", "/v1/keys", "text/plain", 415},
		{"POST", "/v1/keys", "multipart/form-data; boundary=x", 415},
		{"PATCH", "/v1/keys/key_abc", "", 415},
		{"DELETE", "/v1/keys/key_abc", "", 415},
		{"DELETE", "/v1/keys/key_abc", "application/json", 200},
		{"POST", "/v1/keys", "application/json; charset=utf-8", 200},
		{"GET", "/v1/keys/key_abc", "", 200},
		{"GET", "/v1/keys/key_abc", "text/plain", 200},
	} {
		before := calls
		req, _ := http.NewRequest(c.method, h.url+c.path, strings.NewReader(`{"name":"x"}`))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, body := do(t, req)
		if resp.StatusCode != c.want {
			t.Errorf("%s %s (%q): %d %s, want %d", c.method, c.path, c.contentType, resp.StatusCode, body, c.want)
		}
		if c.want == 415 && (calls != before || !strings.Contains(body, `"code":"unsupported_media_type"`) ||
			resp.Header.Get("Content-Type") != "application/problem+json") {
			t.Errorf("%s %s (%q): the refusal reached the function or is no problem: %s", c.method, c.path, c.contentType, body)
		}
	}
}

func TestFunctionFailuresAreGatewayErrors(t *testing.T) {
	h := newHarness(t)
	for name, answer := range map[string]func() (any, error){
		"error":       func() (any, error) { return nil, errors.New("boom") },
		"panic":       func() (any, error) { panic("boom") },
		"not a proxy": func() (any, error) { return []byte(`[1,2]`), nil },
		"status 0":    func() (any, error) { return []byte(`{"body":"x"}`), nil },
		"bad base64": func() (any, error) {
			return events.APIGatewayProxyResponse{StatusCode: 200, Body: "!!", IsBase64Encoded: true}, nil
		},
		"not even JSN": func() (any, error) { return []byte(`{`), nil },
	} {
		h.setIssuer(func(context.Context, events.APIGatewayProxyRequest) (any, error) { return answer() })
		resp, body := get(t, h.url+"/v1/keys/key_abc")
		if resp.StatusCode != 502 || body != `{"message":"Internal server error"}` {
			t.Errorf("%s: got %d %s, want API Gateway's 502", name, resp.StatusCode, body)
		}
	}
}

func TestUnknownRoutesAreMissingAuthenticationToken(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/"}, {"PUT", "/v1/keys"}, {"GET", "/v1/keys/a/b/c"}, {"GET", "/demox"}, {"DELETE", "/v1/keys"},
	} {
		req, _ := http.NewRequest(c.method, h.url+c.path, nil)
		resp, body := do(t, req)
		if resp.StatusCode != 403 || body != `{"message":"Missing Authentication Token"}` {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
}

// ok checks that the gateway still serves after an abuse.
func ok(t *testing.T, h *harness, after string) {
	t.Helper()
	h.setIssuer(func(context.Context, events.APIGatewayProxyRequest) (any, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "fine"}, nil
	})
	resp, body := get(t, h.url+"/v1/openapi.json")
	if resp.StatusCode != 200 || body != "fine" {
		t.Fatalf("after %s the gateway answers %d %s", after, resp.StatusCode, body)
	}
}

func TestBadInputIs4xxAndTheGatewayKeepsServing(t *testing.T) {
	h := newHarness(t)
	var invoked atomic.Int64
	h.setIssuer(func(context.Context, events.APIGatewayProxyRequest) (any, error) {
		invoked.Add(1)
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	})
	t.Run("body over 10 MB", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/keys", strings.NewReader(strings.Repeat("a", localgw.MaxPayloadBytes+1)))
		resp, body := do(t, req)
		if resp.StatusCode != 413 || body != `{"message":"Request Too Long"}` {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
		ok(t, h, "a huge body")
	})
	t.Run("headers over API Gateway's limit", func(t *testing.T) {
		resp, _ := get(t, h.url+"/v1/openapi.json", "X-Big", strings.Repeat("b", localgw.MaxHeaderBytes))
		if resp.StatusCode != 431 {
			t.Errorf("got %d, want 431", resp.StatusCode)
		}
		resp, _ = get(t, h.url+"/v1/openapi.json", "X-Huge", strings.Repeat("b", 1<<20))
		if resp.StatusCode != 431 {
			t.Errorf("1 MB header: got %d, want 431", resp.StatusCode)
		}
		ok(t, h, "huge headers")
	})
	t.Run("URI over 8192 characters", func(t *testing.T) {
		resp, _ := get(t, h.url+"/v1/keys?ownerId="+strings.Repeat("o", localgw.MaxURLLength))
		if resp.StatusCode != 414 {
			t.Errorf("got %d, want 414", resp.StatusCode)
		}
		ok(t, h, "a long URI")
	})
	t.Run("malformed request line", func(t *testing.T) {
		for _, raw := range []string{"GARBAGE\r\n\r\n", "GET /v1/keys HTTP/1.1\r\nNo colon in this header\r\n\r\n", "GET /v1/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n", "\x00\x01\x02\r\n\r\n"} {
			status := rawStatus(t, h.url, raw)
			if status < 400 || status > 499 {
				t.Errorf("%q: status line %d, want 4xx", raw, status)
			}
		}
		ok(t, h, "malformed requests")
	})
	t.Run("client disconnects mid-body", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "POST /v1/keys HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":")
		c.Close()
		ok(t, h, "a client that vanished")
	})
	if n := invoked.Load(); n != 0 {
		t.Errorf("bad input reached a function %d times", n)
	}
}

// rawStatus sends raw bytes and returns the response's status code.
func rawStatus(t *testing.T, base, raw string) int {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: no HTTP answer: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEachEnvironmentServesOneInvocationAtATime(t *testing.T) {
	var built, running, overlap atomic.Int64
	release := make(chan struct{})
	gw := localgw.New(localgw.Options{
		Routes: gateway.Routes,
		Functions: map[string]localgw.Factory{gateway.FnIssuer: func() (lambda.Handler, error) {
			built.Add(1)
			var busy atomic.Bool
			return fn{func(ctx context.Context, p []byte) ([]byte, error) {
				if !busy.CompareAndSwap(false, true) {
					overlap.Add(1)
				}
				running.Add(1)
				<-release
				busy.Store(false)
				return json.Marshal(events.APIGatewayProxyResponse{StatusCode: 200})
			}}, nil
		}},
	})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(srv.URL + "/v1/openapi.json")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	for running.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if built.Load() != 3 || overlap.Load() != 0 {
		t.Errorf("3 concurrent requests built %d environments with %d overlapping invocations; want 3 and 0", built.Load(), overlap.Load())
	}
}

func (h *harness) setAuthorizer(f func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error)) {
	h.mu.Lock()
	h.authorizer = f
	h.mu.Unlock()
}

func (h *harness) setIssuer(f func(ctx context.Context, ev events.APIGatewayProxyRequest) (any, error)) {
	h.mu.Lock()
	h.issuer = f
	h.mu.Unlock()
}

func (h *harness) event(i int) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.authEvents[i]
}

func (h *harness) lastPayload(fn string) map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var m map[string]any
	_ = json.Unmarshal(h.raw[fn], &m)
	return m
}

// The events the gateway builds have every field the functions' own
// fixtures (events/<function>/..., captured from API Gateway's documented
// shapes) have, at the top level and in requestContext.
func TestEventsHaveTheShapeOfTheFunctionsFixtures(t *testing.T) {
	h := newHarness(t)
	h.setAuthorizer(func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
		return allow(ev, map[string]any{"keyId": "key_a"}), nil
	})
	h.setIssuer(func(context.Context, events.APIGatewayProxyRequest) (any, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200}, nil
	})
	get(t, h.url+"/demo/x", "x-api-key", "k")
	get(t, h.url+"/v1/keys/key_abc")
	checked := 0
	for fn, pattern := range map[string]string{
		gateway.FnIssuer:     "../../events/issuer/v1/*.json",
		gateway.FnAuthorizer: "../../events/authorizer/rest-request/*.json",
	} {
		files, _ := filepath.Glob(pattern)
		got := h.lastPayload(fn)
		for _, f := range files {
			if strings.HasSuffix(f, ".want.json") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			checked++
			for k := range want {
				if _, ok := got[k]; !ok {
					t.Errorf("%s has %q; the %s event of the local gateway does not", f, k, fn)
				}
			}
			wrc, _ := want["requestContext"].(map[string]any)
			grc, _ := got["requestContext"].(map[string]any)
			for k := range wrc {
				if _, ok := grc[k]; !ok {
					t.Errorf("%s has requestContext.%s; the %s event of the local gateway does not", f, k, fn)
				}
			}
			if id, _ := grc["identity"].(map[string]any); id["sourceIp"] != "127.0.0.1" {
				t.Errorf("%s event: requestContext.identity %v", fn, grc["identity"])
			}
		}
	}
	if checked == 0 {
		t.Fatal("no fixture found to compare with")
	}
}

func TestScheduledInvocationsGetTheEventBridgeEvent(t *testing.T) {
	var got events.EventBridgeEvent
	gw := localgw.New(localgw.Options{Functions: map[string]localgw.Factory{
		gateway.FnRotator: factory(func(ctx context.Context, p []byte) ([]byte, error) {
			if err := json.Unmarshal(p, &got); err != nil {
				t.Errorf("scheduled event: %v", err)
			}
			return []byte(`{"due":0}`), nil
		}),
	}})
	out, err := gw.InvokeScheduled(context.Background(), gateway.FnRotator)
	if err != nil || string(out) != `{"due":0}` {
		t.Fatalf("InvokeScheduled: %s %v", out, err)
	}
	if got.Source != "aws.events" || got.DetailType != "Scheduled Event" || got.ID == "" || len(got.Resources) != 1 || time.Since(got.Time) > time.Minute {
		t.Errorf("event %+v", got)
	}
	if _, err := gw.InvokeScheduled(context.Background(), "nope"); err == nil {
		t.Error("a function the stack does not run was invoked")
	}
}

// stoppable is an environment with shutdown work, as the authorizer's.
type stoppable struct {
	fn
	stopped *atomic.Int64
}

func (s stoppable) Shutdown(context.Context) { s.stopped.Add(1) }

// Shutdown ends every environment the gateway built as Lambda's SIGTERM
// does: each one's Shutdown runs once, the busy one's after its
// invocation returns.
func TestShutdownRunsEachEnvironmentsShutdown(t *testing.T) {
	var built, stopped atomic.Int64
	release := make(chan struct{})
	gw := localgw.New(localgw.Options{
		Routes: gateway.Routes,
		Functions: map[string]localgw.Factory{gateway.FnIssuer: func() (lambda.Handler, error) {
			built.Add(1)
			return stoppable{fn{func(ctx context.Context, p []byte) ([]byte, error) {
				<-release
				return json.Marshal(events.APIGatewayProxyResponse{StatusCode: 200})
			}}, &stopped}, nil
		}},
	})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.Get(srv.URL + "/v1/openapi.json"); err == nil {
				resp.Body.Close()
			}
		}()
	}
	for built.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw.Shutdown(ctx)
	wg.Wait()
	if stopped.Load() != 2 {
		t.Fatalf("%d of 2 environments shut down", stopped.Load())
	}
}
