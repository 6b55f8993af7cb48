package console

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/key"
)

// keyForm is the create and edit form of a key, as the admin typed it, so
// that a refused form comes back with its values and a message next to each
// field at fault. Field names are the wire names, so that the admin API's
// problems (which name the wire field) land next to the right input.
type keyForm struct {
	// Create is true for a new key (owner, type, environment and TTL are
	// editable only then).
	Create bool
	ID     string
	// Version is the key's version when the edit form was rendered: the
	// update sends it as If-Match, so a stale form cannot overwrite a newer
	// change.
	Version int64
	// Idem is the Idempotency-Key of a create form.
	Idem string

	Name, OwnerID, Type, Environment     string
	Scopes, ExpiresAt, NotBefore, TTL    string
	QuotaLimit, QuotaPeriod              string
	AllowedOrigins, AllowedCidrs, Stages string
	Metadata                             string
	RateLimits                           []limitRow
	Errors                               map[string]string
	Error                                string
}

// limitRow is one rate limit's inputs.
type limitRow struct{ Name, Limit, Window string }

// formFields are the form's fields that a problem may name; a problem about
// any other field is shown at the top of the form.
var formFields = map[string]bool{
	"name": true, "ownerId": true, "type": true, "environment": true, "scopes": true,
	"expiresAt": true, "notBefore": true, "ttlSeconds": true, "rateLimits": true, "quota": true,
	"allowedOrigins": true, "allowedCidrs": true, "stages": true, "metadata": true,
}

// subFieldNames are the words for the parts of a compound field, in messages.
var subFieldNames = map[string]string{
	"name": "name", "limit": "limit", "windowSeconds": "window", "period": "period",
}

// fail records a problem on the form: next to its field when the form has
// it, else at the top.
func (f *keyForm) fail(p *Problem) {
	top, sub, _ := strings.Cut(p.Field, ".")
	if !formFields[top] {
		f.Error = p.Detail
		return
	}
	msg := p.Detail
	if sub != "" {
		msg = firstOf(subFieldNames[sub], sub) + " " + msg
	}
	f.fieldError(top, msg)
}

func (f *keyForm) fieldError(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if _, ok := f.Errors[field]; !ok {
		f.Errors[field] = msg
	}
}

// Invalid reports whether the form carries a message for field (templates
// set aria-invalid with it).
func (f *keyForm) Invalid(field string) bool { return f.Errors[field] != "" }

// Describe is the aria-describedby of a field: its hint, and its message
// when it has one.
func (f *keyForm) Describe(field string) string {
	ids := "f-" + field + "-hint"
	if f.Invalid(field) {
		ids += " f-" + field + "-error"
	}
	return ids
}

// FirstInvalid is the field that gets the focus when the form comes back.
func (f *keyForm) FirstInvalid() string {
	for _, name := range []string{"name", "ownerId", "type", "environment", "scopes", "rateLimits", "quota",
		"expiresAt", "ttlSeconds", "notBefore", "allowedOrigins", "allowedCidrs", "stages", "metadata"} {
		if f.Errors[name] != "" {
			return name
		}
	}
	return ""
}

// padLimits gives the form one row per rate limit a key may carry.
func (f *keyForm) padLimits() {
	for len(f.RateLimits) < key.MaxRateLimits {
		f.RateLimits = append(f.RateLimits, limitRow{})
	}
}

// newKeyForm is the empty create form for owner.
func newKeyForm(owner string) *keyForm {
	f := &keyForm{Create: true, OwnerID: owner, Type: string(key.Secret), Environment: string(key.Test), Idem: newIdempotencyKey()}
	f.padLimits()
	return f
}

// editForm is the edit form filled with k's settings.
func editForm(k *Key) *keyForm {
	f := &keyForm{
		ID: k.ID, Version: k.Version, Name: k.Name, OwnerID: k.OwnerID, Type: string(k.Type), Environment: string(k.Environment),
		Scopes: strings.Join(k.Scopes, " "), ExpiresAt: localInput(k.ExpiresAt), NotBefore: localInput(k.NotBefore),
		AllowedOrigins: strings.Join(k.AllowedOrigins, "\n"), AllowedCidrs: strings.Join(k.AllowedCidrs, "\n"),
		Stages: strings.Join(k.Stages, " "),
	}
	for _, l := range k.RateLimits {
		f.RateLimits = append(f.RateLimits, limitRow{l.Name, strconv.FormatInt(l.Limit, 10), strconv.FormatInt(l.WindowSeconds, 10)})
	}
	if k.Quota != nil {
		f.QuotaLimit, f.QuotaPeriod = strconv.FormatInt(k.Quota.Limit, 10), string(k.Quota.Period)
	}
	if len(k.Metadata) > 0 {
		b, _ := json.MarshalIndent(k.Metadata, "", "  ")
		f.Metadata = string(b)
	}
	f.padLimits()
	return f
}

