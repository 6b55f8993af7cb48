package verify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/key"
)

// BenchmarkHotKey is the proof of reservations at scale: 32 authorizer
// environments, each with its own verifier (cache and reservations, the
// default settings), share one key whose limits are 12,000 a second and
// 600,000 a minute, offered 20,000 requests a second (625 each, spread
// over the milliseconds) on a virtual clock for the 60 s of one aligned
// minute, against DynamoDB Local. It reports:
//
//   - writes/verify: DynamoDB write requests per verification (target
//     <= 0.05);
//   - admitted/allowed: admissions over what an exact central counter
//     would have admitted of the same requests (target >= 0.95);
//   - over-admitted: admissions beyond a limit in any window (must be 0);
//   - peak-WCU/s: the most write units consumed on the item in one virtual
//     second (ReturnConsumedCapacity; a refused write counts 1; target
//     <= 1,000, a partition's limit).
//
// Each iteration is the whole minute; run it with -benchtime 1x (see
// docs/benchmarks.md).
func BenchmarkHotKey(b *testing.B) {
	const (
		envs    = 32
		perSec  = 20_000
		seconds = 60
		step    = time.Millisecond
	)
	limits := []key.RateLimit{{Name: "second", Limit: 12_000, WindowSeconds: 1}, {Name: "minute", Limit: 600_000, WindowSeconds: 60}}
	f := newFixture(b)
	var writes, offered, admitted, allowedN, over int64
	peak := 0.0
	for b.Loop() {
		k, plain := f.issue(b, func(k *key.Key) { k.RateLimits = limits })
		// The minute that starts at t0 (noon): aligned, so one minute's
		// limit and 60 of the second's apply.
		fl := newFleet(b, f, k, plain, t0, nil)
		for i := range envs {
			fl.envs = append(fl.envs, fl.spawn(i))
		}
		var times []time.Time // every request offered, for the central counter
		steps := int(seconds * time.Second / step)
		for s := range steps {
			now := fl.clock()
			var wg sync.WaitGroup
			n := int64(0)
			for i, e := range fl.envs {
				// Environment i's requests arrive evenly, 625 a second,
				// staggered across environments.
				per := int64(perSec / envs)
				if (int64(s)*per+int64(i)*per/envs)/1000 == (int64(s+1)*per+int64(i)*per/envs)/1000 {
					continue
				}
				n++
				wg.Add(1)
				go func() {
					defer wg.Done()
					fl.request(b, e)
				}()
			}
			wg.Wait()
			for range n {
				times = append(times, now)
			}
			fl.now.Add(int64(step))
		}
		for _, e := range fl.envs {
			if err := e.v.Flush(context.Background(), true); err != nil {
				b.Fatal(err)
			}
		}
		if got := fl.hotUsage(b); got != fl.allows.Load() {
			b.Fatalf("usage %d, admitted %d: usage must be exact once every environment shut down", got, fl.allows.Load())
		}
		if fl.unavail.Load() != 0 {
			b.Fatalf("%d verifications unavailable", fl.unavail.Load())
		}
		writes += fl.ms.writes.Load()
		offered += fl.offered.Load()
		admitted += fl.allows.Load()
		allowedN += allowed(k, times)
		over += fl.overAdmitted()
		peak = max(peak, fl.ms.peak())
	}
	b.ReportMetric(float64(writes)/float64(offered), "writes/verify")
	b.ReportMetric(float64(admitted)/float64(allowedN), "admitted/allowed")
	b.ReportMetric(float64(over), "over-admitted")
	b.ReportMetric(peak, "peak-WCU/s")
	b.ReportMetric(float64(offered)/float64(b.N), "verifications/op")
}
