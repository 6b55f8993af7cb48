package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

// This file holds the flag syntaxes the CLI accepts. Every value is checked
// when the flag is parsed, and the assembled settings are then checked with
// the same rules the admin API applies (package key), so that a bad flag is
// refused before any network call.

// listFlag is a repeatable flag whose values may also be comma separated:
// --scope read --scope write and --scope read,write mean the same.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			return errors.New("empty value")
		}
		*l = append(*l, v)
	}
	return nil
}

// enumFlag accepts one of a fixed set of words.
type enumFlag struct {
	value   string
	allowed []string
}

func newEnum(def string, allowed ...string) *enumFlag {
	return &enumFlag{value: def, allowed: allowed}
}

func (e *enumFlag) String() string { return e.value }

func (e *enumFlag) Set(s string) error {
	for _, a := range e.allowed {
		if s == a {
			e.value = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(e.allowed, ", "))
}

// secondsFlag is a span of whole seconds, written as a number of seconds
// (3600), a Go duration (90s, 15m, 1h30m) or a number of days (30d).
type secondsFlag struct {
	n   int64
	set bool
}

func (f *secondsFlag) String() string {
	if !f.set {
		return ""
	}
	return strconv.FormatInt(f.n, 10)
}

func (f *secondsFlag) Set(s string) error {
	n, err := parseSeconds(s)
	if err != nil {
		return err
	}
	f.n, f.set = n, true
	return nil
}

// maxSeconds bounds every span the CLI accepts (about 100 years), so that
// no arithmetic on it can overflow; the admin API applies its own, smaller
// maxima.
const maxSeconds = 100 * 366 * 86400

var errSeconds = errors.New("want whole seconds (3600), a duration (90s, 15m, 1h) or days (30d)")

// parseSeconds reads a span in whole seconds; see secondsFlag.
func parseSeconds(s string) (int64, error) {
	var n int64
	switch {
	case s == "":
		return 0, errSeconds
	case isDigits(s):
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, errSeconds
		}
		n = v
	case strings.HasSuffix(s, "d") && isDigits(s[:len(s)-1]):
		v, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
		if err != nil || v > maxSeconds/86400 {
			return 0, errSeconds
		}
		n = v * 86400
	default:
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d%time.Second != 0 {
			return 0, errSeconds
		}
		n = int64(d / time.Second)
	}
	if n > maxSeconds {
		return 0, fmt.Errorf("at most %d seconds", maxSeconds)
	}
	return n, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// timeFlag is an instant in RFC 3339 (2027-01-31T00:00:00Z).
type timeFlag struct {
	t   time.Time
	set bool
}

func (f *timeFlag) String() string {
	if !f.set {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return errors.New("want an RFC 3339 time such as 2027-01-31T00:00:00Z")
	}
	f.t, f.set = t, true
	return nil
}

// dayFlag is a usage bound: a UTC day (2026-11-01), as the admin API takes
// it. An RFC 3339 time is accepted too and stands for its UTC day.
type dayFlag struct {
	day string // YYYY-MM-DD, empty when not given
	t   time.Time
}

func (f *dayFlag) String() string { return f.day }

func (f *dayFlag) Set(s string) error {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return errors.New("want a day (2026-11-01) or an RFC 3339 time (2026-11-01T00:00:00Z)")
		}
	}
	t = t.UTC().Truncate(24 * time.Hour)
	f.day, f.t = t.Format(time.DateOnly), t
	return nil
}

// rateLimitsFlag is a repeatable NAME=LIMIT/WINDOW, for example
// second=10/1s or day=10000/1d: at most LIMIT requests in each WINDOW.
type rateLimitsFlag []key.RateLimit

func (f *rateLimitsFlag) String() string {
	parts := make([]string, len(*f))
	for i, l := range *f {
		parts[i] = formatRateLimit(l)
	}
	return strings.Join(parts, ",")
}

var errRateLimit = errors.New("want NAME=LIMIT/WINDOW, for example second=10/1s or day=10000/1d")

