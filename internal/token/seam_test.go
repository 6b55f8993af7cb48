package token_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/verify"
)

var (
	format, _ = apikey.NewFormat("")
	hasher    = apikey.NewHasher([]byte("seam-pepper"))
)

// authz is the real authorizer (HTTP API dialect) over the fixture's
// counted store, with the token verifier plugged into its seam.
type authz struct {
	f    *fixture
	h    *authorizer.Handler
	logs *bytes.Buffer
}

func newAuthz(t *testing.T, f *fixture) *authz {
	t.Helper()
	routes, err := verify.ParseRoutes(`[{"method":"POST","path":"/orders","scopes":["orders:write"]},{"method":"GET","path":"/orders","scopes":["orders:read"]}]`)
	if err != nil {
		t.Fatal(err)
	}
	v := verify.New(f.counted, verify.Options{Format: format, Hasher: hasher, Environments: []key.Environment{key.Live},
		Routes: routes, Now: f.clock, Tokens: f.verifier})
	logs := &bytes.Buffer{}
	return &authz{f: f, h: authorizer.New(v, authorizer.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: f.clock}), logs: logs}
}

// call sends an HTTP API authorizer event with Authorization: Bearer cred
// and returns isAuthorized, the context and the DynamoDB calls it made.
func (a *authz) call(t *testing.T, method, cred string) (bool, map[string]any, int64) {
	t.Helper()
	ev := fmt.Sprintf(`{"version":"2.0","type":"REQUEST","routeArn":"arn:aws:execute-api:eu-west-1:123456789012:abc/$default/%[1]s/orders",
		"identitySource":["Bearer %[2]s"],"routeKey":"%[1]s /orders","rawPath":"/orders","rawQueryString":"",
		"headers":{"authorization":"Bearer %[2]s"},
		"requestContext":{"accountId":"123456789012","apiId":"abc","http":{"method":"%[1]s","path":"/orders","sourceIp":"203.0.113.7"},
		"requestId":"r","routeKey":"%[1]s /orders","stage":"$default"}}`, method, cred)
	before := a.f.calls.Total()
	// An HTTP API gets isAuthorized=false for every refusal, an
	// unrecognised credential included (never an error: that is a 500).
	out, err := a.h.Invoke(ctx, []byte(ev))
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		IsAuthorized bool           `json:"isAuthorized"`
		Context      map[string]any `json:"context"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return resp.IsAuthorized, resp.Context, a.f.calls.Total() - before
}

// storedKey creates a key in the table and returns it with its plaintext.
func (f *fixture) storedKey(t *testing.T, mod func(*key.Key)) (*key.Key, string) {
	t.Helper()
	p, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey()
	k.Hash, k.Hint, k.UpdatedAt = hasher.Sum(p.Plaintext), apikey.Hint(p), k.CreatedAt
	if mod != nil {
		mod(k)
	}
	if err := f.admin.Create(ctx, k); err != nil {
		t.Fatal(err)
	}
	return k, p.Plaintext
}

// TestAuthorizerVerifiesTokensAndCountsThem runs tokens through the
// authorizer's seam: the same context as the key plus tokenId, the route's
// scopes and the key's rules applied, the first request counted by the
// key's own write (with the one read of the key set), the next ones of a
// key without limits admitted on the cached record with no call (their
// usage reported later, see internal/verify), and a key this process has
// seen revoked refusing its tokens at once.
func TestAuthorizerVerifiesTokensAndCountsThem(t *testing.T) {
	f := newFixture(t)
	a := newAuthz(t, f)
	k, plain := f.storedKey(t, nil)
	read := f.issue(t, k, token.Request{Scopes: []string{"orders:read"}})

	ok, c, calls := a.call(t, "GET", read.Token)
	if !ok || calls != 2 {
		t.Fatalf("first token: allowed %v, %d calls (want the one read of the key set and the key's write): %v", ok, calls, c)
	}
	want := map[string]any{gateway.CtxKeyID: k.ID, gateway.CtxOwnerID: "acme", gateway.CtxType: "secret",
		gateway.CtxEnvironment: "live", gateway.CtxScopes: "orders:read", gateway.CtxPlan: "pro",
		gateway.CtxRateLimitRemaining: "", gateway.CtxQuotaRemaining: "", gateway.CtxTokenID: read.ID}
	if fmt.Sprint(c) != fmt.Sprint(want) {
		t.Errorf("context %v\nwant    %v", c, want)
	}
	if ok, c, calls := a.call(t, "GET", read.Token); !ok || calls != 0 {
		t.Errorf("second request: allowed %v, %d calls, %v", ok, calls, c)
	}
	// The route needs orders:write, which the token was not granted.
	if ok, c, calls := a.call(t, "POST", read.Token); ok || c[gateway.CtxCode] != string(gateway.InsufficientScope) || calls != 0 {
		t.Errorf("POST with a read token: allowed %v, %v, %d calls", ok, c, calls)
	}
	// Bad tokens: refused, no call.
	parts := strings.Split(read.Token, ".")
	for name, bad := range map[string]string{
		"alg none":        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".",
		"changed payload": parts[0] + "." + parts[1][:len(parts[1])-2] + "fQ." + parts[2],
		"oversized":       "eyJ" + strings.Repeat("a", token.MaxSize) + ".e.e",
		"not a token":     "hello",
	} {
		if ok, c, calls := a.call(t, "GET", bad); ok || calls != 0 || !gateway.Reason(fmt.Sprint(c[gateway.CtxCode])).Unrecognised() {
			t.Errorf("%s: allowed %v, %v, %d calls", name, ok, c, calls)
		}
	}
	// A publishable key's token keeps the publishable rules.
	pk, _ := f.storedKey(t, func(k *key.Key) { k.Type = key.Publishable })
	pub := f.issue(t, pk, token.Request{})
	if ok, c, _ := a.call(t, "POST", pub.Token); ok || c[gateway.CtxCode] != string(gateway.MethodNotAllowed) {
		t.Errorf("publishable token POST: %v %v", ok, c)
	}

	// Revoke the key; the token still verifies until this process sees the
	// key's record (the residual window)...
	if _, _, err := f.admin.Revoke(ctx, k.ID, time.Hour, store.AuditBy("test")); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := a.call(t, "GET", read.Token); !ok {
		t.Error("the revocation was known before the authorizer saw the key")
	}
	// ...then the key itself is used and refused, and from then on its
	// tokens are refused too, without a call.
	if ok, c, _ := a.call(t, "GET", plain); ok || c[gateway.CtxCode] != string(gateway.Revoked) {
		t.Fatalf("revoked key: %v %v", ok, c)
	}
	if ok, c, calls := a.call(t, "GET", read.Token); ok || c[gateway.CtxCode] != string(gateway.Revoked) || calls != 0 {
		t.Errorf("token of a key known revoked: allowed %v, %v, %d calls", ok, c, calls)
	}
	// Logs name the key and the token id, never a token or a key.
	if logs := a.logs.String(); strings.Contains(logs, read.Token) || strings.Contains(logs, plain) || !strings.Contains(logs, read.ID) {
		t.Error("authorizer logs must carry the token id, not the token or the key")
	}
}
