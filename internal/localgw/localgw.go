// Package localgw is the local gateway of `make dev`: an HTTP server that
// behaves as keygate's deployed REST API does, so that what works against
// it works against the stack.
//
// It routes by internal/gateway's route table (the one the CDK stack
// declares), builds the events API Gateway would send (REST API REQUEST
// authorizer events; REST API payload 1.0 Lambda proxy events, with the
// authorizer's context), invokes the real function handlers through the
// Lambda JSON path (lambda.Handler.Invoke, one environment serving one
// invocation at a time), judges the authorizer's policy as API Gateway
// does and renders denials with internal/gateway's response mapping and
// renderer: a client sees the status and body the stack's gateway responses
// give. Routes to gateway.Upstream are proxied to an upstream URL with the
// authorizer context as the gateway.Forward headers and the credential
// headers removed, as the stack's HTTP proxy integration does.
//
// What it does not emulate: SigV4 (admin routes are open; the listener is
// loopback only, every write must be sent as application/json so that no
// web page can make one, and every admin request is audited as
// actor.Local), API
// Gateway's authorizer cache (the stack keeps it off by default), stage
// throttling, usage plans and the WAF.
package localgw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/httpedge"
)

// API Gateway's request limits for a REST API, which the local gateway
// applies so that a request it accepts would also reach the functions in
// the stack.
const (
	// MaxPayloadBytes is the largest request body (10 MB): above it, 413.
	MaxPayloadBytes = 10 << 20
	// MaxHeaderBytes is the largest request line plus header names and
	// values (10240 bytes): above it, 431.
	MaxHeaderBytes = 10240
	// MaxURLLength is the longest request URI (8192 characters): above it,
	// 414.
	MaxURLLength = 8192
	// IntegrationTimeout is API Gateway's limit on an integration (29 s):
	// a function or upstream that takes longer is a 504.
	IntegrationTimeout = 29 * time.Second
)

// Options configure a Gateway.
type Options struct {
	// Routes is the route table: gateway.Routes plus the protected proxy
	// (gateway.Proxy).
	Routes []gateway.Route
	// Functions builds each function's environments, by function name
	// (gateway.FnAuthorizer for routes with gateway.AuthKeygate). A route
	// to a function missing here answers 502, as an integration that
	// cannot be invoked does.
	Functions map[string]Factory
	// Upstream is where routes to gateway.Upstream go.
	Upstream *url.URL
	// Stage is the stage name in events and method ARNs (the stack's is
	// "prod" by default).
	Stage string
	// Logger receives one access log line per request (never a header or
	// query value, so never a key) and failures.
	Logger *slog.Logger
	// KeyQueryParam is the query parameter that may carry a key (the
	// authorizer's KEYGATE_KEY_QUERY_PARAM); the proxy drops it, as it
	// drops the credential headers.
	KeyQueryParam string
	// CORS is the protected proxy's cross-origin policy, as the stack
	// declares it (off when it allows no origin).
	CORS gateway.CORS
}

// Gateway is the local gateway, an http.Handler.
type Gateway struct {
	routes    []gateway.Route
	functions map[string]*function
	stage     string
	keyParam  string
	cors      gateway.CORS
	log       *slog.Logger
	proxy     *httputil.ReverseProxy
	now       func() time.Time
}

// New returns a gateway. It builds no function environment yet: each is
// built on its first invocation, as a cold start.
func New(o Options) *Gateway {
	g := &Gateway{
		routes:    o.Routes,
		functions: map[string]*function{},
		stage:     o.Stage,
		keyParam:  o.KeyQueryParam,
		cors:      o.CORS,
		log:       o.Logger,
		now:       time.Now,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.stage == "" {
		g.stage = "local"
	}
	for name, f := range o.Functions {
		g.functions[name] = newFunction(name, f)
	}
	if o.Upstream != nil {
		g.proxy = g.newProxy(o.Upstream)
	}
	return g
}

// NewServer returns an HTTP server for h with API Gateway's header limit
// and timeouts that keep a slow or vanished client from holding a
// connection forever.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      IntegrationTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// ServeHTTP serves one request as API Gateway would.
func (g *Gateway) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := g.now()
	id := newRequestID()
	w := &httpedge.Recorder{ResponseWriter: rw}
	w.Header()["x-amzn-RequestId"] = []string{id}
	var outcome string
	defer func() {
		g.log.Info("request", "requestId", id, "method", r.Method, "path", r.URL.Path,
			"status", w.Status, "outcome", outcome, "latencyMs", g.now().Sub(start).Milliseconds())
	}()
	outcome = g.serve(w, r, id, start)
}