// localInput is an RFC 3339 time as a datetime-local input shows it (UTC).
func localInput(t *string) string {
	if t == nil {
		return ""
	}
	v, err := time.Parse(time.RFC3339, *t)
	if err != nil {
		return ""
	}
	return v.UTC().Format("2006-01-02T15:04:05")
}

// readKeyForm reads a submitted create or edit form.
func readKeyForm(v url.Values, create bool) *keyForm {
	f := &keyForm{
		Create: create, Idem: v.Get("idem"),
		Name: v.Get("name"), OwnerID: strings.TrimSpace(v.Get("ownerId")), Type: v.Get("type"), Environment: v.Get("environment"),
		Scopes: v.Get("scopes"), ExpiresAt: v.Get("expiresAt"), NotBefore: v.Get("notBefore"), TTL: strings.TrimSpace(v.Get("ttlSeconds")),
		QuotaLimit: strings.TrimSpace(v.Get("quotaLimit")), QuotaPeriod: v.Get("quotaPeriod"),
		AllowedOrigins: v.Get("allowedOrigins"), AllowedCidrs: v.Get("allowedCidrs"), Stages: v.Get("stages"),
		Metadata: v.Get("metadata"),
	}
	f.Version, _ = strconv.ParseInt(v.Get("version"), 10, 64)
	for i := range key.MaxRateLimits {
		n := strconv.Itoa(i)
		f.RateLimits = append(f.RateLimits, limitRow{
			Name:   strings.TrimSpace(v.Get("limitName" + n)),
			Limit:  strings.TrimSpace(v.Get("limitLimit" + n)),
			Window: strings.TrimSpace(v.Get("limitWindow" + n)),
		})
	}
	return f
}

// settings are the parsed values of a form, in wire types.
type settings struct {
	Name           string
	Scopes         []string
	ExpiresAt      *time.Time
	NotBefore      *time.Time
	TTLSeconds     *int64
	RateLimits     []key.RateLimit
	Quota          *key.Quota
	AllowedOrigins []string
	AllowedCidrs   []string
	Stages         []string
	Metadata       map[string]any
}

// words splits a list typed with spaces, commas or new lines.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// parse checks the form's syntax (numbers, times, JSON) and returns its
// settings; the rules (limits, lengths, patterns) are the admin API's,
// whose problems come back next to the field. It reports whether the form
// had no syntax error.
func (f *keyForm) parse() (*settings, bool) {
	s := &settings{
		Name: f.Name, Scopes: words(f.Scopes), AllowedOrigins: words(f.AllowedOrigins),
		AllowedCidrs: words(f.AllowedCidrs), Stages: words(f.Stages),
	}
	s.ExpiresAt = f.parseTime("expiresAt", f.ExpiresAt)
	s.NotBefore = f.parseTime("notBefore", f.NotBefore)
	if f.Create && f.TTL != "" {
		n, err := strconv.ParseInt(f.TTL, 10, 64)
		if err != nil || n < 1 {
			f.fieldError("ttlSeconds", "must be a whole number of seconds, at least 1")
		} else if s.ExpiresAt != nil {
			f.fieldError("ttlSeconds", "give an expiry time or a lifetime, not both")
		} else {
			s.TTLSeconds = &n
		}
	}
	for _, row := range f.RateLimits {
		if row == (limitRow{}) {
			continue
		}
		limit, err1 := strconv.ParseInt(row.Limit, 10, 64)
		window, err2 := strconv.ParseInt(row.Window, 10, 64)
		switch {
		case row.Name == "":
			f.fieldError("rateLimits", "each rate limit needs a name, such as minute or day")
		case err1 != nil:
			f.fieldError("rateLimits", fmt.Sprintf("limit of %q must be a whole number", row.Name))
		case err2 != nil:
			f.fieldError("rateLimits", fmt.Sprintf("window of %q must be a whole number of seconds", row.Name))
		default:
			s.RateLimits = append(s.RateLimits, key.RateLimit{Name: row.Name, Limit: limit, WindowSeconds: window})
		}
	}
	switch {
	case f.QuotaPeriod == "" && f.QuotaLimit != "":
		f.fieldError("quota", "choose the period the quota refills in")
	case f.QuotaPeriod != "":
		n, err := strconv.ParseInt(f.QuotaLimit, 10, 64)
		if err != nil {
			f.fieldError("quota", "the quota must be a whole number of credits")
		} else {
			s.Quota = &key.Quota{Limit: n, Period: key.Period(f.QuotaPeriod)}
		}
	}
	if strings.TrimSpace(f.Metadata) != "" {
		if err := json.Unmarshal([]byte(f.Metadata), &s.Metadata); err != nil || s.Metadata == nil {
			f.fieldError("metadata", `must be a JSON object, such as {"team": "billing"}`)
		}
	}
	return s, len(f.Errors) == 0
}

