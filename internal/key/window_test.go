package key

import (
	"testing"
	"time"

	"github.com/keygate/keygate/internal/alloctest"
)

func TestWindowsAndPeriods(t *testing.T) {
	now := time.Date(2026, 11, 30, 23, 59, 59, 500e6, time.UTC)
	l := RateLimit{Name: "minute", Limit: 5, WindowSeconds: 60}
	if l.WindowStart(now) != now.Unix()-59 || !l.WindowEnd(now).Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("window: start %d end %v", l.WindowStart(now), l.WindowEnd(now))
	}
	c := l.Counter(now)
	if end, ok := CounterWindowEnd(c, 60); !ok || end != l.WindowEnd(now).Unix() || CounterName(c) != "minute" {
		t.Fatalf("counter %q: end %d ok %v name %q", c, end, ok, CounterName(c))
	}
	cases := []struct {
		q   Quota
		key string
		end time.Time
	}{
		{Quota{Limit: 1, Period: Day}, "d2026-11-30", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{Quota{Limit: 1, Period: Month}, "m2026-11", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{Quota{Limit: 1, Period: Total}, "total", time.Time{}},
	}
	for _, c := range cases {
		if c.q.PeriodKey(now) != c.key || !c.q.PeriodEnd(now).Equal(c.end) {
			t.Errorf("%s: key %q end %v, want %q %v", c.q.Period, c.q.PeriodKey(now), c.q.PeriodEnd(now), c.key, c.end)
		}
	}
	if UsageDay(now) != "2026-11-30" {
		t.Errorf("usage day %q", UsageDay(now))
	}
}

// Looking a window's or a period's counter up by its appended name
// allocates nothing, as the authorizer does on every admitted request.
func TestCounterLookupAllocatesNothing(t *testing.T) {
	now := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	l := RateLimit{Name: "second", Limit: 10, WindowSeconds: 1}
	q := Quota{Limit: 10, Period: Month}
	counters := map[string]int64{l.Counter(now): 3, q.PeriodKey(now): 4}
	var buf [64]byte
	var got int64
	alloctest.Zero(t, "AppendCounter and AppendPeriodKey lookups", func() {
		got = counters[string(l.AppendCounter(buf[:0], now))] + counters[string(q.AppendPeriodKey(buf[:0], now))]
	})
	if got != 7 {
		t.Fatalf("the lookups found %d, want 3+4: the appended names differ from Counter and PeriodKey", got)
	}
}
