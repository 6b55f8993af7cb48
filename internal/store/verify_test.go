package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// limitedKey stores a new key of owner acme with the rate limit l.
func (f *fixture) limitedKey(t *testing.T, l key.RateLimit) *key.Key {
	t.Helper()
	k, _ := f.newKey(t, "acme")
	k.RateLimits = []key.RateLimit{l}
	k, err := f.s.Update(context.Background(), k, 1)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyCountsAndRefusesPastTheLimit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k := f.limitedKey(t, key.RateLimit{Name: "burst", Limit: 3, WindowSeconds: 60})
	in := store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Environments: []key.Environment{key.Live},
		Scopes: []string{"read:users"}, SecretOnly: true, Stage: "prod", Shape: k}
	for i := 1; i <= 3; i++ {
		res, err := f.s.Verify(ctx, in)
		if err != nil || !res.Admitted {
			t.Fatalf("request %d: admitted=%v err=%v", i, res.Admitted, err)
		}
		c := k.RateLimits[0].Counter(f.now)
		if res.Record.RL[c] != int64(i) || res.Record.Q[k.Quota.PeriodKey(f.now)] != int64(i) ||
			!res.Record.Key.LastUsedAt.Equal(f.now) {
			t.Fatalf("request %d: counters rl=%v q=%v lastUsed=%v", i, res.Record.RL, res.Record.Q, res.Record.Key.LastUsedAt)
		}
		in.Known, in.Shape = res.Record, nil
	}
	res, err := f.s.Verify(ctx, in)
	if err != nil || res.Admitted || res.Record == nil || res.Record.RL[k.RateLimits[0].Counter(f.now)] != 3 {
		t.Fatalf("4th request: admitted=%v err=%v rec=%+v", res.Admitted, err, res.Record)
	}
	// The next window starts from zero, and the counter of the old one goes.
	old := k.RateLimits[0].Counter(f.now)
	in.Now = f.now.Add(2 * time.Minute)
	res, err = f.s.Verify(ctx, in)
	if err != nil || !res.Admitted {
		t.Fatalf("next window: admitted=%v err=%v", res.Admitted, err)
	}
	if _, ok := res.Record.RL[old]; ok || res.Record.RL[k.RateLimits[0].Counter(in.Now)] != 1 {
		t.Fatalf("next window counters: %v", res.Record.RL)
	}
	days, err := f.s.Usage(ctx, k.ID, f.now, f.now)
	if err != nil || days[0].Count != 4 {
		t.Fatalf("usage = %+v, %v; want 4 for the day", days, err)
	}
}

func TestVerifyGuardsOnTheLimitsItNamed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, _ := f.newKey(t, "acme")
	// A wrong guess of the limits is refused without counting, and the
	// record tells the caller the real ones.
	res, err := f.s.Verify(ctx, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1})
	if err != nil || res.Admitted || res.Record == nil || len(res.Record.Key.RateLimits) != 1 {
		t.Fatalf("no-limits guess on a limited key: admitted=%v err=%v", res.Admitted, err)
	}
	if len(res.Record.RL) != 0 {
		t.Fatalf("a refused update counted: %v", res.Record.RL)
	}
	stale := res.Record
	k.Name = "renamed" // a change that does not touch the limits: the guard holds
	if _, err := f.s.Update(ctx, k, 1); err != nil {
		t.Fatal(err)
	}
	res, err = f.s.Verify(ctx, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Known: stale})
	if err != nil || !res.Admitted {
		t.Fatalf("renamed key: admitted=%v err=%v", res.Admitted, err)
	}
	stale = res.Record
	k.RateLimits = []key.RateLimit{{Name: "per-second", Limit: 20, WindowSeconds: 1}}
	if _, err := f.s.Update(ctx, k, 2); err != nil {
		t.Fatal(err)
	}
	res, err = f.s.Verify(ctx, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Known: stale})
	if err != nil || res.Admitted || res.Record.Key.RateLimits[0].Limit != 20 || res.Record.RL[k.RateLimits[0].Counter(f.now)] != 1 {
		t.Fatalf("changed limits: admitted=%v err=%v rl=%v", res.Admitted, err, res.Record.RL)
	}
	res, err = f.s.Verify(ctx, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Known: res.Record})
	if err != nil || !res.Admitted {
		t.Fatalf("fresh version: admitted=%v err=%v", res.Admitted, err)
	}
	if err := f.s.Refund(ctx, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1}, res.Record); err != nil {
		t.Fatal(err)
	}
	res, err = f.s.Verify(ctx, store.VerifyInput{Hash: k.Hash, Now: f.now, Cost: 1, Known: res.Record})
	if err != nil || !res.Admitted || res.Record.RL[k.RateLimits[0].Counter(f.now)] != 2 {
		t.Fatalf("after refund: admitted=%v err=%v rl=%v", res.Admitted, err, res.Record.RL)
	}
	res, err = f.s.Verify(ctx, store.VerifyInput{Hash: hasher.Sum("nope"), Now: f.now, Cost: 1})
	if err != nil || res.Admitted || res.Record != nil {
		t.Fatalf("unknown key: %+v %v", res, err)
	}
}

