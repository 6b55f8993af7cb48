// Package authorizer is the Lambda authorizer's handler: it reads API
// Gateway's event in each dialect (REST API REQUEST and TOKEN authorizers,
// HTTP API payload 2.0 with simple responses), asks internal/verify for a
// decision, and renders it the way API Gateway and the stack's gateway
// responses expect:
//
//   - REST API, no credential recognised (missing, malformed, unknown key):
//     the error "Unauthorized", which API Gateway answers with 401;
//   - REST API, a recognised key refused, limits included: a Deny policy
//     with context code, message and retryAfterSeconds, which the gateway
//     responses print (403);
//   - REST API, no decision possible (DynamoDB down or slow, a panic): the
//     error "unavailable", API Gateway's AUTHORIZER_FAILURE, which the stack
//     maps to 503 unavailable;
//   - HTTP API, every refusal, those three included: isAuthorized=false
//     with the same context (403). An HTTP API answers an authorizer that
//     returns an error, or an answer it cannot read, with 500 (AWS: "If API
//     Gateway can't invoke your Lambda authorizer, or your Lambda authorizer
//     returns a response in an invalid format, clients receive a 500
//     Internal Server Error",
//     https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html),
//     and documents no error that becomes a 401: it gives 401 only itself,
//     without invoking the authorizer, when a request lacks a configured
//     identity source. A refusal is a decision, never an authorizer
//     failure (which would also count as a Lambda error in the alarms).
//
// It writes one EMF metrics line per verification and one JSON log line
// through log/slog (never the key): allows at debug, refusals at info,
// failures at error. docs/verification.md lists the fields of both.
package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/verify"
)

// The errors the handler returns to a REST API. API Gateway turns exactly
// "Unauthorized" into 401; any other error is an authorizer failure (the
// stack: 503). An HTTP API gets no error (see Handle).
var (
	ErrUnauthorized = errors.New("Unauthorized")
	ErrUnavailable  = errors.New("unavailable")
)

