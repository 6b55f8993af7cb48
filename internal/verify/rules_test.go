package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

func TestRoutesMatchFirstRoute(t *testing.T) {
	rs, err := verify.ParseRoutes(`[
		{"method":"GET","path":"/users/{id}","scopes":["read:users"]},
		{"method":"ANY","path":"/files/{path+}","scopes":["files"],"cost":3},
		{"method":"*","path":"/admin/*","scopes":["admin"]}]`)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path string
		scope        string
		cost         int64
	}{
		{"GET", "/users/42", "read:users", 1},
		{"GET", "/users/42/", "read:users", 1},
		{"POST", "/users/42", "", 1},
		{"GET", "/users", "", 1},
		{"GET", "/users/42/orders", "", 1},
		{"PUT", "/files/a/b/c", "files", 3},
		{"PUT", "/files", "", 1},
		{"DELETE", "/admin", "admin", 1},
		{"DELETE", "/admin/x/y", "admin", 1},
		{"GET", "/", "", 1},
	}
	table := verify.NewRouteTable(rs, "", verify.Unmatched{})
	for _, c := range cases {
		r, reason := table.Resolve(c.method, c.path)
		if reason != "" {
			t.Fatalf("%s %s: refused %q", c.method, c.path, reason)
		}
		got := ""
		if len(r.Scopes) > 0 {
			got = r.Scopes[0]
		}
		if got != c.scope || r.Cost != c.cost {
			t.Errorf("%s %s: scope %q cost %d, want %q %d", c.method, c.path, got, r.Cost, c.scope, c.cost)
		}
	}
	for _, bad := range []string{`{}`, `[{"path":"users"}]`, `[{"path":"/a/*/b"}]`, `[{"path":"/a","cost":-1}]`, `[{"path":"/a","scopes":["bad scope"]}]`, `[{"path":"/a","scope":"x"}]`,
		`[{"path":"/a//b"}]`, `[{"path":"/a/../b"}]`, `[{"path":"/a%2fb"}]`, `[{"path":"/a;b"}]`} {
		if _, err := verify.ParseRoutes(bad); err == nil {
			t.Errorf("ParseRoutes(%s) accepted a bad table", bad)
		}
	}
}

func TestCredentialSources(t *testing.T) {
	cases := []struct {
		name           string
		headers, query map[string]string
		want           string
		bearer         bool
	}{
		{"x-api-key", map[string]string{"x-api-key": "k1"}, nil, "k1", false},
		{"X-API-KEY any case", map[string]string{"X-Api-KEY": "k1"}, nil, "k1", false},
		{"x-api-key wins over bearer", map[string]string{"Authorization": "Bearer k2", "x-api-key": "k1"}, nil, "k1", false},
		{"bearer", map[string]string{"authorization": "bearer k2"}, nil, "k2", true},
		{"basic is not a key", map[string]string{"Authorization": "Basic k2"}, nil, "", false},
		{"query", nil, map[string]string{"api_key": "k3"}, "k3", false},
		{"none", map[string]string{"X-Forwarded-For": "1.2.3.4"}, map[string]string{"other": "x"}, "", false},
	}
	for _, c := range cases {
		got, bearer := verify.Credential(c.headers, c.query, "api_key")
		if got != c.want || bearer != c.bearer {
			t.Errorf("%s: %q bearer=%v, want %q bearer=%v", c.name, got, bearer, c.want, c.bearer)
		}
	}
	if got, _ := verify.Credential(nil, map[string]string{"api_key": "k3"}, ""); got != "" {
		t.Errorf("query parameter read although none is configured: %q", got)
	}
}

func TestOriginWildcards(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, func(k *key.Key) {
		k.Type = key.Publishable
		k.AllowedOrigins = []string{"https://*.example.com", "http://localhost:3000"}
	})
	v := f.verifier(nil)
	for origin, want := range map[string]gateway.Reason{
		"https://app.example.com":           "",
		"https://a.b.example.com":           "",
		"HTTPS://APP.EXAMPLE.COM":           "",
		"http://localhost:3000":             "",
		"https://example.com":               gateway.OriginNotAllowed,
		"http://app.example.com":            gateway.OriginNotAllowed,
		"https://app.example.com.evil.net":  gateway.OriginNotAllowed,
		"https://evil.net/.example.com":     gateway.OriginNotAllowed,
		"https://app.example.com:8443":      gateway.OriginNotAllowed,
		"http://localhost:3001":             gateway.OriginNotAllowed,
		"https://user@evil.net@example.com": gateway.OriginNotAllowed,
		"https://.example.com":              gateway.OriginNotAllowed, // an empty label
		"https://x":                         gateway.OriginNotAllowed, // shorter than the suffix
	} {
		req := &verify.Request{Credential: plain, Method: "GET", Origin: origin}
		if d := v.Verify(context.Background(), req); d.Reason != want {
			t.Errorf("origin %s: %q, want %q", origin, d.Reason, want)
		}
	}
}

type tokenFunc func(ctx context.Context, token string, req *verify.Request) (verify.Decision, bool)

func (f tokenFunc) VerifyToken(ctx context.Context, token string, req *verify.Request) (verify.Decision, bool) {
	return f(ctx, token, req)
}

// tokenDecision is what the token seam returns for a token of k: the key as
// the token speaks for it (its id, hash, owner, rules and scopes).
func tokenDecision(k *key.Key) verify.Decision {
	return verify.Decision{Key: &key.Key{ID: k.ID, Hash: k.Hash, OwnerID: k.OwnerID, Type: k.Type, Environment: k.Environment,
		Scopes: k.Scopes, Enabled: true}, TokenID: "jti"}
}

