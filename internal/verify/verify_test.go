package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/dynamolocal"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

var (
	format, _ = apikey.NewFormat("")
	hasher    = apikey.NewHasher([]byte("test-pepper"))
	// t0 is noon (UTC) of the day the tests run: the time of day the
	// expectations assume, on a real date, because DynamoDB Local deletes
	// items (revoked keys) whose ttl has passed in real time.
	t0        = time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
	routes, _ = verify.ParseRoutes(`[
		{"method":"GET","path":"/users/{id}","scopes":["read:users"]},
		{"method":"POST","path":"/users","scopes":["write:users"]},
		{"method":"POST","path":"/reports/*","scopes":["read:users"],"cost":5}]`)
)

// fixture is a table in DynamoDB Local, a store over a client that counts
// (and, on demand, fails) the requests it sends, and a settable clock.
type fixture struct {
	st    *store.Store
	admin *store.Store // an uncounted store, for setting keys up
	db    *dynamodb.Client
	table string
	now   atomic.Int64 // Unix ns
	calls *dynamotest.Calls
	fail  atomic.Bool
	// throttle makes every DynamoDB call fail as throttled.
	throttle atomic.Bool
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, table := dynamotest.Table(t)
	f := &fixture{db: db, table: table}
	f.now.Store(t0.UnixNano())
	f.calls = &dynamotest.Calls{}
	counted := dynamotest.Watched(db, func(op string) error {
		_ = f.calls.See(op)
		if f.fail.Load() {
			return errors.New("injected DynamoDB outage")
		}
		if f.throttle.Load() {
			return &ddbtypes.ProvisionedThroughputExceededException{Message: &throttled}
		}
		return nil
	})
	f.st = store.New(counted, table, store.Options{Now: f.clock})
	f.admin = store.New(db, table, store.Options{Now: f.clock})
	return f
}

func (f *fixture) clock() time.Time        { return time.Unix(0, f.now.Load()).UTC() }
func (f *fixture) advance(d time.Duration) { f.now.Add(int64(d)) }

func (f *fixture) verifier(mod func(*verify.Options)) *verify.Verifier {
	// A store timeout far above the default: these tests hold decisions,
	// not latency, and must not turn into unavailable on a loaded machine
	// (the tests of timeouts set their own).
	o := verify.Options{Format: format, Hasher: hasher, Environments: []key.Environment{key.Live},
		Routes: routes, Now: f.clock, StoreTimeout: 30 * time.Second}
	if mod != nil {
		mod(&o)
	}
	return verify.New(f.st, o)
}

