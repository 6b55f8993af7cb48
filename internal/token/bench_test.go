package token_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// countingKeys counts reads of the key set (each would be one DynamoDB
// Query in the authorizer).
type countingKeys struct {
	staticKeys
	reads atomic.Int64
}

func (c *countingKeys) SigningKeys(ctx context.Context) (store.SigningRing, error) {
	c.reads.Add(1)
	return c.staticKeys.SigningKeys(ctx)
}

func benchToken(b *testing.B) (string, *countingKeys, token.Signer) {
	s, src := fuzzSigner(b)
	settings := token.DefaultSettings()
	k := &key.Key{ID: key.NewID(), OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Scopes: []string{"orders:read", "orders:write"}, Enabled: true, Metadata: map[string]any{"plan": "pro"}}
	is, err := token.NewIssuer(fixedKeys{s}, settings).Issue(context.Background(), k, token.Request{}, t0)
	if err != nil {
		b.Fatal(err)
	}
	return is.Token, &countingKeys{staticKeys: src}, s
}

// BenchmarkVerify is the authorizer's token path on first sight of a
// token: parse, kid, EdDSA signature and claims, in full every time. It
// makes no DynamoDB call: the key set was read once before the timer.
func BenchmarkVerify(b *testing.B) { benchVerify(b, true) }

// BenchmarkVerifyRepeat is the same token again, as a client sends it for
// its whole life: the verifier remembers it and checks only time and kid.
func BenchmarkVerifyRepeat(b *testing.B) { benchVerify(b, false) }

func benchVerify(b *testing.B, full bool) {
	tok, src, _ := benchToken(b)
	v := token.NewVerifier(src, "keygate", "keygate", func() time.Time { return t0.Add(time.Minute) })
	if full {
		token.Forgetful(v)
	}
	if r := v.Verify(context.Background(), tok); r.Reason != "" {
		b.Fatal(r.Reason)
	}
	reads := src.reads.Load()
	b.ReportAllocs()
	for b.Loop() {
		if r := v.Verify(context.Background(), tok); r.Reason != "" {
			b.Fatal(r.Reason)
		}
	}
	if src.reads.Load() != reads {
		b.Fatalf("%d key set reads during the benchmark, want 0", src.reads.Load()-reads)
	}
}

// BenchmarkSignatureOnly is the floor under BenchmarkVerify: golang-jwt's
// EdDSA check of the same token's signature, nothing else.
func BenchmarkSignatureOnly(b *testing.B) {
	tok, _, s := benchToken(b)
	pub, _ := s.Public(context.Background())
	i := strings.LastIndexByte(tok, '.')
	sig, err := jwt.NewParser().DecodeSegment(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := jwt.SigningMethodEdDSA.Verify(tok[:i], sig, pub); err != nil {
			b.Fatal(err)
		}
	}
}
