package seal_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sort"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/seal"
)

var ctx = context.Background()

// fakeKMS is a hand-written KMS client with function fields, whose
// defaults behave as KMS does for one symmetric key: GenerateDataKey
// returns a random AES-256 data key and that key encrypted under the KMS
// key, bound to the encryption context; Decrypt gives the data key back
// only for the same key id and encryption context, and refuses anything
// else as InvalidCiphertextException.
type fakeKMS struct {
	GenerateDataKeyFn func(context.Context, *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error)
	DecryptFn         func(context.Context, *kms.DecryptInput) (*kms.DecryptOutput, error)
	generated, opened atomic.Int64
}

func (f *fakeKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, _ ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	f.generated.Add(1)
	return f.GenerateDataKeyFn(ctx, in)
}

func (f *fakeKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, _ ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	f.opened.Add(1)
	return f.DecryptFn(ctx, in)
}

func newFakeKMS(t testing.TB, keyID string) *fakeKMS {
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	block, _ := aes.NewCipher(master)
	aead, _ := cipher.NewGCM(block)
	bind := func(id string, ec map[string]string) []byte {
		keys := make([]string, 0, len(ec))
		for k := range ec {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b, _ := json.Marshal([]any{id, keys, ec})
		return b
	}
	return &fakeKMS{
		GenerateDataKeyFn: func(_ context.Context, in *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
			if aws.ToString(in.KeyId) != keyID || in.KeySpec != kmstypes.DataKeySpecAes256 {
				return nil, &kmstypes.NotFoundException{Message: aws.String("no such key")}
			}
			dk := make([]byte, 32)
			_, _ = rand.Read(dk)
			nonce := make([]byte, aead.NonceSize())
			_, _ = rand.Read(nonce)
			blob := aead.Seal(nonce, nonce, dk, bind(keyID, in.EncryptionContext))
			return &kms.GenerateDataKeyOutput{Plaintext: bytes.Clone(dk), CiphertextBlob: blob, KeyId: in.KeyId}, nil
		},
		DecryptFn: func(_ context.Context, in *kms.DecryptInput) (*kms.DecryptOutput, error) {
			ns := aead.NonceSize()
			if len(in.CiphertextBlob) < ns {
				return nil, &kmstypes.InvalidCiphertextException{Message: aws.String("invalid ciphertext")}
			}
			dk, err := aead.Open(nil, in.CiphertextBlob[:ns], in.CiphertextBlob[ns:], bind(aws.ToString(in.KeyId), in.EncryptionContext))
			if err != nil {
				return nil, &kmstypes.InvalidCiphertextException{Message: aws.String("invalid ciphertext")}
			}
			return &kms.DecryptOutput{Plaintext: dk, KeyId: in.KeyId}, nil
		},
	}
}

// Each sealer opens what it sealed with the same associated data, and
// nothing else: another aad, an altered byte anywhere, another sealer's
// value, another key; the sealed bytes never show the plaintext.
func TestSealersOpenOnlyTheirOwnValuesForTheirOwnRecord(t *testing.T) {
	fake := newFakeKMS(t, "arn:aws:kms:eu-west-1:123456789012:key/seal")
	local, err := seal.NewLocal(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	sealers := map[string]seal.Sealer{
		"kms":   &seal.KMS{Client: fake, KeyID: "arn:aws:kms:eu-west-1:123456789012:key/seal"},
		"local": local,
	}
	plain := []byte(`{"key":"kg_sk_live_EsA0xw1dZKb2vVNox6aPx6nkyQS0qcSITo9FoSc2Ztm2F8sYB"}`)
	aad := []byte("IDEM#issue#retry-1\x00digest")
	for name, s := range sealers {
		sealed, err := s.Seal(ctx, plain, aad)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if bytes.Contains(sealed, []byte("kg_sk_live")) || bytes.Contains(sealed, plain[10:30]) {
			t.Fatalf("%s: the sealed value shows the plaintext", name)
		}
		if got, err := s.Open(ctx, sealed, aad); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: open: %q %v", name, got, err)
		}
		if _, err := s.Open(ctx, sealed, []byte("IDEM#issue#retry-2\x00digest")); !fault.Is(err, fault.Invalid) {
			t.Errorf("%s: opened for another record: %v", name, err)
		}
		for i := range sealed {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x01
			if _, err := s.Open(ctx, bad, aad); !fault.Is(err, fault.Invalid) {
				t.Fatalf("%s: byte %d altered, opened anyway: %v", name, i, err)
			}
		}
		for other, o := range sealers {
			if other != name {
				if _, err := o.Open(ctx, sealed, aad); !fault.Is(err, fault.Invalid) {
					t.Errorf("%s opened a value %s sealed: %v", other, name, err)
				}
			}
		}
	}
	if _, err := seal.Random().Open(ctx, mustSeal(t, local, plain, aad), aad); !fault.Is(err, fault.Invalid) {
		t.Errorf("another local key opened the value: %v", err)
	}
	if _, err := seal.NewLocal([]byte("short")); err == nil {
		t.Error("NewLocal took a short key")
	}
}

func mustSeal(t *testing.T, s seal.Sealer, plain, aad []byte) []byte {
	t.Helper()
	b, err := s.Seal(ctx, plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The KMS sealer makes one GenerateDataKey per value and one Decrypt per
// opening, both for the configured key and with an encryption context of
// the use and a digest of the record (never the record or the plaintext,
// which CloudTrail would log); a KMS failure is unavailable, not
// unreadable, so a retry can succeed.
func TestKMSSealerCallsAndFailures(t *testing.T) {
	const keyID = "alias/keygate-seal"
	fake := newFakeKMS(t, keyID)
	var contexts []map[string]string
	gen, dec := fake.GenerateDataKeyFn, fake.DecryptFn
	fake.GenerateDataKeyFn = func(c context.Context, in *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
		contexts = append(contexts, in.EncryptionContext)
		return gen(c, in)
	}
	fake.DecryptFn = func(c context.Context, in *kms.DecryptInput) (*kms.DecryptOutput, error) {
		if aws.ToString(in.KeyId) != keyID {
			t.Errorf("Decrypt for key %q", aws.ToString(in.KeyId))
		}
		contexts = append(contexts, in.EncryptionContext)
		return dec(c, in)
	}
	s := &seal.KMS{Client: fake, KeyID: keyID}
	aad := []byte("IDEM#rotate:key_1#abc\x00digest")
	sealed := mustSeal(t, s, []byte("secret response"), aad)
	if _, err := s.Open(ctx, sealed, aad); err != nil {
		t.Fatal(err)
	}
	if fake.generated.Load() != 1 || fake.opened.Load() != 1 {
		t.Fatalf("%d GenerateDataKey, %d Decrypt; want 1 and 1", fake.generated.Load(), fake.opened.Load())
	}
	for _, ec := range contexts {
		b, _ := json.Marshal(ec)
		if ec[seal.ContextUse] != seal.Use || len(ec[seal.ContextAAD]) != 43 || bytes.Contains(b, []byte("rotate")) {
			t.Errorf("encryption context %s", b)
		}
	}
	fake.DecryptFn = func(context.Context, *kms.DecryptInput) (*kms.DecryptOutput, error) {
		return nil, errors.New("dial tcp: KMS unreachable")
	}
	if _, err := s.Open(ctx, sealed, aad); !fault.Is(err, fault.Unavailable) {
		t.Errorf("KMS down on open: %v, want unavailable", err)
	}
	fake.GenerateDataKeyFn = func(context.Context, *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
		return nil, errors.New("AccessDeniedException")
	}
	if _, err := s.Seal(ctx, []byte("x"), aad); !fault.Is(err, fault.Unavailable) {
		t.Errorf("KMS refusing on seal: %v, want unavailable", err)
	}
}