// issue stores a new live secret key with scopes read:users and
// write:users, changed by mod, and returns it with its plaintext.
func (f *fixture) issue(t testing.TB, mod func(*key.Key)) (*key.Key, string) {
	t.Helper()
	k := &key.Key{ID: key.NewID(), Name: "test", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Scopes: []string{"read:users", "write:users"}, Enabled: true, CreatedAt: f.clock(), UpdatedAt: f.clock(),
		Metadata: map[string]any{"plan": "pro"}}
	if mod != nil {
		mod(k)
	}
	pk, err := format.Generate(k.Type.APIKeyType(), apikey.Environment(k.Environment))
	if err != nil {
		t.Fatal(err)
	}
	k.Hash, k.Hint = hasher.Sum(pk.Plaintext), apikey.Hint(pk)
	if err := k.Validate(f.clock().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k, pk.Plaintext
}

func get(cred, path string) *verify.Request {
	return &verify.Request{Credential: cred, Method: "GET", Path: path, Stage: "prod", SourceIP: "203.0.113.7"}
}

// refusable holds the plaintexts of keys refused for their state or
// settings, whatever the route: disabled, revoked, expired, not yet valid,
// of the test environment and for stage v2 only.
type refusable struct{ disabled, revoked, expired, early, test, staged string }

func (f *fixture) issueRefusable(t *testing.T) refusable {
	t.Helper()
	ctx := context.Background()
	var r refusable
	var disabled, revoked *key.Key
	disabled, r.disabled = f.issue(t, nil)
	disabled.Enabled = false
	if _, err := f.admin.Update(ctx, disabled, 1); err != nil {
		t.Fatal(err)
	}
	revoked, r.revoked = f.issue(t, nil)
	if _, _, err := f.admin.Revoke(ctx, revoked.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
		t.Fatal(err)
	}
	_, r.expired = f.issue(t, func(k *key.Key) { k.ExpiresAt = t0.Add(-time.Minute) })
	_, r.early = f.issue(t, func(k *key.Key) { k.NotBefore = t0.Add(time.Hour); k.ExpiresAt = t0.Add(2 * time.Hour) })
	_, r.test = f.issue(t, func(k *key.Key) { k.Environment = key.Test })
	_, r.staged = f.issue(t, func(k *key.Key) { k.Stages = []string{"v2"} })
	return r
}

func TestEveryReasonCode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, ok := f.issue(t, nil)
	r := f.issueRefusable(t)
	disabledKey, revokedKey, expiredKey, earlyKey, testKey, stagedKey := r.disabled, r.revoked, r.expired, r.early, r.test, r.staged
	_, pubKey := f.issue(t, func(k *key.Key) {
		k.Type = key.Publishable
		k.AllowedOrigins = []string{"https://*.example.com", "https://shop.test"}
	})
	_, cidrKey := f.issue(t, func(k *key.Key) {
		k.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	})
	_, limited := f.issue(t, func(k *key.Key) { k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 1, WindowSeconds: 60}} })
	_, quota := f.issue(t, func(k *key.Key) { k.Quota = &key.Quota{Limit: 5, Period: key.Day} })
	garbage, _ := format.Generate(apikey.Secret, apikey.Live) // well-formed, never stored

	v := f.verifier(nil)
	v.Verify(ctx, get(limited, "/users/1"))
	v.Verify(ctx, &verify.Request{Credential: quota, Method: "POST", Path: "/reports/x", Stage: "prod"})

	cases := []struct {
		name  string
		req   *verify.Request
		want  gateway.Reason
		retry int64
	}{
		{"allow", get(ok, "/users/1"), "", 0},
		{"allow ipv6 in allowlist", &verify.Request{Credential: cidrKey, Method: "GET", SourceIP: "2001:db8::1"}, "", 0},
		{"allow publishable from a listed subdomain", &verify.Request{Credential: pubKey, Method: "GET", Path: "/users/1", Origin: "https://app.example.com"}, "", 0},
		{"missing", get("", "/"), gateway.MissingKey, 0},
		{"malformed", get(typo(ok), "/"), gateway.MalformedKey, 0},
		{"unknown", get(garbage.Plaintext, "/"), gateway.UnknownKey, 0},
		{"disabled", get(disabledKey, "/"), gateway.Disabled, 0},
		{"revoked", get(revokedKey, "/"), gateway.Revoked, 0},
		{"expired", get(expiredKey, "/"), gateway.Expired, 0},
		{"not yet valid", get(earlyKey, "/"), gateway.NotYetValid, 0},
		{"test key on a live deployment", get(testKey, "/"), gateway.WrongEnvironment, 0},
		{"stage not listed", get(stagedKey, "/"), gateway.WrongEnvironment, 0},
		{"publishable key, POST", &verify.Request{Credential: pubKey, Method: "POST", Path: "/users", Origin: "https://app.example.com"}, gateway.MethodNotAllowed, 0},
		{"origin not listed", &verify.Request{Credential: pubKey, Method: "GET", Origin: "https://example.com"}, gateway.OriginNotAllowed, 0},
		{"origin missing", &verify.Request{Credential: pubKey, Method: "GET"}, gateway.OriginNotAllowed, 0},
		{"allow ipv4 in allowlist", &verify.Request{Credential: cidrKey, Method: "GET", Path: "/users/1", SourceIP: "198.51.100.9"}, "", 0},
		{"ip not allowed", &verify.Request{Credential: cidrKey, Method: "GET", SourceIP: "203.0.113.7"}, gateway.IPNotAllowed, 0},
		{"no source ip", &verify.Request{Credential: cidrKey, Method: "GET"}, gateway.IPNotAllowed, 0},
		{"rate limited", get(limited, "/users/1"), gateway.RateLimited, 60},
		{"quota exceeded", &verify.Request{Credential: quota, Method: "POST", Path: "/reports/x", Stage: "prod"}, gateway.QuotaExceeded, 12 * 3600},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Twice: once from DynamoDB, once from the cache; both agree.
			for _, v := range []*verify.Verifier{f.verifier(nil), v} {
				d := v.Verify(ctx, c.req)
				if d.Reason != c.want || d.RetryAfter != c.retry {
					t.Fatalf("reason %q retry %d, want %q retry %d (err %v)", d.Reason, d.RetryAfter, c.want, c.retry, d.Err)
				}
			}
		})
	}
	// A scope the route needs and the key lacks.
	_, narrow := f.issue(t, func(k *key.Key) { k.Scopes = []string{"read:users"} })
	if d := v.Verify(ctx, &verify.Request{Credential: narrow, Method: "POST", Path: "/users"}); d.Reason != gateway.InsufficientScope {
		t.Fatalf("missing write:users: %q", d.Reason)
	}
}

