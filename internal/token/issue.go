package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

// SignerSource yields the signer of the moment (Keyring implements it).
type SignerSource interface {
	Active(ctx context.Context, now time.Time) (kid string, s Signer, err error)
}

// Issuer issues access tokens for keys.
type Issuer struct {
	keys SignerSource
	s    Settings
}

// NewIssuer returns an issuer signing with keys, under settings s.
func NewIssuer(keys SignerSource, s Settings) *Issuer {
	return &Issuer{keys: keys, s: s}
}

// Request is what a caller asks for: a lifetime (0: the default) and
// scopes (nil: all of the key's).
type Request struct {
	TTL    time.Duration
	Scopes []string
}

// Issued is an issued token.
type Issued struct {
	Token     string
	ID        string
	ExpiresAt time.Time
}

// Errors of Issue beyond fault codes: the HTTP handler maps them to
// problems.
var (
	// ErrScope: the request names a scope the key does not have.
	ErrScope = fault.Errorf(fault.Invalid, "a token can only carry scopes the key has")
)

// Issue signs a token for k, which must be active at now. The token's
// lifetime is the requested one (at most MaxTTL: more is refused), cut
// short at the key's own expiry; its scopes are the requested ones, each
// of which the key must have (asking for more is refused with ErrScope).
func (is *Issuer) Issue(ctx context.Context, k *key.Key, r Request, now time.Time) (Issued, error) {
	if st := k.StatusAt(now); st != key.Active {
		return Issued{}, fault.Errorf(fault.Invalid, "the key is %s", st)
	}
	ttl := r.TTL
	if ttl == 0 {
		ttl = is.s.TTL
	}
	if ttl < time.Second || ttl > is.s.MaxTTL {
		return Issued{}, fault.Fieldf("ttlSeconds", "must be from 1 to %s", seconds(is.s.MaxTTL))
	}
	scopes := k.Scopes
	if r.Scopes != nil {
		for _, s := range r.Scopes {
			if !slices.Contains(k.Scopes, s) {
				return Issued{}, ErrScope
			}
		}
		scopes = slices.Compact(slices.Sorted(slices.Values(r.Scopes)))
	}
	iat := now.Truncate(time.Second)
	exp := iat.Add(ttl)
	if !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(exp) {
		exp = k.ExpiresAt.Truncate(time.Second)
	}
	if !exp.After(now) {
		return Issued{}, fault.Errorf(fault.Invalid, "the key is %s", key.Expired)
	}
	plan := key.PlanOf(k)
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: is.s.Issuer, Subject: k.ID, Audience: jwt.ClaimStrings{is.s.Audience},
			IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp), ID: newJTI(),
		},
		OwnerID: k.OwnerID, Type: k.Type, Environment: k.Environment,
		Scopes: orEmpty(scopes), Plan: plan, Stages: k.Stages, AllowedOrigins: k.AllowedOrigins,
		AllowedCIDRs: key.FormatCIDRs(k.AllowedCIDRs), KeyHash: k.Hash.String(),
	}
	kid, signer, err := is.keys.Active(ctx, now)
	if err != nil {
		return Issued{}, err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = kid
	input, err := t.SigningString()
	if err != nil {
		return Issued{}, fault.Wrap(fault.Internal, err, "encode token")
	}
	// Refused before signing: the signature's length is fixed, and KMS
	// takes raw messages of at most 4096 bytes, which this also keeps to.
	if len(input)+len(".")+sigLen > MaxSize {
		return Issued{}, fault.Errorf(fault.Invalid, "the key's scopes, stages, origins and CIDRs make a token longer than %d bytes", MaxSize)
	}
	sig, err := signer.Sign(ctx, input)
	if err != nil {
		return Issued{}, err
	}
	tok := input + "." + t.EncodeSegment(sig)
	return Issued{Token: tok, ID: c.ID, ExpiresAt: exp}, nil
}

// sigLen is the length of a token's signature segment: 64 bytes of
// Ed25519 signature, base64url without padding.
var sigLen = base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize)

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
