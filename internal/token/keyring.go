package token

import (
	"context"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/store"
)

// RingStore is the part of internal/store the keyring uses: read the
// published signing keys, and publish a new one (ending the previous one)
// in one conditional transaction.
type RingStore interface {
	SigningKeys(ctx context.Context) (store.SigningRing, error)
	AddSigningKey(ctx context.Context, version int64, next store.SigningKey, prev string, prevExpires time.Time) error
}

// RingCache is how long the signer trusts its read of the ring. It is well
// under PublishAhead, so a new key's start is always seen in time (the
// start time itself is in the ring, and a key signs exactly from it).
const RingCache = time.Minute

// Keyring is the signing side of the token keys: which key signs now
// (Active), which public keys are published (Published) and the rotation
// (RotateSigningKeys). The ring lives in the table, so every instance of every
// function agrees on it; the private halves stay in the Backend.
//
// Rotation (RotateSigningKeys, run hourly by the rotator; the first key is also made
// by the token function when the ring is empty):
//
//   - the newest key signs for Rotation; PublishAhead before its time is up
//     the next key is published with a start time PublishAhead or more
//     ahead, so every verifier's cache holds it before its first token;
//   - the same transaction ends the previous key's signing at that start
//     and schedules its removal MaxLifetime + Leeway + PublishSlack later:
//     it stays in the JWKS until every token it signed has expired;
//   - concurrent rotations are serialised by the ring's version: one wins.
type Keyring struct {
	st       RingStore
	b        Backend
	rotation time.Duration

	mu      sync.Mutex
	ring    store.SigningRing
	readAt  time.Time
	read    bool
	checked map[string]Signer
}

// NewKeyring returns the keyring over st, signing through b, rotating
// every rotation (DefaultRotation when 0).
func NewKeyring(st RingStore, b Backend, rotation time.Duration) *Keyring {
	if rotation <= 0 {
		rotation = DefaultRotation
	}
	return &Keyring{st: st, b: b, rotation: rotation, checked: map[string]Signer{}}
}

// load returns the ring, read from the table when the cached read is
// older than RingCache (or force).
func (k *Keyring) load(ctx context.Context, now time.Time, force bool) (store.SigningRing, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.read && !force && now.Sub(k.readAt) < RingCache && !now.Before(k.readAt) {
		return k.ring, nil
	}
	r, err := k.st.SigningKeys(ctx)
	if err != nil {
		return store.SigningRing{}, err
	}
	k.ring, k.readAt, k.read = r, now, true
	return r, nil
}

// usable reports whether a published JWK is a key tokens can be signed and
// verified with now (an Ed25519 key).
func usable(jwk []byte) bool {
	_, _, err := DecodeJWK(jwk)
	return err == nil
}

// live returns the keys still published at now.
func live(keys []store.SigningKey, now time.Time) []store.SigningKey {
	var out []store.SigningKey
	for _, sk := range keys {
		if sk.Expires.IsZero() || now.Before(sk.Expires) {
			out = append(out, sk)
		}
	}
	return out
}

// active returns the key that signs at now, or nil: the latest started
// key whose signing has not ended.
func active(keys []store.SigningKey, now time.Time) *store.SigningKey {
	var cur *store.SigningKey
	for i := range keys {
		sk := &keys[i]
		if !sk.NotBefore.After(now) && (sk.NotAfter.IsZero() || now.Before(sk.NotAfter)) &&
			(sk.Expires.IsZero() || now.Before(sk.Expires)) {
			cur = sk
		}
	}
	return cur
}

// Published returns the public keys verifiers must know at now: every key
// not past its publication, including the next one before it starts.
func (k *Keyring) Published(ctx context.Context, now time.Time) ([]store.SigningKey, error) {
	r, err := k.load(ctx, now, false)
	if err != nil {
		return nil, err
	}
	return live(r.Keys, now), nil
}