func TestAllowCarriesIdentityAndRemainingLimits(t *testing.T) {
	f := newFixture(t)
	k, plain := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "second", Limit: 10, WindowSeconds: 1}, {Name: "day", Limit: 1000, WindowSeconds: 86400}}
		k.Quota = &key.Quota{Limit: 100, Period: key.Month}
	})
	v := f.verifier(nil)
	d := v.Verify(context.Background(), &verify.Request{Credential: plain, Method: "POST", Path: "/reports/q"})
	if !d.Allowed() || d.Key.ID != k.ID || d.RateLimitRemaining != "second=9,day=999" || d.QuotaRemaining != "95" {
		t.Fatalf("allow: %+v", d)
	}
}

// countCalls returns the DynamoDB requests one verification makes.
func (f *fixture) countCalls(v *verify.Verifier, req *verify.Request) (int64, verify.Decision) {
	before := f.calls.Total()
	d := v.Verify(context.Background(), req)
	return f.calls.Total() - before, d
}

func TestDynamoDBCallsPerVerification(t *testing.T) {
	f := newFixture(t)
	plan := func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 2, WindowSeconds: 60}}
		k.Quota = &key.Quota{Limit: 1000, Period: key.Month}
	}
	_, free := f.issue(t, nil)
	_, a := f.issue(t, plan)
	_, b := f.issue(t, plan)
	garbage, _ := format.Generate(apikey.Secret, apikey.Live)
	v := f.verifier(nil)
	steps := []struct {
		name  string
		cred  string
		calls int64
		want  gateway.Reason
	}{
		{"malformed", "kg_sk_live_nonsense", 0, gateway.MalformedKey},
		{"uncached key without limits", free, 1, ""},
		{"unknown key", garbage.Plaintext, 1, gateway.UnknownKey},
		{"unknown key, cached", garbage.Plaintext, 0, gateway.UnknownKey},
		// The first limited key this process sees: its limits are guessed
		// wrong once (documented), then known.
		{"first key of a plan", a, 2, ""},
		{"uncached key of a known plan, under its limits", b, 1, ""},
		{"cached key under its limits", b, 1, ""},
		{"cached key over its limit", b, 1, gateway.RateLimited},
		{"already denied this window", b, 0, gateway.RateLimited},
	}
	for _, s := range steps {
		calls, d := f.countCalls(v, get(s.cred, "/users/1"))
		if calls != s.calls || d.Reason != s.want || int64(d.Calls) != calls {
			t.Fatalf("%s: %d calls (decision says %d), reason %q; want %d calls, reason %q", s.name, calls, d.Calls, d.Reason, s.calls, s.want)
		}
	}
	// A day-long limit refused from the cache still says when the day ends,
	// although the cached denial itself is kept for at most a minute.
	_, daily := f.issue(t, func(k *key.Key) { k.RateLimits = []key.RateLimit{{Name: "day", Limit: 1, WindowSeconds: 86400}} })
	for i, want := range []struct {
		calls  int64
		reason gateway.Reason
	}{{2, ""}, {1, gateway.RateLimited}, {0, gateway.RateLimited}} {
		calls, d := f.countCalls(v, get(daily, "/users/1"))
		if calls != want.calls || d.Reason != want.reason || (d.Reason != "" && d.RetryAfter != 12*3600) {
			t.Fatalf("daily limit, request %d: %d calls, %q, retry %d s", i, calls, d.Reason, d.RetryAfter)
		}
	}
	f.advance(2 * time.Minute)
	if calls, d := f.countCalls(v, get(daily, "/users/1")); calls != 1 || d.Reason != gateway.RateLimited {
		t.Fatalf("daily limit after the cached denial expired: %d calls, %q", calls, d.Reason)
	}
	f.now.Store(t0.UnixNano())

	// The cache TTL has no say over allows: a cached key past its TTL is
	// still one call, and after the window a denied key is counted again.
	f.advance(time.Minute)
	if calls, d := f.countCalls(v, get(b, "/users/1")); calls != 1 || !d.Allowed() {
		t.Fatalf("next window: %d calls, %q", calls, d.Reason)
	}
}

func TestConcurrentEnvironmentsAdmitExactlyTheLimit(t *testing.T) {
	f := newFixture(t)
	const limit = 25
	_, plain := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "hour", Limit: limit, WindowSeconds: 3600}}
	})
	var admitted, limited atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Its own cache, as a separate Lambda environment. The store
			// timeout is long: this test holds exactness, not latency, and
			// 64 writers contending for one item on a loaded 2-core machine
			// can take longer than the default 2 s.
			v := f.verifier(func(o *verify.Options) { o.StoreTimeout = time.Minute })
			for j := 0; j < 2; j++ {
				switch d := v.Verify(context.Background(), get(plain, "/users/1")); d.Reason {
				case "":
					admitted.Add(1)
				case gateway.RateLimited:
					limited.Add(1)
				default:
					t.Errorf("unexpected %q (%v)", d.Reason, d.Err)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != limit || limited.Load() != 128-limit {
		t.Fatalf("admitted %d and limited %d of 128, want exactly %d admitted", admitted.Load(), limited.Load(), limit)
	}
}

func TestQuotaRefillsAtThePeriodBoundary(t *testing.T) {
	f := newFixture(t)
	f.now.Store(time.Date(2026, 11, 30, 23, 59, 50, 0, time.UTC).UnixNano())
	k, plain := f.issue(t, func(k *key.Key) { k.Quota = &key.Quota{Limit: 10, Period: key.Month} })
	v := f.verifier(nil)
	req := &verify.Request{Credential: plain, Method: "POST", Path: "/reports/r"} // cost 5
	for i, want := range []gateway.Reason{"", "", gateway.QuotaExceeded} {
		if d := v.Verify(context.Background(), req); d.Reason != want {
			t.Fatalf("request %d: %q, want %q", i, d.Reason, want)
		} else if want == gateway.QuotaExceeded && d.RetryAfter != 10 {
			t.Fatalf("retry after %d s, want 10 (the month ends in 10 s)", d.RetryAfter)
		}
	}
	f.advance(10 * time.Second) // 2026-12-01T00:00:00Z
	d := v.Verify(context.Background(), req)
	if !d.Allowed() || d.QuotaRemaining != "5" {
		t.Fatalf("after the refill: %q remaining %q", d.Reason, d.QuotaRemaining)
	}
	days, err := f.admin.Usage(context.Background(), k.ID, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || days[0].Count != 2 || days[1].Count != 1 {
		t.Fatalf("usage = %+v, %v; want 2 on the 30th and 1 on the 1st", days, err)
	}
}

func TestRevocationBitesAtTheNextRequest(t *testing.T) {
	f := newFixture(t)
	k, plain := f.issue(t, nil)
	v := f.verifier(func(o *verify.Options) { o.CacheTTL = time.Hour })
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() {
		t.Fatal(d.Reason)
	}
	if _, _, err := f.admin.Revoke(context.Background(), k.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
		t.Fatal(err)
	}
	if d := v.Verify(context.Background(), get(plain, "/users/1")); d.Reason != gateway.Revoked {
		t.Fatalf("after revocation, with the key cached for an hour: %q", d.Reason)
	}
}

func TestLateRefusalIsRefunded(t *testing.T) {
	// A key never seen before, of a plan this environment knows, with a
	// CIDR allowlist: DynamoDB admits and counts (it cannot evaluate
	// CIDRs), the verifier refuses the address and takes the count back,
	// in a second call that the decision (and so the log line and the
	// metrics) counts.
	f := newFixture(t)
	plan := func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "hour", Limit: 1, WindowSeconds: 3600}}
		k.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	}
	_, known := f.issue(t, plan)
	_, plain := f.issue(t, plan)
	inside := func(cred string) *verify.Request {
		req := get(cred, "/users/1")
		req.SourceIP = "198.51.100.1"
		return req
	}
	v := f.verifier(nil)
	if d := v.Verify(context.Background(), inside(known)); !d.Allowed() {
		t.Fatalf("a key of the plan, from the allowlist: %q", d.Reason)
	}
	if calls, d := f.countCalls(v, get(plain, "/users/1")); d.Reason != gateway.IPNotAllowed || calls != 2 || d.Calls != 2 {
		t.Fatalf("from outside the allowlist: %q in %d calls (the decision says %d), want ip_not_allowed in 2", d.Reason, calls, d.Calls)
	}
	if d := f.verifier(nil).Verify(context.Background(), inside(plain)); !d.Allowed() {
		t.Fatalf("the refused request used up the limit: %q", d.Reason)
	}
}

