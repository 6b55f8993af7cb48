// Package token issues and verifies keygate's access tokens: short-lived
// JWTs signed with EdDSA (Ed25519, RFC 8037) that a client gets in
// exchange for its API key and sends as Authorization: Bearer. The
// authorizer verifies them offline, against public keys it reads once per
// refresh interval, and counts each request against its key's limits,
// quota and usage as it counts the key's own (internal/verify), through
// the same reservations.
//
// Signing keys live in a ring published in the table (internal/store,
// SIGNKEY items): each has a kid, its public key as a JWK, and a window in
// which it signs. Their private halves never leave KMS (deployed) or a file
// under .local/ (the local stack). Rotation publishes the next key ahead of
// its first use and keeps a retired key published until every token it
// signed has expired; see Keyring.
//
// Signature code is golang-jwt's (github.com/golang-jwt/jwt/v5); this
// package only encodes keys as JWKs. Ed25519 rather than ES256 because its
// verification is about a third cheaper, which is what lets one core verify
// 20,000 tokens a second (see docs/benchmarks.md), and KMS signs
// with it too (ECC_NIST_EDWARDS25519).
package token

import (
	"errors"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
)

// Alg is the only signing algorithm: every signing key is Ed25519, so a
// verifier takes the algorithm from the key, never from the token header.
const Alg = "EdDSA"

// Fixed limits. They are not settings because verifiers and signers in
// different functions must agree on them without coordination.
const (
	// Leeway absorbs clock skew between the signer and a verifier when
	// checking exp, nbf and iat.
	Leeway = 30 * time.Second
	// MaxSize is the longest token accepted (and issued), in bytes: a
	// bigger bearer value is refused before any parsing.
	MaxSize = 4096
	// MaxLifetime caps Settings.MaxTTL. A retired signing key stays
	// published for MaxLifetime + Leeway + PublishSlack after it stops
	// signing, so every token it signed expires first, whatever the
	// configured maximum was when it was issued.
	MaxLifetime = 24 * time.Hour
	// PublishSlack is added to a retired key's publication for readers'
	// caches and clock differences.
	PublishSlack = 5 * time.Minute
	// VerifierRefresh is how long a verifier trusts the public keys it
	// read (the authorizer's JWKS cache) and the JWKS document's
	// Cache-Control max-age.
	VerifierRefresh = 5 * time.Minute
	// MaxStaleness bounds how long a verifier keeps using the public keys
	// it last read while it cannot read them again (DynamoDB down or
	// throttled): past it, tokens are refused as unavailable. Stale keys
	// only miss what changed since (a key published later, which fails
	// closed, or one withdrawn early, which must not stay trusted for the
	// length of an outage).
	MaxStaleness = 3 * VerifierRefresh
	// PublishAhead is how long before its first token a new signing key is
	// published: more than every reader's cache (VerifierRefresh, the
	// JWKS max-age, the signer's own ring cache), so that no verifier meets
	// a kid it does not know yet.
	PublishAhead = 15 * time.Minute
)

// Defaults of the settings (the settings registry, internal/config,
// declares them as the token settings' defaults).
const (
	DefaultIssuer   = "keygate"
	DefaultAudience = "keygate"
	DefaultTTL      = 15 * time.Minute
	DefaultMaxTTL   = time.Hour
	DefaultRotation = 30 * 24 * time.Hour
	// DefaultExchangesPerMinute bounds one key's token exchanges per
	// minute: a client needs one token per token lifetime, so this leaves
	// ample room for retries and many processes sharing a key, while one
	// key cannot make the token function call KMS Sign without bound.
	DefaultExchangesPerMinute = 60
)

// Settings are the token settings, read once at cold start (see
// internal/config: KEYGATE_TOKEN_*, KEYGATE_SIGNING_KEY_ROTATION).
type Settings struct {
	// Issuer and Audience are the tokens' iss and aud.
	Issuer   string
	Audience string
	// TTL is a token's lifetime when the request names none; MaxTTL the
	// longest a request may ask for (at most MaxLifetime).
	TTL    time.Duration
	MaxTTL time.Duration
	// Rotation is how long a signing key signs before the next takes over.
	Rotation time.Duration
}

// DefaultSettings returns the settings of a deployment that sets none.
func DefaultSettings() Settings {
	return Settings{Issuer: DefaultIssuer, Audience: DefaultAudience, TTL: DefaultTTL, MaxTTL: DefaultMaxTTL, Rotation: DefaultRotation}
}

// Claims are an access token's claims. Beyond the registered ones (sub is
// the key id), they carry what the authorizer needs to decide and to pass
// on the same context as the key itself would: its owner, type,
// environment, the granted scopes, its plan, and the rules that bind the
// key to stages, origins and addresses.
type Claims struct {
	jwt.RegisteredClaims
	OwnerID     string          `json:"ownerId"`
	Type        key.Type        `json:"type"`
	Environment key.Environment `json:"environment"`
	// Scopes are the granted scopes: a subset of the key's.
	Scopes         []string `json:"scopes"`
	Plan           string   `json:"plan,omitempty"`
	Stages         []string `json:"stages,omitempty"`
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
	AllowedCIDRs   []string `json:"allowedCidrs,omitempty"`
	// KeyHash is the key's hash (internal/apikey, hex): the name of the
	// key's hot item, so that the authorizer counts the token's requests
	// against the key with no lookup. It is a keyed hash (HMAC with the
	// deployment's pepper) of a key the token's holder was given anyway,
	// and reveals nothing of it.
	KeyHash string `json:"kh"`
}

// Key returns the key the claims speak for, as the authorizer checks it:
// identity, hash, scopes and rules from the token; enabled, with no
// validity window of its own (the token's exp and nbf were checked
// already) and no limits: the authorizer counts the token's requests
// against the key's own limits, on its hot item (named by the hash). A
// token without the hash (issued before tokens were counted) is refused,
// so that no token escapes its key's limits.
func (c *Claims) Key() (*key.Key, error) {
	cidrs, err := key.ParseCIDRs(c.AllowedCIDRs)
	if err != nil {
		return nil, err
	}
	h, ok := apikey.ParseHash(c.KeyHash)
	if !ok {
		return nil, errors.New("token has no key hash")
	}
	k := &key.Key{
		ID: c.Subject, OwnerID: c.OwnerID, Type: c.Type, Environment: c.Environment, Hash: h,
		Scopes: c.Scopes, Enabled: true, Stages: c.Stages,
		AllowedOrigins: c.AllowedOrigins, AllowedCIDRs: cidrs,
	}
	if c.Plan != "" {
		k.Metadata = map[string]any{key.PlanField: c.Plan}
	}
	return k, nil
}

// valid checks the claims the library does not: a token must say whose key
// it speaks for and in what terms.
func (c *Claims) valid() bool {
	return key.ValidID(c.Subject) && c.ID != "" && c.OwnerID != "" &&
		(c.Type == key.Secret || c.Type == key.Publishable) &&
		(c.Environment == key.Live || c.Environment == key.Test) &&
		c.IssuedAt != nil && c.ExpiresAt != nil &&
		c.ExpiresAt.Sub(c.IssuedAt.Time) <= MaxLifetime
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }
