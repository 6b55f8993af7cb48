package store_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/dynamolocal"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/leaktest"
	"github.com/keygate/keygate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

var (
	format, _ = apikey.NewFormat("")
	hasher    = apikey.NewHasher([]byte("test-pepper"))
)

type fixture struct {
	db    *dynamodb.Client
	table string
	s     *store.Store
	now   time.Time
	// counted is s over a client that counts its DynamoDB calls in calls.
	counted *store.Store
	calls   *dynamotest.Calls
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, table := dynamotest.Table(t)
	// The clock starts at the next full hour of the real time: DynamoDB
	// Local deletes items whose ttl has passed in real time, so a fixed date
	// would turn into a test that fails on some later day; and a full hour
	// keeps the minutes tests move the clock by within one UTC day.
	f := &fixture{db: db, table: table, now: time.Now().UTC().Truncate(time.Hour).Add(time.Hour)}
	opts := store.Options{CursorSecret: []byte("cursor"), Now: func() time.Time { return f.now }}
	f.s = store.New(db, table, opts)
	f.calls = &dynamotest.Calls{}
	f.counted = store.New(dynamotest.Watched(db, f.calls.See), table, opts)
	return f
}

// newKey issues a key the way the admin API will: a fresh plaintext, its
// hash and hint, and validated settings. It returns the plaintext too, so
// tests can check it never reaches the table.
func (f *fixture) newKey(t *testing.T, owner string) (*key.Key, string) {
	t.Helper()
	return f.newKeyAndPlaintext(t, owner, nil)
}

