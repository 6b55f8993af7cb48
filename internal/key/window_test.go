package key

import (
	"testing"
	"time"
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
