package token_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// fuzzKID names the committed test key (testdata/fuzz-signing-key.pem),
// which signs the seed corpus's good tokens. It is a test key only.
const fuzzKID = "fuzz-key"

// staticKeys publishes a fixed set of keys: the fuzz test's and the
// benchmark's key source, so that they measure the token path alone.
type staticKeys struct{ ring store.SigningRing }

func (s staticKeys) SigningKeys(context.Context) (store.SigningRing, error) { return s.ring, nil }

// fuzzSigner returns the committed test key's signer and its key source.
func fuzzSigner(tb testing.TB) (*token.LocalSigner, staticKeys) {
	tb.Helper()
	data, err := os.ReadFile("testdata/fuzz-signing-key.pem")
	if err != nil {
		tb.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	pk, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := token.NewLocalSigner(pk.(ed25519.PrivateKey))
	if err != nil {
		tb.Fatal(err)
	}
	jwk, err := token.EncodeJWK(fuzzKID, pk.(ed25519.PrivateKey).Public().(ed25519.PublicKey))
	if err != nil {
		tb.Fatal(err)
	}
	return s, staticKeys{store.SigningRing{Keys: []store.SigningKey{{KID: fuzzKID, JWK: jwk, Source: "local", NotBefore: t0.Add(-time.Hour)}}}}
}

// fixedKeys signs with the fuzz key only.
type fixedKeys struct{ s token.Signer }

func (f fixedKeys) Active(context.Context, time.Time) (string, token.Signer, error) {
	return fuzzKID, f.s, nil
}

// FuzzVerify feeds arbitrary bearer values to the verifier (seeded with a
// good token and the bad ones in testdata/fuzz/FuzzVerify): it never
// panics, answers only with the token reasons, makes no DynamoDB call once
// warm, and whatever it admits is a well-formed token of the fuzz key.
func FuzzVerify(f *testing.F) {
	s, src := fuzzSigner(f)
	now := func() time.Time { return t0.Add(time.Minute) }
	v := token.NewVerifier(src, "keygate", "keygate", now)
	settings := token.DefaultSettings()
	k := &key.Key{ID: "key_0000000000000000000000000a", OwnerID: "acme", Type: key.Publishable, Environment: key.Test,
		Scopes: []string{"read"}, Enabled: true, AllowedOrigins: []string{"https://*.example.com"}}
	good, err := token.NewIssuer(fixedKeys{s}, settings).Issue(ctx, k, token.Request{}, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Token)
	if r := v.Verify(ctx, good.Token); r.Reason != "" {
		f.Fatalf("seed token refused: %s", r.Reason)
	}
	allowed := map[gateway.Reason]bool{"": true, gateway.MalformedKey: true, gateway.UnknownKey: true,
		gateway.Expired: true, gateway.NotYetValid: true, gateway.WrongEnvironment: true}
	f.Fuzz(func(t *testing.T, raw string) {
		res := v.Verify(ctx, raw)
		if !allowed[res.Reason] || res.Calls != 0 {
			t.Fatalf("reason %q, %d calls", res.Reason, res.Calls)
		}
		if res.Reason != "" {
			if res.Claims != nil {
				t.Fatal("a refused token returned claims")
			}
			return
		}
		c := res.Claims
		if len(raw) > token.MaxSize || c == nil || !key.ValidID(c.Subject) || c.ExpiresAt == nil {
			t.Fatalf("admitted %q with claims %+v", raw, c)
		}
		if _, err := c.Key(); err != nil {
			t.Fatalf("admitted claims whose key does not parse: %v", err)
		}
	})
}
