package usage_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/localstream"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/usage"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

var (
	format, _ = apikey.NewFormat("")
	hasher    = apikey.NewHasher([]byte("usage-pepper"))
)

// env is a table in DynamoDB Local with its stream, a store over it with a
// clock the test moves, and the consumer fed from the real stream by the
// local poller, as under `make dev`.
type env struct {
	t      *testing.T
	db     *dynamodb.Client
	table  string
	s      *store.Store
	now    time.Time
	poller *localstream.Poller
	logs   bytes.Buffer
	// batches holds every batch the consumer took, for redelivery.
	mu      sync.Mutex
	batches []events.DynamoDBEvent
	h       *usage.Handler
}

func newEnv(t *testing.T) *env { return newEnvOver(t, nil) }

// newEnvOver is newEnv with the consumer's store over a client changed by
// wrap (nil: the plain client).
func newEnvOver(t *testing.T, wrap func(*dynamodb.Client) *dynamodb.Client) *env {
	t.Helper()
	db, table := dynamotest.Table(t)
	// The clock starts at the next full hour of the real time (DynamoDB
	// Local applies TTLs in real time).
	e := &env{t: t, db: db, table: table, now: time.Now().UTC().Truncate(time.Hour).Add(time.Hour)}
	e.s = store.New(db, table, store.Options{Now: func() time.Time { return e.now }})
	consumerDB := db
	if wrap != nil {
		consumerDB = wrap(db)
	}
	e.h = usage.New(store.New(consumerDB, table, store.Options{}), usage.Options{
		Logger: slog.New(slog.NewJSONHandler(&e.logs, nil)),
	})
	arn, err := localstream.StreamARN(context.Background(), db, table)
	if err != nil {
		t.Fatal(err)
	}
	e.poller = localstream.New(localstream.Client(dynamotest.Endpoint(t)), arn, func(ctx context.Context, ev events.DynamoDBEvent) error {
		if err := e.h.Handle(ctx, ev); err != nil {
			return err
		}
		e.mu.Lock()
		e.batches = append(e.batches, ev)
		e.mu.Unlock()
		return nil
	}, localstream.Options{BatchSize: 7, Filter: usage.Wanted})
	return e
}

// key stores a key of owner with a rate limit, a monthly quota and no
// allowlists.
func (e *env) key(owner string) *key.Key {
	e.t.Helper()
	pk, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		e.t.Fatal(err)
	}
	k := &key.Key{ID: key.NewID(), Name: "metered", OwnerID: owner, Type: key.Secret, Environment: key.Live,
		Hash: hasher.Sum(pk.Plaintext), Hint: apikey.Hint(pk), Enabled: true, CreatedAt: e.now, UpdatedAt: e.now,
		RateLimits: []key.RateLimit{{Name: "per-minute", Limit: 1000, WindowSeconds: 60}},
		Quota:      &key.Quota{Limit: 1_000_000, Period: key.Month}}
	if err := e.s.Create(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
	return k
}

// verifier verifies one key as one authorizer environment does: it knows
// the record its last verification returned.
type verifier struct {
	e   *env
	k   *key.Key
	rec *store.Record
}

func (e *env) verifier(k *key.Key) *verifier { return &verifier{e: e, k: k} }

// use verifies n times at the env's clock, each at a route that costs cost.
func (v *verifier) use(n int, cost int64) {
	v.e.t.Helper()
	for range n {
		in := store.VerifyInput{Hash: v.k.Hash, Now: v.e.now, Cost: cost, Known: v.rec}
		if v.rec == nil {
			in.Shape = v.k
		}
		res, err := v.e.s.Verify(context.Background(), in)
		if err != nil || !res.Admitted {
			v.e.t.Fatalf("verification at %v: admitted=%v err=%v", v.e.now, res.Admitted, err)
		}
		v.rec = res.Record
	}
}

// refund takes back the last verification, as the authorizer does for a
// request a CIDR allowlist refuses after DynamoDB admitted it.
func (v *verifier) refund(cost int64) {
	v.e.t.Helper()
	if err := v.e.s.Refund(context.Background(), store.VerifyInput{Hash: v.k.Hash, Now: v.e.now, Cost: cost}, v.rec); err != nil {
		v.e.t.Fatal(err)
	}
}

func (e *env) drain() {
	e.t.Helper()
	if err := e.poller.Drain(context.Background()); err != nil {
		e.t.Fatalf("the consumer failed a batch: %v", err)
	}
}

func (e *env) day(n int) string { return e.now.AddDate(0, 0, n).Format(time.DateOnly) }

// keyDays returns a key's usage from the usage items and the hot item, as
// GET /v1/keys/{id}/usage reads it, by day, days with usage only.
func (e *env) keyDays(k *key.Key, from, to time.Time) map[string]store.DayCount {
	e.t.Helper()
	return e.used(e.s.Usage(context.Background(), k.ID, from, to))
}

// ownerDays returns an owner's usage by day, days with usage only.
func (e *env) ownerDays(owner string, from, to time.Time) map[string]store.DayCount {
	e.t.Helper()
	return e.used(e.s.OwnerUsage(context.Background(), owner, from, to))
}

