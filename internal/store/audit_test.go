package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

func TestAuditTrailPagesOldestFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, _ := f.newKey(t, "acme")
	for v := int64(2); v <= 4; v++ {
		// Same millisecond: the version orders them.
		if err := f.s.PutAudit(ctx, store.AuditRecord{KeyID: k.ID, At: f.now, Actor: "a", Action: "key.update", Version: v,
			Changes: map[string]any{"name": map[string]any{"to": "n"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.PutAudit(ctx, store.AuditRecord{KeyID: k.ID, At: f.now, Actor: "a", Action: "key.update", Version: 4}); !fault.Is(err, fault.Conflict) {
		t.Fatalf("a second record for the same version: %v, want conflict", err)
	}
	p, err := f.s.ListAudit(ctx, k.ID, 2, "")
	if err != nil || len(p.Records) != 2 || p.Next == "" || p.Records[0].Version != 2 || p.Records[0].Changes["name"] == nil {
		t.Fatalf("first page %+v %v", p, err)
	}
	p2, err := f.s.ListAudit(ctx, k.ID, 2, p.Next)
	if err != nil || len(p2.Records) != 1 || p2.Records[0].Version != 4 {
		t.Fatalf("second page %+v %v", p2, err)
	}
	if _, err := f.s.ListAudit(ctx, "key_other", 2, p.Next); fault.FieldOf(err) != "cursor" {
		t.Fatalf("a cursor of another key's trail: %v", err)
	}
}

func TestIdempotencyClaimLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	digest := []byte("digest")
	if old, err := f.s.ClaimIdempotency(ctx, "issue", "k1", digest, "t1", time.Minute, time.Hour); err != nil || old != nil {
		t.Fatalf("first claim: %v %v", old, err)
	}
	old, err := f.s.ClaimIdempotency(ctx, "issue", "k1", digest, "t2", time.Minute, time.Hour)
	if err != nil || old == nil || old.Done || old.Token != "t1" {
		t.Fatalf("second claim within the lease: %+v %v", old, err)
	}
	// Completing with the wrong token fails and creates nothing.
	k, _ := f.newKeyUnsaved(t, "acme")
	wrong := &store.IdempotencyDone{Scope: "issue", Key: "k1", Token: "t2", Status: 201, Sealed: []byte("s")}
	if err := f.s.CreateAudited(ctx, k, store.AuditRecord{KeyID: k.ID, At: f.now, Actor: "a", Action: "key.create"}, wrong); !fault.Is(err, fault.Conflict) {
		t.Fatalf("completion by a non-holder: %v", err)
	}
	if _, err := f.s.Get(ctx, k.ID); !fault.Is(err, fault.NotFound) {
		t.Fatalf("a failed idempotent create left the key: %v", err)
	}
	if p, _ := f.s.ListAudit(ctx, k.ID, 0, ""); len(p.Records) != 0 {
		t.Fatal("a failed idempotent create left an audit record")
	}
	right := &store.IdempotencyDone{Scope: "issue", Key: "k1", Token: "t1", Status: 201, Sealed: []byte("sealed")}
	if err := f.s.CreateAudited(ctx, k, store.AuditRecord{KeyID: k.ID, At: f.now, Actor: "a", Action: "key.create"}, right); err != nil {
		t.Fatal(err)
	}
	old, err = f.s.ClaimIdempotency(ctx, "issue", "k1", digest, "t3", time.Minute, time.Hour)
	if err != nil || old == nil || !old.Done || old.Status != 201 || string(old.Sealed) != "sealed" {
		t.Fatalf("claim after completion: %+v %v", old, err)
	}
	// Release only deletes a pending record held by the caller.
	if err := f.s.ReleaseIdempotency(ctx, "issue", "k1", "t1"); err != nil {
		t.Fatal(err)
	}
	if old, _ := f.s.ClaimIdempotency(ctx, "issue", "k1", digest, "t4", time.Minute, time.Hour); old == nil || !old.Done {
		t.Fatal("release deleted a completed record")
	}
	// Past its ttl (before DynamoDB deletes it) the record is absent.
	f.now = f.now.Add(2 * time.Hour)
	if old, err := f.s.ClaimIdempotency(ctx, "issue", "k1", digest, "t5", time.Minute, time.Hour); err != nil || old != nil {
		t.Fatalf("claim of an expired record: %+v %v", old, err)
	}
}

// newKeyUnsaved builds a valid key as newKey does, without storing it.
func (f *fixture) newKeyUnsaved(t *testing.T, owner string) (*key.Key, string) {
	t.Helper()
	pk, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	return &key.Key{
		ID: key.NewID(), Name: "test key", OwnerID: owner, Type: key.Secret, Environment: key.Live,
		Hash: hasher.Sum(pk.Plaintext), Hint: apikey.Hint(pk), Enabled: true, CreatedAt: f.now, UpdatedAt: f.now,
	}, pk.Plaintext
}

// An audited change and its record are one transaction: both or neither.
func TestAuditedUpdateAndRevokeWriteTheirRecordAtomically(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, _ := f.newKey(t, "acme")
	trail := func() []store.AuditRecord {
		p, err := f.s.ListAudit(ctx, k.ID, 100, "")
		if err != nil {
			t.Fatal(err)
		}
		return p.Records
	}

	// A stale version changes nothing and records nothing.
	k.Name = "stale"
	if _, err := f.s.UpdateAudited(ctx, k, 7, store.AuditRecord{At: f.now, Actor: "a", Action: "key.update"}); !fault.Is(err, fault.PreconditionFailed) {
		t.Fatalf("stale audited update: %v, want precondition_failed", err)
	}
	if n := len(trail()); n != 0 {
		t.Fatalf("a refused update left %d audit records", n)
	}

	// When the record cannot be written (one with its sort key exists), the
	// change is not made either.
	if err := f.s.PutAudit(ctx, store.AuditRecord{KeyID: k.ID, At: f.now, Actor: "x", Action: "key.update", Version: 2}); err != nil {
		t.Fatal(err)
	}
	k.Name = "blocked"
	if _, err := f.s.UpdateAudited(ctx, k, 1, store.AuditRecord{At: f.now, Actor: "a", Action: "key.update"}); err == nil {
		t.Fatal("the update went through although its audit record could not be written")
	}
	if got, _ := f.s.Get(ctx, k.ID); got.Name != "test key" || got.Version != 1 {
		t.Fatalf("the key changed without its audit record: %q v%d", got.Name, got.Version)
	}

	f.now = f.now.Add(time.Second)
	k.Name = "renamed"
	got, err := f.s.UpdateAudited(ctx, k, 1, store.AuditRecord{At: f.now, Actor: "a", Action: "key.update"})
	if err != nil || got.Name != "renamed" || got.Version != 2 {
		t.Fatalf("audited update: %+v %v", got, err)
	}
	rev, revoked, err := f.s.Revoke(ctx, k.ID, 90*24*time.Hour, func(r *key.Key) store.AuditRecord {
		return store.AuditRecord{Actor: "a", Action: "key.revoke", Changes: map[string]any{"version": r.Version}}
	})
	if err != nil || !revoked || rev.StatusAt(f.now) != key.Revoked || rev.Version != 3 {
		t.Fatalf("audited revoke: %+v %v %v", rev, revoked, err)
	}
	if _, again, err := f.s.Revoke(ctx, k.ID, time.Hour, store.AuditBy("a")); err != nil || again {
		t.Fatalf("second revoke: changed=%v %v", again, err)
	}
	recs := trail()
	if len(recs) != 3 || recs[1].Version != 2 || recs[1].Actor != "a" || recs[2].Version != 3 || recs[2].Action != "key.revoke" || recs[2].Changes["version"] != 3.0 {
		t.Fatalf("trail %+v: want the blocking record, the update (v2) and one revocation (v3)", recs)
	}
}
