// Package smoke is the smoke test of a keygate deployment: the scenarios a
// user runs to trust a deployed stack right after `cdk deploy` (`keygate
// smoke`), and that `make test` runs against the local stack, so the two
// cannot drift.
//
// Run issues test keys through the admin API, calls the protected proxy
// with them, makes a rate limit bite, reads the denial bodies and headers,
// exchanges a key for an access token and uses it, rotates and revokes,
// and waits (with a bound) for each change to bite. It prints one line per
// check and `N passed, M failed`, and revokes every key it made before it
// returns, whatever happened, even when ctx is cancelled.
//
// It speaks HTTP only, through two Clients: the admin API's (the CLI's,
// SigV4-signed against a stack) and an unsigned one for what sits behind
// the keygate authorizer (the proxy, POST /v1/tokens). It needs nothing of
// AWS itself.
package smoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/apicall"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/wire"
)

// Options configure Run.
type Options struct {
	// Admin reaches the admin API (/v1/keys...), as an admin (signed).
	Admin apicall.Client
	// Edge reaches what sits behind the keygate authorizer, unsigned,
	// without retrying anything (every request counts against a limit).
	Edge apicall.Client
	// ProxyPath is where the protected proxy is mounted, such as /api
	// (default: gateway.DefaultProxyBase): the smoke test calls it.
	ProxyPath string
	// Environment of the keys it issues (default test).
	Environment key.Environment
	// Scopes the keys get: those the proxy's route needs, if any.
	Scopes []string
	// Owner of the keys it issues (default DefaultOwner).
	Owner string
	// Wait bounds how long a revocation or rotation may take to bite: the
	// authorizer's key cache TTL (keygate:keyCacheTtl, 5 s by default),
	// plus API Gateway's cache if it is on (default DefaultWait).
	Wait time.Duration
	// Poll is the pause between two looks while waiting (default 1 s).
	Poll time.Duration
	// Out receives one line per check and the summary.
	Out io.Writer
	// Sleep waits d, or less if ctx ends (and then says so); Now is the
	// clock (default time.Now).
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time
}

// DefaultOwner owns every key the smoke test issues, so a listing finds
// them (they are all revoked when it ends).
const DefaultOwner = "keygate-smoke"

// DefaultWait is how long a change may take to bite before the check fails.
const DefaultWait = time.Minute

// Result counts the checks.
type Result struct {
	Passed, Failed int
}

// OK reports whether every check passed.
func (r Result) OK() bool { return r.Failed == 0 && r.Passed > 0 }

// run is one smoke test.
type run struct {
	o      Options
	res    Result
	issued []string // every key id made, for the cleanup
	stamp  string
}