func (e *env) used(days []store.DayCount, err error) map[string]store.DayCount {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]store.DayCount{}
	for _, d := range days {
		if d.Count != 0 || d.Credits != 0 {
			out[d.Day] = d
		}
	}
	return out
}

func (e *env) ownerKeyRows(owner string, from, to time.Time) map[string]store.DayCount {
	e.t.Helper()
	out := map[string]store.DayCount{}
	cursor := ""
	for {
		p, err := e.s.OwnerKeyUsage(context.Background(), owner, from, to, 2, cursor)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, r := range p.Rows {
			out[r.Day+" "+r.KeyID] = r.DayCount
		}
		if cursor = p.Next; cursor == "" {
			return out
		}
	}
}

func want(t *testing.T, what string, got map[string]store.DayCount, want map[string][2]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d days with usage, want %d: %v", what, len(got), len(want), got)
	}
	for d, w := range want {
		if g := got[d]; g.Count != w[0] || g.Credits != w[1] {
			t.Fatalf("%s on %s: %d requests, %d credits; want %d, %d (all: %v)", what, d, g.Count, g.Credits, w[0], w[1], got)
		}
	}
}

// Usage history is exact per key, per owner and per key of an owner, over
// days that end (their counters leave the hot items), with credits and a
// refund, from the real stream of DynamoDB Local.
func TestHistoryIsExactFromTheStream(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.key("acme"), e.key("acme"), e.key("globex")
	va, vb, vc := e.verifier(a), e.verifier(b), e.verifier(c)
	start := e.now
	va.use(3, 1)
	vb.use(2, 5) // an expensive route
	vb.refund(5) // ... and one of them taken back
	vc.use(4, 1)
	e.now = e.now.Add(24 * time.Hour)
	va.use(1, 1) // removes a's counters of the first day
	vb.use(1, 1)
	e.now = e.now.Add(24 * time.Hour)
	va.use(2, 2)
	e.drain()
	end := e.now
	d0, d1, d2 := start.Format(time.DateOnly), e.day(-1), e.day(0)

	want(t, "key a", e.keyDays(a, start, end), map[string][2]int64{d0: {3, 3}, d1: {1, 1}, d2: {2, 4}})
	want(t, "key b", e.keyDays(b, start, end), map[string][2]int64{d0: {1, 5}, d1: {1, 1}})
	want(t, "owner acme", e.ownerDays("acme", start, end), map[string][2]int64{d0: {4, 8}, d1: {2, 2}, d2: {2, 4}})
	want(t, "owner globex", e.ownerDays("globex", start, end), map[string][2]int64{d0: {4, 4}})
	want(t, "acme by key", e.ownerKeyRows("acme", start, end), map[string][2]int64{
		d0 + " " + a.ID: {3, 3}, d0 + " " + b.ID: {1, 5}, d1 + " " + a.ID: {1, 1}, d1 + " " + b.ID: {1, 1}, d2 + " " + a.ID: {2, 4},
	})
	// A later read of the owner's totals comes from the cached sums and
	// still agrees.
	want(t, "owner acme, cached", e.ownerDays("acme", start, end), map[string][2]int64{d0: {4, 8}, d1: {2, 2}, d2: {2, 4}})
	// More usage on a cached day makes the cache stale: the next read sums
	// the day afresh.
	va.use(5, 1)
	e.drain()
	want(t, "owner acme, after more usage", e.ownerDays("acme", start, end), map[string][2]int64{d0: {4, 8}, d1: {2, 2}, d2: {7, 9}})
	if strings.Contains(e.logs.String(), "ERROR") {
		t.Fatalf("the consumer logged errors: %s", e.logs.String())
	}
}

// A key used every day for 40 days has every day in its history, although
// its hot item never holds more than the current day.
func TestNoDayIsLost(t *testing.T) {
	e := newEnv(t)
	k := e.key("acme")
	v := e.verifier(k)
	start := e.now
	wantDays := map[string][2]int64{}
	for d := range 40 {
		v.use(d%3+1, 1)
		wantDays[e.day(0)] = [2]int64{int64(d%3 + 1), int64(d%3 + 1)}
		if len(v.rec.Usage) > 1 {
			t.Fatalf("day %d: the hot item holds %d days of usage: %v", d, len(v.rec.Usage), v.rec.Usage)
		}
		e.now = e.now.Add(24 * time.Hour)
	}
	e.drain()
	want(t, "key", e.keyDays(k, start, e.now), wantDays)
	want(t, "owner", e.ownerDays("acme", start, e.now), wantDays)
}

