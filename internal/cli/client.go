package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keygate/keygate/internal/fault"
)

// client calls the admin API at one base URL.
type client struct {
	base   *url.URL
	source string // where the URL came from, for messages
	signer *sigv4 // nil: unsigned (loopback, or a route behind the keygate authorizer)
	app    *app
	// outputs are the stack's outputs by key, when the URL came from one.
	outputs map[string]string
}

// sigv4 signs requests for API Gateway's IAM authorization.
type sigv4 struct {
	creds  aws.CredentialsProvider
	region string
	now    func() time.Time
}

func (s *sigv4) sign(ctx context.Context, r *http.Request, body []byte) error {
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return &exitError{code: ExitUnavailable, msg: "no usable AWS credentials: " + err.Error(), hint: credentialsHint}
	}
	sum := sha256.Sum256(body)
	return v4.NewSigner().SignHTTP(ctx, creds, r, hex.EncodeToString(sum[:]), "execute-api", s.region, s.now())
}

// request is one admin API call.
type request struct {
	method string
	path   string // under the base URL, e.g. /v1/keys
	query  url.Values
	body   any // encoded as JSON; nil sends no body
	header http.Header
	// once sends the request once, whatever the answer: each request
	// counts (the smoke test's calls through the authorizer).
	once bool
}

// response is an admin API answer with a 2xx status.
type response struct {
	status int
	header http.Header
	body   []byte
}

// maxBody bounds what the CLI reads from a response.
const maxBody = 16 << 20

// retryDelays are the base waits before the second and third attempt of a
// request that is safe to repeat: GET, DELETE (revoke is idempotent) and
// anything sent with an Idempotency-Key. Each wait is spread by jitter
// (see backoff), unless the answer says how long to wait (see retryWait).
var retryDelays = []time.Duration{500 * time.Millisecond, 2 * time.Second}

// maxRetryAfter is the longest wait an answer may ask for (Retry-After, or
// a body's retryAfterSeconds) that the CLI sits out by itself; an answer
// asking for longer is reported at once, with when to try again.
const maxRetryAfter = 30 * time.Second

// do sends req and returns its 2xx response, or an *exitError that says what
// went wrong and what to do.
func (c *client) do(ctx context.Context, req request) (*response, error) {
	resp, err := c.send(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.status/100 != 2 {
		return nil, c.statusError(req, resp.status, resp.header, resp.body)
	}
	return resp, nil
}

// send sends req, retrying what is safe to repeat, and returns the answer
// whatever its status; an error (an *exitError) means no answer.
func (c *client) send(ctx context.Context, req request) (*response, error) {
	var body []byte
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = b
	}
	retry := !req.once && (req.method == http.MethodGet || req.method == http.MethodDelete || req.header.Get("Idempotency-Key") != "")
	hc := &http.Client{Transport: c.app.deps.transport, Timeout: c.app.opts.timeout}
	for attempt := 0; ; attempt++ {
		r, err := c.newRequest(ctx, req, body)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(r)
		canRetry := retry && attempt < len(retryDelays) && ctx.Err() == nil
		if err != nil {
			if canRetry && !errors.Is(err, syscall.ECONNREFUSED) {
				if c.app.deps.sleep(ctx, c.backoff(attempt)) == nil {
					continue
				}
			}
			return nil, c.networkError(req, err)
		}
		data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if rerr != nil {
			if canRetry && c.app.deps.sleep(ctx, c.backoff(attempt)) == nil {
				continue
			}
			return nil, c.networkError(req, rerr)
		}
		if canRetry && transient(resp.StatusCode, data) {
			if wait, ok := c.retryWait(attempt, resp.Header, data); ok && c.app.deps.sleep(ctx, wait) == nil {
				continue
			}
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
	}
}

// backoff is the wait before attempt+2 when the answer named none: the
// base delay spread over [base/2, 3*base/2), so that clients that failed
// together do not retry together.
func (c *client) backoff(attempt int) time.Duration {
	base := retryDelays[attempt]
	return base/2 + c.app.deps.jitter(base)
}

// retryWait is the wait before retrying a transient answer. When the
// answer says how long (Retry-After, else a body's retryAfterSeconds), the
// wait is that, never less, plus up to a quarter more (at most a second) of
// jitter; ok is false when it asks for more than maxRetryAfter. Otherwise
// it is the backoff.
func (c *client) retryWait(attempt int, h http.Header, body []byte) (time.Duration, bool) {
	after, ok := retryAfter(h, body, c.app.deps.now())
	if !ok {
		return c.backoff(attempt), true
	}
	if after > maxRetryAfter {
		return 0, false
	}
	return after + c.app.deps.jitter(min(after/4, time.Second)+1), true
}

// maxRetryAfterSeconds bounds a wait read from an answer, so that no
// arithmetic on it overflows (a year: far beyond anything waited out).
const maxRetryAfterSeconds = 366 * 86400

// retryAfter reads how long an answer asks the client to wait: its
// Retry-After header (seconds, or an HTTP date; RFC 9110, section 10.2.3),
// else the retryAfterSeconds of its body (a keygate denial or problem).
func retryAfter(h http.Header, body []byte, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return time.Duration(min(n, maxRetryAfterSeconds)) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	var p problem
	if json.Unmarshal(body, &p) == nil && p.RetryAfterSeconds != nil && *p.RetryAfterSeconds > 0 {
		return time.Duration(min(*p.RetryAfterSeconds, maxRetryAfterSeconds)) * time.Second, true
	}
	return 0, false
}

// transient reports whether an answer may change if the same request is
// sent again: throttling, a gateway or store outage, or the first request
// with the same Idempotency-Key still running.
func transient(status int, body []byte) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusConflict:
		var p problem
		return json.Unmarshal(body, &p) == nil && p.Code == "idempotency_in_progress"
	}
	return false
}

