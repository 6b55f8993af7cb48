package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// The tests in this file hold the verifying UpdateItem's condition on its
// own: they call the store directly, with no Go re-check after it (the
// authorizer re-checks every rule on the returned item, which would hide a
// condition that admits too much, at the cost of a counted request and a
// refund). For each refusal the condition can decide, the write is refused
// in one DynamoDB call, no counter moves (the next admissible requests are
// still admitted exactly up to the limits) and lastUsedAt and the day's
// usage stay as they were, read through the store's public methods.

// bound is the rate limit (an hour) and the quota (a month) of a condition
// test's key: both at 3, so a refused request that moved either counter
// would leave fewer than 3 admissions.
const bound = 3

// condKey stores a live secret key with scopes read:users and write:users,
// a rate limit of bound an hour and a quota of bound a month, changed by
// mod.
func (f *fixture) condKey(t *testing.T, mod func(*key.Key)) *key.Key {
	t.Helper()
	return f.newKeyWith(t, "acme", func(k *key.Key) {
		k.Scopes = []string{"read:users", "write:users"}
		k.RateLimits = []key.RateLimit{{Name: "hour", Limit: bound, WindowSeconds: 3600}}
		k.Quota = &key.Quota{Limit: bound, Period: key.Month}
		k.AllowedCIDRs = nil
		if mod != nil {
			mod(k)
		}
	})
}

// admissible is a verification of k that its settings admit: a live
// deployment, a write method, scope read:users, stage prod, cost 1, with
// k's limits as the guard.
func (f *fixture) admissible(k *key.Key) store.VerifyInput {
	return store.VerifyInput{Hash: k.Hash, Now: f.now, Environments: []key.Environment{key.Live},
		SecretOnly: true, Scopes: []string{"read:users"}, Stage: "prod", Cost: 1, Shape: k}
}

// usageNow is what an admin sees of k's use: lastUsedAt and the count of
// the day of f.now.
func (f *fixture) usageNow(t *testing.T, k *key.Key) (time.Time, int64) {
	t.Helper()
	got, err := f.s.Get(context.Background(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	days, err := f.s.Usage(context.Background(), k.ID, f.now, f.now)
	if err != nil || len(days) != 1 {
		t.Fatalf("usage: %v %v", days, err)
	}
	return got.LastUsedAt, days[0].Count
}

// refuses holds that the condition refuses in: not admitted, not an error,
// the key's record returned for the caller to tell the reason, in exactly
// one DynamoDB call, and nothing an admin sees of the key's use changed.
func (f *fixture) refuses(t *testing.T, k *key.Key, in store.VerifyInput) {
	t.Helper()
	lastUsed, used := f.usageNow(t, k)
	before := f.calls.Total()
	res, err := f.counted.Verify(context.Background(), in)
	if calls := f.calls.Total() - before; calls != 1 {
		t.Errorf("a refusal took %d DynamoDB calls, want 1", calls)
	}
	if err != nil || res.Admitted || res.Record == nil || res.Record.Key.ID != k.ID {
		t.Fatalf("want a refusal with the key's record: admitted=%v err=%v record=%v", res.Admitted, err, res.Record != nil)
	}
	if l, u := f.usageNow(t, k); !l.Equal(lastUsed) || u != used {
		t.Fatalf("a refused request changed what the admin sees: lastUsedAt %v -> %v, usage today %d -> %d", lastUsed, l, used, u)
	}
}

// admitsExactly holds that in is admitted n times and refused the next.
func (f *fixture) admitsExactly(t *testing.T, in store.VerifyInput, n int) {
	t.Helper()
	for i := 1; i <= n+1; i++ {
		res, err := f.s.Verify(context.Background(), in)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if res.Admitted != (i <= n) {
			t.Fatalf("request %d: admitted=%v; want exactly %d admitted, then refused", i, res.Admitted, n)
		}
	}
}

func TestVerifyConditionRefusesEachReasonWithoutCounting(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		mod  func(*key.Key)
		// refuse changes the admissible input into one the condition
		// refuses; admit, when set, changes key or input so that the
		// requests after the refusals are admissible again.
		refuse func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput)
		admit  func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput)
	}{
		{name: "revoked key", refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
			if _, _, err := f.s.Revoke(ctx, k.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "disabled key", refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
			k.Enabled = false
			got, err := f.s.Update(ctx, k, k.Version)
			if err != nil {
				t.Fatal(err)
			}
			*k = *got
		}, admit: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
			k.Enabled = true
			if _, err := f.s.Update(ctx, k, k.Version); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "expired key, at the instant it expires",
			mod:    func(k *key.Key) { k.ExpiresAt = k.CreatedAt.Add(30 * time.Minute) },
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) { in.Now = k.ExpiresAt },
			admit: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
				in.Now = k.ExpiresAt.Add(-time.Millisecond)
			}},
		{name: "not yet valid key, a millisecond before it starts",
			mod: func(k *key.Key) { k.NotBefore = k.CreatedAt.Add(10 * time.Minute) },
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
				in.Now = k.NotBefore.Add(-time.Millisecond)
			},
			admit: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) { in.Now = k.NotBefore }},
		{name: "test key on a live deployment",
			mod:    func(k *key.Key) { k.Environment = key.Test },
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {},
			admit: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
				in.Environments = []key.Environment{key.Live, key.Test}
			}},
		{name: "stage the key does not list",
			mod:    func(k *key.Key) { k.Stages = []string{"v1", "v2"} },
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {},
			admit:  func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) { in.Stage = "v2" }},
		{name: "publishable key on a write method",
			mod:    func(k *key.Key) { k.Type = key.Publishable },
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {},
			admit:  func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) { in.SecretOnly = false }},
		{name: "first of two scopes missing",
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
				in.Scopes = []string{"admin", "read:users"}
			},
			admit: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
				in.Scopes = []string{"read:users", "write:users"}
			}},
		{name: "second of two scopes missing",
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
				in.Scopes = []string{"write:users", "admin"}
			},
			admit: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) {
				in.Scopes = []string{"write:users", "read:users"}
			}},
		{name: "scope that is only a prefix of the key's",
			refuse: func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) { in.Scopes = []string{"read"} },
			admit:  func(t *testing.T, f *fixture, k *key.Key, in *store.VerifyInput) { in.Scopes = []string{"read:users"} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			k := f.condKey(t, c.mod)
			in := f.admissible(k)
			c.refuse(t, f, k, &in)
			for range 2 {
				f.refuses(t, k, in)
			}
			if c.admit == nil {
				return // final: nothing admits this key again
			}
			c.admit(t, f, k, &in)
			f.admitsExactly(t, in, bound)
		})
	}
}