// serve answers the request and returns the outcome for the access log: a
// key id, a denial code, or what went wrong.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, id string, start time.Time) string {
	if len(r.RequestURI) > MaxURLLength {
		apigwError(w, http.StatusRequestURITooLong, "Request-URI Too Long")
		return "uri_too_long"
	}
	if headerBytes(r) > MaxHeaderBytes {
		apigwError(w, http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large")
		return "headers_too_large"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPayloadBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apigwError(w, http.StatusRequestEntityTooLarge, "Request Too Long")
			return "payload_too_large"
		}
		// The client went away or sent a broken body; it is unlikely to
		// read this, but the connection is answered and closed cleanly.
		apigwError(w, http.StatusBadRequest, "Bad Request")
		return "bad_body"
	}
	m, ok := resolve(g.routes, r.Method, r.URL.Path)
	if !ok {
		apigwError(w, http.StatusForbidden, "Missing Authentication Token")
		return "no_route"
	}
	if m.route.Auth == gateway.AuthIAM && isWrite(r.Method) && !httpedge.IsJSON(r.Header.Get("Content-Type")) {
		httpedge.WriteProblem(w, httpedge.NewProblem(http.StatusUnsupportedMediaType, httpedge.CodeUnsupportedMediaType, "Content-Type",
			"the local admin API takes changes only with Content-Type: application/json, which no cross-site form or simple request can send"))
		return "unsupported_media_type"
	}
	if g.cors.Enabled() && r.Method == http.MethodOptions && m.route.Function == gateway.Upstream {
		// The stack's CORS preflight: a mock integration on the proxy's
		// OPTIONS methods, with no authorizer (a preflight carries no key).
		for k, v := range g.cors.PreflightHeaders(r.Header.Get("Origin")) {
			w.Header().Set(k, v)
		}
		w.WriteHeader(gateway.PreflightStatus)
		return "preflight"
	}
	q := newRequest(r, id, g.stage, m, body, start)
	// API Gateway finishes an invocation whether or not the client waits
	// for it, so a client that disconnects does not cut a write short.
	ctx := context.WithoutCancel(r.Context())
	var auth *authorization
	switch m.route.Auth {
	case gateway.AuthIAM:
		// No SigV4 locally: the listener is loopback only, and the change is
		// audited as made by the local actor.
		ctx = actor.With(ctx, actor.Local)
	case gateway.AuthKeygate:
		a := g.authorize(ctx, q)
		if !a.allow {
			g.gatewayResponse(w, r, a.denial, a.context)
			if a.denial == gateway.AccessDenied {
				return a.context[gateway.CtxCode]
			}
			return string(a.denial)
		}
		auth = &a
	}
	if m.route.Function == gateway.Upstream {
		g.forward(w, r, q, auth)
	} else {
		g.integrate(ctx, w, q, m.route.Function, auth)
	}
	if auth != nil {
		return auth.context[gateway.CtxKeyID]
	}
	return ""
}

// isWrite reports whether a method may change something. Locally the admin
// routes are unsigned, so a web page the admin visits could otherwise reach
// them with a "simple" cross-site request (a form POST, or a fetch with a
// text/plain body, which browsers send without a preflight): every write
// must say it is JSON, which such a request cannot, and the gateway answers
// no preflight for the admin routes.
func isWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// headerBytes is the size API Gateway's header limit counts: the request
// line plus every header name and value.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto)
	n += len("Host") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

// gatewayResponse answers r with the response mapping's entry for t,
// rendered with the authorizer context exactly as API Gateway renders the
// stack's gateway responses, CORS headers included.
func (g *Gateway) gatewayResponse(w http.ResponseWriter, r *http.Request, t gateway.ResponseType, ctx map[string]string) {
	resp, ok := gateway.ResponseFor(t)
	if !ok {
		// keygate customises every type an authorizer can cause; API
		// Gateway's default would be a 500.
		apigwError(w, http.StatusInternalServerError, "Internal server error")
		return
	}
	for k, v := range resp.Headers() {
		w.Header().Set(k, v)
	}
	for k, v := range g.cors.ResponseHeaders(r.Header.Get("Origin")) {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.Status)
	_, _ = io.WriteString(w, resp.Render(ctx))
}

// apigwError answers with one of API Gateway's own default responses
// (those keygate does not customise): {"message": "..."}.
func apigwError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"message": message})
	_, _ = w.Write(b)
}