// Run runs every check and the cleanup, and prints the summary.
func Run(ctx context.Context, o Options) Result {
	if o.ProxyPath == "" {
		o.ProxyPath = gateway.DefaultProxyBase
	}
	o.ProxyPath = "/" + strings.Trim(o.ProxyPath, "/")
	if o.Environment == "" {
		o.Environment = key.Test
	}
	if o.Owner == "" {
		o.Owner = DefaultOwner
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &run{o: o, stamp: o.Now().UTC().Format("20060102T150405Z")}
	r.scenario(ctx)
	// The cleanup runs whatever happened, even after Ctrl-C, within a
	// bound of its own.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	r.cleanup(cctx)
	fmt.Fprintf(o.Out, "%d passed, %d failed\n", r.res.Passed, r.res.Failed)
	return r.res
}

// check runs one check and prints its line; it reports whether it passed.
func (r *run) check(name string, f func() (string, error)) bool {
	detail, err := f()
	if err != nil {
		r.res.Failed++
		fmt.Fprintf(r.o.Out, "FAIL %s: %v\n", name, err)
		return false
	}
	r.res.Passed++
	if detail != "" {
		name += ": " + detail
	}
	fmt.Fprintf(r.o.Out, "ok   %s\n", name)
	return true
}

// stop says that the remaining checks need the one that just failed.
func (r *run) stop() {
	fmt.Fprintln(r.o.Out, "     (the checks after this one need it: not run)")
}

// issued is a key as the admin API issues it.
type issued struct {
	wire.Key
	location string
}

func (r *run) scenario(ctx context.Context) {
	var main, rotated issued
	var token string
	if !r.check("issue a "+string(r.o.Environment)+" key through the admin API", func() (string, error) {
		k, err := r.issue(ctx, "", nil)
		main = k
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s, Location %s", k.ID, k.location), nil
	}) {
		r.stop()
		return
	}
	r.check("the key is shown once, then only by its hint", func() (string, error) {
		resp, err := r.o.Admin.Do(ctx, apicall.Request{Method: http.MethodGet, Path: wire.KeyPath(main.ID, "")})
		if err != nil {
			return "", err
		}
		var k map[string]any
		if err := want(resp, http.StatusOK, &k); err != nil {
			return "", err
		}
		if _, ok := k["key"]; ok || k["hint"] != main.Hint || k["status"] != string(key.Active) {
			return "", fmt.Errorf("GET %s: key present %v, hint %v, status %v", wire.KeyPath(main.ID, ""), ok, k["hint"], k["status"])
		}
		return "", nil
	})
	r.check("no key is refused with 401 and keygate's body", func() (string, error) {
		resp, err := r.proxy(ctx, nil)
		if err != nil {
			return "", err
		}
		d, err := denial(resp, http.StatusUnauthorized)
		if err != nil {
			return "", err
		}
		if d.Code != "unauthorized" {
			return "", fmt.Errorf("401 with code %q, want unauthorized", d.Code)
		}
		return "", nil
	})
	if !r.check("the key opens the protected proxy", func() (string, error) {
		return r.allowed(ctx, http.Header{"X-Api-Key": {main.Key.Key}})
	}) {
		r.stop()
		return
	}
	r.check("a rate limit bites: 403 rate_limited with retryAfterSeconds", func() (string, error) {
		// Two requests in a window as long as windows get: one that the
		// run cannot straddle (windows are aligned to the epoch).
		k, err := r.issue(ctx, "limited", []key.RateLimit{{Name: "smoke", Limit: 2, WindowSeconds: key.MaxWindowSeconds}})
		if err != nil {
			return "", err
		}
		for i := 1; i <= 2; i++ {
			if _, err := r.allowed(ctx, http.Header{"X-Api-Key": {k.Key.Key}}); err != nil {
				return "", fmt.Errorf("request %d of 2 under the limit: %w", i, err)
			}
		}
		resp, err := r.proxy(ctx, http.Header{"X-Api-Key": {k.Key.Key}})
		if err != nil {
			return "", err
		}
		d, err := denial(resp, http.StatusForbidden)
		if err != nil {
			return "", fmt.Errorf("the third request: %w (is API Gateway's authorizer cache, keygate:gatewayCacheTtl, on?)", err)
		}
		if d.Code != string(gateway.RateLimited) || d.RetryAfterSeconds == nil || *d.RetryAfterSeconds < 1 {
			return "", fmt.Errorf("the third request: code %q, retryAfterSeconds %v; want rate_limited and a wait", d.Code, d.RetryAfterSeconds)
		}
		return fmt.Sprintf("retry after %d s", *d.RetryAfterSeconds), nil
	})
	if r.check("exchange the key for an access token", func() (string, error) {
		resp, err := r.o.Edge.Do(ctx, apicall.Request{Method: http.MethodPost, Path: "/v1/tokens",
			Header: http.Header{"X-Api-Key": {main.Key.Key}}, Body: jsonOf(map[string]any{"ttlSeconds": 300})})
		if err != nil {
			return "", err
		}
		var t struct {
			Token     string `json:"token"`
			ExpiresAt string `json:"expiresAt"`
		}
		if err := want(resp, http.StatusOK, &t); err != nil {
			return "", err
		}
		if strings.Count(t.Token, ".") != 2 {
			return "", errors.New("the answer holds no token")
		}
		token = t.Token
		return "expires " + t.ExpiresAt, nil
	}) {
		r.check("the token opens the protected proxy", func() (string, error) {
			return r.allowed(ctx, http.Header{"Authorization": {"Bearer " + token}})
		})
	}
	if !r.check("rotate the key with no grace period", func() (string, error) {
		resp, err := r.o.Admin.Do(ctx, apicall.Request{Method: http.MethodPost, Path: wire.KeyPath(main.ID, "/rotate"),
			Header: http.Header{"Idempotency-Key": {"keygate-smoke-rotate-" + main.ID}}, Body: jsonOf(map[string]any{"gracePeriodSeconds": 0})})
		if err != nil {
			return "", err
		}
		if err := want(resp, http.StatusCreated, &rotated.Key); err != nil {
			return "", err
		}
		if rotated.ID != "" {
			r.issued = append(r.issued, rotated.ID)
		}
		if rotated.Key.Key == "" || rotated.PreviousKeyID != main.ID {
			return "", fmt.Errorf("the new key %s: plaintext given %v, previousKeyId %q", rotated.ID, rotated.Key.Key != "", rotated.PreviousKeyID)
		}
		return "new key " + rotated.ID, nil
	}) {
		r.stop()
		return
	}
	r.check("the new key opens the protected proxy", func() (string, error) {
		return r.allowed(ctx, http.Header{"X-Api-Key": {rotated.Key.Key}})
	})
	r.check("the old key stops working", func() (string, error) {
		return r.refusedWithin(ctx, main.Key.Key, gateway.Expired, gateway.Revoked)
	})
	if !r.check("revoke the new key", func() (string, error) {
		resp, err := r.o.Admin.Do(ctx, apicall.Request{Method: http.MethodDelete, Path: wire.KeyPath(rotated.ID, "")})
		if err != nil {
			return "", err
		}
		var k wire.Key
		if err := want(resp, http.StatusOK, &k); err != nil {
			return "", err
		}
		if k.Status != key.Revoked {
			return "", fmt.Errorf("status %q after DELETE, want revoked", k.Status)
		}
		return "", nil
	}) {
		return
	}
	r.check("the revocation takes effect", func() (string, error) {
		return r.refusedWithin(ctx, rotated.Key.Key, gateway.Revoked)
	})
}

// issue issues a key of the smoke test's owner, named after the run.
func (r *run) issue(ctx context.Context, what string, limits []key.RateLimit) (issued, error) {
	name := "keygate smoke " + r.stamp
	if what != "" {
		name += " " + what
	}
	body := wire.IssueRequest{Name: name, OwnerID: r.o.Owner, Environment: r.o.Environment, Scopes: r.o.Scopes,
		RateLimits: limits, Metadata: map[string]any{"createdBy": "keygate smoke"}}
	resp, err := r.o.Admin.Do(ctx, apicall.Request{Method: http.MethodPost, Path: "/v1/keys", Body: jsonOf(body),
		Header: http.Header{"Idempotency-Key": {"keygate-smoke-" + r.stamp + "-" + strconv.Itoa(len(r.issued))}}})
	if err != nil {
		return issued{}, err
	}
	var k issued
	if err := want(resp, http.StatusCreated, &k.Key); err != nil {
		return issued{}, err
	}
	if k.ID != "" {
		r.issued = append(r.issued, k.ID)
	}
	k.location = resp.Header.Get("Location")
	if !key.ValidID(k.ID) || k.Key.Key == "" {
		return k, errors.New("the answer holds no key id or no plaintext key")
	}
	if !strings.HasSuffix(k.location, wire.KeyPath(k.ID, "")) {
		return k, fmt.Errorf("the Location header %q does not name the key %s", k.location, k.ID)
	}
	return k, nil
}

// proxy calls the protected proxy with header.
func (r *run) proxy(ctx context.Context, header http.Header) (*apicall.Response, error) {
	return r.o.Edge.Do(ctx, apicall.Request{Method: http.MethodGet, Path: r.o.ProxyPath, Header: header})
}

// allowed calls the proxy and checks that the authorizer let the request
// through: an answer that is not a keygate denial, from the upstream.
func (r *run) allowed(ctx context.Context, header http.Header) (string, error) {
	resp, err := r.proxy(ctx, header)
	if err != nil {
		return "", err
	}
	if d, ok := asDenial(resp); ok {
		return "", fmt.Errorf("GET %s: %d %s: %s", r.o.ProxyPath, resp.Status, d.Code, d.Message)
	}
	if resp.Status == http.StatusForbidden && strings.Contains(string(resp.Body), "Missing Authentication Token") {
		return "", fmt.Errorf("GET %s: API Gateway has no such route: the stack has no protected proxy (set keygate:upstreamUrl) or it is mounted elsewhere (--proxy-path)", r.o.ProxyPath)
	}
	if resp.Status >= 500 {
		return "", fmt.Errorf("GET %s: let through, but the upstream answered %d: %s", r.o.ProxyPath, resp.Status, clip(resp.Body))
	}
	return fmt.Sprintf("the upstream answered %d", resp.Status), nil
}

// refusedWithin calls the proxy with plaintext until the authorizer
// refuses it with one of reasons, for at most Wait: a change bites once
// the authorizer's cached record of the key expires.
func (r *run) refusedWithin(ctx context.Context, plaintext string, reasons ...gateway.Reason) (string, error) {
	start := r.o.Now()
	var last string
	for {
		resp, err := r.proxy(ctx, http.Header{"X-Api-Key": {plaintext}})
		if err != nil {
			return "", err
		}
		if d, err := denial(resp, http.StatusForbidden); err == nil {
			for _, want := range reasons {
				if d.Code == string(want) {
					return fmt.Sprintf("403 %s after %s", d.Code, r.o.Now().Sub(start).Round(100*time.Millisecond)), nil
				}
			}
			last = "403 " + d.Code
		} else {
			last = err.Error()
		}
		if r.o.Now().Sub(start) >= r.o.Wait {
			return "", fmt.Errorf("still not refused as %s after %s (last: %s); raise --wait if keygate:keyCacheTtl or keygate:gatewayCacheTtl is longer", reasonList(reasons), r.o.Wait, last)
		}
		if err := r.o.Sleep(ctx, r.o.Poll); err != nil {
			return "", err
		}
	}
}

// cleanup revokes every key the run issued.
func (r *run) cleanup(ctx context.Context) {
	if len(r.issued) == 0 {
		return
	}
	var failed []string
	for _, id := range r.issued {
		resp, err := r.o.Admin.Do(ctx, apicall.Request{Method: http.MethodDelete, Path: wire.KeyPath(id, "")})
		if err == nil {
			err = want(resp, http.StatusOK, nil)
		}
		if err != nil {
			failed = append(failed, id+" ("+err.Error()+")")
		}
	}
	what := fmt.Sprintf("the %d keys", len(r.issued))
	if len(r.issued) == 1 {
		what = "the key"
	}
	r.check("clean up: revoke "+what+" the smoke test made", func() (string, error) {
		if len(failed) > 0 {
			return "", fmt.Errorf("not revoked: %s; revoke them with keygate keys revoke ID", strings.Join(failed, ", "))
		}
		return "owner " + r.o.Owner, nil
	})
}

// jsonOf encodes a request body (of types that always encode).
func jsonOf(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("smoke: encode a request body: " + err.Error())
	}
	return b
}