// A key with several rate limits is refused by whichever of them is
// exhausted first, whatever its position, and a request one limit refuses
// counts in none of the others.
func TestVerifyConditionHoldsEveryRateLimit(t *testing.T) {
	ctx := context.Background()
	for binding := range 3 {
		f := newFixture(t)
		k := f.condKey(t, func(k *key.Key) {
			k.RateLimits = []key.RateLimit{
				{Name: "minute", Limit: 9, WindowSeconds: 60},
				{Name: "hour", Limit: 9, WindowSeconds: 3600},
				{Name: "day", Limit: 9, WindowSeconds: 86400},
			}
			k.RateLimits[binding].Limit = bound
			k.Quota = nil
		})
		in := f.admissible(k)
		f.admitsExactly(t, in, bound)
		f.refuses(t, k, in)
		f.refuses(t, k, in)
		// Lift the binding limit: the others counted the admitted requests
		// only, so exactly 9-bound more are admitted.
		k.RateLimits[binding].Limit = 100
		k, err := f.s.Update(ctx, k, k.Version)
		if err != nil {
			t.Fatal(err)
		}
		in.Shape = k
		f.admitsExactly(t, in, 9-bound)
	}
}

// The quota admits a request exactly when its cost fits in what is left:
// spending the last credit is admitted, one credit more is refused, for a
// cost of 1 and for costs above 1, and a refused request spends nothing.
func TestVerifyConditionHoldsTheQuotaToTheCredit(t *testing.T) {
	f := newFixture(t)
	k := f.condKey(t, func(k *key.Key) {
		k.RateLimits = nil
		k.Quota = &key.Quota{Limit: 10, Period: key.Month}
	})
	cost := func(n int64) store.VerifyInput { in := f.admissible(k); in.Cost = n; return in }
	for i, n := range []int64{3, 3, 3} { // 9 spent
		if res, err := f.s.Verify(context.Background(), cost(n)); err != nil || !res.Admitted {
			t.Fatalf("request %d of cost %d: admitted=%v err=%v", i, n, res.Admitted, err)
		}
	}
	f.refuses(t, k, cost(3)) // 12 > 10
	f.refuses(t, k, cost(2)) // 11 > 10: one credit too many
	f.admitsExactly(t, cost(1), 1)
	f.refuses(t, k, cost(1))

	// Cost exactly the quota: admitted once; above it: never.
	whole := f.condKey(t, func(k *key.Key) { k.RateLimits = nil; k.Quota = &key.Quota{Limit: 5, Period: key.Day} })
	in := f.admissible(whole)
	in.Cost = 6
	f.refuses(t, whole, in)
	in.Cost = 5
	f.admitsExactly(t, in, 1)

	// A cost of 1 against a quota of bound, on a key without rate limits.
	ones := f.condKey(t, func(k *key.Key) { k.RateLimits = nil })
	f.admitsExactly(t, f.admissible(ones), bound)
	f.refuses(t, ones, f.admissible(ones))
}