// integrate invokes a function with the proxy event and writes its proxy
// response. A function error or an answer that is not a proxy response is
// API Gateway's 502; a function that runs past the integration timeout,
// 504.
func (g *Gateway) integrate(ctx context.Context, w http.ResponseWriter, q *request, name string, auth *authorization) {
	fn := g.functions[name]
	if fn == nil {
		g.log.Error("route needs a function the local stack does not run", "function", name, "path", q.match.route.Path)
		apigwError(w, http.StatusBadGateway, "Internal server error")
		return
	}
	var authCtx map[string]any
	if auth != nil {
		authCtx = map[string]any{"principalId": auth.principal}
		for k, v := range auth.context {
			authCtx[k] = v
		}
	}
	payload, err := json.Marshal(q.proxyEvent(authCtx))
	if err != nil {
		apigwError(w, http.StatusInternalServerError, "Internal server error")
		return
	}
	out, err := fn.invoke(ctx, q.id, IntegrationTimeout, payload)
	if errors.Is(err, errTimeout) {
		apigwError(w, http.StatusGatewayTimeout, "Endpoint request timed out")
		return
	}
	if err != nil {
		g.log.Error("function failed", "function", name, "requestId", q.id, "error", err.Error())
		apigwError(w, http.StatusBadGateway, "Internal server error")
		return
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode < 100 || resp.StatusCode > 599 {
		g.log.Error("function answer is not a proxy response", "function", name, "requestId", q.id)
		apigwError(w, http.StatusBadGateway, "Internal server error")
		return
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			apigwError(w, http.StatusBadGateway, "Internal server error")
			return
		}
	}
	// API Gateway merges headers into multiValueHeaders; a name in both
	// takes multiValueHeaders' values.
	h := w.Header()
	for k, vs := range resp.MultiValueHeaders {
		h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	for k, v := range resp.Headers {
		if _, ok := resp.MultiValueHeaders[k]; !ok {
			h.Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// proxyKey carries a proxied request's match and authorization to the
// reverse proxy's Rewrite.
type proxyKey struct{}

// newProxy is the protected proxy's HTTP integration: the request goes to
// upstream plus the greedy path parameter, with the gateway.Forward headers
// set from the authorizer context (replacing any a client sent) and the
// credential headers removed, so the upstream never holds a key.
func (g *Gateway) newProxy(upstream *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			q, _ := pr.In.Context().Value(proxyKey{}).(*proxied)
			target := *upstream
			if rest, ok := q.req.match.params[gateway.ProxyParam]; ok {
				target.Path = strings.TrimSuffix(target.Path, "/") + "/" + rest
			}
			target.RawPath = ""
			target.RawQuery = pr.In.URL.RawQuery
			if g.keyParam != "" {
				v := pr.In.URL.Query()
				v.Del(g.keyParam)
				target.RawQuery = v.Encode()
			}
			pr.Out.URL = &target
			pr.Out.Host = ""
			for _, h := range gateway.CredentialHeaders {
				pr.Out.Header.Del(h)
			}
			for _, f := range gateway.Forward {
				pr.Out.Header.Del(f.Header)
				if q.auth != nil {
					if v := q.auth.context[f.Context]; v != "" {
						pr.Out.Header.Set(f.Header, v)
					}
				}
			}
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.DeadlineExceeded) {
				apigwError(w, http.StatusGatewayTimeout, "Endpoint request timed out")
				return
			}
			if r.Context().Err() != nil {
				return // the client is gone
			}
			g.log.Error("upstream failed", "error", err.Error())
			apigwError(w, http.StatusBadGateway, "Internal server error")
		},
	}
}

type proxied struct {
	req  *request
	auth *authorization
}

// forward proxies the request to the upstream.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, q *request, auth *authorization) {
	if g.proxy == nil {
		g.log.Error("route needs an upstream and none is set", "path", q.match.route.Path)
		apigwError(w, http.StatusBadGateway, "Internal server error")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), IntegrationTimeout)
	defer cancel()
	out := r.WithContext(context.WithValue(ctx, proxyKey{}, &proxied{req: q, auth: auth}))
	out.Body = io.NopCloser(bytes.NewReader(q.body))
	out.ContentLength = int64(len(q.body))
	g.proxy.ServeHTTP(w, out)
}

// newRequestID returns a request id in API Gateway's UUID form.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// Shutdown ends every function's environments as Lambda does, running
// each one's shutdown work (the authorizer's report of usage admitted from
// reservations) within ctx. Call it after the server stopped taking
// requests.
func (g *Gateway) Shutdown(ctx context.Context) {
	for _, f := range g.functions {
		f.shutdown(ctx)
	}
}

// Warm builds one environment of every function, in the order of names, so
// that a function that cannot start is reported before the gateway serves
// (in Lambda it would fail its first invocation's init).
func (g *Gateway) Warm(ctx context.Context) error {
	names := make([]string, 0, len(g.functions))
	for n := range g.functions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := g.functions[n].warm(ctx); err != nil {
			return err
		}
	}
	return nil
}
