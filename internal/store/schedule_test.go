package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/store"
)

// dueOf finds a key among those due at now in its shard.
func (f *fixture) dueOf(t *testing.T, id string, now time.Time) (store.DueKey, bool) {
	t.Helper()
	next := store.DuePage{}.Next
	for {
		p, err := f.s.Due(context.Background(), store.DueShard(id), now, 100, next)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Keys {
			if d.Key.ID == id {
				return d, true
			}
		}
		if p.Next == "" {
			return store.DueKey{}, false
		}
		next = p.Next
	}
}

func TestScheduleIsAdvancedAtMostOncePerDueTime(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, _ := f.newKey(t, "acme")
	d, ok := f.dueOf(t, k.ID, f.now)
	if !ok {
		t.Fatal("a new key is not due at once: the next run would never plan it")
	}
	step := store.Step{Key: d.Key, Lifecycle: d.Lifecycle, ExpiringFor: f.now, Next: f.now.Add(time.Hour)}
	if applied, err := f.s.Advance(ctx, step); err != nil || !applied {
		t.Fatalf("first advance: %v %v", applied, err)
	}
	if applied, err := f.s.Advance(ctx, step); err != nil || applied {
		t.Fatalf("the same step applied twice (applied=%v, err=%v)", applied, err)
	}
	if _, ok := f.dueOf(t, k.ID, f.now.Add(time.Hour-time.Millisecond)); ok {
		t.Fatal("the key is due before its next due time")
	}
	d, ok = f.dueOf(t, k.ID, f.now.Add(time.Hour))
	if !ok || !d.Lifecycle.ExpiringFor.Equal(f.now) {
		t.Fatalf("the key is not due at its next due time, or lost its bookkeeping: %+v", d.Lifecycle)
	}
	// An admin change in between wins: the step read before it is not applied.
	cur, _ := f.s.Get(ctx, k.ID)
	cur.Name = "renamed"
	if _, err := f.s.Update(ctx, cur, cur.Version); err != nil {
		t.Fatal(err)
	}
	stale := store.Step{Key: d.Key, Lifecycle: d.Lifecycle, Next: f.now.Add(2 * time.Hour)}
	if applied, err := f.s.Advance(ctx, stale); err != nil || applied {
		t.Fatalf("a step read before an update applied (applied=%v, err=%v)", applied, err)
	}
	// Off the schedule: never due again.
	d, _ = f.dueOf(t, k.ID, f.now)
	if applied, err := f.s.Advance(ctx, store.Step{Key: d.Key, Lifecycle: d.Lifecycle}); err != nil || !applied {
		t.Fatalf("unschedule: %v %v", applied, err)
	}
	if _, ok := f.dueOf(t, k.ID, f.now.AddDate(10, 0, 0)); ok {
		t.Fatal("an unscheduled key is still due")
	}
}

// A due-keys cursor is opaque and bound to its shard: a client of the
// store cannot forge one, nor continue another shard with it.
func TestDueCursorsAreOpaqueAndBoundToTheirShard(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// New keys are due at once; by the pigeonhole, DueShards+1 of them put
	// two in one shard.
	per := map[int]int{}
	shard := -1
	for shard < 0 {
		k, _ := f.newKey(t, "acme")
		if per[store.DueShard(k.ID)]++; per[store.DueShard(k.ID)] == 2 {
			shard = store.DueShard(k.ID)
		}
	}
	p, err := f.s.Due(ctx, shard, f.now, 1, "")
	if err != nil || p.Next == "" || len(p.Keys) != 1 {
		t.Fatalf("first page of a shard with two due keys: %+v, %v", p, err)
	}
	if strings.Contains(p.Next, "DUE") || strings.Contains(p.Next, "KEY#") {
		t.Errorf("the cursor shows the table's keys: %s", p.Next)
	}
	rest, err := f.s.Due(ctx, shard, f.now, 1, p.Next)
	if err != nil || len(rest.Keys) != 1 || rest.Keys[0].Key.ID == p.Keys[0].Key.ID {
		t.Errorf("the cursor continues its shard: %+v, %v", rest, err)
	}
	for _, bad := range []string{p.Next[:len(p.Next)-2] + "AA", "not-a-cursor"} {
		if _, err := f.s.Due(ctx, shard, f.now, 1, bad); !fault.Is(err, fault.Invalid) {
			t.Errorf("a forged cursor: %v", err)
		}
	}
	if _, err := f.s.Due(ctx, (shard+1)%store.DueShards, f.now, 1, p.Next); !fault.Is(err, fault.Invalid) {
		t.Errorf("another shard's cursor: %v", err)
	}
}