// Refund takes back exactly what an admitted Verify counted, in every rate
// limit, the quota (the request's cost) and the day's usage: after it, the
// key admits exactly as many requests as before the refunded one, and an
// admin sees no use.
func TestRefundTakesBackExactlyWhatVerifyCounted(t *testing.T) {
	f := newFixture(t)
	k := f.condKey(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: bound, WindowSeconds: 60}, {Name: "hour", Limit: bound, WindowSeconds: 3600}}
		k.Quota = &key.Quota{Limit: 3 * bound, Period: key.Month}
	})
	in := f.admissible(k)
	in.Cost = 3 // the quota binds at bound requests too
	res, err := f.s.Verify(context.Background(), in)
	if err != nil || !res.Admitted {
		t.Fatalf("admitted=%v err=%v", res.Admitted, err)
	}
	if err := f.s.Refund(context.Background(), in, res.Record); err != nil {
		t.Fatal(err)
	}
	if _, used := f.usageNow(t, k); used != 0 {
		t.Fatalf("usage today after the refund: %d, want 0", used)
	}
	f.admitsExactly(t, in, bound)
}

// refusedBehindBoundary holds the clock skew at a boundary (a window's or
// a period's end): k, exhausted by bound requests at in (in the last second
// before boundary), is still refused to an environment 2.5 s behind one
// that has already started the next window or period (2 s past boundary,
// verifying with the record the exhausting requests returned).
func (f *fixture) refusedBehindBoundary(t *testing.T, k *key.Key, in store.VerifyInput, boundary time.Time) {
	t.Helper()
	var rec *store.Record
	for i := range bound {
		res, err := f.s.Verify(context.Background(), in)
		if err != nil || !res.Admitted {
			t.Fatalf("request %d: admitted=%v err=%v", i+1, res.Admitted, err)
		}
		rec = res.Record
	}
	onTime := in
	onTime.Now, onTime.Known, onTime.Shape = boundary.Add(2*time.Second), rec, nil
	if res, err := f.s.Verify(context.Background(), onTime); err != nil || !res.Admitted {
		t.Fatalf("past the boundary: admitted=%v err=%v", res.Admitted, err)
	}
	lagging := in
	lagging.Now = boundary.Add(-500 * time.Millisecond)
	f.refuses(t, k, lagging)
}

// A window's counter outlives the window by the documented clock skew
// (5 s): an environment whose clock lags a few seconds still counts in the
// ended window, and must find its counter there, even after an environment
// on time has started the next window.
func TestLaggingClockCannotReopenAnEndedWindow(t *testing.T) {
	f := newFixture(t)
	k := f.condKey(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: bound, WindowSeconds: 60}}
		k.Quota = nil
	})
	in := f.admissible(k)
	in.Now = f.now.Add(59 * time.Second) // the last second of a window
	f.refusedBehindBoundary(t, k, in, f.now.Add(time.Minute))
}

// A quota period's counter outlives the period by the same skew: an
// environment whose clock lags across a day boundary still finds the
// ended day's credits spent.
func TestLaggingClockCannotRefillAnEndedPeriod(t *testing.T) {
	f := newFixture(t)
	f.now = f.now.Truncate(24 * time.Hour).Add(48*time.Hour - time.Second) // the last second of a day
	k := f.condKey(t, func(k *key.Key) {
		k.RateLimits = nil
		k.Quota = &key.Quota{Limit: bound, Period: key.Day}
	})
	f.refusedBehindBoundary(t, k, f.admissible(k), f.now.Add(time.Second))
}
