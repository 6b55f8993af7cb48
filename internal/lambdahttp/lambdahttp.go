// Package lambdahttp runs an ordinary http.Handler in Lambda behind API
// Gateway: it turns a REST API (payload 1.0, events.APIGatewayProxyRequest)
// or HTTP API (payload 2.0, events.APIGatewayV2HTTPRequest) proxy event into
// an *http.Request, and the handler's response into the matching proxy
// response. The payload version is read from the event itself, so one
// function serves either API type. The same handler runs unchanged in the
// local gateway and in tests, which is the point: the admin API is written
// once, against net/http.
package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/httpedge"
)

// Handler returns the Lambda handler function for h, for lambda.Start or
// lambda.NewHandler. It sets the caller's IAM principal (v1
// requestContext.identity.userArn, v2 requestContext.authorizer.iam.userArn)
// as the request's actor (see internal/actor), and keeps the event in the
// request's context (see V1Event and V2Event) for handlers that need more of
// it. A Lambda authorizer's context is passed on too (see Authorizer).
func Handler(h http.Handler) func(context.Context, json.RawMessage) (json.RawMessage, error) {
	return func(ctx context.Context, payload json.RawMessage) (json.RawMessage, error) {
		var probe struct {
			Version    string `json:"version"`
			HTTPMethod string `json:"httpMethod"`
		}
		if err := json.Unmarshal(payload, &probe); err != nil {
			return nil, fault.Wrap(fault.Invalid, err, "event is not JSON")
		}
		if probe.Version == "2.0" {
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(payload, &ev); err != nil {
				return nil, fault.Wrap(fault.Invalid, err, "decode HTTP API event")
			}
			return serveV2(ctx, h, &ev)
		}
		if probe.HTTPMethod == "" {
			return nil, fault.Errorf(fault.Invalid, "event is neither a REST API nor an HTTP API proxy event")
		}
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fault.Wrap(fault.Invalid, err, "decode REST API event")
		}
		return serveV1(ctx, h, &ev)
	}
}

type v1Key struct{}
type v2Key struct{}
type authorizerKey struct{}

// WithAuthorizer returns ctx carrying a Lambda authorizer's context (what
// the keygate authorizer returned on allow: keyId, ownerId, scopes...).
// Handler sets it from the proxy event (v1 requestContext.authorizer, v2
// requestContext.authorizer.lambda); the local gateway sets it itself.
func WithAuthorizer(ctx context.Context, c map[string]any) context.Context {
	return context.WithValue(ctx, authorizerKey{}, c)
}