func TestStoreFaultsFailClosed(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, nil)
	// A listener that accepts and never answers: DynamoDB stalling.
	stall, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stall.Close()
	go func() {
		for {
			c, err := stall.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port, _ := dynamolocal.FreePort()
	for name, endpoint := range map[string]string{
		"stalling": "http://" + stall.Addr().String(),
		"down":     fmt.Sprintf("http://127.0.0.1:%d", port),
	} {
		t.Run(name, func(t *testing.T) {
			st := store.New(store.LocalClient(endpoint), f.table, store.Options{})
			v := verify.New(st, verify.Options{Format: format, Hasher: hasher, StoreTimeout: 300 * time.Millisecond, Now: f.clock})
			for i := 0; i < 3; i++ {
				if d := v.Verify(context.Background(), get(plain, "/users/1")); d.Reason != gateway.Unavailable || d.Err == nil {
					t.Fatalf("verification %d: %q, want unavailable", i, d.Reason)
				}
			}
		})
	}
	// A DynamoDB error on the live store also denies, for a cached key too.
	v := f.verifier(nil)
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() {
		t.Fatal(d.Reason)
	}
	f.fail.Store(true)
	defer f.fail.Store(false)
	if d := v.Verify(context.Background(), get(plain, "/users/1")); d.Reason != gateway.Unavailable {
		t.Fatalf("cached key, DynamoDB failing: %q", d.Reason)
	}
}

func TestServeStaleIsBoundedAndOffByDefault(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, nil)
	_, other := f.issue(t, nil)
	v := f.verifier(func(o *verify.Options) { o.ServeStale = time.Minute })
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() {
		t.Fatal(d.Reason)
	}
	f.fail.Store(true)
	defer f.fail.Store(false)
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() || !d.Stale {
		t.Fatalf("recently admitted key during an outage: %q stale=%v", d.Reason, d.Stale)
	}
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() {
		t.Fatalf("second stale verification: %q", d.Reason)
	}
	if d := v.Verify(context.Background(), get(other, "/users/1")); d.Reason != gateway.Unavailable {
		t.Fatalf("never admitted key during an outage: %q", d.Reason)
	}
	f.advance(time.Minute) // exactly the bound after the last admission: still served
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() || !d.Stale {
		t.Fatalf("at the serve-stale bound: %q stale=%v", d.Reason, d.Stale)
	}
	f.advance(time.Millisecond)
	if d := v.Verify(context.Background(), get(plain, "/users/1")); d.Reason != gateway.Unavailable {
		t.Fatalf("past the serve-stale bound: %q", d.Reason)
	}
}

var throttled = "injected throttling"

// Serve-stale never admits while DynamoDB throttles: a client could make a
// hot key throttle and then be admitted without being counted.
func TestServeStaleNotWhileThrottled(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, nil)
	v := f.verifier(func(o *verify.Options) { o.ServeStale = time.Minute })
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() {
		t.Fatal(d.Reason)
	}
	f.throttle.Store(true)
	defer f.throttle.Store(false)
	if d := v.Verify(context.Background(), get(plain, "/users/1")); d.Reason != gateway.Unavailable || d.Stale {
		t.Fatalf("throttled DynamoDB: %q stale=%v, want unavailable", d.Reason, d.Stale)
	}
}