func (f *rateLimitsFlag) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return errRateLimit
	}
	limit, window, ok := strings.Cut(rest, "/")
	if !ok || !isDigits(limit) {
		return errRateLimit
	}
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil {
		return errRateLimit
	}
	w, err := parseSeconds(window)
	if err != nil {
		return fmt.Errorf("window: %w", err)
	}
	*f = append(*f, key.RateLimit{Name: name, Limit: n, WindowSeconds: w})
	return nil
}

func formatRateLimit(l key.RateLimit) string {
	return fmt.Sprintf("%s=%d/%ds", l.Name, l.Limit, l.WindowSeconds)
}

// quotaFlag is LIMIT/PERIOD with PERIOD day, month or total, for example
// 100000/month.
type quotaFlag struct{ q *key.Quota }

func (f *quotaFlag) String() string {
	if f.q == nil {
		return ""
	}
	return fmt.Sprintf("%d/%s", f.q.Limit, f.q.Period)
}

func (f *quotaFlag) Set(s string) error {
	limit, period, ok := strings.Cut(s, "/")
	if !ok || !isDigits(limit) {
		return errors.New("want LIMIT/PERIOD with PERIOD day, month or total, for example 100000/month")
	}
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil {
		return fmt.Errorf("limit: at most %d", int64(key.MaxQuota))
	}
	q := &key.Quota{Limit: n, Period: key.Period(period)}
	if err := q.Validate(); err != nil {
		return errors.New(fault.MessageOf(err))
	}
	f.q = q
	return nil
}

// metadataFlag is a repeatable KEY=VALUE; values are strings. Use
// --metadata-json for other JSON types.
type metadataFlag map[string]any

func (f metadataFlag) String() string {
	if len(f) == 0 {
		return ""
	}
	b, _ := json.Marshal(map[string]any(f))
	return string(b)
}

func (f metadataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	if _, dup := f[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	f[k] = v
	return nil
}

// jsonObjectFlag is a JSON object, for --metadata-json.
type jsonObjectFlag struct{ m map[string]any }

func (f *jsonObjectFlag) String() string {
	if f.m == nil {
		return ""
	}
	b, _ := json.Marshal(f.m)
	return string(b)
}

func (f *jsonObjectFlag) Set(s string) error {
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return errors.New(`want a JSON object, for example '{"team":"billing","tier":2}'`)
	}
	f.m = m
	return nil
}

// isSet reports whether the flag called name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// flagOfField names the flag that sets a wire field, so that an error from
// local validation or from the admin API points at what to change.
var flagOfField = map[string]string{
	"name":               "--name",
	"ownerId":            "--owner",
	"type":               "--type",
	"environment":        "--environment",
	"scopes":             "--scope",
	"expiresAt":          "--expires-at",
	"ttlSeconds":         "--ttl",
	"rateLimits":         "--rate-limit",
	"quota":              "--quota",
	"allowedOrigins":     "--allowed-origin",
	"allowedCidrs":       "--allowed-cidr",
	"metadata":           "--metadata",
	"enabled":            "--enable/--disable",
	"gracePeriodSeconds": "--grace-period",
	"status":             "--status",
	"limit":              "--limit",
	"cursor":             "--cursor",
	"from":               "--from",
	"to":                 "--to",
	"If-Match":           "--if-match",
}

// flagFor returns the flag for a wire field such as "rateLimits.limit", or ""
// when no flag sets it.
func flagFor(field string) string {
	top, _, _ := strings.Cut(field, ".")
	return flagOfField[top]
}

// invalid turns a validation fault from package key into a usage error that
// names the flag to fix.
func invalid(err error) error {
	field := fault.FieldOf(err)
	msg := fault.MessageOf(err)
	if f := flagFor(field); f != "" {
		return usagef("%s: %s", f, msg)
	}
	if field != "" {
		return usagef("%s: %s", field, msg)
	}
	return usagef("%s", msg)
}