func (c *client) newRequest(ctx context.Context, req request, body []byte) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + req.path
	u.RawPath = ""
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}
	r, err := http.NewRequestWithContext(ctx, req.method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body == nil {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	for k, vs := range req.header {
		r.Header[k] = vs
	}
	r.Header.Set("Accept", "application/json, application/problem+json")
	r.Header.Set("User-Agent", "keygate-cli")
	if body != nil || (req.method != http.MethodGet && req.method != http.MethodHead) {
		// Every write says it is JSON, a body or not: the local gateway
		// refuses writes that do not (see internal/localgw).
		r.Header.Set("Content-Type", "application/json")
	}
	if c.signer != nil {
		if err := c.signer.sign(ctx, r, body); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// networkError explains a request that got no HTTP answer.
func (c *client) networkError(req request, err error) error {
	where := c.base.String()
	e := &exitError{code: ExitUnavailable}
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		e.msg = "interrupted"
	case errors.Is(err, syscall.ECONNREFUSED) && isLoopback(c.base):
		e.msg = "nothing is listening at " + where
		e.hint = "start the local stack with 'make dev' (or point --api-url, KEYGATE_API_URL or --stack at a deployed stack)"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		e.msg = fmt.Sprintf("no answer from %s within %s", where, c.app.opts.timeout)
		e.hint = "try again, or raise --timeout"
	default:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			e.msg = fmt.Sprintf("cannot resolve %s (API URL from %s)", c.base.Hostname(), c.source)
		} else {
			e.msg = fmt.Sprintf("cannot reach %s (API URL from %s): %v", where, c.source, rootCause(err))
		}
		e.hint = "check the API URL (--api-url, KEYGATE_API_URL, --stack) and your network"
	}
	if k := req.header.Get("Idempotency-Key"); k != "" && !errors.Is(err, syscall.ECONNREFUSED) {
		e.hint = fmt.Sprintf("the request may have been applied: run the same command again with --idempotency-key %s to get its result without doing it twice", k)
	}
	return e
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// problem is an error body: an RFC 9457 problem from the admin API, a denial
// from the keygate authorizer ({code, message, retryAfterSeconds}), or API
// Gateway's own {"message": ...}.
type problem struct {
	Title             string `json:"title"`
	Detail            string `json:"detail"`
	Code              string `json:"code"`
	Field             string `json:"field"`
	Message           string `json:"message"`
	RetryAfterSeconds *int64 `json:"retryAfterSeconds"`
}

// statusError explains a non-2xx answer. Only the problem's own fields are
// shown (bounded and stripped of control characters), never the request.
func (c *client) statusError(req request, status int, header http.Header, data []byte) error {
	var p problem
	_ = json.Unmarshal(data, &p)
	text := firstOf(p.Detail, p.Message, p.Title)
	if text == "" && len(data) > 0 && !json.Valid(data) {
		text = string(data)
	}
	text = fault.Clip(cell(text), 300)
	desc := strconv.Itoa(status)
	if p.Code != "" {
		desc += " " + fault.Clip(cell(p.Code), 64)
	} else {
		desc += " " + http.StatusText(status)
	}
	if p.Field != "" {
		desc += " (" + fault.Clip(cell(p.Field), 64) + ")"
	}
	msg := fmt.Sprintf("%s %s: %s", req.method, req.path, desc)
	if text != "" {
		msg += ": " + text
	}
	e := &exitError{code: ExitAPI, msg: msg}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.code = ExitUnavailable
		switch {
		case req.header.Get("x-api-key") != "":
			e.hint = "the API key was refused: check that KEYGATE_API_KEY (or --key-file) holds an active key of this deployment, with the scopes you ask for"
		case strings.Contains(text, "Missing Authentication Token"):
			e.hint = "API Gateway has no such route: check that the API URL (from " + c.source + ") is the keygate admin API, including its stage, e.g. https://ID.execute-api.REGION.amazonaws.com/prod"
		case c.signer != nil:
			e.hint = credentialsHint + "; signing for region " + c.signer.region + "; your principal needs execute-api:Invoke on this API"
		case isLoopback(c.base):
			e.hint = "the local gateway refused an admin request: its admin routes serve loopback callers only, without a signature"
		default:
			e.hint = "the API refused the request: check the API URL (from " + c.source + ")"
		}
	case status == http.StatusTooManyRequests:
		e.code = ExitUnavailable
		e.hint = "throttled: wait and try again"
		if d, ok := retryAfter(header, data, c.app.deps.now()); ok {
			e.hint = fmt.Sprintf("throttled: try again in %d s", int64((d+time.Second-1)/time.Second))
		}
	case status >= 500:
		e.code = ExitUnavailable
		e.hint = "the admin API failed: try again later; if it persists, read the function's logs (CloudWatch Logs, or the 'make dev' terminal locally)"
		if d, ok := retryAfter(header, data, c.app.deps.now()); ok {
			e.hint = fmt.Sprintf("the admin API is unavailable: try again in %d s; if it persists, read the function's logs (CloudWatch Logs, or the 'make dev' terminal locally)", int64((d+time.Second-1)/time.Second))
		}
		if k := req.header.Get("Idempotency-Key"); k != "" {
			e.hint += fmt.Sprintf("; retry with --idempotency-key %s so that it is not done twice", k)
		}
	case p.Code == "idempotency_key_reused":
		e.hint = "that Idempotency-Key was used before for a different request: use a new --idempotency-key (or none)"
	case p.Code == "idempotency_in_progress":
		e.code = ExitUnavailable
		e.hint = "the first request with this Idempotency-Key is still running: run the same command again in a moment"
	case status == http.StatusNotFound:
		e.hint = "check the key id ('keygate keys list --owner OWNER' lists an owner's keys) and the API URL"
	case status == http.StatusPreconditionFailed:
		e.hint = "the key changed since that version was read: run 'keygate keys get ID' and retry with its version, or leave out --if-match to use the current one"
	case status == http.StatusConflict:
		e.hint = "the key was changed (or rotated) at the same time: look at it with 'keygate keys get ID' before trying again"
	case p.Field != "":
		if f := flagFor(p.Field); f != "" {
			e.hint = "fix " + f + " and run the command again"
		}
	}
	return e
}

// newIdempotencyKey returns a random UUID (version 4), sent with create and
// rotate when the user gives none, so that the CLI's own retries are safe.
func newIdempotencyKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// checkIdempotencyKey checks a user's --idempotency-key: 1 to 255 visible
// ASCII characters.
func checkIdempotencyKey(k string) error {
	if k == "" || len(k) > 255 {
		return usagef("--idempotency-key: 1 to 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] > '~' {
			return usagef("--idempotency-key: visible ASCII characters only")
		}
	}
	return nil
}
