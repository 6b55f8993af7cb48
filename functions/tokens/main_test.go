package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/tokens"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/tokenapi"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// fixtureID is the key the fixtures' authorizer context names; the test
// seeds it (scopes orders:read and orders:write, expiring in 30 minutes).
const fixtureID = "key_00000000000000000000000001"

const keyLife = 30 * time.Minute

// expect is what each fixture must produce, for both API versions. A
// fixture without an entry fails the test, so no file goes unreplayed.
var expect = map[string]struct {
	status int
	code   string
	ttl    time.Duration // the token's lifetime, for exchanges
	scopes []string
}{
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
// Lambda handler built by setup (the composition root), against DynamoDB
// Local with local signing keys, and verifies every issued token offline.
func TestReplayEveryFixture(t *testing.T) {
	files, err := filepath.Glob("../../events/tokens/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures under events/tokens: %v", err)
	}
	sort.Strings(files)
	seen := map[string]int{}
	for _, f := range files {
		version := filepath.Base(filepath.Dir(f))
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		want, ok := expect[name]
		if !ok {
			t.Errorf("%s has no expectation in this test", f)
			continue
		}
		if version != "v1" && version != "v2" {
			t.Errorf("%s: unknown payload version folder %q", f, version)
			continue
		}
		seen[name]++
		t.Run(version+"/"+name, func(t *testing.T) {
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			db, table := dynamotest.Table(t)
			env := map[string]string{
				"KEYGATE_TABLE": table, "KEYGATE_DYNAMODB_ENDPOINT": dynamotest.Endpoint(t),
				"KEYGATE_PEPPER": "fixture-pepper", "KEYGATE_SIGNING_DIR": t.TempDir(),
			}
			var logs bytes.Buffer
			h, err := tokens.Compose(context.Background(), compose.Env{Getenv: func(k string) string { return env[k] }, Stdout: &logs})
			if err != nil {
				t.Fatal(err)
			}
			s := store.New(db, table, store.Options{})
			start := time.Now()
			plain := seed(t, s, start)
			// The rotator published a key, which the function finds in
			// the shared local key directory.
			rot, err := token.NewKeyring(s, &token.LocalBackend{Dir: env["KEYGATE_SIGNING_DIR"]}, 0).RotateSigningKeys(context.Background(), start)
			if err != nil {
				t.Fatal(err)
			}

			out, err := lambda.NewHandler(h).Invoke(context.Background(), payload)
			if err != nil {
				t.Fatalf("invoke: %v", err)
			}
			var resp struct {
				StatusCode        int                 `json:"statusCode"`
				MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
				Body              string              `json:"body"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("response is not a proxy response: %v\n%s", err, out)
			}
			var body map[string]any
			_ = json.Unmarshal([]byte(resp.Body), &body)
			if resp.StatusCode != want.status || (want.code != "" && body["code"] != want.code) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, resp.Body, want.status, want.code)
			}
			if strings.Contains(string(out), plain) || strings.Contains(logs.String(), plain) {
				t.Fatal("the seeded key's plaintext leaked")
			}
			hdr := func(k string) string { return strings.Join(resp.MultiValueHeaders[k], ",") }
			switch {
			case want.code != "":
				if hdr("Content-Type") != "application/problem+json" {
					t.Fatalf("problem Content-Type %q", hdr("Content-Type"))
				}
			case name == "jwks":
				checkJWKS(t, resp.Body, hdr("Cache-Control"), rot.Published)
			default:
				checkToken(t, s, body, logs.String(), start, want.ttl, want.scopes)
			}
		})
	}
	for name := range expect {
		if seen[name] == 0 {
			t.Errorf("expectation %q has no fixture", name)
		}
	}
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

// seed stores the fixture key and returns its plaintext.
func seed(t *testing.T, s *store.Store, now time.Time) string {
	t.Helper()
	f, _ := apikey.NewFormat("")
	p, err := f.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	now = now.UTC().Truncate(time.Millisecond)
	k := &key.Key{ID: fixtureID, Name: "fixture", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Hash: apikey.NewHasher([]byte("fixture-pepper")).Sum(p.Plaintext), Hint: apikey.Hint(p), Enabled: true,
		Scopes: []string{"orders:read", "orders:write"}, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(keyLife)}
	if err := s.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return p.Plaintext
}
