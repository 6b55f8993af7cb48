package verify_test

import (
	"context"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

// meteredStore is the real store (DynamoDB Local) with the writes of one
// simulated fleet counted: write requests, and write units per virtual
// second (ReturnConsumedCapacity; a refused conditional write is charged
// by DynamoDB too but reported with no capacity, so it counts as 1 unit,
// what the hot item, under 1 KB, costs), and the usage each environment's
// writes recorded (the request a write admits plus what it reports).
type meteredStore struct {
	*store.Store
	clock  func() time.Time
	writes atomic.Int64
	mu     sync.Mutex
	units  map[int64]float64 // virtual Unix second -> write units
}

func (m *meteredStore) charge(units float64, n int) {
	m.writes.Add(int64(n))
	m.mu.Lock()
	m.units[m.clock().Unix()] += units
	m.mu.Unlock()
}

func (m *meteredStore) peak() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := 0.0
	for _, u := range m.units {
		p = max(p, u)
	}
	return p
}

// envStore is one environment's view of the metered store: it adds up the
// usage that environment's writes recorded.
type envStore struct {
	*meteredStore
	recorded atomic.Int64
}

func (e *envStore) Verify(ctx context.Context, in store.VerifyInput) (store.VerifyResult, error) {
	res, err := e.Store.Verify(ctx, in)
	if err == nil {
		units := res.WriteUnits
		if !res.Admitted {
			units = 1
		}
		e.charge(units, 1)
		if res.Admitted {
			e.recorded.Add(1)
			if in.Reserve != nil {
				for _, d := range in.Reserve.Report {
					e.recorded.Add(d.Requests)
				}
			}
		}
	}
	return res, err
}

func (e *envStore) Report(ctx context.Context, in store.ReportInput) (store.ReportResult, error) {
	res, err := e.Store.Report(ctx, in)
	e.charge(res.WriteUnits, res.Writes)
	if err == nil && res.Record != nil {
		for _, d := range in.Usage {
			e.recorded.Add(d.Requests)
		}
	}
	return res, err
}

// fleet is a simulation of authorizer environments sharing one key on a
// virtual clock, each with its own verifier (cache, reservations), against
// DynamoDB Local.
type fleet struct {
	f       *fixture
	k       *key.Key
	plain   string
	ms      *meteredStore
	mod     func(i int, o *verify.Options)
	now     atomic.Int64 // virtual Unix ns, shared by every environment
	envs    []*env
	retired []*env // environments killed holding blocks
	// admitted counts admissions by window: "<limit>@<start>" and the
	// quota's period, as the key's counters name them.
	mu       sync.Mutex
	admitted map[string]int64
	offered  atomic.Int64
	allows   atomic.Int64
	unavail  atomic.Int64
	// refused counts the refusals by reason.
	limited, exhausted atomic.Int64
}

type env struct {
	v        *verify.Verifier
	st       *envStore
	admitted atomic.Int64
}

func newFleet(t testing.TB, f *fixture, k *key.Key, plain string, start time.Time, mod func(int, *verify.Options)) *fleet {
	fl := &fleet{f: f, k: k, plain: plain, mod: mod, admitted: map[string]int64{}}
	fl.now.Store(start.UnixNano())
	fl.ms = &meteredStore{Store: f.admin, clock: fl.clock, units: map[int64]float64{}}
	return fl
}

func (fl *fleet) clock() time.Time { return time.Unix(0, fl.now.Load()).UTC() }

func (fl *fleet) spawn(i int) *env {
	e := &env{st: &envStore{meteredStore: fl.ms}}
	o := verify.Options{Format: format, Hasher: hasher, Environments: []key.Environment{key.Live},
		Routes: routes, Now: fl.clock, StoreTimeout: time.Minute}
	if fl.mod != nil {
		fl.mod(i, &o)
	}
	e.v = verify.New(e.st, o)
	return e
}

// request makes one verification in environment e at the fleet's time.
func (fl *fleet) request(t testing.TB, e *env) {
	fl.offered.Add(1)
	d := e.v.Verify(context.Background(), get(fl.plain, "/users/1"))
	switch d.Reason {
	case "":
		now := fl.clock()
		e.admitted.Add(1)
		fl.allows.Add(1)
		fl.mu.Lock()
		for _, l := range fl.k.RateLimits {
			fl.admitted[l.Counter(now)]++
		}
		if q := fl.k.Quota; q != nil {
			fl.admitted["q:"+q.PeriodKey(now)]++
		}
		fl.mu.Unlock()
	case gateway.RateLimited:
		fl.limited.Add(1)
	case gateway.QuotaExceeded:
		fl.exhausted.Add(1)
	case gateway.Unavailable:
		fl.unavail.Add(1)
	default:
		t.Errorf("unexpected %q (%v)", d.Reason, d.Err)
	}
}