// Lambda environments whose clocks differ never admit more than a limit:
// one far ahead removes the counter of a window another still counts in,
// and raises the floor to that window's end in the same write; the one
// behind is then refused in that window (it would otherwise count it
// afresh from zero), and a floor never falls.
func TestClocksThatDifferNeverOverAdmit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k := f.limitedKey(t, key.RateLimit{Name: "per-second", Limit: 2, WindowSeconds: 1})
	verify := func(at time.Duration, known *store.Record) store.VerifyResult {
		t.Helper()
		in := store.VerifyInput{Hash: k.Hash, Now: f.now.Add(at), Cost: 1, Known: known}
		if known == nil {
			in.Shape = k
		}
		res, err := f.s.Verify(ctx, in)
		if err != nil || res.Record == nil {
			t.Fatalf("verify at +%v: %v", at, err)
		}
		return res
	}
	// Behind, in the window [0s, 1s): both admissions of the window.
	behind := verify(500*time.Millisecond, nil)
	behind = verify(600*time.Millisecond, behind.Record)
	if !behind.Admitted || behind.Record.RL[k.RateLimits[0].Counter(f.now)] != 2 {
		t.Fatalf("behind: admitted=%v rl=%v", behind.Admitted, behind.Record.RL)
	}
	// 10 s ahead: the window ended more than skew ago, its counter goes.
	ahead := verify(10*time.Second, behind.Record)
	if _, ok := ahead.Record.RL[k.RateLimits[0].Counter(f.now)]; !ahead.Admitted || ok {
		t.Fatalf("ahead: admitted=%v rl=%v", ahead.Admitted, ahead.Record.RL)
	}
	if want := f.now.Add(time.Second).Unix(); ahead.Record.Floor != want {
		t.Fatalf("floor %d, want the removed window's end %d", ahead.Record.Floor, want)
	}
	// Behind again, in the same window: a third admission would exceed the
	// limit of 2.
	again := verify(700*time.Millisecond, behind.Record)
	if again.Admitted {
		t.Fatalf("the environment behind was admitted a third time in its window: rl=%v", again.Record.RL)
	}
	if !again.Record.Behind(f.now.Add(700*time.Millisecond)) || again.Record.Behind(f.now.Add(10*time.Second)) {
		t.Fatal("the refused record does not say the clock is behind (or says so of a clock that is not)")
	}
	// Further ahead, a later window goes and the floor rises; a stale
	// environment that removes an older counter cannot lower it.
	further := verify(20*time.Second, ahead.Record)
	if want := f.now.Add(11 * time.Second).Unix(); further.Record.Floor != want {
		t.Fatalf("floor %d, want %d", further.Record.Floor, want)
	}
	stale := verify(8*time.Second, behind.Record)
	if stale.Admitted || stale.Record.Floor != f.now.Add(11*time.Second).Unix() {
		t.Fatalf("stale environment: admitted=%v floor=%d", stale.Admitted, stale.Record.Floor)
	}
	if r := verify(21*time.Second, further.Record); !r.Admitted {
		t.Fatal("an environment in step was refused")
	}
}
