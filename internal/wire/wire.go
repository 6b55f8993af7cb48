// Package wire is the admin API's JSON contract: the request bodies and
// responses in the wire names the design fixes (clients, the CLI and the
// OpenAPI document depend on them: add fields freely, rename none). The
// admin API (internal/adminapi) serves them and the CLI (internal/cli)
// sends and reads them, so both speak one definition.
package wire

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

// Key is a key as every response shows it. Key (the plaintext) is set only
// in the response that issues the key.
type Key struct {
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	OwnerID        string          `json:"ownerId"`
	Type           key.Type        `json:"type"`
	Environment    key.Environment `json:"environment"`
	Status         key.Status      `json:"status"`
	Hint           string          `json:"hint"`
	Scopes         []string        `json:"scopes"`
	CreatedAt      string          `json:"createdAt"`
	UpdatedAt      string          `json:"updatedAt"`
	NotBefore      *string         `json:"notBefore"`
	ExpiresAt      *string         `json:"expiresAt"`
	RateLimits     []key.RateLimit `json:"rateLimits"`
	Quota          *key.Quota      `json:"quota"`
	Metadata       map[string]any  `json:"metadata"`
	AllowedOrigins []string        `json:"allowedOrigins"`
	AllowedCidrs   []string        `json:"allowedCidrs"`
	Stages         []string        `json:"stages"`
	Version        int64           `json:"version"`
	RevokedAt      string          `json:"revokedAt,omitempty"`
	LastUsedAt     string          `json:"lastUsedAt,omitempty"`
	PreviousKeyID  string          `json:"previousKeyId,omitempty"`
	NextKeyID      string          `json:"nextKeyId,omitempty"`
	// Current, only on GET /v1/keys/{id}, is what the key's rate-limit
	// windows and quota period hold now.
	Current *Current `json:"current,omitempty"`
	Key     string   `json:"key,omitempty"`
}

// Current is what a key's limits hold at one instant: the window now open
// of each rate limit, in the key's order, and the quota's period.
type Current struct {
	At         string   `json:"at"`
	RateLimits []Window `json:"rateLimits"`
	Quota      *Window  `json:"quota"`
}

// Window is one limit's open window. Used counts what the window has
// taken: admissions (quota credits for the quota), and for a hot key the
// blocks authorizer environments reserved and may still admit from
// (internal/verify), so Remaining, the limit less Used, is what is still
// open to any environment. ResetAt is when the window ends; null for a
// total quota, which never refills.
type Window struct {
	Name      string  `json:"name,omitempty"`
	Limit     int64   `json:"limit"`
	Used      int64   `json:"used"`
	Remaining int64   `json:"remaining"`
	ResetAt   *string `json:"resetAt"`
}

// CurrentOf reads a key's open windows at now from its counters: rl by
// rate-limit counter name (key.RateLimit.Counter), q by quota period
// (key.Quota.PeriodKey); a missing counter is 0.
func CurrentOf(k *key.Key, rl, q map[string]int64, now time.Time) *Current {
	c := &Current{At: Time(now), RateLimits: []Window{}}
	window := func(name string, limit, used int64, end time.Time) Window {
		return Window{Name: name, Limit: limit, Used: used, Remaining: max(limit-used, 0), ResetAt: OptTime(end)}
	}
	for _, l := range k.RateLimits {
		c.RateLimits = append(c.RateLimits, window(l.Name, l.Limit, rl[l.Counter(now)], l.WindowEnd(now)))
	}
	if k.Quota != nil {
		w := window("", k.Quota.Limit, q[k.Quota.PeriodKey(now)], k.Quota.PeriodEnd(now))
		c.Quota = &w
	}
	return c
}

