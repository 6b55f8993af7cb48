package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// The tests in this file measure what a verification costs, as DynamoDB
// bills it: the write units the verifying UpdateItem consumed, as DynamoDB
// Local reports them with ReturnConsumedCapacity (by item size, 1 unit per
// KB or part of one, as DynamoDB does).

// typical is the typical key of docs/usage.md: 3 scopes, 2 rate limits, a
// monthly quota, 3 metadata entries of 32 bytes each (one of them the plan,
// which the hot item holds), a 40-character name and a 40-character owner.
func typical(k *key.Key) {
	k.Name = strings.Repeat("n", 40)
	k.OwnerID = "customer-7f3a9c2e-4b1d-4e8a-9f6b-2d5c8e1a"
	k.Scopes = []string{"read:orders", "write:orders", "read:customers"}
	k.RateLimits = []key.RateLimit{
		{Name: "per-second", Limit: 100, WindowSeconds: 1},
		{Name: "per-day", Limit: 1_000_000, WindowSeconds: 86400},
	}
	k.Quota = &key.Quota{Limit: 10_000_000, Period: key.Month}
	k.AllowedCIDRs = nil
	k.Metadata = map[string]any{
		"plan":     strings.Repeat("p", 32),
		"customer": strings.Repeat("c", 32),
		"region":   strings.Repeat("r", 32),
	}
}

// costKey stores a key made by newKey's rules and changed by mod, and
// returns it as stored.
func (f *fixture) costKey(t *testing.T, mod func(*key.Key)) *key.Key {
	t.Helper()
	pk, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	k := &key.Key{ID: key.NewID(), Name: "cost", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Hash: hasher.Sum(pk.Plaintext), Hint: apikey.Hint(pk), Enabled: true, CreatedAt: f.now, UpdatedAt: f.now}
	mod(k)
	if err := k.Validate(f.now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k
}

// verifyTypical is the verification the authorizer makes of a typical key
// on a write route that needs one of its scopes, knowing rec (nil: a key it
// has not seen).
func verifyTypical(k *key.Key, now time.Time, rec *store.Record) store.VerifyInput {
	in := store.VerifyInput{Hash: k.Hash, Now: now, Environments: []key.Environment{key.Live},
		SecretOnly: true, Scopes: []string{"write:orders"}, Stage: "prod", Cost: 1, Known: rec}
	if rec == nil {
		in.Shape = k
	}
	return in
}

// verifyUnits verifies in and returns the write units it consumed; the
// verification must be admitted.
func (f *fixture) verifyUnits(t *testing.T, in store.VerifyInput) (float64, *store.Record) {
	t.Helper()
	res, err := f.s.Verify(context.Background(), in)
	if err != nil || !res.Admitted {
		t.Fatalf("verification at %v: admitted=%v err=%v", in.Now, res.Admitted, err)
	}
	return res.WriteUnits, res.Record
}

// A typical key costs one write unit per verification on its first day and
// after 400 days of daily use: nothing that grows with time lives in the
// item a verification writes.
func TestTypicalKeyCostsOneWriteUnitAtAnyAge(t *testing.T) {
	f := newFixture(t)
	k := f.costKey(t, typical)
	units, rec := f.verifyUnits(t, verifyTypical(k, f.now, nil))
	if units != 1 {
		t.Fatalf("first verification of a new typical key: %v write units, want 1", units)
	}
	first := f.hotSize(t, k)
	t.Logf("day 0: %v write unit; the hot item is about %d bytes", units, first)
	for day := 1; day <= 400; day++ {
		f.now = f.now.Add(24 * time.Hour)
		units, rec = f.verifyUnits(t, verifyTypical(k, f.now, rec))
		if units != 1 {
			t.Fatalf("verification on day %d: %v write units, want 1", day, units)
		}
	}
	last := f.hotSize(t, k)
	t.Logf("day 400: %v write unit; the hot item is about %d bytes", units, last)
	// Not only under 1 KB: the same size, give or take a counter's digits,
	// so that nothing accumulates (a month's counter a month would still fit
	// in the unit for a while).
	if last > first+16 {
		t.Fatalf("the hot item grew from about %d to %d bytes in 400 days", first, last)
	}
	// The usage of every one of those days is still there, outside the
	// hot item (here: today's, from the hot item; the rest needs the usage
	// consumer, tested in internal/usage).
	days, err := f.s.Usage(context.Background(), k.ID, f.now, f.now)
	if err != nil || days[0].Count != 1 {
		t.Fatalf("usage of day 400: %+v %v", days, err)
	}
}

// A busy typical key, verified ten times a second for 12 seconds (its
// per-second windows end and their counters wait out the 5-second clock
// skew allowance before they go), still costs one write unit each time.
func TestBusyTypicalKeyCostsOneWriteUnit(t *testing.T) {
	f := newFixture(t)
	k := f.costKey(t, typical)
	var rec *store.Record
	for i := 0; i < 120; i++ {
		var units float64
		units, rec = f.verifyUnits(t, verifyTypical(k, f.now, rec))
		if units != 1 {
			t.Fatalf("verification %d: %v write units, want 1 (counters %v)", i, units, rec.RL)
		}
		f.now = f.now.Add(100 * time.Millisecond)
	}
}

// maxed changes a key to about the largest hot item validation accepts:
// the longest name, owner and plan, the most rate limits with the longest
// names and the shortest windows (the most counters, kept for the clock
// skew allowance), and every list at its most entries, sharing the
// verification budget (key.MaxVerifyBytes) to the byte.
func maxed(t *testing.T) func(k *key.Key) {
	return func(k *key.Key) {
		long := func(prefix string, n int) string { return prefix + strings.Repeat("x", n-len(prefix)) }
		k.Name = strings.Repeat("n", key.MaxNameLen)
		k.OwnerID = strings.Repeat("o", key.MaxOwnerLen)
		k.Metadata = map[string]any{"plan": strings.Repeat("p", key.MaxPlanLen)}
		k.RateLimits = nil
		for i := range key.MaxRateLimits {
			k.RateLimits = append(k.RateLimits, key.RateLimit{Name: long(fmt.Sprintf("l%d", i), 32), Limit: key.MaxLimit, WindowSeconds: int64(i + 1)})
		}
		k.Quota = &key.Quota{Limit: key.MaxQuota, Period: key.Month}
		k.AllowedCIDRs = nil
		for i := range key.MaxCIDRs {
			k.AllowedCIDRs = append(k.AllowedCIDRs, netip.MustParsePrefix(fmt.Sprintf("2001:db8:ffff::%04x/128", i)))
		}
		left := key.MaxVerifyBytes - len(key.PlanOf(k))
		for _, c := range key.FormatCIDRs(k.AllowedCIDRs) {
			left -= len(c)
		}
		// What is left goes evenly to scopes, origins and stages (each
		// https://oNN.xxx... origin is as long as a scope).
		per := left / (key.MaxScopes + key.MaxOrigins + key.MaxStages)
		k.Scopes, k.AllowedOrigins, k.Stages = nil, nil, nil
		for i := range key.MaxScopes {
			k.Scopes = append(k.Scopes, long(fmt.Sprintf("s%02d", i), per))
		}
		for i := range key.MaxOrigins {
			k.AllowedOrigins = append(k.AllowedOrigins, long(fmt.Sprintf("https://o%02d.", i), per))
		}
		for i := range key.MaxStages {
			k.Stages = append(k.Stages, long(fmt.Sprintf("st%02d", i), per))
		}
		// The remainder lengthens the last stage to fill the budget exactly.
		n, _ := key.VerifyBytes(k)
		k.Stages[len(k.Stages)-1] += strings.Repeat("x", key.MaxVerifyBytes-n)
		if n, _ := key.VerifyBytes(k); n != key.MaxVerifyBytes {
			t.Fatalf("the maximal key carries %d bytes, not the budget of %d", n, key.MaxVerifyBytes)
		}
	}
}

// maxUnits is the write units docs/usage.md says a verification of a key
// at the maximum settings costs.
const maxUnits = 5

// The cost of a key at the maximum settings is bounded, by the limits on
// what the hot item may hold (key.MaxVerifyBytes and the limits on each
// setting), and is what docs/usage.md says: measured over 20 seconds of
// verifications every half second, so that every limit's counters are at
// their most.
func TestMaximalKeyCost(t *testing.T) {
	f := newFixture(t)
	k := f.costKey(t, maxed(t))
	in := store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Shape: k}
	most := 0.0
	for i := 0; i < 40; i++ {
		var units float64
		var rec *store.Record
		units, rec = f.verifyUnits(t, in)
		most = max(most, units)
		in.Known, in.Shape = rec, nil
		in.Now = in.Now.Add(500 * time.Millisecond)
	}
	t.Logf("a key at the maximum settings: at most %v write units per verification", most)
	if most != maxUnits {
		t.Fatalf("a key at the maximum settings costs up to %v write units, docs/usage.md says %v", most, maxUnits)
	}
}