// Authorizer returns the string value of key in the request's authorizer
// context, "" when there is none. API Gateway may deliver values as strings
// or as JSON numbers and booleans; each is returned in its JSON text.
func Authorizer(ctx context.Context, key string) string {
	c, _ := ctx.Value(authorizerKey{}).(map[string]any)
	switch v := c[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// V1Event returns the REST API event the request came from, if it did.
func V1Event(ctx context.Context) (*events.APIGatewayProxyRequest, bool) {
	ev, ok := ctx.Value(v1Key{}).(*events.APIGatewayProxyRequest)
	return ev, ok
}

// V2Event returns the HTTP API event the request came from, if it did.
func V2Event(ctx context.Context) (*events.APIGatewayV2HTTPRequest, bool) {
	ev, ok := ctx.Value(v2Key{}).(*events.APIGatewayV2HTTPRequest)
	return ev, ok
}

func body(s string, b64 bool) ([]byte, error) {
	if !b64 {
		return []byte(s), nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, err, "body is not valid base64")
	}
	return b, nil
}

func serveV1(ctx context.Context, h http.Handler, ev *events.APIGatewayProxyRequest) (json.RawMessage, error) {
	b, err := body(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for k, vs := range ev.MultiValueQueryStringParameters {
		q[k] = append([]string(nil), vs...)
	}
	for k, v := range ev.QueryStringParameters {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	hdr := http.Header{}
	for k, vs := range ev.MultiValueHeaders {
		for _, v := range vs {
			hdr.Add(k, v)
		}
	}
	for k, v := range ev.Headers {
		if hdr.Get(k) == "" {
			hdr.Set(k, v)
		}
	}
	if arn := ev.RequestContext.Identity.UserArn; arn != "" {
		ctx = actor.With(ctx, arn)
	}
	if a := ev.RequestContext.Authorizer; len(a) > 0 {
		ctx = WithAuthorizer(ctx, a)
	}
	ctx = context.WithValue(ctx, v1Key{}, ev)
	// requestContext.path is the path the client requested, with the stage
	// of an execute-api URL (/prod/v1/keys) or a custom domain's base path;
	// path is the resource's own. What precedes it is where links go.
	if prefix, ok := strings.CutSuffix(ev.RequestContext.Path, ev.Path); ok && ev.Path != "" {
		ctx = httpedge.WithBasePath(ctx, prefix)
	}
	req, err := newRequest(ctx, ev.HTTPMethod, ev.Path, q.Encode(), hdr, b, ev.RequestContext.Identity.SourceIP)
	if err != nil {
		return nil, err
	}
	rec := serve(h, req)
	out := events.APIGatewayProxyResponse{StatusCode: rec.status, MultiValueHeaders: rec.header}
	out.Body, out.IsBase64Encoded = encodeBody(rec.body.Bytes())
	return json.Marshal(out)
}

func serveV2(ctx context.Context, h http.Handler, ev *events.APIGatewayV2HTTPRequest) (json.RawMessage, error) {
	b, err := body(ev.Body, ev.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	hdr := http.Header{}
	for k, v := range ev.Headers {
		// HTTP API joins repeated headers with commas; so does net/http's
		// reading of a list-valued header, so one value is equivalent.
		hdr.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		hdr.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	path := ev.RawPath
	// A named stage prefixes rawPath ("/prod/v1/keys"); the routes do not
	// know the stage.
	if st := ev.RequestContext.Stage; st != "" && st != "$default" && strings.HasPrefix(path, "/"+st+"/") {
		path = path[len(st)+1:]
		ctx = httpedge.WithBasePath(ctx, "/"+st)
	}
	if a := ev.RequestContext.Authorizer; a != nil && a.IAM != nil && a.IAM.UserARN != "" {
		ctx = actor.With(ctx, a.IAM.UserARN)
	}
	if a := ev.RequestContext.Authorizer; a != nil && len(a.Lambda) > 0 {
		ctx = WithAuthorizer(ctx, a.Lambda)
	}
	ctx = context.WithValue(ctx, v2Key{}, ev)
	req, err := newRequest(ctx, ev.RequestContext.HTTP.Method, path, ev.RawQueryString, hdr, b, ev.RequestContext.HTTP.SourceIP)
	if err != nil {
		return nil, err
	}
	rec := serve(h, req)
	out := events.APIGatewayV2HTTPResponse{StatusCode: rec.status}
	out.Headers, out.Cookies = v2Headers(rec.header)
	out.Body, out.IsBase64Encoded = encodeBody(rec.body.Bytes())
	return json.Marshal(out)
}

// v2Headers writes response headers as a payload 2.0 response carries
// them: HTTP APIs read `headers` (one value per name; repeated values
// joined with commas, as RFC 9110 allows for list-valued fields) and
// `cookies` (each Set-Cookie on its own, because a cookie may hold commas),
// and ignore `multiValueHeaders`, which only REST APIs read ("Lambda
// function response for format 2.0" in
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
func v2Headers(h http.Header) (map[string]string, []string) {
	var headers map[string]string
	var cookies []string
	for k, vs := range h {
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			cookies = append(cookies, vs...)
			continue
		}
		if headers == nil {
			headers = make(map[string]string, len(h))
		}
		headers[k] = strings.Join(vs, ", ")
	}
	return headers, cookies
}

func newRequest(ctx context.Context, method, path, rawQuery string, hdr http.Header, b []byte, sourceIP string) (*http.Request, error) {
	if path == "" {
		path = "/"
	}
	u := &url.URL{Path: path, RawQuery: rawQuery}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(b))
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, err, "bad request line")
	}
	req.Header = hdr
	req.Host = hdr.Get("Host")
	req.RequestURI = u.RequestURI()
	if sourceIP != "" {
		req.RemoteAddr = sourceIP + ":0"
	}
	return req, nil
}

// encodeBody returns the body as text when it is UTF-8, and base64 otherwise.
func encodeBody(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

// recorder is a minimal http.ResponseWriter that keeps the response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func serve(h http.Handler, req *http.Request) *recorder {
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}