// Time writes an instant as every response does: RFC 3339 in UTC, with
// the sub-second digits it has.
func Time(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// OptTime is Time for an instant that may be unset: nil for the zero time
// (JSON null).
func OptTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := Time(t)
	return &s
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// FromKey returns the wire form of k at now (its status depends on the
// time). It never sets Key: only the issuing response does.
func FromKey(k *key.Key, now time.Time) Key {
	w := Key{
		ID: k.ID, Name: k.Name, OwnerID: k.OwnerID, Type: k.Type, Environment: k.Environment,
		Status: k.WireStatus(now), Hint: k.Hint, Scopes: orEmpty(k.Scopes),
		CreatedAt: Time(k.CreatedAt), UpdatedAt: Time(k.UpdatedAt),
		NotBefore: OptTime(k.NotBefore), ExpiresAt: OptTime(k.ExpiresAt),
		RateLimits: orEmpty(k.RateLimits), Quota: k.Quota, Metadata: k.Metadata,
		AllowedOrigins: orEmpty(k.AllowedOrigins), AllowedCidrs: orEmpty(key.FormatCIDRs(k.AllowedCIDRs)),
		Stages: orEmpty(k.Stages), Version: k.Version,
		PreviousKeyID: k.PreviousKeyID, NextKeyID: k.NextKeyID,
	}
	if w.Metadata == nil {
		w.Metadata = map[string]any{}
	}
	if !k.RevokedAt.IsZero() {
		w.RevokedAt = Time(k.RevokedAt)
	}
	if !k.LastUsedAt.IsZero() {
		w.LastUsedAt = Time(k.LastUsedAt)
	}
	return w
}

// Timestamp is an RFC 3339 time in a request body; a bad one is a type
// error naming its field.
type Timestamp struct{ time.Time }

// JSONType names what a Timestamp field takes, for the problem of a body
// that sends something else (see httpedge.Decode).
func (*Timestamp) JSONType() string { return "an RFC 3339 time such as 2027-01-31T00:00:00Z" }

// UnmarshalJSON reads an RFC 3339 string; anything else is a type error, so
// the decoder names the field.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeOf(t)}
	}
	t.Time = v
	return nil
}

// Optional is a PATCH field: absent (Set false), null (clear it) or a
// value.
type Optional[T any] struct {
	Set, Null bool
	V         T
}

// UnmarshalJSON records that the field was sent, and whether as null; the
// value is decoded as strictly as the body (unknown fields refused).
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(&o.V)
}

// Required sets *dst to the field's value when it was sent, and refuses
// null for a field that cannot be cleared; it reports whether it was sent.
func (o Optional[T]) Required(field string, dst *T) (bool, error) {
	if !o.Set {
		return false, nil
	}
	if o.Null {
		return true, fault.Fieldf(field, "cannot be null")
	}
	*dst = o.V
	return true, nil
}

// IssueRequest is the body of POST /v1/keys.
type IssueRequest struct {
	Name           string          `json:"name"`
	OwnerID        string          `json:"ownerId"`
	Type           key.Type        `json:"type,omitempty"`
	Environment    key.Environment `json:"environment"`
	Scopes         []string        `json:"scopes,omitempty"`
	ExpiresAt      *Timestamp      `json:"expiresAt,omitempty"`
	TTLSeconds     *int64          `json:"ttlSeconds,omitempty"`
	NotBefore      *Timestamp      `json:"notBefore,omitempty"`
	RateLimits     []key.RateLimit `json:"rateLimits,omitempty"`
	Quota          *key.Quota      `json:"quota,omitempty"`
	AllowedOrigins []string        `json:"allowedOrigins,omitempty"`
	AllowedCidrs   []string        `json:"allowedCidrs,omitempty"`
	Stages         []string        `json:"stages,omitempty"`
	Metadata       map[string]any  `json:"metadata,omitempty"`
}

// UpdateRequest is the body of PATCH /v1/keys/{id}: every field optional;
// null clears expiresAt, notBefore, quota and metadata.
type UpdateRequest struct {
	Name           Optional[string]          `json:"name"`
	Scopes         Optional[[]string]        `json:"scopes"`
	Enabled        Optional[bool]            `json:"enabled"`
	ExpiresAt      Optional[Timestamp]       `json:"expiresAt"`
	NotBefore      Optional[Timestamp]       `json:"notBefore"`
	RateLimits     Optional[[]key.RateLimit] `json:"rateLimits"`
	Quota          Optional[key.Quota]       `json:"quota"`
	AllowedOrigins Optional[[]string]        `json:"allowedOrigins"`
	AllowedCidrs   Optional[[]string]        `json:"allowedCidrs"`
	Stages         Optional[[]string]        `json:"stages"`
	Metadata       Optional[map[string]any]  `json:"metadata"`
}