// newKeyWith is newKey with its settings changed by mod before the key is
// validated and stored; it returns the key as the store reads it back.
func (f *fixture) newKeyWith(t *testing.T, owner string, mod func(*key.Key)) *key.Key {
	t.Helper()
	k, _ := f.newKeyAndPlaintext(t, owner, mod)
	got, err := f.s.Get(context.Background(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) newKeyAndPlaintext(t *testing.T, owner string, mod func(*key.Key)) (*key.Key, string) {
	t.Helper()
	pk, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	k := &key.Key{
		ID: key.NewID(), Name: "test key", OwnerID: owner, Type: key.Secret, Environment: key.Live,
		Hash: hasher.Sum(pk.Plaintext), Hint: apikey.Hint(pk), Scopes: []string{"read:users"},
		Enabled: true, CreatedAt: f.now, UpdatedAt: f.now,
		RateLimits:   []key.RateLimit{{Name: "per-second", Limit: 10, WindowSeconds: 1}},
		Quota:        &key.Quota{Limit: 1000, Period: key.Month},
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		Metadata:     map[string]any{"plan": "pro"},
	}
	if mod != nil {
		mod(k)
	}
	if err := k.Validate(f.now); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Create(context.Background(), k); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return k, pk.Plaintext
}

func TestCreateThenGetByIDAndHash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, plain := f.newKey(t, "acme")
	byID, err := f.s.Get(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	byHash, err := f.s.GetByHash(ctx, hasher.Sum(plain))
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*key.Key{byID, byHash} {
		if got.ID != k.ID || got.OwnerID != "acme" || got.Version != 1 || got.Quota.Limit != 1000 ||
			got.RateLimits[0].Limit != 10 || got.AllowedCIDRs[0].String() != "203.0.113.0/24" ||
			got.Metadata["plan"] != "pro" || !got.CreatedAt.Equal(f.now) || got.StatusAt(f.now) != key.Active {
			t.Fatalf("stored key differs: %+v", got)
		}
	}
}

func TestCreateNeverOverwrites(t *testing.T) {
	f := newFixture(t)
	k, _ := f.newKey(t, "acme")
	dup := *k
	dup.Name = "overwriter"
	if err := f.s.Create(context.Background(), &dup); !fault.Is(err, fault.Conflict) {
		t.Fatalf("second Create with the same id and hash: err = %v, want conflict", err)
	}
	got, _ := f.s.Get(context.Background(), k.ID)
	if got.Name != "test key" {
		t.Fatalf("name = %q: the duplicate create overwrote the key", got.Name)
	}
	// Same id, different hash: the id item's condition must refuse it, and
	// the transaction must leave no orphaned key item behind.
	other, _ := format.Generate(apikey.Secret, apikey.Live)
	dup.Hash = hasher.Sum(other.Plaintext)
	if err := f.s.Create(context.Background(), &dup); !fault.Is(err, fault.Conflict) {
		t.Fatalf("Create with a taken id: err = %v, want conflict", err)
	}
	if _, err := f.s.GetByHash(context.Background(), dup.Hash); !fault.Is(err, fault.NotFound) {
		t.Fatalf("a failed create left a key item: err = %v", err)
	}
}

func TestGetUnknownIsNotFound(t *testing.T) {
	f := newFixture(t)
	for _, id := range []string{key.NewID(), "not-an-id", ""} {
		if _, err := f.s.Get(context.Background(), id); !fault.Is(err, fault.NotFound) {
			t.Errorf("Get(%q): err = %v, want not_found", id, err)
		}
	}
	if _, err := f.s.GetByHash(context.Background(), hasher.Sum("nope")); !fault.Is(err, fault.NotFound) {
		t.Errorf("GetByHash(unknown): err = %v, want not_found", err)
	}
}

func TestListPaginatesNewestFirstWithSignedCursor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 7; i++ {
		f.now = f.now.Add(time.Second)
		k, _ := f.newKey(t, "acme")
		ids = append(ids, k.ID)
	}
	f.newKey(t, "other-owner")
	var got []string
	cursor := ""
	pages := 0
	for {
		p, err := f.s.List(ctx, "acme", store.ListOptions{Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range p.Keys {
			got = append(got, k.ID)
		}
		if p.Next == "" {
			break
		}
		if strings.Contains(p.Next, "acme") || strings.Contains(p.Next, "KEY#") {
			t.Fatalf("cursor is not opaque: %q", p.Next)
		}
		cursor = p.Next
	}
	if len(got) != 7 || pages < 3 {
		t.Fatalf("listed %d keys in %d pages, want 7 in at least 3", len(got), pages)
	}
	for i := range got {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("order: got %v, want newest first %v", got, ids)
		}
	}

	p, _ := f.s.List(ctx, "acme", store.ListOptions{Limit: 3})
	tampered := p.Next[:len(p.Next)-2] + "AA"
	if _, err := f.s.List(ctx, "acme", store.ListOptions{Cursor: tampered}); fault.FieldOf(err) != "cursor" {
		t.Fatalf("tampered cursor: err = %v, want invalid cursor", err)
	}
	if _, err := f.s.List(ctx, "other-owner", store.ListOptions{Cursor: p.Next}); fault.FieldOf(err) != "cursor" {
		t.Fatalf("cursor reused for another owner: err = %v, want invalid cursor", err)
	}
	if _, err := f.s.List(ctx, "acme", store.ListOptions{Limit: store.MaxPageSize}); err != nil {
		t.Fatalf("limit %d, the largest page: %v", store.MaxPageSize, err)
	}
	if _, err := f.s.List(ctx, "acme", store.ListOptions{Limit: store.MaxPageSize + 1}); fault.FieldOf(err) != "limit" {
		t.Fatalf("limit %d: err = %v, want invalid limit", store.MaxPageSize+1, err)
	}
	if _, err := f.s.List(ctx, "acme", store.ListOptions{Limit: 1000}); fault.FieldOf(err) != "limit" {
		t.Fatalf("limit 1000: err = %v, want invalid limit", err)
	}
}

func TestListFiltersByStatusAndEnvironment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, _ := f.newKey(t, "acme")
	f.newKey(t, "acme")
	if _, _, err := f.s.Revoke(ctx, a.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
		t.Fatal(err)
	}
	p, err := f.s.List(ctx, "acme", store.ListOptions{Status: key.Revoked})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Keys) != 1 || p.Keys[0].ID != a.ID {
		t.Fatalf("status filter returned %d keys", len(p.Keys))
	}
	p, _ = f.s.List(ctx, "acme", store.ListOptions{Environment: key.Test})
	if len(p.Keys) != 0 {
		t.Fatalf("environment filter returned %d live keys for test", len(p.Keys))
	}
}

