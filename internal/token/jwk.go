package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"github.com/keygate/keygate/internal/fault"
)

// JWK is a public EC key as a JSON Web Key (RFC 7517, RFC 7518 section 6.2),
// the form the table and the JWKS document publish.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set, the body of GET /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// EncodeJWK returns the public JWK of pub, named kid. Only P-256 keys are
// accepted: every token is ES256.
func EncodeJWK(kid string, pub *ecdsa.PublicKey) ([]byte, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, fault.Errorf(fault.Invalid, "signing keys must be ECDSA P-256")
	}
	b, err := pub.Bytes() // 0x04 || X || Y, 32 bytes each
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, err, "encode public key")
	}
	enc := base64.RawURLEncoding
	return json.Marshal(JWK{Kty: "EC", Crv: "P-256", X: enc.EncodeToString(b[1:33]), Y: enc.EncodeToString(b[33:]),
		Kid: kid, Alg: Alg, Use: "sig"})
}

// DecodeJWK reads a public JWK written by EncodeJWK (or any P-256 EC JWK
// for ES256 signatures), checking that the point is on the curve.
func DecodeJWK(b []byte) (JWK, *ecdsa.PublicKey, error) {
	var j JWK
	if err := json.Unmarshal(b, &j); err != nil {
		return JWK{}, nil, fault.Wrap(fault.Invalid, err, "signing key is not a JWK")
	}
	if j.Kty != "EC" || j.Crv != "P-256" || (j.Alg != "" && j.Alg != Alg) || j.Kid == "" {
		return JWK{}, nil, fault.Errorf(fault.Invalid, "signing key %q is not a P-256 ES256 key", j.Kid)
	}
	x, errX := base64.RawURLEncoding.DecodeString(j.X)
	y, errY := base64.RawURLEncoding.DecodeString(j.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return JWK{}, nil, fault.Errorf(fault.Invalid, "signing key %q has bad coordinates", j.Kid)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return JWK{}, nil, fault.Wrap(fault.Invalid, err, "signing key %q", j.Kid)
	}
	return j, pub, nil
}

// newKID returns a fresh kid: 96 random bits, base64url. A kid is new with
// every rotation even when the key material is reused (one KMS key), so a
// retired kid never verifies again once its publication ends.
func newKID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newJTI returns a token id: 128 random bits, base64url.
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
