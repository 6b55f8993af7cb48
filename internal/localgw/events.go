package localgw

import (
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// The identity of the emulated API, as it appears in ARNs and request
// contexts. They are fixed and obviously fake: nothing local is in AWS.
const (
	region  = "local"
	account = "000000000000"
	apiID   = "keygatelocal"
)

// request is what the gateway knows of one client request once it has been
// read and matched: everything an event is built from.
type request struct {
	id       string
	received time.Time
	method   string
	path     string
	match    match
	header   http.Header
	query    map[string][]string
	body     []byte
	sourceIP string
	stage    string
}

// newRequest reads the parts of r an event needs. The source IP is the TCP
// peer's address, never a header such as X-Forwarded-For, as API Gateway
// sets identity.sourceIp.
func newRequest(r *http.Request, id, stage string, m match, body []byte, now time.Time) *request {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	h := r.Header.Clone()
	if r.Host != "" {
		h.Set("Host", r.Host)
	}
	return &request{
		id: id, received: now, method: r.Method, path: r.URL.Path, match: m,
		header: h, query: r.URL.Query(), body: body, sourceIP: ip, stage: stage,
	}
}

// methodArn is the ARN of the method being called, the resource an
// authorizer's policy must allow:
// arn:aws:execute-api:region:account:apiId/stage/METHOD/path (no leading
// slash on the path).
func (q *request) methodArn() string {
	return "arn:aws:execute-api:" + region + ":" + account + ":" + apiID + "/" + q.stage + "/" + q.method + "/" + strings.TrimPrefix(q.path, "/")
}

// singleHeaders is API Gateway's "headers": one value per name, the last
// one sent. nil when there are none (API Gateway sends null).
func singleHeaders(h http.Header) map[string]string { return single(h) }

func multi(m map[string][]string) map[string][]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func single(m map[string][]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, vs := range m {
		if len(vs) > 0 {
			out[k] = vs[len(vs)-1]
		}
	}
	return out
}

func params(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// authorizerEvent is the REST API REQUEST authorizer event API Gateway sends
// for this request: the same request fields as the proxy event's, a method
// ARN, and a request context of its own.
func (q *request) authorizerEvent() events.APIGatewayCustomAuthorizerRequestTypeRequest {
	p := q.proxyEvent(nil).APIGatewayProxyRequest
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: q.methodArn(), Resource: p.Resource, Path: p.Path, HTTPMethod: p.HTTPMethod,
		Headers: p.Headers, MultiValueHeaders: p.MultiValueHeaders, PathParameters: p.PathParameters,
		QueryStringParameters: p.QueryStringParameters, MultiValueQueryStringParameters: p.MultiValueQueryStringParameters,
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			Path:         q.path,
			AccountID:    account,
			ResourceID:   resourceID(q.match.route.Path),
			Stage:        q.stage,
			RequestID:    q.id,
			ResourcePath: q.match.route.Path,
			HTTPMethod:   q.method,
			APIID:        apiID,
			Identity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{
				SourceIP: q.sourceIP,
			},
		},
	}
}

// proxyEvent is a REST API proxy event as API Gateway writes it: with
// isBase64Encoded always present (the library's type omits it when false).
type proxyEvent struct {
	events.APIGatewayProxyRequest
	IsBase64Encoded bool `json:"isBase64Encoded"`
}

// proxyEvent is the REST API (payload 1.0) Lambda proxy event for this
// request. authorizer is the authorizer's context as API Gateway passes it
// on (string values plus principalId), or nil on a route without one.
func (q *request) proxyEvent(authorizer map[string]any) proxyEvent {
	body, b64 := encodeBody(q.body)
	return proxyEvent{IsBase64Encoded: b64, APIGatewayProxyRequest: events.APIGatewayProxyRequest{
		Resource:                        q.match.route.Path,
		Path:                            q.path,
		HTTPMethod:                      q.method,
		Headers:                         singleHeaders(q.header),
		MultiValueHeaders:               multi(q.header),
		QueryStringParameters:           single(q.query),
		MultiValueQueryStringParameters: multi(q.query),
		PathParameters:                  params(q.match.params),
		Body:                            body,
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID:         account,
			ResourceID:        resourceID(q.match.route.Path),
			Stage:             q.stage,
			DomainName:        q.header.Get("Host"),
			RequestID:         q.id,
			ExtendedRequestID: q.id,
			Protocol:          "HTTP/1.1",
			Identity: events.APIGatewayRequestIdentity{
				SourceIP:  q.sourceIP,
				UserAgent: q.header.Get("User-Agent"),
			},
			ResourcePath: q.match.route.Path,
			// The path as the client requested it: the local gateway serves
			// the stage at its root, as a custom domain mapped to the stage
			// does, so links in responses have no stage prefix.
			Path:             q.path,
			Authorizer:       authorizer,
			HTTPMethod:       q.method,
			RequestTime:      q.received.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch: q.received.UnixMilli(),
			APIID:            apiID,
		},
	}}
}

// encodeBody returns the body as text when it is UTF-8 and base64 otherwise
// (as a REST API with binary media types does).
func encodeBody(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return base64.StdEncoding.EncodeToString(b), true
}

// resourceID is a stable stand-in for API Gateway's resource id.
func resourceID(path string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(path); i++ {
		h = (h ^ uint32(path[i])) * 16777619
	}
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 6)
	for i := range b {
		b[i] = digits[h%36]
		h /= 36
	}
	return string(b)
}