// overAdmitted is the admissions beyond a limit, summed over every window
// of every limit and every quota period.
func (fl *fleet) overAdmitted() int64 {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	over := int64(0)
	for c, n := range fl.admitted {
		lim := int64(0)
		if len(c) > 2 && c[:2] == "q:" {
			lim = fl.k.Quota.Limit
		} else {
			for _, l := range fl.k.RateLimits {
				if key.CounterName(c) == l.Name {
					lim = l.Limit
				}
			}
		}
		over += max(n-lim, 0)
	}
	return over
}

// allowed is what the limits allow of the offered requests (at the given
// times, in order): an exact, central counter that admits each request
// while every limit and the quota have room.
func allowed(k *key.Key, times []time.Time) int64 {
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	used := map[string]int64{}
	n := int64(0)
	for _, at := range times {
		ok := true
		for _, l := range k.RateLimits {
			ok = ok && used[l.Counter(at)] < l.Limit
		}
		if q := k.Quota; q != nil {
			ok = ok && used["q:"+q.PeriodKey(at)] < q.Limit
		}
		if !ok {
			continue
		}
		n++
		for _, l := range k.RateLimits {
			used[l.Counter(at)]++
		}
		if q := k.Quota; q != nil {
			used["q:"+q.PeriodKey(at)]++
		}
	}
	return n
}

// hotUsage reads the key's usage of the day from its hot item.
func (fl *fleet) hotUsage(t testing.TB) int64 {
	days, err := fl.f.admin.Usage(context.Background(), fl.k.ID, fl.clock(), fl.clock())
	if err != nil {
		t.Fatal(err)
	}
	if len(days) == 0 {
		return 0
	}
	return days[len(days)-1].Count
}