// Lambda delivers a batch again after a failure, whole or bisected, and
// may have applied part of it already: delivering every batch again, and
// each half of it, changes nothing.
func TestRedeliveryChangesNothing(t *testing.T) {
	e := newEnv(t)
	a, b := e.key("acme"), e.key("acme")
	va, vb := e.verifier(a), e.verifier(b)
	start := e.now
	va.use(9, 1)
	vb.use(4, 3)
	e.now = e.now.Add(24 * time.Hour)
	va.use(2, 1)
	e.drain()
	before := [3]map[string]store.DayCount{e.keyDays(a, start, e.now), e.keyDays(b, start, e.now), e.ownerDays("acme", start, e.now)}
	ctx := context.Background()
	e.mu.Lock()
	batches := append([]events.DynamoDBEvent(nil), e.batches...)
	e.mu.Unlock()
	if len(batches) < 3 {
		t.Fatalf("%d batches: too few to test redelivery", len(batches))
	}
	for _, ev := range batches {
		half := len(ev.Records) / 2
		for _, part := range []events.DynamoDBEvent{ev, {Records: ev.Records[:half]}, {Records: ev.Records[half:]}, ev} {
			if err := e.h.Handle(ctx, part); err != nil {
				t.Fatal(err)
			}
		}
	}
	after := [3]map[string]store.DayCount{e.keyDays(a, start, e.now), e.keyDays(b, start, e.now), e.ownerDays("acme", start, e.now)}
	for i := range before {
		if len(before[i]) != len(after[i]) {
			t.Fatalf("redelivery changed the history: %v -> %v", before, after)
		}
		for d, c := range before[i] {
			if after[i][d] != c {
				t.Fatalf("redelivery changed the history: %v -> %v", before, after)
			}
		}
	}
	want(t, "key a", before[0], map[string][2]int64{start.Format(time.DateOnly): {9, 9}, e.day(0): {2, 2}})
}

// failingWrites fails the consumer's UpdateItem calls while fail holds,
// after letting through the first pass ones, as a DynamoDB that throttles
// mid-batch does.
type failingWrites struct {
	pass  int64
	calls atomic.Int64
	fail  atomic.Bool
}

func (f *failingWrites) wrap(db *dynamodb.Client) *dynamodb.Client {
	return dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("failWrites",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if _, ok := in.Parameters.(*dynamodb.UpdateItemInput); ok && f.fail.Load() && f.calls.Add(1) > f.pass {
						return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected: DynamoDB is failing")
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	})
}

// A batch that fails part way (some usage items written, others not) is
// delivered again by the poller until it succeeds, and the history is
// exact: no change lost, none counted twice.
func TestPartlyAppliedBatchIsRetriedExactly(t *testing.T) {
	fw := &failingWrites{pass: 3}
	e := newEnvOver(t, fw.wrap)
	a, b, c := e.key("acme"), e.key("acme"), e.key("acme")
	start := e.now
	for i, v := range []*verifier{e.verifier(a), e.verifier(b), e.verifier(c)} {
		v.use(i+2, 1)
	}
	fw.fail.Store(true)
	if err := e.poller.Drain(context.Background()); err == nil {
		t.Fatal("the injected failure did not fail a batch: this test proves nothing")
	}
	fw.fail.Store(false)
	e.drain()
	d := start.Format(time.DateOnly)
	want(t, "owner", e.ownerDays("acme", start, start), map[string][2]int64{d: {9, 9}})
	want(t, "by key", e.ownerKeyRows("acme", start, start), map[string][2]int64{d + " " + a.ID: {2, 2}, d + " " + b.ID: {3, 3}, d + " " + c.ID: {4, 4}})
	if !strings.Contains(e.logs.String(), "batch not recorded") {
		t.Fatalf("the failed batch was not logged: %s", e.logs.String())
	}
}

// A day's counter that comes back after the day was closed (an
// environment whose clock lags wrote it, after another one removed it) is
// counted, not lost, and the removal of a closed day is not negative
// usage. The key has no limits: with limits, the store refuses the
// environment behind instead (store's TestClocksThatDifferNeverOverAdmit).
func TestCounterBackAfterRemovalIsCounted(t *testing.T) {
	e := newEnv(t)
	k := e.key("acme")
	k.RateLimits, k.Quota = nil, nil
	k, err := e.s.Update(context.Background(), k, k.Version)
	if err != nil {
		t.Fatal(err)
	}
	ahead, behind := e.verifier(k), e.verifier(k)
	e.now = e.now.Truncate(24 * time.Hour).Add(24*time.Hour - 2*time.Second) // 23:59:58
	day0 := e.now
	ahead.use(1, 1)
	behind.use(2, 1)
	e.now = e.now.Add(10 * time.Second) // 00:00:08, past the skew allowance
	ahead.use(1, 1)                     // removes day 0's counters
	if _, ok := ahead.rec.Usage[day0.Format(time.DateOnly)]; ok {
		t.Fatalf("day 0 still in the hot item: %v", ahead.rec.Usage)
	}
	e.now = day0.Add(time.Second) // a clock 9 s behind counts on day 0 again
	behind.use(1, 1)
	e.drain()
	want(t, "key", e.keyDays(k, day0, day0.AddDate(0, 0, 1)), map[string][2]int64{
		day0.Format(time.DateOnly): {4, 4}, day0.AddDate(0, 0, 1).Format(time.DateOnly): {1, 1},
	})
}
