package store_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// reservable stores a key with a minute limit of 100 and a monthly quota
// of 150, and returns the input of its first reservation.
func reservable(t *testing.T, f *fixture) (*key.Key, store.VerifyInput) {
	t.Helper()
	k := f.newKeyWith(t, "acme", func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 100, WindowSeconds: 60}}
		k.Quota = &key.Quota{Limit: 150, Period: key.Month}
		k.AllowedCIDRs = nil
	})
	return k, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Shape: k}
}

// A reservation takes its block from every limit it names, never more than
// a limit leaves: a block that does not fit is refused whole (nothing
// counted, the item returned to size a smaller one), a block that fits
// exactly is admitted. Usage counts the one request each write admits
// plus what it reports, never what it reserves.
func TestReservationNeverTakesMoreThanTheLimitLeaves(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, in := reservable(t, f)
	c, p := k.RateLimits[0].Counter(f.now), k.Quota.PeriodKey(f.now)
	steps := []struct {
		rate, credits int64
		report        int64
		admitted      bool
		rl, q         int64
	}{
		{40, 60, 0, true, 40, 60},
		{50, 0, 30, true, 90, 60},  // the quota's block still holds: no credits taken
		{11, 11, 0, false, 90, 60}, // 11 more than the 10 left: refused whole
		{10, 90, 9, true, 100, 150},
		{1, 0, 0, false, 100, 150}, // the window is spent
		{0, 1, 0, false, 100, 150}, // so is the quota
	}
	for i, s := range steps {
		in.Reserve = &store.Reservation{Rate: []int64{s.rate}, Credits: s.credits,
			Report: []store.UsageDelta{{Day: key.UsageDay(f.now), Requests: s.report, Credits: s.report}}}
		res, err := f.s.Verify(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if res.Admitted != s.admitted || res.Record.RL[c] != s.rl || res.Record.Q[p] != s.q {
			t.Fatalf("step %d: admitted=%v rl=%d q=%d; want %v, %d, %d", i, res.Admitted, res.Record.RL[c], res.Record.Q[p], s.admitted, s.rl, s.q)
		}
		in.Known, in.Shape = res.Record, nil
	}
	// Three writes admitted one request each and reported 30 + 9.
	days, err := f.s.Usage(ctx, k.ID, f.now, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if rec := in.Known; rec.Usage[key.UsageDay(f.now)] != 3+39 {
		t.Fatalf("usage counter %d, want 42 (3 admitted by writes, 39 reported); history %+v", rec.Usage[key.UsageDay(f.now)], days)
	}
}

// A report adds usage, sets lastUsedAt and gives back what an environment
// will never admit; a return that the counter does not hold (the window's
// counter is gone) is dropped, and the usage still recorded.
func TestReportRecordsUsageAndReturnsBlocks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, in := reservable(t, f)
	c, p := k.RateLimits[0].Counter(f.now), k.Quota.PeriodKey(f.now)
	in.Reserve = &store.Reservation{Rate: []int64{30}, Credits: 30}
	if res, err := f.s.Verify(ctx, in); err != nil || !res.Admitted {
		t.Fatal(res, err)
	}
	day := key.UsageDay(f.now)
	rr, err := f.s.Report(ctx, store.ReportInput{Hash: k.Hash, Now: f.now, LastUsedAt: f.now,
		Usage:  []store.UsageDelta{{Day: day, Requests: 12, Credits: 12}},
		Return: map[string]int64{c: 17}, ReturnCredits: map[string]int64{p: 17}})
	if err != nil {
		t.Fatal(err)
	}
	rec := rr.Record
	if rr.Writes != 1 || rr.WriteUnits != 1 || !rec.Key.LastUsedAt.Equal(f.now) {
		t.Fatalf("report: %d writes, %v units, lastUsedAt %v; want 1 write of 1 unit", rr.Writes, rr.WriteUnits, rec.Key.LastUsedAt)
	}
	if rec.RL[c] != 13 || rec.Q[p] != 13 || rec.Usage[day] != 13 {
		t.Fatalf("after the report: rl=%d q=%d usage=%d; want 13 each (1 + 12 admitted)", rec.RL[c], rec.Q[p], rec.Usage[day])
	}
	rr, err = f.s.Report(ctx, store.ReportInput{Hash: k.Hash, Now: f.now,
		Usage:  []store.UsageDelta{{Day: day, Requests: 2, Credits: 2}},
		Return: map[string]int64{c: 14, "minute@0": 5}})
	if err != nil {
		t.Fatal(err)
	}
	rec = rr.Record
	if rr.Writes != 2 {
		t.Fatalf("a refused return: %d writes, want 2 (the usage again, without the returns)", rr.Writes)
	}
	if rec.RL[c] != 13 || rec.Usage[day] != 15 {
		t.Fatalf("a return the counters do not hold: rl=%d usage=%d; want the counter kept at 13 and usage 15", rec.RL[c], rec.Usage[day])
	}
	if _, ok := rec.RL["minute@0"]; ok {
		t.Fatal("a return created a counter")
	}
	if rr, err := f.s.Report(ctx, store.ReportInput{Hash: k.Hash, Now: f.now}); rr.Writes != 0 || err != nil {
		t.Fatalf("a report of nothing: %+v, %v; want no write", rr, err)
	}
}

// However many writers reserve blocks of random sizes at once, the blocks
// admitted in a window add up to at most the limit, and the window's
// counter is their sum.
func TestConcurrentReservationsNeverExceedTheLimit(t *testing.T) {
	f := newFixture(t)
	_, in := reservable(t, f)
	var taken atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			my := in
			for range 8 {
				n := 1 + r.Int64N(20)
				my.Reserve = &store.Reservation{Rate: []int64{n}}
				res, err := f.s.Verify(context.Background(), my)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Admitted {
					taken.Add(n)
				}
				my.Known, my.Shape = res.Record, nil
			}
		}()
	}
	wg.Wait()
	rec, err := f.s.Verify(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	c := rec.Record.Key.RateLimits[0].Counter(f.now)
	want := taken.Load()
	if rec.Admitted {
		want++
	}
	if taken.Load() > 100 || rec.Record.RL[c] != want {
		t.Fatalf("blocks admitted add up to %d (limit 100), counter %d", taken.Load(), rec.Record.RL[c])
	}
}

