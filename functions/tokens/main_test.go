package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/compose/tokens"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lambdatest"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/tokenapi"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// fixtureID is the key the fixtures' authorizer context names; the test
// seeds it (scopes orders:read and orders:write, expiring in 30 minutes).
const fixtureID = "key_00000000000000000000000001"

const keyLife = 30 * time.Minute

// expectation is what a fixture must produce.
type expectation struct {
	status int
	code   string
	ttl    time.Duration // the token's lifetime, for exchanges
	scopes []string
}

// expect is what each fixture must produce, for both API versions.
var expect = map[string]expectation{
	"exchange":             {200, "", 5 * time.Minute, []string{"orders:read"}},
	"exchange-default":     {200, "", token.DefaultTTL, []string{"orders:read", "orders:write"}},
	"exchange-capped":      {200, "", keyLife, []string{"orders:read", "orders:write"}},
	"jwks":                 {200, "", 0, nil},
	"error-scope":          {403, "insufficient_scope", 0, nil},
	"error-ttl":            {400, "invalid_request", 0, nil},
	"error-unknown-field":  {400, "invalid_request", 0, nil},
	"error-no-authorizer":  {401, "missing_key", 0, nil},
	"error-token-exchange": {403, tokenapi.CodeKeyRequired, 0, nil},
	"error-method":         {405, "method_not_allowed", 0, nil},
}

// TestReplayEveryFixture replays every file under events/tokens through the
// Lambda handler built by the composition root, against DynamoDB Local
// with local signing keys, and verifies every issued token offline.
func TestReplayEveryFixture(t *testing.T) {
	lambdatest.Replay(t, "tokens", expect, func(t *testing.T, name string, event []byte, want expectation) {
		f := lambdatest.Compose(t, tokens.Compose, map[string]string{"KEYGATE_SIGNING_DIR": t.TempDir()})
		start := time.Now()
		plain := f.Key(t, fixtureID, func(k *key.Key) {
			k.Scopes, k.ExpiresAt = []string{"orders:read", "orders:write"}, k.CreatedAt.Add(keyLife)
		})
		// The rotator published a key, which the function finds in the
		// shared local key directory.
		rot, err := token.NewKeyring(f.Store, &token.LocalBackend{Dir: f.Env["KEYGATE_SIGNING_DIR"]}, 0).RotateSigningKeys(context.Background(), start)
		if err != nil {
			t.Fatal(err)
		}
		out := f.Invoke(t, event)
		resp := lambdatest.DecodeResponse(t, event, out)
		body := resp.JSON()
		if resp.StatusCode != want.status || (want.code != "" && body["code"] != want.code) {
			t.Fatalf("got %d %s, want %d %s", resp.StatusCode, resp.Body, want.status, want.code)
		}
		if strings.Contains(string(out), plain) || strings.Contains(f.Logs.String(), plain) {
			t.Fatal("the seeded key's plaintext leaked")
		}
		switch {
		case want.code != "":
			if resp.Header("Content-Type") != "application/problem+json" {
				t.Fatalf("problem Content-Type %q", resp.Header("Content-Type"))
			}
		case strings.HasSuffix(name, "/jwks"):
			checkJWKS(t, resp.Body, resp.Header("Cache-Control"), rot.Published)
		default:
			checkToken(t, f.Store, body, f.Logs.String(), start, want.ttl, want.scopes)
		}
	})
}

// checkToken verifies an exchange's token offline and holds its claims and
// lifetime to the expectation; the token is in no log line.
func checkToken(t *testing.T, s *store.Store, body map[string]any, logs string, start time.Time, ttl time.Duration, scopes []string) {
	t.Helper()
	tok, _ := body["token"].(string)
	exp, err := time.Parse(time.RFC3339, body["expiresAt"].(string))
	if tok == "" || err != nil {
		t.Fatalf("exchange body %v", body)
	}
	if strings.Contains(logs, tok) || !strings.Contains(logs, `"token issued"`) {
		t.Fatal("the token must not be logged (its issue is)")
	}
	// expiresAt has whole seconds and is set when the request is served, so
	// it lies between start+ttl-1s and the end of the request plus ttl.
	if d := exp.Sub(start); d < ttl-2*time.Second || d > ttl+30*time.Second {
		t.Errorf("expiresAt is %s after the request, want %s", d, ttl)
	}
	res := token.NewVerifier(s, token.DefaultIssuer, token.DefaultAudience, nil).Verify(context.Background(), tok)
	if res.Reason != "" {
		t.Fatalf("issued token refused: %s (%v)", res.Reason, res.Err)
	}
	c := res.Claims
	if c.Subject != fixtureID || c.OwnerID != "acme" || !slices.Equal(c.Scopes, scopes) || !c.ExpiresAt.Equal(exp) {
		t.Errorf("claims %+v, want key %s, scopes %v, exp %v", c, fixtureID, scopes, exp)
	}
}

// checkJWKS holds the JWKS document to public keys only, cacheable.
func checkJWKS(t *testing.T, body, cacheControl, kid string) {
	t.Helper()
	if cacheControl != tokenapi.JWKSCacheControl {
		t.Errorf("Cache-Control %q", cacheControl)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", body, err)
	}
	k := doc.Keys[0]
	if _, private := k["d"]; private || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["kid"] != kid {
		t.Errorf("JWKS key %v, want the public Ed25519 key %s", k, kid)
	}
}
