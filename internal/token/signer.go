package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/fault"
)

// Signer signs a token's signing input (base64url header "." base64url
// claims) with EdDSA (Ed25519, the message itself, no digest) and returns
// the JOSE signature: the 64-byte Ed25519 signature of RFC 8032. The
// private key stays behind it: in KMS, or in this process.
type Signer interface {
	Sign(ctx context.Context, signingInput string) ([]byte, error)
	// Public returns the public key, to check it against the published JWK.
	Public(ctx context.Context) (ed25519.PublicKey, error)
}

// LocalSigner signs with an Ed25519 key held in process: the local stack's
// signer and the tests'. The deployed stack signs with KMS.
type LocalSigner struct {
	key ed25519.PrivateKey
}

// NewLocalSigner returns a signer for an Ed25519 private key.
func NewLocalSigner(k ed25519.PrivateKey) (*LocalSigner, error) {
	if len(k) != ed25519.PrivateKeySize {
		return nil, fault.Errorf(fault.Invalid, "a local signing key must be Ed25519")
	}
	return &LocalSigner{key: k}, nil
}

// Sign signs with golang-jwt's EdDSA.
func (s *LocalSigner) Sign(_ context.Context, signingInput string) ([]byte, error) {
	return jwt.SigningMethodEdDSA.Sign(signingInput, s.key)
}

// Public returns the public key.
func (s *LocalSigner) Public(context.Context) (ed25519.PublicKey, error) {
	return s.key.Public().(ed25519.PublicKey), nil
}

// Backend creates signing keys for rotation and finds the signer of a
// published key by its source.
type Backend interface {
	// Create makes the key material for a new kid and returns its source
	// (stored with the public key) and public key. inUse lists the sources
	// of the keys still published, oldest first, so that a backend with a
	// choice picks material no live kid uses.
	Create(ctx context.Context, kid string, inUse []string) (source string, pub ed25519.PublicKey, err error)
	// Signer returns the signer of a published key.
	Signer(ctx context.Context, kid, source string) (Signer, error)
	// Has reports whether this backend can sign for source at all (a
	// source from a KMS key no longer configured cannot).
	Has(source string) bool
}

// localSource is the source of keys held by a LocalBackend.
const localSource = "local"

// LocalBackend keeps signing keys in Dir, one PEM file (PKCS #8, mode 0600)
// per kid, for the local stack; the token function and the rotator share
// the directory. With Dir empty the keys live in this process only (tests).
type LocalBackend struct {
	Dir string

	mu   sync.Mutex
	keys map[string]*LocalSigner
}

func (b *LocalBackend) path(kid string) string { return filepath.Join(b.Dir, kid+".pem") }

// Create generates an Ed25519 key for kid and persists it.
func (b *LocalBackend) Create(_ context.Context, kid string, _ []string) (string, ed25519.PublicKey, error) {
	pub, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fault.Wrap(fault.Internal, err, "generate signing key")
	}
	if b.Dir != "" {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return "", nil, fault.Wrap(fault.Internal, err, "encode signing key")
		}
		if err := os.MkdirAll(b.Dir, 0o700); err != nil {
			return "", nil, fault.Wrap(fault.Unavailable, err, "create %s", b.Dir)
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(b.path(kid), data, 0o600); err != nil {
			return "", nil, fault.Wrap(fault.Unavailable, err, "write signing key")
		}
	}
	s, _ := NewLocalSigner(k)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keys == nil {
		b.keys = map[string]*LocalSigner{}
	}
	b.keys[kid] = s
	return localSource, pub, nil
}

// Signer returns the key of kid, from memory or from its file.
func (b *LocalBackend) Signer(_ context.Context, kid, source string) (Signer, error) {
	if source != localSource {
		return nil, fault.Errorf(fault.Unavailable, "signing key %s lives in %s, not in the local key directory", kid, source)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.keys[kid]; ok {
		return s, nil
	}
	if b.Dir == "" || strings.ContainsAny(kid, `/\.`) {
		return nil, fault.Errorf(fault.Unavailable, "signing key %s is not held by this process", kid)
	}
	data, err := os.ReadFile(b.path(kid))
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "read signing key %s", kid)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, fault.Errorf(fault.Internal, "signing key file of %s is not PEM", kid)
	}
	pk, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	ed, ok := pk.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fault.Errorf(fault.Internal, "signing key file of %s is not an Ed25519 key", kid)
	}
	s, err := NewLocalSigner(ed)
	if err != nil {
		return nil, err
	}
	if b.keys == nil {
		b.keys = map[string]*LocalSigner{}
	}
	b.keys[kid] = s
	return s, nil
}

// Has reports whether source is a local key.
func (b *LocalBackend) Has(source string) bool { return source == localSource }