// body is a keygate denial, or the fields of a problem that matter here.
type body struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	Detail            string `json:"detail"`
	RetryAfterSeconds *int64 `json:"retryAfterSeconds"`
}

// want checks an answer's status and decodes its JSON body into v.
func want(resp *apicall.Response, status int, v any) error {
	if resp.Status != status {
		var b body
		_ = json.Unmarshal(resp.Body, &b)
		msg := b.Detail
		if msg == "" {
			msg = b.Message
		}
		if msg == "" {
			msg = clip(resp.Body)
		}
		return fmt.Errorf("%d %s: %s (want %d)", resp.Status, b.Code, msg, status)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return fmt.Errorf("%d, but the body is not the JSON expected: %v", resp.Status, err)
	}
	return nil
}

// asDenial reads a keygate denial: a 401, 403 or 503 JSON body with a code.
func asDenial(resp *apicall.Response) (body, bool) {
	if resp.Status != http.StatusUnauthorized && resp.Status != http.StatusForbidden && resp.Status != http.StatusServiceUnavailable {
		return body{}, false
	}
	var b body
	if json.Unmarshal(resp.Body, &b) != nil || b.Code == "" {
		return body{}, false
	}
	return b, true
}

// denial checks that an answer is a keygate denial with status, as the
// stack's gateway responses write it: JSON, never cached, a code and a
// message, and retryAfterSeconds.
func denial(resp *apicall.Response, status int) (body, error) {
	d, ok := asDenial(resp)
	switch {
	case resp.Status != status:
		return d, fmt.Errorf("%d, want %d: %s", resp.Status, status, clip(resp.Body))
	case !ok || d.Message == "" || d.RetryAfterSeconds == nil:
		return d, fmt.Errorf("%d, but not keygate's denial body: %s", resp.Status, clip(resp.Body))
	}
	for k, v := range gateway.ResponseHeaders {
		if got := resp.Header.Get(k); got != v {
			return d, fmt.Errorf("%d %s with %s %q, want %q", resp.Status, d.Code, k, got, v)
		}
	}
	return d, nil
}

func reasonList(rs []gateway.Reason) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// clip shortens a body for a message, after redacting any key in it (an
// upstream that echoes the request quotes the key sent): a cut through a
// key would leave its start unrecognisable to any later redaction.
func clip(b []byte) string {
	return fault.Clip(apikey.Redact(strings.TrimSpace(string(b))), 200)
}
