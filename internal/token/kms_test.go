package token_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/token/kmssign"
)

// fakeKMS is a hand-written KMS client: function fields, with a default
// that behaves like KMS for a set of ECC_NIST_EDWARDS25519 keys (real
// Ed25519 signatures of the raw message, 64 bytes as RFC 8032 has them;
// DER SubjectPublicKeyInfo public keys).
type fakeKMS struct {
	SignFn         func(context.Context, *kms.SignInput) (*kms.SignOutput, error)
	GetPublicKeyFn func(context.Context, *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error)
	signs          atomic.Int64
}

func (f *fakeKMS) Sign(ctx context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	f.signs.Add(1)
	return f.SignFn(ctx, in)
}

func (f *fakeKMS) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	return f.GetPublicKeyFn(ctx, in)
}

func newFakeKMS(t testing.TB, ids ...string) *fakeKMS {
	t.Helper()
	keys := map[string]ed25519.PrivateKey{}
	for _, id := range ids {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
	}
	return &fakeKMS{
		SignFn: func(_ context.Context, in *kms.SignInput) (*kms.SignOutput, error) {
			k, ok := keys[aws.ToString(in.KeyId)]
			if !ok {
				return nil, errors.New("NotFoundException")
			}
			if in.MessageType != kmstypes.MessageTypeRaw || in.SigningAlgorithm != kmstypes.SigningAlgorithmSpecEd25519Sha512 ||
				len(in.Message) == 0 || len(in.Message) > 4096 {
				return nil, errors.New("ValidationException: want an ED25519_SHA_512 signature of a RAW message of 1 to 4096 bytes")
			}
			sig := ed25519.Sign(k, in.Message)
			return &kms.SignOutput{Signature: sig, KeyId: in.KeyId, SigningAlgorithm: in.SigningAlgorithm}, nil
		},
		GetPublicKeyFn: func(_ context.Context, in *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
			k, ok := keys[aws.ToString(in.KeyId)]
			if !ok {
				return nil, errors.New("NotFoundException")
			}
			der, err := x509.MarshalPKIXPublicKey(k.Public())
			return &kms.GetPublicKeyOutput{PublicKey: der, KeyId: in.KeyId}, err
		},
	}
}

// TestKMSSignedTokensVerify signs through the KMS signer (a fake KMS that
// makes real Ed25519 signatures) and verifies with golang-jwt.
func TestKMSSignedTokensVerify(t *testing.T) {
	f := newFixture(t)
	fk := newFakeKMS(t, "arn:aws:kms:eu-west-1:111122223333:key/a")
	ring := token.NewKeyring(f.admin, &kmssign.Backend{Client: fk, Keys: []string{"arn:aws:kms:eu-west-1:111122223333:key/a"}}, 0)
	issuer := token.NewIssuer(ring, f.settings)
	for i := range 50 {
		is, err := issuer.Issue(ctx, newKey(), token.Request{}, f.clock())
		if err != nil {
			t.Fatal(err)
		}
		if r := f.verifier.Verify(ctx, is.Token); r.Reason != "" {
			t.Fatalf("token %d signed by KMS: %s", i, r.Reason)
		}
	}
	if fk.signs.Load() != 50 {
		t.Errorf("%d KMS Sign calls for 50 tokens", fk.signs.Load())
	}
	ring1, _ := f.admin.SigningKeys(ctx)
	if len(ring1.Keys) != 1 || ring1.Keys[0].Source != "kms:arn:aws:kms:eu-west-1:111122223333:key/a" ||
		bytes.Contains(ring1.Keys[0].JWK, []byte(`"d"`)) {
		t.Errorf("published key: %+v", ring1.Keys)
	}

	// KMS failing is unavailable, not a bad token.
	fk.SignFn = func(context.Context, *kms.SignInput) (*kms.SignOutput, error) {
		return nil, errors.New("KMSInternalException")
	}
	if _, err := issuer.Issue(ctx, newKey(), token.Request{}, f.clock()); !fault.Is(err, fault.Unavailable) {
		t.Errorf("KMS down: %v, want unavailable", err)
	}
}