// lostAnswers forwards every request to DynamoDB Local and, for the first
// lose requests that match, answers 500 after DynamoDB applied them: an
// answer lost on the way back, which the SDK retries.
type lostAnswers struct {
	next  aws.HTTPClient
	match func(body string) bool
	mu    sync.Mutex
	lose  int
	sent  int
}

func (l *lostAnswers) Do(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := l.next.Do(r)
	if err != nil {
		return resp, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.match(string(body)) {
		return resp, nil
	}
	l.sent++
	if l.lose == 0 {
		return resp, nil
	}
	l.lose--
	resp.Body.Close()
	b := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"answer lost"}`
	return &http.Response{StatusCode: 500, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, Body: io.NopCloser(strings.NewReader(b)),
		ContentLength: int64(len(b)), Request: r}, nil
}

// A return of unused admissions is sent once: were it retried after
// DynamoDB applied it (its answer lost), the counter would lose
// admissions that were made, and the window could admit more than its
// limit.
func TestAReturnIsNeverSentTwice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, in := reservable(t, f)
	c := k.RateLimits[0].Counter(f.now)
	in.Reserve = &store.Reservation{Rate: []int64{60}}
	if res, err := f.s.Verify(ctx, in); err != nil || !res.Admitted {
		t.Fatal(res, err)
	}
	lossy := &lostAnswers{next: awshttp.NewBuildableClient(), lose: 1, match: func(b string) bool { return strings.Contains(b, `"#ra"`) }}
	db := dynamodb.New(f.db.Options(), func(o *dynamodb.Options) { o.HTTPClient = lossy; o.RetryMaxAttempts = 3 })
	s := store.New(db, f.table, store.Options{})
	// 59 of the 60 reserved were never admitted: an environment gives
	// back 20 of them, and the answer is lost.
	if _, err := s.Report(ctx, store.ReportInput{Hash: k.Hash, Now: f.now, Return: map[string]int64{c: 20}}); err == nil {
		t.Fatal("a report whose answer was lost succeeded")
	}
	if lossy.sent != 1 {
		t.Errorf("the return was sent %d times, want once", lossy.sent)
	}
	got, err := f.s.Verify(ctx, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Shape: k})
	if err != nil {
		t.Fatal(err)
	}
	if n := got.Record.RL[c]; n != 60-20+1 {
		t.Fatalf("the window's counter is %d after the lost return and one more request, want %d (returned once)", n, 60-20+1)
	}
}
