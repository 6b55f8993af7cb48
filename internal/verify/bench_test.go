package verify_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/alloctest"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/gateway"
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

// The verification core allocates nothing (the design's target): every
// complete verification that needs no DynamoDB call (no key, a malformed
// key, a key known to be unknown, a key already denied this window, each
// reached the way production reaches it, through DynamoDB Local), and for
// a cached key everything up to the DynamoDB update, with the route
// matched on the way.
func TestVerificationCoreAllocatesNothing(t *testing.T) {
	alloctest.SkipRace(t)
	f := newFixture(t)
	ctx := context.Background()
	_, limited := f.issue(t, func(k *key.Key) { k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 1, WindowSeconds: 60}} })
	_, cached := f.issue(t, nil)
	unknown, _ := format.Generate(apikey.Secret, apikey.Live)
	v := f.verifier(nil)
	for _, c := range []struct {
		name string
		req  *verify.Request
		want gateway.Reason
	}{
		{"missing key", get("", "/users/1"), gateway.MissingKey},
		{"malformed key", get(typo(limited), "/users/1"), gateway.MalformedKey},
		{"known-unknown key", get(unknown.Plaintext, "/users/1"), gateway.UnknownKey},
		{"denied this window", get(limited, "/users/1"), gateway.RateLimited},
	} {
		for range 3 { // admitted, then denied by DynamoDB, then from the cache
			v.Verify(ctx, c.req)
		}
		var d verify.Decision
		before := f.calls.Total()
		alloctest.Zero(t, "Verify, "+c.name, func() { d = v.Verify(ctx, c.req) })
		if d.Reason != c.want || f.calls.Total() != before {
			t.Fatalf("%s: %q after %d DynamoDB calls, want %q after none", c.name, d.Reason, f.calls.Total()-before, c.want)
		}
	}
	req := get(cached, "/users/1")
	if d := v.Verify(ctx, req); !d.Allowed() {
		t.Fatal(d.Reason)
	}
	alloctest.Zero(t, "the local part of a cached key's verification", func() {
		if _, done := v.Local(req, f.clock()); done {
			t.Fatal("a cached, admitted key was decided without DynamoDB")
		}
	})
}

// A hot key's request admitted from this environment's blocks makes no
// DynamoDB call and allocates only its answer: the one string that holds
// what each limit has left (its day, its quota period and its counter
// names are formatted without allocating, or only when they change).
func TestAReservedAdmissionAllocatesNothingButItsAnswer(t *testing.T) {
	alloctest.SkipRace(t)
	f := newFixture(t)
	ctx := context.Background()
	_, plain := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 10_000_000, WindowSeconds: 60}, {Name: "hour", Limit: 100_000_000, WindowSeconds: 3600}}
		k.Quota = &key.Quota{Limit: 1_000_000_000, Period: key.Month}
	})
	v := f.verifier(nil)
	req := get(plain, "/users/1")
	for range 2000 { // 50,000 a second: blocks of 10,000 (200 ms of traffic)
		if d := v.Verify(ctx, req); !d.Allowed() {
			t.Fatal(d.Reason)
		}
		f.advance(20 * time.Microsecond)
	}
	var d verify.Decision
	reserved := 0
	before := f.calls.Total()
	alloctest.AtMost(t, "Verify, admitted from a reservation", 1, func() {
		if d = v.Verify(ctx, req); d.Reserved {
			reserved++
		}
	})
	if calls := f.calls.Total() - before; reserved != alloctest.Runs+1 || calls != 0 || !d.Allowed() {
		t.Fatalf("%d of %d requests admitted from blocks, with %d DynamoDB calls (last %q); want all, with none",
			reserved, alloctest.Runs+1, calls, d.Reason)
	}
	if !strings.HasPrefix(d.RateLimitRemaining, "minute=") || !strings.Contains(d.RateLimitRemaining, ",hour=") || d.QuotaRemaining == "" {
		t.Fatalf("the answer: rate %q, quota %q", d.RateLimitRemaining, d.QuotaRemaining)
	}
}
