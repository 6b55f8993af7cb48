package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"

	"github.com/keygate/keygate/internal/fault"
)

// The JWK members of an Ed25519 key (RFC 8037 section 2).
const (
	jwkKty = "OKP"
	jwkCrv = "Ed25519"
)

// JWK is a public Ed25519 key as a JSON Web Key (RFC 7517, RFC 8037
// section 2: kty OKP, crv Ed25519, x the 32-byte public key), the form the
// table and the JWKS document publish.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set, the body of GET /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// EncodeJWK returns the public JWK of pub, named kid. Only Ed25519 keys
// are accepted: every token is EdDSA.
func EncodeJWK(kid string, pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fault.Errorf(fault.Invalid, "signing keys must be Ed25519")
	}
	return json.Marshal(JWK{Kty: jwkKty, Crv: jwkCrv, X: base64.RawURLEncoding.EncodeToString(pub),
		Kid: kid, Alg: Alg, Use: "sig"})
}

// DecodeJWK reads a public JWK written by EncodeJWK (or any Ed25519 OKP
// JWK for EdDSA signatures). Any other key (an EC key of an earlier ring
// included) is refused, so it can never verify a token.
func DecodeJWK(b []byte) (JWK, ed25519.PublicKey, error) {
	var j JWK
	if err := json.Unmarshal(b, &j); err != nil {
		return JWK{}, nil, fault.Wrap(fault.Invalid, err, "signing key is not a JWK")
	}
	if j.Kty != jwkKty || j.Crv != jwkCrv || (j.Alg != "" && j.Alg != Alg) || j.Kid == "" {
		return JWK{}, nil, fault.Errorf(fault.Invalid, "signing key %q is not an Ed25519 EdDSA key", j.Kid)
	}
	x, err := base64.RawURLEncoding.DecodeString(j.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return JWK{}, nil, fault.Errorf(fault.Invalid, "signing key %q has a bad x", j.Kid)
	}
	return j, ed25519.PublicKey(x), nil
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
