package verify_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

// throttlingProxy stands in front of DynamoDB Local and, while throttle
// holds, answers every request as DynamoDB does when it throttles (HTTP
// 400, ProvisionedThroughputExceededException); while stall holds, it
// never answers; otherwise it forwards.
type throttlingProxy struct {
	throttle atomic.Bool
	stall    atomic.Bool
	answered atomic.Int64
}

func (p *throttlingProxy) start(t *testing.T, endpoint string) string {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.stall.Load() {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		if !p.throttle.Load() {
			forward.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		p.answered.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",`+
			`"message":"The level of configured provisioned throughput for the table was exceeded."}`)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // first: a stalled request ends
	return srv.URL
}

// Serve-stale never admits while DynamoDB throttles, however the
// throttling surfaces: here the SDK retries the throttled attempt after a
// backoff that outlives the store timeout, so the request ends as a
// timeout, not as a throttling error. The verification must still count as
// throttled, and deny.
func TestServeStaleNotWhileThrottledPastTheTimeout(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, nil)
	proxy := &throttlingProxy{}
	db := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(proxy.start(t, dynamotest.Endpoint(t))),
		Credentials:  f.db.Options().Credentials,
		// The SDK's standard retryer, with a backoff far longer than the
		// store timeout below.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Minute, nil })
		}),
	})
	st := store.New(db, f.table, store.Options{Now: f.clock})
	// Long enough for DynamoDB Local on a loaded machine; the backoff is
	// longer still.
	const timeout = 3 * time.Second
	v := verify.New(st, verify.Options{Format: format, Hasher: hasher, Environments: []key.Environment{key.Live},
		Routes: routes, Now: f.clock, ServeStale: time.Minute, StoreTimeout: timeout})
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() {
		t.Fatal(d.Reason, d.Err)
	}
	proxy.throttle.Store(true)
	start := time.Now()
	d := v.Verify(context.Background(), get(plain, "/users/1"))
	if proxy.answered.Load() == 0 || time.Since(start) < timeout {
		t.Fatalf("the request was not throttled and then timed out (throttled answers %d, after %v): this test proves nothing",
			proxy.answered.Load(), time.Since(start))
	}
	if d.Allowed() || d.Stale || d.Reason != gateway.Unavailable {
		t.Fatalf("throttled, then timed out in the SDK's backoff: %q stale=%v err=%v; want unavailable, never served stale", d.Reason, d.Stale, d.Err)
	}
	// The same timeout without throttling (DynamoDB stalls) is an outage,
	// which serve-stale is for: that one admits, uncounted.
	proxy.throttle.Store(false)
	proxy.stall.Store(true)
	if d := v.Verify(context.Background(), get(plain, "/users/1")); !d.Allowed() || !d.Stale {
		t.Fatalf("DynamoDB stalling: %q stale=%v; want served stale", d.Reason, d.Stale)
	}
}

// A route dearer than what the quota has left is refused, and that refusal
// is cached; a cheaper route that the quota still affords goes to DynamoDB
// and is admitted, within the same cache period.
func TestQuotaDenialOfADearRouteLeavesCheaperRoutes(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, func(k *key.Key) { k.Quota = &key.Quota{Limit: 10, Period: key.Day} })
	v := f.verifier(nil)
	ctx := context.Background()
	report := func() *verify.Request {
		r := get(plain, "/reports/daily") // cost 5
		r.Method = "POST"
		return r
	}
	for i := range 7 {
		if d := v.Verify(ctx, get(plain, "/users/1")); !d.Allowed() {
			t.Fatalf("request %d: %q", i, d.Reason)
		}
	}
	// 7 spent, 3 left: the report (5) is refused.
	if d := v.Verify(ctx, report()); d.Reason != gateway.QuotaExceeded {
		t.Fatalf("report with 3 credits left: %q, want quota_exceeded", d.Reason)
	}
	// Again, from the cache: no DynamoDB call.
	if calls, d := f.countCalls(v, report()); d.Reason != gateway.QuotaExceeded || calls != 0 {
		t.Fatalf("report again: %q after %d calls, want quota_exceeded from the cache", d.Reason, calls)
	}
	// A 1-credit route is still afforded: admitted, three times.
	for i := range 3 {
		if calls, d := f.countCalls(v, get(plain, "/users/1")); !d.Allowed() || calls != 1 {
			t.Fatalf("cheap request %d after the report's refusal: %q after %d calls, want admitted by DynamoDB", i, d.Reason, calls)
		}
	}
	// Now the quota is spent: the next cheap request is refused, and then
	// refused from the cache.
	if d := v.Verify(ctx, get(plain, "/users/1")); d.Reason != gateway.QuotaExceeded {
		t.Fatalf("cheap request on a spent quota: %q", d.Reason)
	}
	if calls, d := f.countCalls(v, get(plain, "/users/1")); d.Reason != gateway.QuotaExceeded || calls != 0 {
		t.Fatalf("cheap request on a spent quota again: %q after %d calls, want quota_exceeded from the cache", d.Reason, calls)
	}
}

// Two Lambda environments whose clocks are 10 s apart admit no more than a
// limit in a window: the one ahead removes the counter of a window the one
// behind still counts in, and the one behind is then refused in that
// window (rate_limited, with a retry) instead of counting it again from
// zero.
func TestClocksApartNeverOverAdmit(t *testing.T) {
	f := newFixture(t)
	_, plain := f.issue(t, func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "per-second", Limit: 2, WindowSeconds: 1}}
	})
	behind := f.verifier(nil)
	ahead := f.verifier(func(o *verify.Options) { o.Now = func() time.Time { return f.clock().Add(10 * time.Second) } })
	ctx := context.Background()
	admitted := 0
	if d := behind.Verify(ctx, get(plain, "/users")); d.Allowed() {
		admitted++
	}
	if d := ahead.Verify(ctx, get(plain, "/users")); !d.Allowed() {
		t.Fatalf("the environment ahead: %s", d.Reason)
	}
	var last verify.Decision
	for range 2 {
		f.advance(time.Millisecond)
		if last = behind.Verify(ctx, get(plain, "/users")); last.Allowed() {
			admitted++
		}
	}
	if admitted > 2 {
		t.Fatalf("the environment behind was admitted %d times in a window of limit 2", admitted)
	}
	if last.Reason != gateway.RateLimited || last.RetryAfter < 1 {
		t.Fatalf("the environment behind: %q, retry after %d s; want rate_limited with a retry", last.Reason, last.RetryAfter)
	}
}
