package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
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

// KMSClient is the part of the KMS API the KMS signer uses (kms.Client
// implements it; tests use a fake with function fields).
type KMSClient interface {
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// KMSSigner signs with an asymmetric KMS key (ECC_NIST_EDWARDS25519,
// SIGN_VERIFY): one Sign call per token (ED25519_SHA_512 over the raw
// signing input, which MaxSize keeps under KMS's 4096-byte limit for raw
// messages), so the private key never leaves KMS. The function needs
// kms:Sign and kms:GetPublicKey on the key, nothing else.
type KMSSigner struct {
	Client KMSClient
	KeyID  string

	once sync.Once
	pub  ed25519.PublicKey
	err  error
}

// Sign asks KMS for a pure Ed25519 signature (ED25519_SHA_512, MessageType
// RAW: EdDSA hashes the message itself, so there is no digest to send).
// KMS returns it as RFC 8032's 64 bytes, which is already JOSE's form.
func (s *KMSSigner) Sign(ctx context.Context, signingInput string) ([]byte, error) {
	out, err := s.Client.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(s.KeyID),
		Message:          []byte(signingInput),
		MessageType:      kmstypes.MessageTypeRaw,
		SigningAlgorithm: kmstypes.SigningAlgorithmSpecEd25519Sha512,
	})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "KMS could not sign the token")
	}
	if len(out.Signature) != ed25519.SignatureSize {
		return nil, fault.Errorf(fault.Internal, "KMS returned a %d-byte signature, not a 64-byte Ed25519 one", len(out.Signature))
	}
	return out.Signature, nil
}

// Public reads the public key from KMS once (GetPublicKey) and keeps it.
func (s *KMSSigner) Public(ctx context.Context) (ed25519.PublicKey, error) {
	s.once.Do(func() {
		out, err := s.Client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(s.KeyID)})
		if err != nil {
			s.err = fault.Wrap(fault.Unavailable, err, "KMS could not give the public key of %s", s.KeyID)
			return
		}
		pk, err := x509.ParsePKIXPublicKey(out.PublicKey)
		ed, ok := pk.(ed25519.PublicKey)
		if err != nil || !ok {
			s.err = fault.Errorf(fault.Invalid, "KMS key %s is not an ECC_NIST_EDWARDS25519 key", s.KeyID)
			return
		}
		s.pub = ed
	})
	if s.err != nil {
		// Do not keep a transient failure for the life of the process.
		err := s.err
		if fault.Is(err, fault.Unavailable) {
			s.once, s.err = sync.Once{}, nil
		}
		return nil, err
	}
	return s.pub, nil
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

// kmsSource prefixes the source of KMS-held keys.
const kmsSource = "kms:"

// KMSBackend signs with the KMS keys of KEYGATE_SIGNING_KEY. Functions
// cannot create KMS keys (least privilege), so a rotation takes a new kid
// over one of the configured keys: the first that no published kid uses,
// else the one whose last use is oldest. With one key configured a
// rotation renews the kid only; with two (the recommendation) the key
// material alternates too, and each key rests until the kids it signed for
// have left the published set.
type KMSBackend struct {
	Client KMSClient
	Keys   []string

	mu      sync.Mutex
	signers map[string]*KMSSigner
}

func (b *KMSBackend) signer(keyID string) *KMSSigner {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.signers == nil {
		b.signers = map[string]*KMSSigner{}
	}
	s, ok := b.signers[keyID]
	if !ok {
		s = &KMSSigner{Client: b.Client, KeyID: keyID}
		b.signers[keyID] = s
	}
	return s
}

// Create picks a configured KMS key for the new kid.
func (b *KMSBackend) Create(ctx context.Context, _ string, inUse []string) (string, ed25519.PublicKey, error) {
	if len(b.Keys) == 0 {
		return "", nil, fault.Fieldf(EnvSigningKey, "no KMS signing key is configured")
	}
	last := map[string]int{} // source -> index of its newest use
	for i, src := range inUse {
		last[src] = i
	}
	pick, oldest := "", len(inUse)
	for _, k := range b.Keys {
		i, used := last[kmsSource+k]
		if !used {
			pick = k
			break
		}
		if pick == "" || i < oldest {
			pick, oldest = k, i
		}
	}
	pub, err := b.signer(pick).Public(ctx)
	if err != nil {
		return "", nil, err
	}
	return kmsSource + pick, pub, nil
}

// Signer returns the KMS signer of source.
func (b *KMSBackend) Signer(_ context.Context, kid, source string) (Signer, error) {
	if !b.Has(source) {
		return nil, fault.Errorf(fault.Unavailable, "signing key %s lives in %s, which is not among %s", kid, source, EnvSigningKey)
	}
	return b.signer(strings.TrimPrefix(source, kmsSource)), nil
}

// Has reports whether source is one of the configured KMS keys.
func (b *KMSBackend) Has(source string) bool {
	k, ok := strings.CutPrefix(source, kmsSource)
	return ok && slices.Contains(b.Keys, k)
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

// NewBackend returns the backend the settings name: KMS (with the client
// newKMS builds) when EnvSigningKey lists keys, else the local directory
// of EnvSigningDir. With neither, it is an error naming both.
func NewBackend(s Settings, newKMS func() KMSClient) (Backend, error) {
	switch {
	case len(s.KMSKeys) > 0:
		return &KMSBackend{Client: newKMS(), Keys: s.KMSKeys}, nil
	case s.Dir != "":
		return &LocalBackend{Dir: s.Dir}, nil
	}
	return nil, fault.Fieldf(EnvSigningKey, "set %s (KMS keys, deployed) or %s (a directory for local keys, the local stack)", EnvSigningKey, EnvSigningDir)
}