type panickingStore struct{ verify.Store }

func (panickingStore) Verify(context.Context, store.VerifyInput) (store.VerifyResult, error) {
	panic("boom")
}

func TestPanicDenies(t *testing.T) {
	pk, _ := format.Generate(apikey.Secret, apikey.Live)
	v := verify.New(panickingStore{}, verify.Options{Format: format, Hasher: hasher})
	if d := v.Verify(context.Background(), get(pk.Plaintext, "/")); d.Reason != gateway.Unavailable {
		t.Fatalf("panic: %q", d.Reason)
	}
}

// The cache table of docs/verification.md: a refusal read from DynamoDB is served from the
// cache for the TTL (so re-enabling a key bites within it), an unknown key
// for the negative TTL, and a key that becomes expired while cached is
// refused without a call.
func TestCacheSettingsDecideHowLongChangesTakeToBite(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, plain := f.issue(t, func(k *key.Key) { k.Enabled = false; k.ExpiresAt = t0.Add(time.Hour) })
	v := f.verifier(func(o *verify.Options) { o.CacheTTL = 10 * time.Second; o.NegativeTTL = 30 * time.Second })
	if calls, d := f.countCalls(v, get(plain, "/users/1")); calls != 1 || d.Reason != gateway.Disabled {
		t.Fatalf("disabled: %d calls, %q", calls, d.Reason)
	}
	k.Enabled = true
	if _, err := f.admin.Update(ctx, k, 1); err != nil {
		t.Fatal(err)
	}
	f.advance(9 * time.Second)
	if calls, d := f.countCalls(v, get(plain, "/users/1")); calls != 0 || d.Reason != gateway.Disabled {
		t.Fatalf("re-enabled, within the TTL: %d calls, %q (want the cached refusal)", calls, d.Reason)
	}
	f.advance(time.Second)
	if calls, d := f.countCalls(v, get(plain, "/users/1")); calls != 1 || !d.Allowed() {
		t.Fatalf("re-enabled, TTL passed: %d calls, %q", calls, d.Reason)
	}
	f.advance(time.Hour)
	if calls, d := f.countCalls(v, get(plain, "/users/1")); calls != 1 || d.Reason != gateway.Expired {
		t.Fatalf("expired: %d calls, %q", calls, d.Reason)
	}
	if calls, d := f.countCalls(v, get(plain, "/users/1")); calls != 0 || d.Reason != gateway.Expired {
		t.Fatalf("expired, cached: %d calls, %q", calls, d.Reason)
	}

	garbage, _ := format.Generate(apikey.Secret, apikey.Live)
	for i, want := range []int64{1, 0} {
		if calls, d := f.countCalls(v, get(garbage.Plaintext, "/")); calls != want || d.Reason != gateway.UnknownKey {
			t.Fatalf("unknown key, request %d: %d calls, %q", i, calls, d.Reason)
		}
	}
	f.advance(30 * time.Second)
	if calls, _ := f.countCalls(v, get(garbage.Plaintext, "/")); calls != 1 {
		t.Fatalf("unknown key after the negative TTL: %d calls, want 1", calls)
	}
}

// typo changes a key's last character to a different one, so the checksum
// no longer matches.
func typo(k string) string {
	last := byte('x')
	if k[len(k)-1] == last {
		last = 'y'
	}
	return k[:len(k)-1] + string(last)
}

