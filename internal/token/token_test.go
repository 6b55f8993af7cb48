package token_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

func TestIssuedTokenVerifiesWithTheKeysClaims(t *testing.T) {
	f := newFixture(t)
	k := newKey()
	k.Stages = []string{"prod"}
	is := f.issue(t, k, token.Request{})
	if want := t0.Add(token.DefaultTTL); !is.ExpiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want the default 15 minutes: %v", is.ExpiresAt, want)
	}
	res := f.verifier.Verify(ctx, is.Token)
	if res.Reason != "" {
		t.Fatalf("a fresh token is refused: %s (%v)", res.Reason, res.Err)
	}
	if res.Calls != 1 {
		t.Errorf("the first token reads the key set once, made %d calls", res.Calls)
	}
	c := res.Claims
	if c.Subject != k.ID || c.OwnerID != "acme" || c.Type != key.Secret || c.Environment != key.Live ||
		!slices.Equal(c.Scopes, k.Scopes) || c.Plan != "pro" || !slices.Equal(c.Stages, []string{"prod"}) ||
		c.ID != is.ID || c.Issuer != "keygate" || !slices.Equal(c.Audience, jwt.ClaimStrings{"keygate"}) {
		t.Errorf("claims = %+v", c)
	}
	kk, err := c.Key()
	if err != nil || kk.ID != k.ID || kk.StatusAt(f.clock()) != key.Active || kk.Metadata["plan"] != "pro" {
		t.Errorf("claims' key = %+v, %v", kk, err)
	}
	// The second token reads nothing.
	if res := f.verifier.Verify(ctx, f.issue(t, k, token.Request{}).Token); res.Reason != "" || res.Calls != 0 {
		t.Errorf("second token: %s, %d calls; want allowed with 0 calls", res.Reason, res.Calls)
	}
}

func TestExchangeScopesAndLifetime(t *testing.T) {
	f := newFixture(t)
	k := newKey()

	is := f.issue(t, k, token.Request{Scopes: []string{"orders:read"}, TTL: 5 * time.Minute})
	c := f.verifier.Verify(ctx, is.Token).Claims
	if c == nil || !slices.Equal(c.Scopes, []string{"orders:read"}) {
		t.Fatalf("a subset of scopes: got %+v", c)
	}
	if !is.ExpiresAt.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("ttl 5m: expiresAt %v", is.ExpiresAt)
	}

	if _, err := f.issuer.Issue(ctx, k, token.Request{Scopes: []string{"orders:read", "admin"}}, t0); !errors.Is(err, token.ErrScope) {
		t.Errorf("a scope the key lacks must be refused with ErrScope, got %v", err)
	}
	if _, err := f.issuer.Issue(ctx, k, token.Request{TTL: 2 * time.Hour}, t0); fault.FieldOf(err) != "ttlSeconds" {
		t.Errorf("a ttl above the maximum must be refused naming ttlSeconds, got %v", err)
	}

	// Never beyond the key's own expiry.
	k.ExpiresAt = t0.Add(3 * time.Minute)
	is = f.issue(t, k, token.Request{TTL: 10 * time.Minute})
	if !is.ExpiresAt.Equal(k.ExpiresAt) {
		t.Errorf("expiresAt %v, want the key's expiry %v", is.ExpiresAt, k.ExpiresAt)
	}
	if exp := f.verifier.Verify(ctx, is.Token).Claims.ExpiresAt.Time; !exp.Equal(k.ExpiresAt) {
		t.Errorf("exp claim %v, want %v", exp, k.ExpiresAt)
	}

	// A key that is not active gets no token.
	k.RevokedAt = t0
	if _, err := f.issuer.Issue(ctx, k, token.Request{}, t0); err == nil {
		t.Error("a revoked key got a token")
	}

	// An empty scope list is a token with no scopes, not all of them.
	k = newKey()
	is = f.issue(t, k, token.Request{Scopes: []string{}})
	if c := f.verifier.Verify(ctx, is.Token).Claims; len(c.Scopes) != 0 {
		t.Errorf("scopes [] gave %v", c.Scopes)
	}
}

func TestTokenTimesHaveLeeway(t *testing.T) {
	f := newFixture(t)
	is := f.issue(t, newKey(), token.Request{TTL: time.Minute})
	f.advance(time.Minute + token.Leeway - time.Second)
	if r := f.verifier.Verify(ctx, is.Token).Reason; r != "" {
		t.Errorf("within the leeway after exp: %s", r)
	}
	f.advance(2 * time.Second)
	if r := f.verifier.Verify(ctx, is.Token).Reason; r != gateway.Expired {
		t.Errorf("past exp and leeway: %q, want expired", r)
	}
}