func TestBearerTokensReachTheTokenSeam(t *testing.T) {
	f := newFixture(t)
	k, _ := f.issue(t, nil)
	seen := ""
	tokens := tokenFunc(func(_ context.Context, token string, _ *verify.Request) (verify.Decision, bool) {
		seen = token
		switch token {
		case "good.jwt.token":
			return tokenDecision(k), true
		case "old.jwt.token": // no key hash: issued before tokens were counted
			d := tokenDecision(k)
			d.Key.Hash = apikey.Hash{}
			return d, true
		}
		return verify.Decision{}, false
	})
	v := f.verifier(func(o *verify.Options) { o.Tokens = tokens })
	if d := v.Verify(context.Background(), &verify.Request{Credential: "good.jwt.token", Bearer: true, Method: "GET", Path: "/users/1"}); !d.Allowed() || d.Key.ID != k.ID || d.TokenID != "jti" {
		t.Fatalf("token: %+v", d)
	}
	if d := v.Verify(context.Background(), &verify.Request{Credential: "old.jwt.token", Bearer: true}); d.Reason != gateway.MalformedKey {
		t.Fatalf("a token that does not name its key's hot item: %q, want malformed_key", d.Reason)
	}
	if d := v.Verify(context.Background(), &verify.Request{Credential: "other", Bearer: true}); d.Reason != gateway.MalformedKey {
		t.Fatalf("a token the seam does not know: %q", d.Reason)
	}
	seen = ""
	if d := v.Verify(context.Background(), &verify.Request{Credential: "good.jwt.token"}); d.Reason != gateway.MalformedKey || seen != "" {
		t.Fatalf("x-api-key credentials are never tokens: %q (seam saw %q)", d.Reason, seen)
	}
	pk, _ := format.Generate(apikey.Secret, apikey.Live)
	if d := v.Verify(context.Background(), &verify.Request{Credential: pk.Plaintext[:20], Bearer: false}); d.Reason != gateway.MalformedKey {
		t.Fatalf("malformed key: %q", d.Reason)
	}
}

// An access token of a key this process has seen revoked, or disabled
// within the cache TTL, is refused from the cache, as the key itself is,
// although the token verifies offline.
func TestTokenOfAKeyCachedAsRefusedIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	revoked, revokedKey := f.issue(t, nil)
	if _, _, err := f.admin.Revoke(ctx, revoked.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
		t.Fatal(err)
	}
	disabled, disabledKey := f.issue(t, func(k *key.Key) { k.Enabled = false })
	active, _ := f.issue(t, nil)
	tokens := tokenFunc(func(_ context.Context, token string, _ *verify.Request) (verify.Decision, bool) {
		for _, k := range []*key.Key{revoked, disabled, active} {
			if token == "token-of-"+k.ID {
				return tokenDecision(k), true
			}
		}
		return verify.Decision{}, false
	})
	v := f.verifier(func(o *verify.Options) { o.Tokens = tokens })
	for _, plain := range []string{revokedKey, disabledKey} {
		v.Verify(ctx, get(plain, "/users/1")) // caches the record
	}
	for _, c := range []struct {
		k     *key.Key
		want  gateway.Reason
		calls int64
	}{{revoked, gateway.Revoked, 0}, {disabled, gateway.Disabled, 0}, {active, "", 1}} {
		req := get("token-of-"+c.k.ID, "/users/1")
		req.Bearer = true
		if calls, d := f.countCalls(v, req); d.Reason != c.want || calls != c.calls {
			t.Errorf("token of key %s: %q after %d calls, want %q after %d", c.k.ID, d.Reason, calls, c.want, c.calls)
		}
	}
}

// resolveCost is the cost of the route a request resolves to (0 if refused).
func resolveCost(rs verify.Routes, method, path string) int64 {
	r, _ := verify.NewRouteTable(rs, "", verify.Unmatched{}).Resolve(method, path)
	if r == nil {
		return 0
	}
	return r.Cost
}

// A route's cost may be anything from 1 (the default) to the largest
// quota, and nothing past it.
func TestParseRoutesCostBounds(t *testing.T) {
	for cost, ok := range map[int64]bool{1: true, key.MaxQuota: true, key.MaxQuota + 1: false, -1: false} {
		rs, err := verify.ParseRoutes(fmt.Sprintf(`[{"method":"GET","path":"/a","cost":%d}]`, cost))
		if (err == nil) != ok || (ok && resolveCost(rs, "GET", "/a") != cost) {
			t.Errorf("cost %d: err = %v, want accepted=%v", cost, err, ok)
		}
	}
}

// A request carrying an access token meets every rule of the route, as the
// key itself would: a token of a key without the route's scope is refused.
func TestTokenRequestsMeetTheRouteRules(t *testing.T) {
	f := newFixture(t)
	k, _ := f.issue(t, nil)
	tokens := tokenFunc(func(_ context.Context, token string, _ *verify.Request) (verify.Decision, bool) {
		d := tokenDecision(k)
		d.Key.Scopes = []string{"read:users"} // the key has write:users too; the token does not
		return d, true
	})
	v := f.verifier(func(o *verify.Options) { o.Tokens = tokens })
	for _, c := range []struct {
		method, path string
		want         gateway.Reason
	}{{"GET", "/users/1", ""}, {"POST", "/users", gateway.InsufficientScope}} {
		d := v.Verify(context.Background(), &verify.Request{Credential: "a.jwt.token", Bearer: true, Method: c.method, Path: c.path})
		if d.Reason != c.want {
			t.Errorf("token on %s %s: %q, want %q", c.method, c.path, d.Reason, c.want)
		}
	}
}
