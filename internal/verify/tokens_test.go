package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

// tokenOf is a token seam that vouches for every bearer credential as a
// token of k issued at iat (what internal/token does for a good token).
func tokenOf(k *key.Key, iat *time.Time) verify.TokenVerifier {
	return tokenFunc(func(context.Context, string, *verify.Request) (verify.Decision, bool) {
		return verify.Decision{Key: &key.Key{ID: k.ID, Hash: k.Hash, OwnerID: k.OwnerID, Type: k.Type, Environment: k.Environment,
			Scopes: k.Scopes, Enabled: true}, TokenID: "jti", TokenIssuedAt: *iat}, true
	})
}

// TestTokensOfAKeyKnownNotActiveAreRefused: once this environment has read
// its key's record saying revoked, disabled or expired, a token of the key
// is refused: a token issued before that read for the rest of its life (the
// key stopped being usable after the token was made), a newer one while the
// record is within the cache TTL; a revoked key's tokens always.
func TestTokensOfAKeyKnownNotActiveAreRefused(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *fixture, k *key.Key)
		want   gateway.Reason
	}{
		{"expired", func(f *fixture, k *key.Key) {}, gateway.Expired},
		{"disabled", func(f *fixture, k *key.Key) {
			k.Enabled = false
			if _, err := f.admin.Update(context.Background(), k, 1); err != nil {
				t.Fatal(err)
			}
		}, gateway.Disabled},
		{"revoked", func(f *fixture, k *key.Key) {
			if _, _, err := f.admin.Revoke(context.Background(), k.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
				t.Fatal(err)
			}
		}, gateway.Revoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			k, plain := f.issue(t, func(k *key.Key) { k.ExpiresAt = t0.Add(time.Hour) })
			iat := t0
			v := f.verifier(func(o *verify.Options) { o.Tokens = tokenOf(k, &iat) })
			tok := &verify.Request{Credential: "a.jwt.token", Bearer: true, Method: "GET", Path: "/users/1", Stage: "prod"}
			if d := v.Verify(context.Background(), tok); !d.Allowed() {
				t.Fatalf("a token of an active key: %q", d.Reason)
			}
			// The key stops being usable; this environment reads it.
			if c.want == gateway.Expired {
				f.advance(2 * time.Hour)
			} else {
				f.advance(time.Minute)
				c.change(f, k)
			}
			if d := v.Verify(context.Background(), get(plain, "/users/1")); d.Reason != c.want {
				t.Fatalf("the key itself: %q, want %q", d.Reason, c.want)
			}
			if d := v.Verify(context.Background(), tok); d.Reason != c.want {
				t.Fatalf("a token issued before the read, within the cache TTL: %q, want %q", d.Reason, c.want)
			}
			f.advance(10 * time.Minute) // far past the cache TTL
			if d := v.Verify(context.Background(), tok); d.Reason != c.want {
				t.Fatalf("a token issued before the read, after the cache TTL: %q, want %q", d.Reason, c.want)
			}
			// A token newer than the record: the record may predate an
			// enable or an extension, so past the TTL it does not refuse
			// it (revocation is final); the key's own write, which counts
			// the token's request, does, with the key's state now: the
			// key is still not usable.
			iat = f.clock()
			calls, d := f.countCalls(v, tok)
			if d.Reason != c.want || (c.want != gateway.Revoked && calls != 1) {
				t.Fatalf("a token newer than the record, after the TTL: %q after %d calls, want %q from the key's write", d.Reason, calls, c.want)
			}
		})
	}
}