// TestBadTokensAreRefusedWithoutDynamoDB is the issue's list of bad tokens:
// each is refused with its reason, and once the verifier has read the key
// set, none of them costs a DynamoDB call.
func TestBadTokensAreRefusedWithoutDynamoDB(t *testing.T) {
	f := newFixture(t)
	k := newKey()
	good := f.issue(t, k, token.Request{}).Token
	if r := f.verifier.Verify(ctx, good); r.Reason != "" {
		t.Fatalf("warm-up: %s", r.Reason)
	}
	kid := kidOf(t, good)
	c := claimsOf(t, good)
	parts := strings.Split(good, ".")
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}

	changed := *c
	changed.Scopes = append(changed.Scopes, "admin")
	noOwner := *c
	noOwner.OwnerID = ""
	badSub := *c
	badSub.Subject = "someone"
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	hs.Header["kid"] = kid
	// Algorithm confusion: an HMAC keyed with the public key's JWK.
	published, _ := f.ring.Published(ctx, t0)
	hsTok, _ := hs.SignedString(published[0].JWK)
	// The earlier algorithm: a valid ES256 signature by a P-256 key, under
	// a published kid.
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	es.Header["kid"] = kid
	esTok, _ := es.SignedString(p256)
	expired := *c
	expired.IssuedAt = jwt.NewNumericDate(t0.Add(-time.Hour))
	expired.NotBefore = expired.IssuedAt
	expired.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Minute))
	future := *c
	future.IssuedAt = jwt.NewNumericDate(t0.Add(time.Hour))
	future.NotBefore = future.IssuedAt
	future.ExpiresAt = jwt.NewNumericDate(t0.Add(time.Hour + time.Minute))
	notBefore := *c
	notBefore.NotBefore = jwt.NewNumericDate(t0.Add(10 * time.Minute))
	otherAud := *c
	otherAud.Audience = jwt.ClaimStrings{"someone-else"}
	otherIss := *c
	otherIss.Issuer = "evil"
	tooLong := *c
	tooLong.ExpiresAt = jwt.NewNumericDate(t0.Add(48 * time.Hour))
	ours := f.signer(t, kid)

	cases := []struct {
		name string
		tok  string
		want gateway.Reason
	}{
		{"alg none", seg(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + ".", gateway.MalformedKey},
		{"alg none with signature", seg(map[string]string{"alg": "none", "kid": kid}) + "." + parts[1] + "." + parts[2], gateway.MalformedKey},
		{"HS256 keyed with the public key", hsTok, gateway.MalformedKey},
		{"ES256", esTok, gateway.MalformedKey},
		{"unknown kid", sign(t, otherSigner(t), map[string]any{"kid": "not-a-published-kid"}, c), gateway.UnknownKey},
		{"no kid", sign(t, ours, nil, c), gateway.MalformedKey},
		{"changed payload", parts[0] + "." + seg(&changed) + "." + parts[2], gateway.UnknownKey},
		{"changed header", seg(map[string]string{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}) + "." + parts[1] + "." + parts[2], gateway.UnknownKey},
		{"another key's signature", sign(t, otherSigner(t), map[string]any{"kid": kid}, c), gateway.UnknownKey},
		{"short signature", good[:len(good)-2], gateway.UnknownKey},
		{"expired", sign(t, ours, map[string]any{"kid": kid}, &expired), gateway.Expired},
		{"issued in the future", sign(t, ours, map[string]any{"kid": kid}, &future), gateway.NotYetValid},
		{"not yet valid", sign(t, ours, map[string]any{"kid": kid}, &notBefore), gateway.NotYetValid},
		{"another audience", sign(t, ours, map[string]any{"kid": kid}, &otherAud), gateway.WrongEnvironment},
		{"another issuer", sign(t, ours, map[string]any{"kid": kid}, &otherIss), gateway.UnknownKey},
		{"missing owner", sign(t, ours, map[string]any{"kid": kid}, &noOwner), gateway.MalformedKey},
		{"subject not a key id", sign(t, ours, map[string]any{"kid": kid}, &badSub), gateway.MalformedKey},
		{"lifetime beyond any maximum", sign(t, ours, map[string]any{"kid": kid}, &tooLong), gateway.MalformedKey},
		{"oversized", "eyJ" + strings.Repeat("A", token.MaxSize) + ".e.e", gateway.MalformedKey},
		{"garbage", "eyJhbGciOi.not-base64!.x", gateway.MalformedKey},
		{"two segments", parts[0] + "." + parts[1], gateway.MalformedKey},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], gateway.MalformedKey},
		{"empty", "", gateway.MalformedKey},
	}
	for _, tc := range cases {
		before := f.calls.Total()
		res := f.verifier.Verify(ctx, tc.tok)
		if res.Reason != tc.want || res.Claims != nil {
			t.Errorf("%s: reason %q, claims %v; want %q", tc.name, res.Reason, res.Claims != nil, tc.want)
		}
		if n := f.calls.Total() - before; n != 0 || res.Calls != 0 {
			t.Errorf("%s: %d DynamoDB calls, want 0", tc.name, n)
		}
	}
	// The good token still verifies: nothing above disturbed the key set.
	if r := f.verifier.Verify(ctx, good); r.Reason != "" {
		t.Errorf("good token after the bad ones: %s", r.Reason)
	}
}