// A refusal that the conditional update decides costs exactly one DynamoDB
// call, for a key this environment has never seen: DynamoDB refuses and
// returns the item, and the verifier tells the reason from it. Were the
// condition to admit (and count) such a request, the verifier would refuse
// it too, but only after a second call that takes the count back.
func TestRefusalByTheConditionCostsOneCall(t *testing.T) {
	f := newFixture(t)
	r := f.issueRefusable(t)
	_, pubKey := f.issue(t, func(k *key.Key) { k.Type = key.Publishable })
	_, readOnly := f.issue(t, func(k *key.Key) { k.Scopes = []string{"read:users"} })
	_, writeOnly := f.issue(t, func(k *key.Key) { k.Scopes = []string{"write:users"} })
	post := func(cred string) *verify.Request {
		return &verify.Request{Credential: cred, Method: "POST", Path: "/users", Stage: "prod", SourceIP: "203.0.113.7"}
	}
	for _, c := range []struct {
		name string
		req  *verify.Request
		want gateway.Reason
	}{
		{"disabled", get(r.disabled, "/users/1"), gateway.Disabled},
		{"revoked", get(r.revoked, "/users/1"), gateway.Revoked},
		{"expired", get(r.expired, "/users/1"), gateway.Expired},
		{"not yet valid", get(r.early, "/users/1"), gateway.NotYetValid},
		{"wrong environment", get(r.test, "/users/1"), gateway.WrongEnvironment},
		{"stage not listed", get(r.staged, "/users/1"), gateway.WrongEnvironment},
		{"publishable key, POST", post(pubKey), gateway.MethodNotAllowed},
		{"scope missing (write:users)", post(readOnly), gateway.InsufficientScope},
		{"scope missing (read:users)", get(writeOnly, "/users/1"), gateway.InsufficientScope},
	} {
		calls, d := f.countCalls(f.verifier(nil), c.req)
		if d.Reason != c.want || calls != 1 || d.Calls != 1 {
			t.Errorf("%s: %q in %d DynamoDB calls (decision says %d), want %q in 1", c.name, d.Reason, calls, d.Calls, c.want)
		}
	}
}

// A refusal by the limits names the limit that refused: a request refused
// by the quota while the rate limit still has room is quota_exceeded (with
// the period's end as its retry), one refused by the rate limit is
// rate_limited, and a route that costs more than the whole quota is
// quota_exceeded, never unavailable.
func TestLimitRefusalNamesTheLimitThatRefused(t *testing.T) {
	f := newFixture(t)
	_, quotaFirst := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 3, WindowSeconds: 60}}
		k.Quota = &key.Quota{Limit: 2, Period: key.Day}
	})
	_, rateFirst := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 2, WindowSeconds: 60}}
		k.Quota = &key.Quota{Limit: 3, Period: key.Day}
	})
	_, small := f.issue(t, func(k *key.Key) { k.Quota = &key.Quota{Limit: 3, Period: key.Day} })
	for _, c := range []struct {
		name  string
		req   *verify.Request
		want  []gateway.Reason
		retry int64
	}{
		{"quota before rate limit", get(quotaFirst, "/users/1"), []gateway.Reason{"", "", gateway.QuotaExceeded}, 12 * 3600},
		{"rate limit before quota", get(rateFirst, "/users/1"), []gateway.Reason{"", "", gateway.RateLimited}, 60},
		{"route dearer than the quota", &verify.Request{Credential: small, Method: "POST", Path: "/reports/r"}, []gateway.Reason{gateway.QuotaExceeded}, 12 * 3600},
	} {
		v := f.verifier(nil)
		for i, want := range c.want {
			d := v.Verify(context.Background(), c.req)
			if d.Reason != want || (want != "" && d.RetryAfter != c.retry) {
				t.Fatalf("%s, request %d: %q retry %d (err %v), want %q retry %d", c.name, i+1, d.Reason, d.RetryAfter, d.Err, want, c.retry)
			}
		}
	}
}

// The in-process cache holds at most CacheSize keys: a key pushed out is
// asked of DynamoDB again.
func TestCacheHoldsAtMostCacheSizeKeys(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(func(o *verify.Options) { o.CacheSize = 1 })
	a, _ := format.Generate(apikey.Secret, apikey.Live)
	b, _ := format.Generate(apikey.Secret, apikey.Live)
	for i, s := range []struct {
		cred  string
		calls int64
	}{{a.Plaintext, 1}, {a.Plaintext, 0}, {b.Plaintext, 1}, {a.Plaintext, 1}} {
		if calls, d := f.countCalls(v, get(s.cred, "/users/1")); calls != s.calls || d.Reason != gateway.UnknownKey {
			t.Fatalf("request %d: %d calls, %q; want %d calls, unknown_key", i+1, calls, d.Reason, s.calls)
		}
	}
}

// A verifier built with zero Options takes the documented defaults: the
// default key prefix, a store timeout that lets DynamoDB answer, a 5 s
// cache TTL for refusals, a 60 s negative TTL for unknown keys, and room
// for more than one key in the cache. A configured prefix is the only one
// accepted.
func TestZeroOptionsTakeTheDefaults(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, active := f.issue(t, nil)
	_, disabledKey := f.issue(t, func(k *key.Key) { k.Enabled = false })
	v := verify.New(f.st, verify.Options{Hasher: hasher, Now: f.clock})
	if d := v.Verify(ctx, get(active, "/users/1")); !d.Allowed() {
		t.Fatalf("an active key with the default prefix and store timeout: %q (%v)", d.Reason, d.Err)
	}
	a, _ := format.Generate(apikey.Secret, apikey.Live)
	b, _ := format.Generate(apikey.Secret, apikey.Live)
	for i, s := range []struct {
		cred    string
		advance time.Duration
		calls   int64
		want    gateway.Reason
	}{
		{disabledKey, 0, 1, gateway.Disabled},
		{disabledKey, 4999 * time.Millisecond, 0, gateway.Disabled}, // within the 5 s TTL
		{disabledKey, time.Millisecond, 1, gateway.Disabled},        // 5 s: asked again
		{a.Plaintext, 0, 1, gateway.UnknownKey},
		{b.Plaintext, 0, 1, gateway.UnknownKey},
		{a.Plaintext, 59 * time.Second, 0, gateway.UnknownKey}, // both cached, within 60 s
		{a.Plaintext, time.Second, 1, gateway.UnknownKey},      // 60 s: asked again
	} {
		f.advance(s.advance)
		if calls, d := f.countCalls(v, get(s.cred, "/users/1")); calls != s.calls || d.Reason != s.want {
			t.Fatalf("step %d: %d calls, %q; want %d calls, %q", i+1, calls, d.Reason, s.calls, s.want)
		}
	}
	acme, _ := apikey.NewFormat("acme")
	other := verify.New(f.st, verify.Options{Format: acme, Hasher: hasher, Now: f.clock})
	if d := other.Verify(ctx, get(active, "/users/1")); d.Reason != gateway.MalformedKey {
		t.Fatalf("a kg key on an acme deployment: %q, want malformed_key", d.Reason)
	}
}

// changingStore changes the key's limits before every verifying write, as
// admins racing the authorizer would, so that no write's guard holds.
type changingStore struct {
	*store.Store
	change func()
}

func (c changingStore) Verify(ctx context.Context, in store.VerifyInput) (store.VerifyResult, error) {
	c.change()
	return c.Store.Verify(ctx, in)
}

// A key whose record keeps changing under every attempt is refused as
// unavailable, never served stale: DynamoDB answered each time (there is
// no outage), and an uncounted admission here could pass a limit the
// other environments keep.
func TestAKeyThatKeepsChangingIsNeverServedStale(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, plain := f.issue(t, func(k *key.Key) { k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 1000, WindowSeconds: 60}} })
	var changing atomic.Bool
	change := func() {
		if !changing.Load() {
			return
		}
		cur, err := f.admin.Get(ctx, k.ID)
		if err != nil {
			t.Error(err)
			return
		}
		cur.RateLimits = []key.RateLimit{{Name: "minute", Limit: 1000 + cur.Version, WindowSeconds: 60}}
		if _, err := f.admin.Update(ctx, cur, cur.Version); err != nil {
			t.Error(err)
		}
	}
	v := verify.New(changingStore{Store: f.st, change: change}, verify.Options{Format: format, Hasher: hasher,
		Environments: []key.Environment{key.Live}, Routes: routes, Now: f.clock, StoreTimeout: 30 * time.Second,
		ServeStale: time.Minute, CacheTTL: time.Nanosecond})
	if d := v.Verify(ctx, get(plain, "/users/1")); !d.Allowed() {
		t.Fatal(d.Reason)
	}
	changing.Store(true)
	f.advance(time.Second)
	if d := v.Verify(ctx, get(plain, "/users/1")); d.Reason != gateway.Unavailable || d.Stale {
		t.Fatalf("a key changing under every attempt: %q stale=%v, want unavailable", d.Reason, d.Stale)
	}
}
