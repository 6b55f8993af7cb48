package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// successor builds the replacement of old as the rotate handler does, with
// a fresh secret, and returns its plaintext too.
func (f *fixture) successor(t *testing.T, old *key.Key) (*key.Key, string) {
	t.Helper()
	pk, err := format.Generate(old.Type.APIKeyType(), apikey.Environment(old.Environment))
	if err != nil {
		t.Fatal(err)
	}
	nk := old.Successor(key.NewID(), f.now)
	nk.Hash, nk.Hint = hasher.Sum(pk.Plaintext), apikey.Hint(pk)
	return nk, pk.Plaintext
}

func TestRotateGracePeriodFromBothSides(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old, _ := f.newKey(t, "acme")
	start := f.now
	nk, plain := f.successor(t, old)
	grace := time.Hour
	after, err := f.s.Rotate(ctx, store.Rotation{Old: old, New: nk, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	if after.NextKeyID != nk.ID || !after.ExpiresAt.Equal(start.Add(grace)) || after.Version != 2 {
		t.Fatalf("old key after rotation: next=%q expires=%v version=%d", after.NextKeyID, after.ExpiresAt, after.Version)
	}
	gotOld, err := f.s.Get(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	gotNew, err := f.s.GetByHash(ctx, hasher.Sum(plain))
	if err != nil {
		t.Fatalf("the new key is not found by its plaintext's hash: %v", err)
	}
	if gotOld.NextKeyID != gotNew.ID || gotNew.PreviousKeyID != gotOld.ID {
		t.Fatalf("keys not linked both ways: old.next=%q new.prev=%q", gotOld.NextKeyID, gotNew.PreviousKeyID)
	}
	if gotNew.OwnerID != old.OwnerID || gotNew.Type != old.Type || gotNew.Environment != old.Environment ||
		strings.Join(gotNew.Scopes, ",") != strings.Join(old.Scopes, ",") || gotNew.RateLimits[0] != old.RateLimits[0] ||
		*gotNew.Quota != *old.Quota || gotNew.AllowedCIDRs[0] != old.AllowedCIDRs[0] || gotNew.Metadata["plan"] != "pro" ||
		gotNew.Hash == old.Hash || gotNew.ID == old.ID {
		t.Fatalf("new key settings differ from the old key's: %+v", gotNew)
	}
	for _, c := range []struct {
		at        time.Time
		old, next key.Status
	}{
		{start, key.Active, key.Active},
		{start.Add(grace - time.Millisecond), key.Active, key.Active},
		{start.Add(grace), key.Expired, key.Active},
		{start.Add(grace + time.Millisecond), key.Expired, key.Active},
	} {
		if s := gotOld.StatusAt(c.at); s != c.old {
			t.Errorf("old key at start+%v: %s, want %s", c.at.Sub(start), s, c.old)
		}
		if s := gotNew.StatusAt(c.at); s != c.next {
			t.Errorf("new key at start+%v: %s, want %s", c.at.Sub(start), s, c.next)
		}
	}
}

func TestRotateGraceZeroAndEarlierExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, _ := f.newKey(t, "acme")
	nk, _ := f.successor(t, k)
	after, err := f.s.Rotate(ctx, store.Rotation{Old: k, New: nk, Grace: 0})
	if err != nil {
		t.Fatal(err)
	}
	if after.StatusAt(f.now) != key.Expired {
		t.Fatalf("grace 0: old key is %s at once, want expired", after.StatusAt(f.now))
	}

	soon, _ := f.newKey(t, "acme")
	soon.ExpiresAt = f.now.Add(10 * time.Minute)
	soon, err = f.s.Update(ctx, soon, 1)
	if err != nil {
		t.Fatal(err)
	}
	nk, _ = f.successor(t, soon)
	after, err = f.s.Rotate(ctx, store.Rotation{Old: soon, New: nk, Grace: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !after.ExpiresAt.Equal(f.now.Add(10 * time.Minute)) {
		t.Fatalf("a grace longer than the key's life extended it to %v", after.ExpiresAt)
	}
}

func TestConcurrentRotationsExactlyOneWins(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old, _ := f.newKey(t, "acme")
	const n = 6
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   []*key.Key
		losers []*key.Key
	)
	for i := 0; i < n; i++ {
		nk, _ := f.successor(t, old)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.s.Rotate(ctx, store.Rotation{Old: old, New: nk, Grace: time.Hour})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins = append(wins, nk)
			case fault.Is(err, fault.Conflict):
				losers = append(losers, nk)
				if !strings.Contains(fault.MessageOf(err), old.ID) {
					t.Errorf("conflict message does not say which key: %q", fault.MessageOf(err))
				}
			default:
				t.Errorf("loser got %v, want conflict", err)
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d concurrent rotations succeeded, want exactly 1", len(wins))
	}
	for _, l := range losers {
		if _, err := f.s.GetByHash(ctx, l.Hash); !fault.Is(err, fault.NotFound) {
			t.Fatalf("a losing rotation left its new key behind: %v", err)
		}
	}
	got, _ := f.s.Get(ctx, old.ID)
	if got.NextKeyID != wins[0].ID {
		t.Fatalf("old key links to %q, want the winner %q", got.NextKeyID, wins[0].ID)
	}
	// Rotating it again is refused, and says why.
	nk, _ := f.successor(t, got)
	_, err := f.s.Rotate(ctx, store.Rotation{Old: got, New: nk, Grace: time.Hour})
	if !fault.Is(err, fault.Conflict) || !strings.Contains(fault.MessageOf(err), "already rotated") {
		t.Fatalf("second rotation: %v, want conflict 'already rotated'", err)
	}
}

func TestRotateRefusesKeysThatAreNotActive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	revoked, _ := f.newKey(t, "acme")
	// A ttl in the future: DynamoDB Local deletes items whose ttl passed.
	if _, _, err := f.s.Revoke(ctx, revoked.ID, 90*24*time.Hour, store.AuditBy("test")); err != nil {
		t.Fatal(err)
	}
	disabled, _ := f.newKey(t, "acme")
	disabled.Enabled = false
	disabled, err := f.s.Update(ctx, disabled, 1)
	if err != nil {
		t.Fatal(err)
	}
	for want, k := range map[string]*key.Key{"revoked": revoked, "disabled": disabled} {
		nk, _ := f.successor(t, k)
		_, err := f.s.Rotate(ctx, store.Rotation{Old: k, New: nk, Grace: time.Hour})
		if !fault.Is(err, fault.Conflict) || !strings.Contains(fault.MessageOf(err), want) {
			t.Errorf("rotating a %s key: %v, want a conflict saying %q", want, err, want)
		}
		if _, err := f.s.GetByHash(ctx, nk.Hash); !fault.Is(err, fault.NotFound) {
			t.Errorf("a refused rotation of a %s key created the new key", want)
		}
	}
	// A stale read (the key changed since) is refused too.
	k, _ := f.newKey(t, "acme")
	stale := *k
	k.Name = "renamed"
	if _, err := f.s.Update(ctx, k, 1); err != nil {
		t.Fatal(err)
	}
	nk, _ := f.successor(t, &stale)
	if _, err := f.s.Rotate(ctx, store.Rotation{Old: &stale, New: nk, Grace: time.Hour}); !fault.Is(err, fault.Conflict) {
		t.Fatalf("rotating from a stale read: %v, want conflict", err)
	}
}

func TestRotateCarriesQuotaCounters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	old, _ := f.newKey(t, "acme")
	// The authorizer's counter for this month, as it would have written it.
	_, err := f.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(f.table), Key: store.ItemKey(store.KeyPK(old.Hash), "KEY"),
		UpdateExpression:          aws.String("SET q.#p = :n"),
		ExpressionAttributeNames:  map[string]string{"#p": "2026-11"},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":n": &ddb.AttributeValueMemberN{Value: "990"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	nk, _ := f.successor(t, old)
	if _, err := f.s.Rotate(ctx, store.Rotation{Old: old, New: nk, Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	out, err := f.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: store.ItemKey(store.KeyPK(nk.Hash), "KEY")})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := out.Item["q"].(*ddb.AttributeValueMemberM)
	if q == nil || q.Value["2026-11"].(*ddb.AttributeValueMemberN).Value != "990" {
		t.Fatalf("the new key's quota counters start afresh (%v): rotating would refill credits", out.Item["q"])
	}
}