// 64 environments share a hot key whose second, minute and quota limits
// each bind in turn, with random block sizes (each environment its own
// reservation interval), environments killed while holding blocks (and
// replaced by cold ones), across second and minute boundaries: no window
// of any limit, nor the quota, admits one request more than its limit; the
// environments that shut down cleanly had every admission they made
// recorded, exactly; and the hot item's usage is exactly what the writes
// of all environments recorded (what the killed ones had not reported is
// lost, and only that).
func TestHotKeyNeverOverAdmitsWhateverHappensToEnvironments(t *testing.T) {
	f := newFixture(t)
	k, plain := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "second", Limit: 1000, WindowSeconds: 1}, {Name: "minute", Limit: 1500, WindowSeconds: 60}}
		k.Quota = &key.Quota{Limit: 2300, Period: key.Day}
	})
	r := rand.New(rand.NewPCG(12, 12))
	var rmu sync.Mutex
	intervals := make([]time.Duration, 1024)
	for i := range intervals {
		intervals[i] = time.Duration(20+r.IntN(980)) * time.Millisecond
	}
	// From 1.5 s before a minute boundary, for 2 s: the second's limit
	// binds in second 58, the minute's in 59, the quota's in 60, past the
	// minute.
	start := t0.Add(58*time.Second + 500*time.Millisecond)
	fl := newFleet(t, f, k, plain, start, func(i int, o *verify.Options) {
		o.ReserveInterval = intervals[i%len(intervals)]
		o.ReportInterval = time.Second
	})
	const envs, step, steps = 64, 10 * time.Millisecond, 200
	for i := range envs {
		fl.envs = append(fl.envs, fl.spawn(i))
	}
	spawned := envs
	var times []time.Time
	for range steps {
		for range fl.envs {
			times = append(times, fl.clock())
		}
		var wg sync.WaitGroup
		for i, e := range fl.envs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fl.request(t, e)
				rmu.Lock()
				kill := r.IntN(1000) == 0
				rmu.Unlock()
				if kill { // dies holding what it holds: never flushed
					fl.mu.Lock()
					fl.retired = append(fl.retired, e)
					fl.envs[i] = nil
					fl.mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for i := range fl.envs {
			if fl.envs[i] == nil {
				fl.envs[i] = fl.spawn(spawned)
				spawned++
			}
		}
		fl.now.Add(int64(step))
	}
	for _, e := range fl.envs {
		if err := e.v.Flush(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	}
	if a := allowed(k, times); fl.allows.Load() > a {
		t.Errorf("%d admitted, more than the %d an exact central counter admits", fl.allows.Load(), a)
	}
	if over := fl.overAdmitted(); over != 0 {
		t.Errorf("%d requests admitted beyond a limit; by window: %v", over, fl.admitted)
	}
	for c, want := range map[string]int64{"second@" + strconv.FormatInt(start.Unix(), 10): 1000, "minute@" + strconv.FormatInt(start.Unix()-58, 10): 1500,
		"q:" + k.Quota.PeriodKey(start): 2300} {
		// Demand was far above the limit: what a window admits less is
		// what the killed environments stranded, and the blocks that
		// expired unspent.
		if fl.admitted[c] < want*8/10 {
			t.Errorf("window %s admitted %d of its limit %d", c, fl.admitted[c], want)
		}
	}
	recorded := int64(0)
	for _, e := range fl.envs {
		if e.st.recorded.Load() != e.admitted.Load() {
			t.Errorf("an environment that shut down cleanly admitted %d and recorded %d", e.admitted.Load(), e.st.recorded.Load())
		}
		recorded += e.st.recorded.Load()
	}
	lost := int64(0)
	for _, e := range fl.retired {
		recorded += e.st.recorded.Load()
		lost += e.admitted.Load() - e.st.recorded.Load()
	}
	if got := fl.hotUsage(t); got != recorded {
		t.Errorf("hot item usage %d; the writes recorded %d", got, recorded)
	}
	if fl.unavail.Load() != 0 {
		t.Errorf("%d verifications unavailable", fl.unavail.Load())
	}
	if fl.limited.Load() == 0 || fl.exhausted.Load() == 0 {
		t.Errorf("%d rate_limited and %d quota_exceeded: the limits and the quota must each refuse some", fl.limited.Load(), fl.exhausted.Load())
	}
	t.Logf("%d offered, %d admitted (by window: %v), %d writes, %d environments killed (their unreported admissions: %d)",
		fl.offered.Load(), fl.allows.Load(), fl.admitted, fl.ms.writes.Load(), len(fl.retired), lost)
	if len(fl.retired) == 0 || fl.ms.writes.Load() >= fl.allows.Load()/2 {
		t.Fatalf("no environment killed, or no reservation made (%d writes for %d admissions): this test proves nothing",
			fl.ms.writes.Load(), fl.allows.Load())
	}
}

// A hot key's requests, by the key and by its access token in any mix,
// come from the same reservations: the minute's limit admits exactly its
// limit, most requests need no call, and once the environment shuts down
// (Flush) the key's usage is exactly what was admitted.
func TestKeyAndTokenRequestsShareTheReservations(t *testing.T) {
	f := newFixture(t)
	k, plain := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 640, WindowSeconds: 60}}
	})
	tokens := tokenFunc(func(context.Context, string, *verify.Request) (verify.Decision, bool) { return tokenDecision(k), true })
	v := f.verifier(func(o *verify.Options) { o.Tokens = tokens })
	ctx := context.Background()
	admitted, reserved := 0, 0
	before := f.calls.Total()
	for i := range 1000 { // 200 a second for 5 s
		req := get(plain, "/users/1")
		if i%2 == 1 {
			req = get("a.jwt.token", "/users/1")
			req.Bearer = true
		}
		switch d := v.Verify(ctx, req); d.Reason {
		case "":
			admitted++
			if d.Reserved {
				reserved++
			}
			if i%2 == 1 && d.TokenID != "jti" {
				t.Fatalf("a token's allow without its token id: %+v", d)
			}
		case gateway.RateLimited:
			if d.RetryAfter < 1 {
				t.Fatalf("request %d: rate limited with no retry time", i)
			}
		default:
			t.Fatalf("request %d: %q (%v)", i, d.Reason, d.Err)
		}
		f.advance(5 * time.Millisecond)
	}
	calls := f.calls.Total() - before
	if admitted != 640 || reserved < 500 || calls > 100 {
		t.Fatalf("admitted %d (%d from reservations) with %d calls; want exactly 640, most with no call", admitted, reserved, calls)
	}
	if err := v.Flush(ctx, true); err != nil {
		t.Fatal(err)
	}
	days, err := f.admin.Usage(ctx, k.ID, f.clock(), f.clock())
	if err != nil || len(days) == 0 || days[len(days)-1].Count != 640 {
		t.Fatalf("usage %+v, %v; want 640", days, err)
	}
}

