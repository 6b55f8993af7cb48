// Package seal encrypts the few things keygate must keep that hold a
// plaintext key: the stored responses of idempotent issue and rotate
// requests, which a retry gets back whole (the key included) when the
// client lost the first response. A sealed value is bound to its context
// (the associated data, such as the idempotency record it belongs to), so
// it can be neither read from a copy of the table nor moved to another
// record.
//
// Deployed, a KMS key seals (KMS): envelope encryption with a fresh data
// key per value, which only principals the KMS key's policy allows may
// decrypt (the issuer and the rotator, in the stack). So a principal who
// can read the table and every function's configuration (AWS's
// ReadOnlyAccess: Scan, a point-in-time restore, GetFunctionConfiguration)
// can open no sealed value: neither the pepper nor any other variable is
// the key. Locally, a random key kept in the local stack's secrets file
// seals (Local).
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keygate/keygate/internal/fault"
)

// Sealer seals and opens values bound to associated data aad.
type Sealer interface {
	// Seal encrypts plain, bound to aad.
	Seal(ctx context.Context, plain, aad []byte) ([]byte, error)
	// Open decrypts a value Seal made with the same aad. A value it
	// cannot open (another key, another aad, altered) is a fault.Invalid.
	Open(ctx context.Context, sealed, aad []byte) ([]byte, error)
}

// The first byte of a sealed value says which sealer made it.
const (
	formatKMS   = 'K'
	formatLocal = 'L'
)

// KeySize is the size of a Local key and of a KMS data key (AES-256).
const KeySize = 32

// errUnreadable is what every value that cannot be opened is, whatever
// the reason: the caller cannot tell an altered value from another key's.
var errUnreadable = fault.Errorf(fault.Invalid, "the sealed value cannot be opened")

// Local seals with one AES-256-GCM key held by the process: the local
// stack's backend, and the fallback of a process given no key (see
// Random).
type Local struct {
	aead cipher.AEAD
}

// NewLocal returns a local sealer with key (KeySize random bytes).
func NewLocal(key []byte) (*Local, error) {
	if len(key) != KeySize {
		return nil, fault.Errorf(fault.Invalid, "a seal key is %d bytes, not %d", KeySize, len(key))
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	return &Local{aead: aead}, nil
}

// Random returns a local sealer with a key of its own, kept nowhere: what
// it seals only it can open, so retries are answered only by the process
// that served the first request. For tests and a process configured with
// no key; never weaker than the table.
func Random() *Local {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	l, _ := NewLocal(k)
	return l
}

// Seal implements Sealer: 'L', the nonce, the ciphertext.
func (l *Local) Seal(_ context.Context, plain, aad []byte) ([]byte, error) {
	return sealWith(l.aead, []byte{formatLocal}, plain, aad)
}

// Open implements Sealer.
func (l *Local) Open(_ context.Context, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 1 || sealed[0] != formatLocal {
		return nil, errUnreadable
	}
	return openWith(l.aead, sealed[:1], sealed[1:], aad)
}

// KMSClient is the part of the KMS API the KMS sealer uses (kms.Client
// implements it; tests use a fake with function fields).
type KMSClient interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// KMS seals with envelope encryption under a symmetric KMS key: each value
// gets a fresh AES-256 data key from GenerateDataKey, which encrypts it
// (AES-256-GCM, bound to aad) and is kept only encrypted by KMS, next to
// the value; Open asks KMS to decrypt the data key. The KMS encryption
// context holds Use and a digest of aad, so the key policy can allow the
// key for this use alone, CloudTrail records which record each call was
// for (never its content), and KMS refuses a data key moved to another
// record. The function needs kms:GenerateDataKey and kms:Decrypt on the
// key, nothing else: one KMS call per sealed value and per opened one.
type KMS struct {
	Client KMSClient
	KeyID  string
}

// Use is the encryption context's keygate:use value of sealed idempotent
// responses, which the stack's key policy requires.
const Use = "idempotent-response"

// ContextKeys are the encryption context's keys.
const (
	ContextUse = "keygate:use"
	ContextAAD = "keygate:aad"
)

// NewKMS returns the KMS sealer for keyID (an id, key ARN or alias ARN).
func NewKMS(cfg aws.Config, keyID string) *KMS {
	return &KMS{Client: kms.NewFromConfig(cfg), KeyID: keyID}
}

func encryptionContext(aad []byte) map[string]string {
	sum := sha256.Sum256(aad)
	return map[string]string{ContextUse: Use, ContextAAD: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// Seal implements Sealer: 'K', the encrypted data key's length (2 bytes,
// big endian) and the encrypted data key, the nonce, the ciphertext.
func (k *KMS) Seal(ctx context.Context, plain, aad []byte) ([]byte, error) {
	out, err := k.Client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(k.KeyID), KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: encryptionContext(aad),
	})
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, err, "KMS could not make a data key")
	}
	defer clear(out.Plaintext)
	if len(out.Plaintext) != KeySize || len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > 0xffff {
		return nil, fault.Errorf(fault.Internal, "KMS returned an unusable data key")
	}
	aead, err := gcm(out.Plaintext)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 3, 3+len(out.CiphertextBlob))
	head[0] = formatKMS
	binary.BigEndian.PutUint16(head[1:], uint16(len(out.CiphertextBlob)))
	return sealWith(aead, append(head, out.CiphertextBlob...), plain, aad)
}

// Open implements Sealer.
func (k *KMS) Open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 3 || sealed[0] != formatKMS {
		return nil, errUnreadable
	}
	n := int(binary.BigEndian.Uint16(sealed[1:]))
	if len(sealed) < 3+n {
		return nil, errUnreadable
	}
	out, err := k.Client.Decrypt(ctx, &kms.DecryptInput{
		KeyId: aws.String(k.KeyID), CiphertextBlob: sealed[3 : 3+n], EncryptionContext: encryptionContext(aad),
	})
	if err != nil {
		var invalid *kmstypes.InvalidCiphertextException
		if errors.As(err, &invalid) {
			return nil, errUnreadable
		}
		return nil, fault.Wrap(fault.Unavailable, err, "KMS could not decrypt the data key")
	}
	defer clear(out.Plaintext)
	aead, err := gcm(out.Plaintext)
	if err != nil {
		return nil, errUnreadable
	}
	return openWith(aead, sealed[:3+n], sealed[3+n:], aad)
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "seal key")
	}
	return cipher.NewGCM(block)
}

// sealWith appends a random nonce and the ciphertext of plain to head,
// bound to aad and to head itself (so neither the format nor an encrypted
// data key can be swapped).
func sealWith(aead cipher.AEAD, head, plain, aad []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "nonce")
	}
	bound := append(append([]byte{}, aad...), head...)
	return aead.Seal(append(head, nonce...), nonce, plain, bound), nil
}

// openWith opens rest (nonce and ciphertext) that sealWith made after head.
func openWith(aead cipher.AEAD, head, rest, aad []byte) ([]byte, error) {
	ns := aead.NonceSize()
	if len(rest) < ns {
		return nil, errUnreadable
	}
	bound := append(append([]byte{}, aad...), head...)
	plain, err := aead.Open(nil, rest[:ns], rest[ns:], bound)
	if err != nil {
		return nil, errUnreadable
	}
	return plain, nil
}