// hotSize estimates the size of k's hot item by DynamoDB's rules (attribute
// names and values; a number is about one byte per two digits plus one; a
// list or map 3 bytes plus 1 per element), for the docs' numbers; the
// tests hold the write units, which DynamoDB Local computes itself.
func (f *fixture) hotSize(t *testing.T, k *key.Key) int {
	t.Helper()
	out, err := f.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &f.table, Key: store.ItemKey(store.KeyPK(k.Hash), "KEY")})
	if err != nil {
		t.Fatal(err)
	}
	var size func(av ddb.AttributeValue) int
	size = func(av ddb.AttributeValue) int {
		switch v := av.(type) {
		case *ddb.AttributeValueMemberS:
			return len(v.Value)
		case *ddb.AttributeValueMemberN:
			return (len(strings.TrimLeft(strings.TrimPrefix(v.Value, "-"), "0"))+1)/2 + 1
		case *ddb.AttributeValueMemberBOOL, *ddb.AttributeValueMemberNULL:
			return 1
		case *ddb.AttributeValueMemberL:
			n := 3
			for _, e := range v.Value {
				n += size(e) + 1
			}
			return n
		case *ddb.AttributeValueMemberM:
			n := 3
			for name, e := range v.Value {
				n += len(name) + size(e) + 1
			}
			return n
		}
		return 0
	}
	n := 0
	for name, av := range out.Item {
		n += len(name) + size(av)
	}
	return n
}