// A token of a key without limits or quota needs no call once its key's
// record is cached (and a report write keeps it fresh), and its requests
// are still counted: reported when the oldest is ReportInterval old, and
// at shutdown.
func TestTokensOfAKeyWithoutLimitsStayOfflineAndCounted(t *testing.T) {
	f := newFixture(t)
	k, _ := f.issue(t, nil)
	tokens := tokenFunc(func(context.Context, string, *verify.Request) (verify.Decision, bool) { return tokenDecision(k), true })
	v := f.verifier(func(o *verify.Options) { o.Tokens = tokens; o.ReportInterval = time.Second })
	ctx := context.Background()
	req := get("a.jwt.token", "/users/1")
	req.Bearer = true
	var calls []int64
	for range 3 {
		for range 10 {
			c, d := f.countCalls(v, req)
			if !d.Allowed() {
				t.Fatal(d.Reason, d.Err)
			}
			calls = append(calls, c)
			f.advance(100 * time.Millisecond)
		}
		if err := v.Flush(ctx, false); err != nil { // what ReportEvery runs
			t.Fatal(err)
		}
	}
	total := int64(0)
	for _, c := range calls[1:] {
		total += c
	}
	if calls[0] != 1 || total != 0 {
		t.Fatalf("calls per request %v; want the first request's write, then none", calls)
	}
	usage := func() int64 {
		days, err := f.admin.Usage(ctx, k.ID, f.clock(), f.clock())
		if err != nil || len(days) == 0 {
			t.Fatal(days, err)
		}
		return days[len(days)-1].Count
	}
	if got := usage(); got < 20 {
		t.Fatalf("usage %d after the report writes; want the reported ones (at least 20 of 30)", got)
	}
	if err := v.Flush(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := usage(); got != 30 {
		t.Fatalf("usage %d after shutdown; want 30", got)
	}
}

// A hot key admitted from reservations still bites changes within the key
// cache TTL: revoking it, or lowering its limit below what its window
// counted, refuses it in an environment holding blocks once the record
// that allowed them is older than the TTL, and usually at once (the next
// reservation sees the change).
func TestHotKeyChangesBiteWithinTheCacheTTL(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(f *fixture, k *key.Key)
		want   gateway.Reason
	}{
		{"revoked", func(f *fixture, k *key.Key) {
			if _, _, err := f.admin.Revoke(context.Background(), k.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
				t.Fatal(err)
			}
		}, gateway.Revoked},
		{"limit lowered", func(f *fixture, k *key.Key) {
			k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 10, WindowSeconds: 60}}
			if _, err := f.admin.Update(context.Background(), k, 1); err != nil {
				t.Fatal(err)
			}
		}, gateway.RateLimited},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			k, plain := f.issue(t, func(k *key.Key) {
				k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 100_000, WindowSeconds: 60}}
			})
			v := f.verifier(nil)
			ctx := context.Background()
			reserved := 0
			for range 200 { // 200 a second for 1 s
				d := v.Verify(ctx, get(plain, "/users/1"))
				if !d.Allowed() {
					t.Fatal(d.Reason, d.Err)
				}
				if d.Reserved {
					reserved++
				}
				f.advance(5 * time.Millisecond)
			}
			if reserved < 100 {
				t.Fatalf("%d of 200 admitted from reservations: the key never got hot, this test proves nothing", reserved)
			}
			c.change(f, k)
			changed := f.clock()
			var last verify.Decision
			for f.clock().Sub(changed) < 2*verify.DefaultCacheTTL {
				last = v.Verify(ctx, get(plain, "/users/1"))
				if last.Allowed() && f.clock().Sub(changed) >= verify.DefaultCacheTTL {
					t.Fatalf("admitted %v after the change (cache TTL %v)", f.clock().Sub(changed), verify.DefaultCacheTTL)
				}
				f.advance(5 * time.Millisecond)
			}
			if last.Reason != c.want {
				t.Fatalf("after the change: %q, want %q", last.Reason, c.want)
			}
		})
	}
}
