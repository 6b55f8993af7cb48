package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// t0 is the real time at the start of the run (to the second): DynamoDB
// Local deletes items whose ttl has passed in real time, so signing keys
// and revoked keys must carry ttls relative to now, not to a fixed date.
var t0 = time.Now().UTC().Truncate(time.Second)

var ctx = context.Background()

// fixture is a table in DynamoDB Local with a keyring (local backend, in
// process) publishing to it, an issuer, and a verifier whose DynamoDB
// calls are counted by an SDK middleware.
type fixture struct {
	db       *dynamodb.Client
	table    string
	admin    *store.Store // uncounted: the keyring's
	counted  *store.Store // the verifier's
	calls    *dynamotest.Calls
	now      atomic.Int64
	backend  *token.LocalBackend
	ring     *token.Keyring
	settings token.Settings
	issuer   *token.Issuer
	verifier *token.Verifier
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, table := dynamotest.Table(t)
	f := &fixture{db: db, table: table}
	f.now.Store(t0.UnixNano())
	f.calls = &dynamotest.Calls{}
	counted := dynamotest.Watched(db, f.calls.See)
	f.admin = store.New(db, table, store.Options{Now: f.clock})
	f.counted = store.New(counted, table, store.Options{Now: f.clock})
	f.backend = &token.LocalBackend{}
	f.ring = token.NewKeyring(f.admin, f.backend, 0)
	s := token.DefaultSettings()
	f.settings = s
	f.issuer = token.NewIssuer(f.ring, s)
	f.verifier = token.NewVerifier(f.counted, s.Issuer, s.Audience, f.clock)
	return f
}

func (f *fixture) clock() time.Time        { return time.Unix(0, f.now.Load()).UTC() }
func (f *fixture) advance(d time.Duration) { f.now.Add(int64(d)) }

// newKey returns an active key (not stored: issuing needs only the record).
func newKey() *key.Key {
	return &key.Key{
		ID: key.NewID(), Name: "app", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Scopes: []string{"orders:read", "orders:write"}, Enabled: true, CreatedAt: t0.Add(-time.Hour),
		Metadata: map[string]any{"plan": "pro"},
	}
}

// issue issues a token for k at the fixture's time.
func (f *fixture) issue(t testing.TB, k *key.Key, r token.Request) token.Issued {
	t.Helper()
	is, err := f.issuer.Issue(ctx, k, r, f.clock())
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return is
}

// signer returns the private key behind kid, to forge tokens with.
func (f *fixture) signer(t testing.TB, kid string) token.Signer {
	t.Helper()
	s, err := f.backend.Signer(ctx, kid, "local")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign signs claims with s under header fields hdr (alg EdDSA unless set).
func sign(t testing.TB, s token.Signer, hdr map[string]any, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	for k, v := range hdr {
		tok.Header[k] = v
	}
	in, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func otherSigner(t testing.TB) token.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := token.NewLocalSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// kidOf returns the kid in a token's header.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, &token.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Header["kid"].(string)
}

// claimsOf returns a token's claims, unverified, to build forgeries from.
func claimsOf(t testing.TB, tok string) *token.Claims {
	t.Helper()
	c := &token.Claims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// failing is a key source whose store is down.
type failing struct{}

func (failing) SigningKeys(context.Context) (store.SigningRing, error) {
	return store.SigningRing{}, fault.Errorf(fault.Unavailable, "injected DynamoDB outage")
}

// flaky is a key source that fails while fail is set.
type flaky struct {
	token.KeySource
	fail atomic.Bool
}

func (f *flaky) SigningKeys(ctx context.Context) (store.SigningRing, error) {
	if f.fail.Load() {
		return failing{}.SigningKeys(ctx)
	}
	return f.KeySource.SigningKeys(ctx)
}