// parseTime reads a datetime-local value (UTC) or an RFC 3339 time.
func (f *keyForm) parseTime(field, v string) *time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			t = t.UTC()
			return &t
		}
	}
	f.fieldError(field, "must be a date and time in UTC, such as 2027-01-31T00:00")
	return nil
}

func wireTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// issueBody is the body of POST /v1/keys.
func (f *keyForm) issueBody(s *settings) map[string]any {
	b := map[string]any{"name": s.Name, "ownerId": f.OwnerID, "type": f.Type, "environment": f.Environment}
	if len(s.Scopes) > 0 {
		b["scopes"] = s.Scopes
	}
	if s.ExpiresAt != nil {
		b["expiresAt"] = wireTime(*s.ExpiresAt)
	}
	if s.NotBefore != nil {
		b["notBefore"] = wireTime(*s.NotBefore)
	}
	if s.TTLSeconds != nil {
		b["ttlSeconds"] = *s.TTLSeconds
	}
	if len(s.RateLimits) > 0 {
		b["rateLimits"] = s.RateLimits
	}
	if s.Quota != nil {
		b["quota"] = s.Quota
	}
	if len(s.AllowedOrigins) > 0 {
		b["allowedOrigins"] = s.AllowedOrigins
	}
	if len(s.AllowedCidrs) > 0 {
		b["allowedCidrs"] = s.AllowedCidrs
	}
	if len(s.Stages) > 0 {
		b["stages"] = s.Stages
	}
	if len(s.Metadata) > 0 {
		b["metadata"] = s.Metadata
	}
	return b
}

// patchBody is the body of PATCH /v1/keys/{id}: only the settings that
// differ from k, so that an untouched setting is not sent (and an expired
// key's past expiry, say, is not checked again).
func patchBody(k *Key, s *settings) map[string]any {
	b := map[string]any{}
	if s.Name != k.Name {
		b["name"] = s.Name
	}
	list := func(field string, now, was []string) {
		if !slices.Equal(now, was) && (len(now) > 0 || len(was) > 0) {
			if now == nil {
				now = []string{}
			}
			b[field] = now
		}
	}
	list("scopes", s.Scopes, k.Scopes)
	list("allowedOrigins", s.AllowedOrigins, k.AllowedOrigins)
	list("allowedCidrs", s.AllowedCidrs, k.AllowedCidrs)
	list("stages", s.Stages, k.Stages)
	when := func(field string, now *time.Time, was *string) {
		var old *time.Time
		if was != nil {
			if t, err := time.Parse(time.RFC3339, *was); err == nil {
				old = &t
			}
		}
		switch {
		case now == nil && old != nil:
			b[field] = nil
		case now != nil && (old == nil || !now.Equal(old.Truncate(time.Second))):
			b[field] = wireTime(*now)
		}
	}
	when("expiresAt", s.ExpiresAt, k.ExpiresAt)
	when("notBefore", s.NotBefore, k.NotBefore)
	if !slices.Equal(s.RateLimits, k.RateLimits) && (len(s.RateLimits) > 0 || len(k.RateLimits) > 0) {
		b["rateLimits"] = orEmpty(s.RateLimits)
	}
	switch {
	case s.Quota == nil && k.Quota != nil:
		b["quota"] = nil
	case s.Quota != nil && (k.Quota == nil || *s.Quota != *k.Quota):
		b["quota"] = s.Quota
	}
	if !sameJSON(s.Metadata, k.Metadata) {
		if len(s.Metadata) == 0 {
			b["metadata"] = nil
		} else {
			b["metadata"] = s.Metadata
		}
	}
	return b
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// sameJSON compares two metadata objects as JSON values (an empty object
// and none are the same).
func sameJSON(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	var av, bv any
	_ = json.Unmarshal(ab, &av)
	_ = json.Unmarshal(bb, &bv)
	return reflect.DeepEqual(av, bv)
}
