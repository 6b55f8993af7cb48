package verify_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

// BenchmarkCore measures the verification core on a cached key: find the
// route, parse and checksum the key, hash it, look it up in the cache and
// decide every rule the record decides (state, environment, stage, type,
// origin, scopes, CIDR). "allow" ends where the DynamoDB update would
// start; "denied-this-window" is a complete verification with no call.
// Target: <= 500 ns/op with -cpu 1, 0 allocations.
func BenchmarkCore(b *testing.B) {
	pk, _ := format.Generate(apikey.Secret, apikey.Live)
	k := &key.Key{ID: key.NewID(), OwnerID: "acme", Type: key.Secret, Environment: key.Live, Enabled: true,
		Scopes: []string{"read:orders", "read:users", "write:users"}, Stages: []string{"prod"},
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")},
		RateLimits:   []key.RateLimit{{Name: "second", Limit: 10, WindowSeconds: 1}}}
	rec := &store.Record{Key: k, RL: map[string]int64{}, Q: map[string]int64{}}
	v := verify.New(nil, verify.Options{Format: format, Hasher: hasher, Environments: []key.Environment{key.Live}, Routes: routes})
	h := hasher.Sum(pk.Plaintext)
	req := get(pk.Plaintext, "/users/42")
	run := func(b *testing.B, wantDone bool) {
		b.ReportAllocs()
		for b.Loop() {
			if d, done := v.Local(req, t0); done != wantDone || (done && d.Reason == "") {
				b.Fatalf("done=%v reason=%q", done, d.Reason)
			}
		}
	}
	b.Run("case=allow", func(b *testing.B) {
		v.Remember(h, rec, t0)
		run(b, false)
	})
	b.Run("case=denied-this-window", func(b *testing.B) {
		v.DenyUntil(h, rec, t0, t0.Add(time.Second))
		run(b, true)
	})
}
