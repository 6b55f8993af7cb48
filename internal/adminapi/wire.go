package adminapi

import (
	"bytes"
	"encoding/json"
	"reflect"
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
	Key            string          `json:"key,omitempty"`
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := timeString(t)
	return &s
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ToWire returns the wire form of k at now (its status depends on the
// time). It never sets Key: only the issuing response does.
func ToWire(k *key.Key, now time.Time) Key {
	w := Key{
		ID: k.ID, Name: k.Name, OwnerID: k.OwnerID, Type: k.Type, Environment: k.Environment,
		Status: k.WireStatus(now), Hint: k.Hint, Scopes: orEmpty(k.Scopes),
		CreatedAt: timeString(k.CreatedAt), UpdatedAt: timeString(k.UpdatedAt),
		NotBefore: optTime(k.NotBefore), ExpiresAt: optTime(k.ExpiresAt),
		RateLimits: orEmpty(k.RateLimits), Quota: k.Quota, Metadata: k.Metadata,
		AllowedOrigins: orEmpty(k.AllowedOrigins), AllowedCidrs: orEmpty(key.FormatCIDRs(k.AllowedCIDRs)),
		Stages: orEmpty(k.Stages), Version: k.Version,
		PreviousKeyID: k.PreviousKeyID, NextKeyID: k.NextKeyID,
	}
	if w.Metadata == nil {
		w.Metadata = map[string]any{}
	}
	if !k.RevokedAt.IsZero() {
		w.RevokedAt = timeString(k.RevokedAt)
	}
	if !k.LastUsedAt.IsZero() {
		w.LastUsedAt = timeString(k.LastUsedAt)
	}
	return w
}

// timestamp is an RFC 3339 time in a request body; a bad one is a type error
// naming its field.
type timestamp struct{ time.Time }

// JSONType names what a timestamp field takes, for the problem of a body
// that sends something else (see httpedge.Decode).
func (*timestamp) JSONType() string { return "an RFC 3339 time such as 2027-01-31T00:00:00Z" }

// UnmarshalJSON reads an RFC 3339 string; anything else is a type error, so
// the decoder names the field.
func (t *timestamp) UnmarshalJSON(b []byte) error {
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

// optional is a PATCH field: absent (Set false), null (clear it) or a value.
type optional[T any] struct {
	Set, Null bool
	V         T
}

// UnmarshalJSON records that the field was sent, and whether as null; the
// value is decoded as strictly as the body (unknown fields refused).
func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(&o.V)
}

// required sets *dst to the field's value when it was sent, and refuses
// null for a field that cannot be cleared; it reports whether it was sent.
func (o optional[T]) required(field string, dst *T) (bool, error) {
	if !o.Set {
		return false, nil
	}
	if o.Null {
		return true, fieldErr(field, "cannot be null")
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
	ExpiresAt      *timestamp      `json:"expiresAt,omitempty"`
	TTLSeconds     *int64          `json:"ttlSeconds,omitempty"`
	NotBefore      *timestamp      `json:"notBefore,omitempty"`
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
	Name           optional[string]          `json:"name"`
	Scopes         optional[[]string]        `json:"scopes"`
	Enabled        optional[bool]            `json:"enabled"`
	ExpiresAt      optional[timestamp]       `json:"expiresAt"`
	NotBefore      optional[timestamp]       `json:"notBefore"`
	RateLimits     optional[[]key.RateLimit] `json:"rateLimits"`
	Quota          optional[key.Quota]       `json:"quota"`
	AllowedOrigins optional[[]string]        `json:"allowedOrigins"`
	AllowedCidrs   optional[[]string]        `json:"allowedCidrs"`
	Stages         optional[[]string]        `json:"stages"`
	Metadata       optional[map[string]any]  `json:"metadata"`
}

// fieldErr is a shorthand for an invalid field, as a fault (mapped at the edge).
func fieldErr(field, msg string) error { return fault.Fieldf(field, "%s", msg) }
