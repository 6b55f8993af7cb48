package lambdahttp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/lambdahttp"
)

// echo answers with what the handler saw, so tests can check the request
// the adapter built.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("X-Multi", "a")
	w.Header().Add("X-Multi", "b")
	w.WriteHeader(http.StatusTeapot)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method, "path": r.URL.Path, "query": r.URL.Query(), "body": string(b),
		"actor": actor.From(r.Context()), "ct": r.Header.Get("Content-Type"), "remote": r.RemoteAddr,
	})
})

func invoke(t *testing.T, h http.Handler, ev any) map[string]any {
	t.Helper()
	payload, _ := json.Marshal(ev)
	out, err := lambda.NewHandler(lambdahttp.Handler(h)).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func seen(t *testing.T, resp map[string]any) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(resp["body"].(string)), &m); err != nil {
		t.Fatalf("body %v: %v", resp["body"], err)
	}
	return m
}

func TestRESTAPIEvent(t *testing.T) {
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: "POST", Path: "/v1/keys",
		MultiValueHeaders:               map[string][]string{"Content-Type": {"application/json"}},
		MultiValueQueryStringParameters: map[string][]string{"a": {"1", "2"}},
		Body:                            base64.StdEncoding.EncodeToString([]byte(`{"x":1}`)), IsBase64Encoded: true,
		RequestContext: events.APIGatewayProxyRequestContext{Identity: events.APIGatewayRequestIdentity{
			UserArn: "arn:aws:iam::1:user/alice", SourceIP: "203.0.113.9"}},
	}
	resp := invoke(t, echo, ev)
	got := seen(t, resp)
	if resp["statusCode"] != 418.0 || got["method"] != "POST" || got["path"] != "/v1/keys" || got["body"] != `{"x":1}` ||
		got["actor"] != "arn:aws:iam::1:user/alice" || got["ct"] != "application/json" || got["remote"] != "203.0.113.9:0" {
		t.Fatalf("v1: %v / %v", resp, got)
	}
	if q := got["query"].(map[string]any)["a"].([]any); len(q) != 2 {
		t.Fatalf("multi-value query lost: %v", q)
	}
	if h := resp["multiValueHeaders"].(map[string]any)["X-Multi"].([]any); len(h) != 2 {
		t.Fatalf("multi-value response header lost: %v", h)
	}
}

func TestHTTPAPIEvent(t *testing.T) {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/prod/v1/keys/key_1", RawQueryString: "ownerId=acme",
		Headers: map[string]string{"content-type": "application/json"}, Body: `{"y":2}`,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "prod",
			HTTP:  events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "PATCH", SourceIP: "198.51.100.1"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: "arn:aws:iam::1:role/admin"}},
		},
	}
	resp := invoke(t, echo, ev)
	got := seen(t, resp)
	if resp["statusCode"] != 418.0 || got["method"] != "PATCH" || got["path"] != "/v1/keys/key_1" || got["body"] != `{"y":2}` ||
		got["actor"] != "arn:aws:iam::1:role/admin" || got["query"].(map[string]any)["ownerId"].([]any)[0] != "acme" {
		t.Fatalf("v2: %v / %v", resp, got)
	}
}

func TestNoPrincipalIsUnknownActor(t *testing.T) {
	got := seen(t, invoke(t, echo, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/"}))
	if got["actor"] != actor.Unknown {
		t.Fatalf("actor %v", got["actor"])
	}
}

func TestBinaryResponseIsBase64(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte{0xff, 0xfe}) })
	resp := invoke(t, h, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/"})
	if resp["isBase64Encoded"] != true || resp["body"] != base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}) || resp["statusCode"] != 200.0 {
		t.Fatalf("binary: %v", resp)
	}
}

func TestNotAProxyEventIsAnError(t *testing.T) {
	for _, p := range []string{`{"foo":1}`, `[1]`, `{"version":"2.0","isBase64Encoded":true,"body":"***"}`} {
		if _, err := lambda.NewHandler(lambdahttp.Handler(echo)).Invoke(context.Background(), []byte(p)); err == nil {
			t.Errorf("%s: no error", p)
		}
	}
}

// TestResponseHeadersOnBothPayloadVersions: a REST API (payload 1.0) reads
// multiValueHeaders, an HTTP API (payload 2.0) reads only headers (repeated
// values joined with commas) and cookies; each gets every header the
// handler set, Content-Type, ETag, Location and Retry-After included.
func TestResponseHeadersOnBothPayloadVersions(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("ETag", `"3"`)
		w.Header().Set("Location", "/v1/keys/key_1")
		w.Header().Set("Retry-After", "7")
		w.Header().Add("Vary", "Accept")
		w.Header().Add("Vary", "Origin")
		w.Header().Add("Set-Cookie", "a=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	want := map[string]string{
		"Content-Type": "application/problem+json", "Etag": `"3"`, "Location": "/v1/keys/key_1",
		"Retry-After": "7", "Vary": "Accept, Origin",
	}

	v1 := invoke(t, h, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/"})
	mv, _ := v1["multiValueHeaders"].(map[string]any)
	for k, v := range want {
		var got []string
		for _, x := range mv[k].([]any) {
			got = append(got, x.(string))
		}
		if strings.Join(got, ", ") != v {
			t.Errorf("v1 multiValueHeaders[%s] = %v, want %s", k, mv[k], v)
		}
	}
	if c, _ := mv["Set-Cookie"].([]any); len(c) != 2 {
		t.Errorf("v1 Set-Cookie: %v", mv["Set-Cookie"])
	}

	v2 := invoke(t, h, events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/",
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET"}}})
	if v2["statusCode"] != 429.0 {
		t.Fatalf("v2 status: %v", v2["statusCode"])
	}
	if mv := v2["multiValueHeaders"]; mv != nil {
		t.Errorf("v2 response carries multiValueHeaders, which HTTP APIs ignore: %v", v2)
	}
	hd, _ := v2["headers"].(map[string]any)
	for k, v := range want {
		if hd[k] != v {
			t.Errorf("v2 headers[%s] = %v, want %s", k, hd[k], v)
		}
	}
	if _, ok := hd["Set-Cookie"]; ok {
		t.Errorf("v2 Set-Cookie in headers, where commas in a cookie would split it: %v", hd)
	}
	cookies, _ := v2["cookies"].([]any)
	if len(cookies) != 2 || cookies[0] != "a=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT" || cookies[1] != "b=2" {
		t.Errorf("v2 cookies = %v", v2["cookies"])
	}
}
