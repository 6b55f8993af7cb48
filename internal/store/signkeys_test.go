package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/store"
)

func TestSigningKeysRotateUnderTheRingVersion(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := store.SigningKey{KID: "k1", JWK: []byte(`{"kid":"k1"}`), Source: "local", CreatedAt: f.now, NotBefore: f.now}
	if err := f.s.AddSigningKey(ctx, 0, first, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A second "first" key (a rotation that read the empty ring) loses.
	if err := f.s.AddSigningKey(ctx, 0, store.SigningKey{KID: "k9", JWK: []byte("{}"), NotBefore: f.now}, "", time.Time{}); !fault.Is(err, fault.Conflict) {
		t.Fatalf("stale version: %v, want conflict", err)
	}
	start := f.now.Add(time.Hour)
	retire := start.Add(25 * time.Hour)
	next := store.SigningKey{KID: "k2", JWK: []byte(`{"kid":"k2"}`), Source: "kms:arn", CreatedAt: f.now, NotBefore: start}
	if err := f.s.AddSigningKey(ctx, 1, next, "k1", retire); err != nil {
		t.Fatal(err)
	}
	ring, err := f.s.SigningKeys(ctx)
	if err != nil || ring.Version != 2 || len(ring.Keys) != 2 {
		t.Fatalf("ring %+v, %v", ring, err)
	}
	k1, k2 := ring.Keys[0], ring.Keys[1]
	if k1.KID != "k1" || !k1.NotAfter.Equal(start) || !k1.Expires.Equal(retire.Truncate(time.Second)) || string(k1.JWK) != `{"kid":"k1"}` {
		t.Errorf("retired key %+v", k1)
	}
	if k2.KID != "k2" || k2.Source != "kms:arn" || !k2.NotBefore.Equal(start) || !k2.NotAfter.IsZero() || !k2.Expires.IsZero() {
		t.Errorf("next key %+v", k2)
	}
	// The head item is not a key; a kid cannot name it.
	if err := f.s.AddSigningKey(ctx, 2, store.SigningKey{KID: store.SigningHeadSK, JWK: []byte("{}")}, "", time.Time{}); !fault.Is(err, fault.Invalid) {
		t.Errorf("kid %q: %v", store.SigningHeadSK, err)
	}
}
