package token_test

import (
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

func kids(keys []store.SigningKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

// TestRotationPublishesAheadAndRetiresAfterEveryToken walks a signing key
// through its life: the first key, the next one published ahead of its
// start, the switch, and the old key's publication until every token it
// signed has expired.
func TestRotationPublishesAheadAndRetiresAfterEveryToken(t *testing.T) {
	f := newFixture(t)
	const rotation = 24 * time.Hour
	ring := token.NewKeyring(f.admin, f.backend, rotation)
	issuer := token.NewIssuer(ring, f.settings)

	first, err := ring.RotateSigningKeys(ctx, f.clock())
	if err != nil || first.Published == "" || !first.StartsAt.Equal(t0) || first.Retired != "" {
		t.Fatalf("first rotation on an empty ring: %+v, %v", first, err)
	}
	if again, err := ring.RotateSigningKeys(ctx, f.clock()); err != nil || again.Published != "" {
		t.Fatalf("a second run publishes nothing: %+v, %v", again, err)
	}
	k := newKey()

	// Not due until PublishAhead before the interval ends.
	f.advance(rotation - token.PublishAhead - time.Minute)
	if r, _ := ring.RotateSigningKeys(ctx, f.clock()); r.Published != "" {
		t.Fatalf("rotated early: %+v", r)
	}
	f.advance(time.Minute)
	due := f.clock()
	next, err := ring.RotateSigningKeys(ctx, due)
	if err != nil || next.Published == "" || next.Retired != first.Published {
		t.Fatalf("due rotation: %+v, %v", next, err)
	}
	if !next.StartsAt.Equal(t0.Add(rotation)) || next.StartsAt.Before(due.Add(token.PublishAhead)) {
		t.Errorf("next key starts at %v; want the interval's end, at least PublishAhead after %v", next.StartsAt, due)
	}
	pub, _ := ring.Published(ctx, due)
	if got := kids(pub); len(got) != 2 || got[1] != next.Published {
		t.Errorf("published before the switch: %v, want both keys", got)
	}
	// The old key keeps signing until the start; a verifier that read the
	// ring now knows the next key before its first token.
	old, err := issuer.Issue(ctx, k, token.Request{TTL: time.Hour}, f.clock())
	if err != nil || kidOf(t, old.Token) != first.Published {
		t.Fatalf("issue with the first key: %v", err)
	}
	v := token.NewVerifier(f.counted, "keygate", "keygate", f.clock)
	if r := v.Verify(ctx, old.Token); r.Reason != "" {
		t.Fatalf("token of the first key: %s", r.Reason)
	}
	if is, _ := issuer.Issue(ctx, k, token.Request{}, f.clock()); kidOf(t, is.Token) != first.Published {
		t.Error("the next key signed before its start")
	}
	f.advance(next.StartsAt.Sub(f.clock()) - time.Minute)
	if r := v.Verify(ctx, old.Token); r.Reason != "" || r.Calls != 1 {
		t.Fatalf("token of the first key after a refresh interval: %q, %d calls", r.Reason, r.Calls)
	}
	f.advance(time.Minute)
	late, err := issuer.Issue(ctx, k, token.Request{TTL: time.Hour}, f.clock())
	if err != nil || kidOf(t, late.Token) != next.Published {
		t.Fatalf("after the start the next key signs: %v", err)
	}
	before := f.calls.Total()
	if r := v.Verify(ctx, late.Token); r.Reason != "" || f.calls.Total() != before {
		t.Errorf("first token of the next key: %q, %d calls; want allowed from the cached set", r.Reason, f.calls.Total()-before)
	}
	// A token claiming the retired key signed it after its end is refused.
	f.advance(2 * time.Minute)
	forged := claimsOf(t, late.Token)
	forged.IssuedAt.Time = f.clock()
	if r := v.Verify(ctx, sign(t, f.signer(t, first.Published), map[string]any{"kid": first.Published}, forged)); r.Reason != gateway.UnknownKey {
		t.Errorf("retired key signing after its end: %q, want unknown_key", r.Reason)
	}

	// The first key stays published until every token it could have
	// signed has expired, then leaves.
	retire := next.StartsAt.Add(token.MaxLifetime + token.Leeway + token.PublishSlack)
	f.advance(retire.Sub(f.clock()) - time.Second)
	if pub, _ := ring.Published(ctx, f.clock()); len(pub) != 2 {
		t.Errorf("first key left the set early: %v", kids(pub))
	}
	f.advance(2 * time.Second)
	ring2 := token.NewKeyring(f.admin, f.backend, rotation)
	if pub, _ := ring2.Published(ctx, f.clock()); len(pub) != 1 || pub[0].KID != next.Published {
		t.Errorf("after retirement the set is %v, want only %s", kids(pub), next.Published)
	}
}

func TestConcurrentRotationsPublishOneKey(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	results := make([]token.Rotation, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := token.NewKeyring(f.admin, f.backend, 0) // one per "instance"
			rot, err := r.RotateSigningKeys(ctx, f.clock())
			if err != nil {
				t.Error(err)
			}
			results[i] = rot
		}()
	}
	wg.Wait()
	published := 0
	for _, r := range results {
		if r.Published != "" {
			published++
		}
	}
	ring, err := f.admin.SigningKeys(ctx)
	if err != nil || published != 1 || len(ring.Keys) != 1 || ring.Version != 1 {
		t.Errorf("%d rotations reported a key, ring %+v (%v); want exactly one", published, ring, err)
	}
}

func TestFirstTokenPublishesTheFirstKey(t *testing.T) {
	f := newFixture(t)
	if ring, _ := f.admin.SigningKeys(ctx); len(ring.Keys) != 0 {
		t.Fatal("fresh table has signing keys")
	}
	is := f.issue(t, newKey(), token.Request{})
	ring, _ := f.admin.SigningKeys(ctx)
	if len(ring.Keys) != 1 || ring.Keys[0].KID != kidOf(t, is.Token) {
		t.Errorf("ring after the first token: %+v", ring)
	}
}

func TestLocalKeysPersistAcrossProcesses(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	ring := token.NewKeyring(f.admin, &token.LocalBackend{Dir: dir}, 0)
	rot, err := ring.RotateSigningKeys(ctx, f.clock())
	if err != nil {
		t.Fatal(err)
	}
	// Another process (the token function beside the rotator) signs with
	// the key from the directory.
	other := token.NewIssuer(token.NewKeyring(f.admin, &token.LocalBackend{Dir: dir}, 0), f.settings)
	is, err := other.Issue(ctx, newKey(), token.Request{}, f.clock())
	if err != nil || kidOf(t, is.Token) != rot.Published {
		t.Fatalf("issue from the persisted key: %v", err)
	}
	if r := f.verifier.Verify(ctx, is.Token); r.Reason != "" {
		t.Errorf("token from the persisted key: %s", r.Reason)
	}
	// Without the directory the key is not there: no token, no guess.
	stranger := token.NewIssuer(token.NewKeyring(f.admin, &token.LocalBackend{Dir: t.TempDir()}, 0), f.settings)
	if _, err := stranger.Issue(ctx, newKey(), token.Request{}, f.clock()); err == nil {
		t.Error("a process without the key file signed a token")
	}
}

// TestES256RingIsReplacedByAnEd25519Key: a ring from before EdDSA (its
// newest key an ES256 one, still signing in the local backend's source) is
// never used to sign; the next rotation run publishes an Ed25519 key
// PublishAhead later, which then signs tokens that verify.
func TestES256RingIsReplacedByAnEd25519Key(t *testing.T) {
	f := newFixture(t)
	es := store.SigningKey{KID: "es256-kid", Source: "local", CreatedAt: t0.Add(-time.Hour), NotBefore: t0.Add(-time.Hour),
		JWK: []byte(`{"kty":"EC","crv":"P-256","x":"ze8lCU5hM4LlCgDDFygxGK79JGfi0wiIuwizqZzE0a4","y":"mz9NQOfD_rh1W5SjZkaUBLUG03iBcTKt0QILEhU1fF0","kid":"es256-kid","alg":"ES256","use":"sig"}`)}
	if err := f.admin.AddSigningKey(ctx, 0, es, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.issuer.Issue(ctx, newKey(), token.Request{}, f.clock()); !fault.Is(err, fault.Unavailable) {
		t.Errorf("issuing under an ES256 key: %v, want unavailable", err)
	}
	rot, err := f.ring.RotateSigningKeys(ctx, f.clock())
	if err != nil || rot.Retired != es.KID || !rot.StartsAt.Equal(t0.Add(token.PublishAhead)) {
		t.Fatalf("replacement of the ES256 key: %+v, %v", rot, err)
	}
	f.advance(token.PublishAhead)
	is := f.issue(t, newKey(), token.Request{})
	if kidOf(t, is.Token) != rot.Published {
		t.Errorf("token signed by %s, want the replacement %s", kidOf(t, is.Token), rot.Published)
	}
	if r := f.verifier.Verify(ctx, is.Token); r.Reason != "" {
		t.Errorf("token of the replacement key: %s", r.Reason)
	}
}
