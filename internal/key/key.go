// Package key holds keygate's one definition of an API key: its settings, its
// lifecycle states and the rules that make a key valid. The authorizer, the
// admin API, the rotator and the store all use these types, so a key means
// the same thing everywhere. It knows nothing of AWS.
package key

import (
	"net/netip"
	"time"

	"github.com/keygate/keygate/internal/apikey"
)

// Type is a key's type, as it appears on the wire.
type Type string

// The key types. A secret key may call any method its scopes allow; a
// publishable key may sit in a browser or an app, so it is limited to
// read-only methods and, optionally, to listed origins.
const (
	Secret      Type = "secret"
	Publishable Type = "publishable"
)

// Environment is the environment a key was issued for; a deployment accepts
// only the environments it is configured for.
type Environment string

// The environments.
const (
	Live Environment = "live"
	Test Environment = "test"
)

// Status is a key's lifecycle state at a given instant. Active, disabled,
// revoked and expired appear on the wire; NotYetValid is what a key whose
// validity window has not opened is, and the authorizer's denial says so.
type Status string

// The states. Disabled is reversible (PATCH enabled=true); revoked is final.
const (
	Active      Status = "active"
	Disabled    Status = "disabled"
	Revoked     Status = "revoked"
	Expired     Status = "expired"
	NotYetValid Status = "not_yet_valid"
)

// Period is the span after which a quota refills.
type Period string

// The quota periods. Day and month boundaries are in UTC; Total never refills.
const (
	Day   Period = "day"
	Month Period = "month"
	Total Period = "total"
)

// RateLimit admits at most Limit requests in each aligned window of
// WindowSeconds (a fixed window; see docs/verification.md for its burst behaviour).
// A key may carry several, each with its own Name.
type RateLimit struct {
	Name          string `json:"name"`
	Limit         int64  `json:"limit"`
	WindowSeconds int64  `json:"windowSeconds"`
}

// Quota is a budget of credits that each request spends (a route's cost,
// default 1), refilled at each Period boundary.
type Quota struct {
	Limit  int64  `json:"limit"`
	Period Period `json:"period"`
}

// Key is an API key as keygate stores it: everything but the secret.
type Key struct {
	ID          string
	Name        string
	OwnerID     string
	Type        Type
	Environment Environment
	// Hash is the keyed hash of the plaintext, the only form the key is kept in.
	Hash apikey.Hash
	// Hint is the readable prefix and first characters of the key, for display.
	Hint   string
	Scopes []string
	// Enabled is false for a disabled key; Revoked overrides it.
	Enabled        bool
	RevokedAt      time.Time // zero unless revoked
	CreatedAt      time.Time
	UpdatedAt      time.Time
	NotBefore      time.Time // zero: valid from creation
	ExpiresAt      time.Time // zero: never expires
	RateLimits     []RateLimit
	Quota          *Quota
	AllowedOrigins []string
	AllowedCIDRs   []netip.Prefix
	// Stages, when set, lists the API stages (or versions) the key may call.
	Stages   []string
	Metadata map[string]any
	// Version increases with every change; PATCH takes it in If-Match.
	Version int64
	// PreviousKeyID links a rotated key to the key it replaced; NextKeyID
	// links the old key to its replacement.
	PreviousKeyID string
	NextKeyID     string
	LastUsedAt    time.Time
}

// StatusAt returns the key's state at now. Revocation wins over everything,
// then disabling, then the validity window.
func (k *Key) StatusAt(now time.Time) Status {
	switch {
	case !k.RevokedAt.IsZero():
		return Revoked
	case !k.Enabled:
		return Disabled
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return Expired
	case !k.NotBefore.IsZero() && now.Before(k.NotBefore):
		return NotYetValid
	}
	return Active
}

// WireStatus is the status an API response shows: not-yet-valid keys are
// reported as active (their notBefore says when they start).
func (k *Key) WireStatus(now time.Time) Status {
	if s := k.StatusAt(now); s != NotYetValid {
		return s
	}
	return Active
}

// APIKeyType maps a wire type to the letters written in the plaintext key.
func (t Type) APIKeyType() apikey.Type {
	if t == Publishable {
		return apikey.Publishable
	}
	return apikey.Secret
}

// TypeOf maps the letters in a plaintext key to the wire type.
func TypeOf(t apikey.Type) Type {
	if t == apikey.Publishable {
		return Publishable
	}
	return Secret
}

// PlanField is the metadata field that names a key's plan. The authorizer
// passes it to the upstream with every allowed request, so it is the one
// piece of metadata a verification reads (and the only one the key's hot
// item holds).
const PlanField = "plan"

// PlanOf returns the key's plan: its metadata's plan when that is a
// string, "" otherwise.
func PlanOf(k *Key) string {
	p, _ := k.Metadata[PlanField].(string)
	return p
}