// KeyList is the response of GET /v1/keys.
type KeyList struct {
	Keys []Key `json:"keys"`
	// NextCursor continues the listing; absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// Usage is the response of GET /v1/keys/{id}/usage.
type Usage struct {
	KeyID string `json:"keyId"`
	From  string `json:"from"`
	To    string `json:"to"`
	// Total is the requests admitted in the range, Credits the quota
	// credits they spent.
	Total   int64      `json:"total"`
	Credits int64      `json:"credits"`
	Days    []UsageDay `json:"days"`
}

// UsageDay is one UTC day of usage: requests admitted and credits spent.
type UsageDay struct {
	Date    string `json:"date"`
	Count   int64  `json:"count"`
	Credits int64  `json:"credits"`
}

// OwnerUsage is the response of GET /v1/owners/{ownerId}/usage: the
// owner's usage per day, and with by=key a page of its keys' usage per day.
type OwnerUsage struct {
	OwnerID string     `json:"ownerId"`
	From    string     `json:"from"`
	To      string     `json:"to"`
	Total   int64      `json:"total"`
	Credits int64      `json:"credits"`
	Days    []UsageDay `json:"days"`
	// Keys, with by=key, holds the key-days with usage, by day and then key
	// id, a page at a time; NextCursor continues it.
	Keys       []KeyUsageDay `json:"keys,omitempty"`
	NextCursor string        `json:"nextCursor,omitempty"`
}

// KeyUsageDay is one key's usage on one UTC day.
type KeyUsageDay struct {
	Date    string `json:"date"`
	KeyID   string `json:"keyId"`
	Count   int64  `json:"count"`
	Credits int64  `json:"credits"`
}

// MaxUsageDays is the longest range a usage request may cover.
const MaxUsageDays = 366

// The columns of usage as text/csv (RFC 4180, a header row), which the
// admin API answers with Accept: text/csv and the CLI writes with
// --output csv: a key's days and an owner's per-key days, and an owner's
// days.
var (
	CSVKeyDays = []string{"date", "keyId", "count", "credits"}
	CSVDays    = []string{"date", "count", "credits"}
)

// CSVKeyDay is a key's day as a CSV row of CSVKeyDays.
func CSVKeyDay(d KeyUsageDay) []string {
	return []string{d.Date, d.KeyID, strconv.FormatInt(d.Count, 10), strconv.FormatInt(d.Credits, 10)}
}

// CSVDay is a day as a CSV row of CSVDays.
func CSVDay(d UsageDay) []string {
	return []string{d.Date, strconv.FormatInt(d.Count, 10), strconv.FormatInt(d.Credits, 10)}
}

// WriteCSV writes rows under header as RFC 4180 CSV (CRLF line ends).
func WriteCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(header); err != nil {
		return err
	}
	return cw.WriteAll(rows)
}

// AuditEntry is one audit record on the wire.
type AuditEntry struct {
	KeyID   string         `json:"keyId"`
	At      string         `json:"at"`
	Actor   string         `json:"actor"`
	Action  string         `json:"action"`
	Version int64          `json:"version"`
	Changes map[string]any `json:"changes"`
}

// AuditList is the response of GET /v1/keys/{id}/audit, oldest first.
type AuditList struct {
	Records    []AuditEntry `json:"records"`
	NextCursor string       `json:"nextCursor,omitempty"`
}

// RotateRequest is the body of POST /v1/keys/{id}/rotate; the body may be
// absent (the defaults apply).
type RotateRequest struct {
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
}

// KeyPath is the admin API path of key id's own route, with suffix (""
// or "/rotate", "/usage", "/audit") after it. The id is escaped, so an id
// a user typed can name no other route; the admin API, the CLI, the
// console and the smoke test all build key paths here.
func KeyPath(id, suffix string) string { return "/v1/keys/" + url.PathEscape(id) + suffix }