// Event is an authorizer event of any of the three dialects, decoded in one
// pass: the fields the authorizer reads from a REST API REQUEST event
// (events.APIGatewayCustomAuthorizerRequestTypeRequest), a TOKEN event
// (events.APIGatewayCustomAuthorizerRequest) and an HTTP API payload 2.0
// event (events.APIGatewayV2CustomAuthorizerV2Request), with the same JSON
// names. Fields it does not read (multi-value headers, path parameters,
// stage variables, ...) are skipped rather than decoded into maps, which
// keeps a warm invocation close to the cost of the JSON itself. The dialect
// is told by Version ("2.0") and Type ("TOKEN").
type Event struct {
	Type                  string            `json:"type"`
	MethodArn             string            `json:"methodArn"` //nolint: staticcheck
	Path                  string            `json:"path"`
	HTTPMethod            string            `json:"httpMethod"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	RequestContext        RequestContext    `json:"requestContext"`
	// AuthorizationToken is the TOKEN dialect's credential.
	AuthorizationToken string `json:"authorizationToken"`
	// Version, RouteArn and RawPath are the HTTP API's.
	Version  string `json:"version"`
	RouteArn string `json:"routeArn"` //nolint: staticcheck
	RawPath  string `json:"rawPath"`
}

// RequestContext is what the authorizer reads of the REST and the HTTP API
// request contexts.
type RequestContext struct {
	RequestID string                                                      `json:"requestId"`
	Stage     string                                                      `json:"stage"`
	Identity  events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity `json:"identity"`
	HTTP      events.APIGatewayV2HTTPRequestContextHTTPDescription        `json:"http"`
}

// Options configure a Handler.
type Options struct {
	// QueryParam, when set, is a query parameter that may carry the key.
	QueryParam string
	Logger     *slog.Logger
	Metrics    *metrics.EMF
	// Now is the clock for latency; nil means time.Now.
	Now func() time.Time
	// Stop, when set, stops the verifier's reporter at Shutdown.
	Stop func()
}

// Handler handles authorizer events.
type Handler struct {
	v *verify.Verifier
	o Options
}

// Shutdown is what the environment does before it ends: it stops the
// verifier's reporter (Options.Stop) and flushes the verifier
// (verify.Verifier.Flush, final): the usage admitted from reservations that
// no write has recorded yet, and the blocks it will never use, given back.
// compose.Main runs it on the SIGTERM Lambda sends before it shuts an
// environment down, within ctx (Lambda allows about 500 ms); the local
// stack runs it when it stops.
func (h *Handler) Shutdown(ctx context.Context) {
	if h.o.Stop != nil {
		h.o.Stop()
	}
	if err := h.v.Flush(ctx, true); err != nil {
		h.o.Logger.LogAttrs(ctx, slog.LevelError, "shutdown: usage not reported; it is lost with this environment",
			slog.String("error", err.Error()))
		return
	}
	h.o.Logger.LogAttrs(ctx, slog.LevelDebug, "shutdown: usage reported")
}

// New returns a handler deciding with v.
func New(v *verify.Verifier, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{v: v, o: o}
}

type dialect int

const (
	restRequest dialect = iota
	restToken
	httpAPI
)

var dialectNames = [...]string{"REQUEST", "TOKEN", "HTTP"}

// Invoke implements lambda.Handler, so that lambda.Start(h) and
// lambda.NewHandler(h) call it directly: decode the event, Handle it,
// encode the response, without the reflection a typed handler costs on
// every invocation. An event that is not JSON cannot be decided
// (unavailable).
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	ev := new(Event)
	if err := json.Unmarshal(payload, ev); err != nil {
		h.o.Logger.LogAttrs(ctx, slog.LevelError, "authorizer event is not JSON", slog.String("error", err.Error()))
		return nil, ErrUnavailable
	}
	resp, err := h.Handle(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// Handle decides one event. Its signature is the one lambda.NewHandler
// takes; the response is an events.APIGatewayCustomAuthorizerResponse (REST)
// or events.APIGatewayV2CustomAuthorizerSimpleResponse (HTTP API).
func (h *Handler) Handle(ctx context.Context, ev *Event) (resp any, err error) {
	start := h.o.Now()
	httpEvent := ev.Version == "2.0"
	defer func() {
		if p := recover(); p != nil {
			h.o.Logger.LogAttrs(ctx, slog.LevelError, "authorizer panic", slog.Any("panic", p))
			resp, err = nil, ErrUnavailable
			if httpEvent {
				// An HTTP API turns an error into a 500: refuse instead.
				d := verify.Decision{Reason: gateway.Unavailable}
				resp, err = events.APIGatewayV2CustomAuthorizerSimpleResponse{Context: contextOf(&d)}, nil
			}
		}
	}()
	dl, req, resource := h.request(ctx, ev)
	d := h.v.Verify(ctx, &req)
	h.observe(ctx, dl, &req, &d, start)
	if dl == httpAPI {
		// Every refusal is isAuthorized=false: an HTTP API answers an
		// authorizer's error with 500, whatever the error says.
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: d.Allowed(), Context: contextOf(&d)}, nil
	}
	switch {
	case d.Reason == gateway.Unavailable:
		return nil, ErrUnavailable
	case d.Reason.Unrecognised():
		return nil, ErrUnauthorized
	}
	effect := "Allow"
	if !d.Allowed() {
		effect = "Deny"
	}
	principal := "anonymous"
	if d.Key != nil {
		principal = d.Key.ID
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{resource},
			}},
		},
		Context: contextOf(&d),
	}, nil
}

// request reads the dialect, the verifier's request and the policy
// resource from an event.
func (h *Handler) request(ctx context.Context, ev *Event) (dialect, verify.Request, string) {
	var req verify.Request
	rc := &ev.RequestContext
	req.RequestID = rc.RequestID
	if req.RequestID == "" {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			req.RequestID = lc.AwsRequestID
		}
	}
	switch {
	case ev.Version == "2.0":
		req.Credential, req.Bearer = verify.Credential(ev.Headers, ev.QueryStringParameters, h.o.QueryParam)
		req.Method, req.Stage, req.SourceIP = rc.HTTP.Method, rc.Stage, rc.HTTP.SourceIP
		req.Path = rc.HTTP.Path
		if req.Path == "" {
			req.Path = ev.RawPath
		}
		if req.Stage != "" && req.Stage != "$default" {
			if rest, ok := strings.CutPrefix(req.Path, "/"+req.Stage); ok && (rest == "" || rest[0] == '/') {
				req.Path = rest
			}
		}
		req.Origin = verify.Header(ev.Headers, "origin")
		return httpAPI, req, ev.RouteArn
	case ev.Type == "TOKEN":
		// A TOKEN event carries the token and the method ARN only: method,
		// path and stage come from the ARN; there is no source IP and no
		// Origin, so keys with a CIDR or origin allowlist are refused.
		req.Credential, req.Bearer = strings.TrimSpace(ev.AuthorizationToken), false
		if c, ok := verify.BearerToken(ev.AuthorizationToken); ok {
			req.Credential, req.Bearer = c, true
		}
		req.Stage, req.Method, req.Path = splitMethodArn(ev.MethodArn)
		return restToken, req, ev.MethodArn
	}
	req.Credential, req.Bearer = verify.Credential(ev.Headers, ev.QueryStringParameters, h.o.QueryParam)
	req.Method, req.Path, req.Stage = ev.HTTPMethod, ev.Path, rc.Stage
	req.SourceIP = rc.Identity.SourceIP
	req.Origin = verify.Header(ev.Headers, "origin")
	return restRequest, req, ev.MethodArn
}

// splitMethodArn reads stage, method and path from a method ARN:
// arn:aws:execute-api:region:account:apiId/stage/METHOD/path...
func splitMethodArn(arn string) (stage, method, path string) {
	i := strings.IndexByte(arn, '/')
	if i < 0 {
		return "", "", ""
	}
	parts := strings.SplitN(arn[i+1:], "/", 3)
	if len(parts) < 2 {
		return parts[0], "", ""
	}
	path = "/"
	if len(parts) == 3 {
		path += parts[2]
	}
	return parts[0], parts[1], path
}

// contextOf is the authorizer context: the key's identity and remaining
// limits on an allow; code, message and retryAfterSeconds on a refusal.
func contextOf(d *verify.Decision) map[string]any {
	if !d.Allowed() {
		retry := d.RetryAfter
		if d.Reason == gateway.Unavailable && retry == 0 {
			retry = gateway.UnavailableRetryAfter // as the REST API's 503 says
		}
		return map[string]any{
			gateway.CtxCode:              string(d.Reason),
			gateway.CtxMessage:           verify.Messages[d.Reason],
			gateway.CtxRetryAfterSeconds: retry,
			gateway.CtxRetryAfterField:   gateway.RetryAfterField(retry),
		}
	}
	k := d.Key
	if k == nil {
		return nil
	}
	plan := key.PlanOf(k)
	c := map[string]any{
		gateway.CtxKeyID:              k.ID,
		gateway.CtxOwnerID:            k.OwnerID,
		gateway.CtxType:               string(k.Type),
		gateway.CtxEnvironment:        string(k.Environment),
		gateway.CtxScopes:             strings.Join(k.Scopes, " "),
		gateway.CtxPlan:               plan,
		gateway.CtxRateLimitRemaining: d.RateLimitRemaining,
		gateway.CtxQuotaRemaining:     d.QuotaRemaining,
		// Every key the proxy forwards is set, empty when it does not
		// apply, so that the stack's header mappings always find a value.
		// For an access token, its id (the token function refuses to
		// exchange a token, by it).
		gateway.CtxTokenID: d.TokenID,
	}
	return c
}

// observe writes the verification's log line and metrics. The credential
// never reaches either: only the key id (once recognised) and the reason.
func (h *Handler) observe(ctx context.Context, dl dialect, req *verify.Request, d *verify.Decision, start time.Time) {
	end := h.o.Now()
	latency := end.Sub(start)
	outcome := "allow"
	if !d.Allowed() {
		outcome = string(d.Reason)
	}
	if h.o.Metrics != nil {
		h.o.Metrics.Verification(end, outcome, latency, d.CacheHit, d.Calls)
	}
	// Allows are logged at debug, refusals at info, failures at error:
	// a line per allowed request would cost more in log ingestion than the
	// verification itself, and the metrics count every outcome anyway.
	level := slog.LevelDebug
	switch {
	case d.Reason == gateway.Unavailable:
		level = slog.LevelError
	case d.Reason != "" || d.Stale:
		level = slog.LevelInfo
	}
	if !h.o.Logger.Enabled(ctx, level) {
		return
	}
	keyID := ""
	if d.Key != nil {
		keyID = d.Key.ID
	}
	attrs := []slog.Attr{
		slog.String("requestId", req.RequestID),
		slog.String("dialect", dialectNames[dl]),
		slog.String("keyId", keyID),
		slog.String("outcome", outcome),
		slog.Float64("latencyMs", float64(latency.Microseconds())/1000),
		slog.Int("dynamodbCalls", d.Calls),
		slog.Bool("cacheHit", d.CacheHit),
	}
	if d.TokenID != "" {
		attrs = append(attrs, slog.String("tokenId", d.TokenID))
	}
	if d.Stale {
		attrs = append(attrs, slog.Bool("stale", true))
	}
	if d.Reserved {
		attrs = append(attrs, slog.Bool("reserved", true))
	}
	if d.Err != nil {
		attrs = append(attrs, slog.String("error", d.Err.Error()))
	}
	h.o.Logger.LogAttrs(ctx, level, "verification", attrs...)
}