func TestVerifierReadsKeysLazilyAndFailsClosed(t *testing.T) {
	f := newFixture(t)
	good := f.issue(t, newKey(), token.Request{}).Token
	// A verifier over an empty table (no key published there) refuses
	// the token as unknown, and reads again after a short while only.
	other := newFixture(t)
	v := token.NewVerifier(other.counted, "keygate", "keygate", other.clock)
	if other.calls.Total() != 0 {
		t.Fatal("building a verifier made a DynamoDB call")
	}
	if r := v.Verify(ctx, good); r.Reason != gateway.UnknownKey || r.Calls != 1 {
		t.Errorf("unknown kid on an empty ring: %s, %d calls", r.Reason, r.Calls)
	}
	if r := v.Verify(ctx, good); r.Calls != 0 {
		t.Errorf("an empty read is kept for a while, but the verifier read again")
	}
	// A verifier whose store fails refuses as unavailable.
	down := token.NewVerifier(failing{}, "keygate", "keygate", f.clock)
	if r := down.Verify(ctx, good); r.Reason != gateway.Unavailable || r.Err == nil {
		t.Errorf("key set unreadable: %s, %v", r.Reason, r.Err)
	}
	// A failed refresh keeps serving the keys read before, and retries
	// after a short pause, not on every token.
	src := &flaky{KeySource: f.counted}
	v = token.NewVerifier(src, "keygate", "keygate", f.clock)
	if r := v.Verify(ctx, good); r.Reason != "" {
		t.Fatal(r.Reason)
	}
	f.advance(token.VerifierRefresh + time.Second)
	good = f.issue(t, newKey(), token.Request{}).Token
	src.fail.Store(true)
	if r := v.Verify(ctx, good); r.Reason != "" || r.Calls != 1 || r.Err == nil {
		t.Errorf("refresh failed: %q, %d calls, err %v; want allowed from the old read", r.Reason, r.Calls, r.Err)
	}
	if r := v.Verify(ctx, good); r.Calls != 0 {
		t.Errorf("a failed refresh is retried at once, not after a pause")
	}
}

// TestKeySetStalenessAndReadTimeAreBounded: while the key set cannot be
// read again, the last read serves for at most MaxStaleness, then tokens
// are refused as unavailable until a read succeeds; and a read that hangs
// (a DynamoDB that accepts the connection and never answers) ends at the
// read timeout, refusing as unavailable, instead of holding the authorizer
// to API Gateway's limit.
func TestKeySetStalenessAndReadTimeAreBounded(t *testing.T) {
	f := newFixture(t)
	good := f.issue(t, newKey(), token.Request{TTL: time.Hour}).Token
	src := &flaky{KeySource: f.counted}
	v := token.NewVerifier(src, "keygate", "keygate", f.clock)
	if r := v.Verify(ctx, good); r.Reason != "" {
		t.Fatal(r.Reason)
	}
	src.fail.Store(true)
	f.advance(token.VerifierRefresh + time.Second)
	if r := v.Verify(ctx, good); r.Reason != "" {
		t.Fatalf("within MaxStaleness the last read serves: %q", r.Reason)
	}
	f.advance(token.MaxStaleness)
	if r := v.Verify(ctx, good); r.Reason != gateway.Unavailable {
		t.Fatalf("past MaxStaleness: %q, want unavailable", r.Reason)
	}
	src.fail.Store(false)
	f.advance(time.Minute)
	if r := v.Verify(ctx, good); r.Reason != "" || r.Calls != 1 {
		t.Fatalf("after the store recovers: %q after %d calls", r.Reason, r.Calls)
	}

	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	stuck := token.NewVerifier(store.New(store.LocalClient("http://"+hole.Addr().String()), "t", store.Options{}),
		"keygate", "keygate", f.clock).WithReadTimeout(200 * time.Millisecond)
	done := make(chan token.Result, 1)
	go func() { done <- stuck.Verify(context.Background(), good) }()
	select {
	case r := <-done:
		if r.Reason != gateway.Unavailable || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Fatalf("a hanging read: %q, %v; want unavailable after the read timeout", r.Reason, r.Err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a hanging read of the key set was not cut off by the read timeout")
	}
}