func TestUpdateWithOptimisticConcurrency(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, _ := f.newKey(t, "acme")
	k.Name = "renamed"
	k.Quota = nil
	k.Enabled = false
	got, err := f.s.Update(ctx, k, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || got.Version != 2 || got.Quota != nil || got.StatusAt(f.now) != key.Disabled {
		t.Fatalf("after update: %+v", got)
	}
	k.Name = "stale writer"
	if _, err := f.s.Update(ctx, k, 1); !fault.Is(err, fault.PreconditionFailed) {
		t.Fatalf("update with stale version: err = %v, want precondition_failed", err)
	}
	if again, _ := f.s.Get(ctx, k.ID); again.Name != "renamed" {
		t.Fatalf("a stale update changed the key: name %q", again.Name)
	}
	// Version 0 asks for no version check (PATCH without If-Match).
	k.Name = "unconditional"
	if got, err := f.s.Update(ctx, k, 0); err != nil || got.Name != "unconditional" || got.Version != 3 {
		t.Fatalf("update without a version check: %v %+v", err, got)
	}
}

func TestConcurrentUpdatesExactlyOneWins(t *testing.T) {
	f := newFixture(t)
	k, _ := f.newKey(t, "acme")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := *k
			c.Name = fmt.Sprintf("writer %d", i)
			if _, err := f.s.Update(context.Background(), &c, 1); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !fault.Is(err, fault.PreconditionFailed) {
				t.Errorf("loser got %v, want precondition_failed", err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent updates of version 1 succeeded, want exactly 1", wins)
	}
}

func TestRevokeIsIdempotentAndFinal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, _ := f.newKey(t, "acme")
	got, changed, err := f.s.Revoke(ctx, k.ID, 90*24*time.Hour, store.AuditBy("test"))
	if err != nil || !changed || got.StatusAt(f.now) != key.Revoked {
		t.Fatalf("first revoke: %v changed=%v", err, changed)
	}
	f.now = f.now.Add(time.Hour)
	again, changed, err := f.s.Revoke(ctx, k.ID, 90*24*time.Hour, store.AuditBy("test"))
	if err != nil || changed || !again.RevokedAt.Equal(got.RevokedAt) {
		t.Fatalf("second revoke: err=%v changed=%v revokedAt moved from %v to %v", err, changed, got.RevokedAt, again.RevokedAt)
	}
	k.Enabled = true
	if _, err := f.s.Update(ctx, k, again.Version); !fault.Is(err, fault.Conflict) {
		t.Fatalf("updating a revoked key: err = %v, want conflict", err)
	}
	out, err := f.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: store.ItemKey(store.KeyPK(k.Hash), "KEY")})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Item["ttl"]; !ok {
		t.Fatal("a revoked key has no ttl: it would be kept forever")
	}
	if _, _, err := f.s.Revoke(ctx, key.NewID(), time.Hour, store.AuditBy("test")); !fault.Is(err, fault.NotFound) {
		t.Fatalf("revoke unknown: err = %v, want not_found", err)
	}
}

// No item in the table may hold a plaintext key, or any run of
// leaktest.MinRun characters of its secret.
func TestNoPlaintextInTable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var plains []string
	for i := 0; i < 5; i++ {
		k, plain := f.newKey(t, "acme")
		plains = append(plains, plain)
		k.Name = "changed"
		if _, err := f.s.Update(ctx, k, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.s.Revoke(ctx, mustFirstID(t, f), 90*24*time.Hour, store.AuditBy("test")); err != nil {
		t.Fatal(err)
	}
	dump := dynamotest.Dump(t, f.db, f.table)
	leaktest.Check(t, map[string]string{"table": dump}, plains...)
	if !strings.Contains(dump, "kg_sk_live_") {
		t.Fatal("the dump holds no hints: the scan read nothing, so this test proves nothing")
	}
}

func mustFirstID(t *testing.T, f *fixture) string {
	p, err := f.s.List(context.Background(), "acme", store.ListOptions{Limit: 1})
	if err != nil || len(p.Keys) == 0 {
		t.Fatal("no key to revoke", err)
	}
	return p.Keys[0].ID
}

func TestUsageReportsDaysInRange(t *testing.T) {
	f := newFixture(t)
	k, _ := f.newKey(t, "acme")
	from := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	days, err := f.s.Usage(context.Background(), k.ID, from, from.AddDate(0, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 3 || days[0].Day != "2026-11-24" || days[2].Day != "2026-11-26" || days[1].Count != 0 {
		t.Fatalf("usage days = %+v", days)
	}
}

func TestStoreErrorsAreTyped(t *testing.T) {
	// A table that does not exist, and a DynamoDB that does not answer, are
	// both unavailable, never a panic or a string to match.
	db := store.LocalClient(dynamotest.Endpoint(t))
	s := store.New(db, "no-such-table", store.Options{})
	if _, err := s.GetByHash(context.Background(), hasher.Sum("x")); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("missing table: err = %v, want unavailable", err)
	}
	port, _ := dynamolocal.FreePort()
	dead := store.New(store.LocalClient(fmt.Sprintf("http://127.0.0.1:%d", port)), "keygate", store.Options{})
	if _, err := dead.GetByHash(context.Background(), hasher.Sum("x")); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("DynamoDB down: err = %v, want unavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := store.New(db, "x", store.Options{}).Get(ctx, key.NewID()); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("cancelled: err = %v, want unavailable", err)
	}
}