// Active returns the kid and signer that sign at now. When the ring is
// empty (a new deployment) it publishes the first key itself, which
// starts at once. The signer's public key is checked against the
// published JWK once per kid, so a misconfigured key never signs tokens
// nobody can verify.
func (k *Keyring) Active(ctx context.Context, now time.Time) (string, Signer, error) {
	r, err := k.load(ctx, now, false)
	if err != nil {
		return "", nil, err
	}
	cur := active(r.Keys, now)
	if cur == nil {
		if len(live(r.Keys, now)) == 0 {
			if _, err := k.RotateSigningKeys(ctx, now); err != nil {
				return "", nil, err
			}
		}
		if r, err = k.load(ctx, now, true); err != nil {
			return "", nil, err
		}
		if cur = active(r.Keys, now); cur == nil {
			return "", nil, fault.Errorf(fault.Unavailable, "no signing key is active yet")
		}
	}
	k.mu.Lock()
	s, ok := k.checked[cur.KID]
	k.mu.Unlock()
	if ok {
		return cur.KID, s, nil
	}
	_, published, err := DecodeJWK(cur.JWK)
	if err != nil {
		// An ES256 key of a ring from before EdDSA: the rotator's next
		// run publishes its replacement (see RotateSigningKeys).
		return "", nil, fault.Wrap(fault.Unavailable, err, "signing key %s cannot sign EdDSA tokens", cur.KID)
	}
	s, err = k.b.Signer(ctx, cur.KID, cur.Source)
	if err != nil {
		return "", nil, err
	}
	pub, err := s.Public(ctx)
	if err != nil {
		return "", nil, err
	}
	if !published.Equal(pub) {
		return "", nil, fault.Errorf(fault.Internal, "signing key %s: the published public key is not the signer's", cur.KID)
	}
	k.mu.Lock()
	k.checked[cur.KID] = s
	k.mu.Unlock()
	return cur.KID, s, nil
}

// Rotation says what RotateSigningKeys did: the kid it published ("" when nothing
// was due), when that key starts signing, and the kid it retires.
type Rotation struct {
	Published string    `json:"published,omitempty"`
	StartsAt  time.Time `json:"startsAt,omitzero"`
	Retired   string    `json:"retired,omitempty"`
}

// RotateSigningKeys publishes the next signing key when one is due (see
// Keyring): at once on an empty ring, PublishAhead ahead when the newest
// key's material is no longer available or its public key is not one this
// version signs with (an ES256 key of a ring from before EdDSA), otherwise
// when the newest key has signed for the rotation interval less
// PublishAhead. It is idempotent: running it again, or concurrently,
// publishes nothing more.
func (k *Keyring) RotateSigningKeys(ctx context.Context, now time.Time) (Rotation, error) {
	r, err := k.load(ctx, now, true)
	if err != nil {
		return Rotation{}, err
	}
	keys := live(r.Keys, now)
	var start time.Time
	var newest *store.SigningKey
	if n := len(keys); n > 0 {
		newest = &keys[n-1]
	}
	switch {
	case newest == nil:
		start = now
	case newest.NotBefore.After(now):
		return Rotation{}, nil // the next key is published and waits for its start
	case !k.b.Has(newest.Source) || !usable(newest.JWK):
		start = now.Add(PublishAhead)
	case now.Before(newest.NotBefore.Add(k.rotation - PublishAhead)):
		return Rotation{}, nil
	default:
		start = newest.NotBefore.Add(k.rotation)
		if ahead := now.Add(PublishAhead); start.Before(ahead) {
			start = ahead
		}
	}
	inUse := make([]string, len(keys))
	for i, sk := range keys {
		inUse[i] = sk.Source
	}
	kid := newKID()
	source, pub, err := k.b.Create(ctx, kid, inUse)
	if err != nil {
		return Rotation{}, err
	}
	jwk, err := EncodeJWK(kid, pub)
	if err != nil {
		return Rotation{}, err
	}
	next := store.SigningKey{KID: kid, JWK: jwk, Source: source, CreatedAt: now, NotBefore: start.Truncate(time.Millisecond)}
	rot := Rotation{Published: kid, StartsAt: next.NotBefore}
	var prevExpires time.Time
	if newest != nil {
		rot.Retired = newest.KID
		prevExpires = next.NotBefore.Add(MaxLifetime + Leeway + PublishSlack)
	}
	err = k.st.AddSigningKey(ctx, r.Version, next, rot.Retired, prevExpires)
	if fault.Is(err, fault.Conflict) {
		return Rotation{}, nil // another rotation won; its key is the next one
	}
	if err != nil {
		return Rotation{}, err
	}
	k.mu.Lock()
	k.read = false
	k.mu.Unlock()
	return rot, nil
}