func TestKMSRotationAlternatesKeysAndReplacesAMissingOne(t *testing.T) {
	f := newFixture(t)
	a, b := "alias-a", "alias-b"
	fk := newFakeKMS(t, a, b, "alias-c")
	const rotation = 48 * time.Hour
	ring := token.NewKeyring(f.admin, &kmssign.Backend{Client: fk, Keys: []string{a, b}}, rotation)
	var sources []string
	for range 3 {
		rot, err := ring.RotateSigningKeys(ctx, f.clock())
		if err != nil || rot.Published == "" {
			t.Fatalf("rotation: %+v %v", rot, err)
		}
		r, _ := f.admin.SigningKeys(ctx)
		sources = append(sources, r.Keys[len(r.Keys)-1].Source)
		f.advance(rotation)
	}
	if got := strings.Join(sources, ","); got != "kms:alias-a,kms:alias-b,kms:alias-a" {
		t.Errorf("KMS keys by rotation: %s; want a new key while the other's kids are published", got)
	}

	// The stack replaced the keys: the newest key's KMS key is gone, so
	// the next run publishes a replacement ahead of its use right away.
	moved := token.NewKeyring(f.admin, &kmssign.Backend{Client: fk, Keys: []string{"alias-c"}}, rotation)
	now := f.clock().Add(-rotation + time.Hour) // well inside the interval
	if _, _, err := moved.Active(ctx, now); err == nil {
		t.Error("signed with a KMS key that is no longer configured")
	}
	rot, err := moved.RotateSigningKeys(ctx, now)
	if err != nil || rot.Published == "" || !rot.StartsAt.Equal(now.Add(token.PublishAhead).Truncate(time.Millisecond)) {
		t.Fatalf("replacement: %+v, %v", rot, err)
	}
	if kid, _, err := moved.Active(ctx, rot.StartsAt); err != nil || kid != rot.Published {
		t.Errorf("after its start the replacement signs: %s, %v", kid, err)
	}
}

func TestKMSPublicKeyMustMatchThePublishedOne(t *testing.T) {
	f := newFixture(t)
	fk := newFakeKMS(t, "k")
	ring := token.NewKeyring(f.admin, &kmssign.Backend{Client: fk, Keys: []string{"k"}}, 0)
	if _, err := ring.RotateSigningKeys(ctx, f.clock()); err != nil {
		t.Fatal(err)
	}
	// Same alias, other key material (say, the alias was repointed).
	other := newFakeKMS(t, "k")
	ring = token.NewKeyring(f.admin, &kmssign.Backend{Client: other, Keys: []string{"k"}}, 0)
	if _, _, err := ring.Active(ctx, f.clock()); err == nil || other.signs.Load() != 0 {
		t.Errorf("a signer whose public key is not the published one was used: %v", err)
	}
}

// TestKMSKeyMustBeEd25519: a KMS key of another spec (the earlier P-256
// one, say) never publishes a key, and a signature that is not Ed25519's
// 64 bytes (a DER ECDSA one) never makes a token.
func TestKMSKeyMustBeEd25519(t *testing.T) {
	f := newFixture(t)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fk := newFakeKMS(t, "k")
	good := fk.GetPublicKeyFn
	fk.GetPublicKeyFn = func(_ context.Context, in *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
		der, err := x509.MarshalPKIXPublicKey(&p256.PublicKey)
		return &kms.GetPublicKeyOutput{PublicKey: der, KeyId: in.KeyId}, err
	}
	ring := token.NewKeyring(f.admin, &kmssign.Backend{Client: fk, Keys: []string{"k"}}, 0)
	if _, err := ring.RotateSigningKeys(ctx, f.clock()); !fault.Is(err, fault.Invalid) {
		t.Errorf("a P-256 KMS key: %v, want invalid", err)
	}
	if r, _ := f.admin.SigningKeys(ctx); len(r.Keys) != 0 {
		t.Errorf("a P-256 KMS key was published: %+v", r.Keys)
	}

	fk.GetPublicKeyFn = good
	ring = token.NewKeyring(f.admin, &kmssign.Backend{Client: fk, Keys: []string{"k"}}, 0)
	issuer := token.NewIssuer(ring, f.settings)
	for name, sig := range map[string][]byte{"DER ECDSA": mustSignASN1(t, p256), "short": make([]byte, 63), "empty": nil} {
		fk.SignFn = func(_ context.Context, in *kms.SignInput) (*kms.SignOutput, error) {
			return &kms.SignOutput{Signature: sig, KeyId: in.KeyId, SigningAlgorithm: in.SigningAlgorithm}, nil
		}
		if is, err := issuer.Issue(ctx, newKey(), token.Request{}, f.clock()); !fault.Is(err, fault.Internal) || is.Token != "" {
			t.Errorf("%s signature from KMS: token %q, %v; want none, internal", name, is.Token, err)
		}
	}
}

func mustSignASN1(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := ecdsa.SignASN1(rand.Reader, k, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return der
}
