package key

import (
	"strconv"
	"time"
)

// Windows and periods are the one definition of how rate limits and quotas
// are counted, shared by the store (which names the counters in its
// conditional update) and the authorizer (which decides and computes
// retry times from the same names).

// WindowStart returns the Unix second at which the fixed window holding now
// began. Windows are aligned to the Unix epoch, so every Lambda environment
// agrees on them without coordination.
func (l RateLimit) WindowStart(now time.Time) int64 {
	s := now.Unix()
	return s - s%l.WindowSeconds
}

// WindowEnd returns the instant the window holding now ends.
func (l RateLimit) WindowEnd(now time.Time) time.Time {
	return time.Unix(l.WindowStart(now)+l.WindowSeconds, 0)
}

// Counter returns the name of the counter of this limit for the window
// holding now: "<name>@<windowStartUnix>".
func (l RateLimit) Counter(now time.Time) string {
	var b [64]byte
	return string(l.AppendCounter(b[:0], now))
}

// AppendCounter appends the counter name to dst, for lookups that should
// not allocate (m[string(b)] does not).
func (l RateLimit) AppendCounter(dst []byte, now time.Time) []byte {
	dst = append(dst, l.Name...)
	dst = append(dst, '@')
	return strconv.AppendInt(dst, l.WindowStart(now), 10)
}

// CounterWindowEnd reads the end of a counter's window from its name and
// the limit's window length; ok is false for a name Counter did not write.
func CounterWindowEnd(counter string, windowSeconds int64) (end int64, ok bool) {
	for i := len(counter) - 1; i >= 0; i-- {
		if counter[i] == '@' {
			start, err := strconv.ParseInt(counter[i+1:], 10, 64)
			return start + windowSeconds, err == nil
		}
	}
	return 0, false
}

// CounterName returns the limit name part of a counter name.
func CounterName(counter string) string {
	for i := len(counter) - 1; i >= 0; i-- {
		if counter[i] == '@' {
			return counter[:i]
		}
	}
	return counter
}

// PeriodKey returns the name of the quota counter for the period holding
// now: "d2026-11-26" for a day, "m2026-11" for a month (both UTC), "total"
// for a quota that never refills.
func (q Quota) PeriodKey(now time.Time) string {
	var b [16]byte
	return string(q.AppendPeriodKey(b[:0], now))
}

// AppendPeriodKey appends the period key to dst, for lookups that should
// not allocate.
func (q Quota) AppendPeriodKey(dst []byte, now time.Time) []byte {
	now = now.UTC()
	switch q.Period {
	case Day:
		return now.AppendFormat(append(dst, 'd'), time.DateOnly)
	case Month:
		return now.AppendFormat(append(dst, 'm'), "2006-01")
	}
	return append(dst, "total"...)
}

// PeriodEnd returns when the period holding now ends and the quota refills;
// the zero time for a total quota, which never refills.
func (q Quota) PeriodEnd(now time.Time) time.Time {
	now = now.UTC()
	switch q.Period {
	case Day:
		return time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	case Month:
		return time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// PeriodKeyEnd returns when the period a period key names ends (Unix
// seconds), and false for "total" or a key that names no period.
func PeriodKeyEnd(period string) (int64, bool) {
	if len(period) < 2 {
		return 0, false
	}
	switch period[0] {
	case 'd':
		if t, err := time.Parse(time.DateOnly, period[1:]); err == nil {
			return Quota{Period: Day}.PeriodEnd(t).Unix(), true
		}
	case 'm':
		if t, err := time.Parse("2006-01", period[1:]); err == nil {
			return Quota{Period: Month}.PeriodEnd(t).Unix(), true
		}
	}
	return 0, false
}

// UsageDay returns the key of the per-day usage counter for now (UTC).
func UsageDay(now time.Time) string {
	var b [16]byte
	return string(now.UTC().AppendFormat(b[:0], time.DateOnly))
}
