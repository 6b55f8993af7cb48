// Package kmssign signs keygate's access tokens with KMS: an asymmetric
// ECC_NIST_EDWARDS25519 key signs each token (ED25519_SHA_512 over the raw
// signing input), so the private key never leaves KMS. It is the deployed
// stack's token.Backend; the local stack and tests use token.LocalBackend.
// It is its own package so that only the functions that sign or rotate
// (tokens, rotator) link the KMS client: the authorizer verifies tokens
// with token alone.
package kmssign

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/token"
)

// Client is the part of the KMS API the signer uses (kms.Client
// implements it; tests use a fake with function fields).
type Client interface {
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

// Signer signs with an asymmetric KMS key (ECC_NIST_EDWARDS25519,
// SIGN_VERIFY): one Sign call per token (ED25519_SHA_512 over the raw
// signing input, which MaxSize keeps under KMS's 4096-byte limit for raw
// messages), so the private key never leaves KMS. The function needs
// kms:Sign and kms:GetPublicKey on the key, nothing else.
type Signer struct {
	Client Client
	KeyID  string

	once sync.Once
	pub  ed25519.PublicKey
	err  error
}

// Sign asks KMS for a pure Ed25519 signature (ED25519_SHA_512, MessageType
// RAW: EdDSA hashes the message itself, so there is no digest to send).
// KMS returns it as RFC 8032's 64 bytes, which is already JOSE's form.
func (s *Signer) Sign(ctx context.Context, signingInput string) ([]byte, error) {
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
func (s *Signer) Public(ctx context.Context) (ed25519.PublicKey, error) {
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

// kmsSource prefixes the source of KMS-held keys.
const kmsSource = "kms:"

// Backend signs with the KMS keys of KEYGATE_SIGNING_KEY. Functions
// cannot create KMS keys (least privilege), so a rotation takes a new kid
// over one of the configured keys: the first that no published kid uses,
// else the one whose last use is oldest. With one key configured a
// rotation renews the kid only; with two (the recommendation) the key
// material alternates too, and each key rests until the kids it signed for
// have left the published set.
type Backend struct {
	Client Client
	Keys   []string

	mu      sync.Mutex
	signers map[string]*Signer
}

func (b *Backend) signer(keyID string) *Signer {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.signers == nil {
		b.signers = map[string]*Signer{}
	}
	s, ok := b.signers[keyID]
	if !ok {
		s = &Signer{Client: b.Client, KeyID: keyID}
		b.signers[keyID] = s
	}
	return s
}

// Create picks a configured KMS key for the new kid.
func (b *Backend) Create(ctx context.Context, _ string, inUse []string) (string, ed25519.PublicKey, error) {
	if len(b.Keys) == 0 {
		return "", nil, fault.Errorf(fault.Invalid, "no KMS signing key is configured")
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
func (b *Backend) Signer(_ context.Context, kid, source string) (token.Signer, error) {
	if !b.Has(source) {
		return nil, fault.Errorf(fault.Unavailable, "signing key %s lives in %s, which is not among the configured KMS keys", kid, source)
	}
	return b.signer(strings.TrimPrefix(source, kmsSource)), nil
}

// Has reports whether source is one of the configured KMS keys.
func (b *Backend) Has(source string) bool {
	k, ok := strings.CutPrefix(source, kmsSource)
	return ok && slices.Contains(b.Keys, k)
}

// New returns the backend of keys, with a KMS client built from cfg.
func New(cfg aws.Config, keys []string) *Backend {
	return &Backend{Client: kms.NewFromConfig(cfg), Keys: keys}
}
