package verify

import (
	"testing"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// A write that fails gives its held admission back only to the block it
// came from: when the lease moved to the key's new limits while the write
// was out (another request read them), the new limits' blocks get
// nothing, or this environment would admit one request never reserved
// against them.
func TestAFailedWriteGivesNothingBackToBlocksOfOtherLimits(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 30, 0, time.UTC)
	before := &key.Key{RateLimits: []key.RateLimit{{Name: "minute", Limit: 1000, WindowSeconds: 60}}}
	after := &key.Key{RateLimits: []key.RateLimit{{Name: "minute", Limit: 100, WindowSeconds: 60}}}
	l := &lease{}
	l.sync(before, now)
	l.left[0] = 5
	p := l.reserve(&store.Record{Key: before, RL: map[string]int64{}}, now, 1, &Options{ReserveInterval: DefaultReserveInterval})
	if p == nil || !p.held[0] || l.left[0] != 4 {
		t.Fatalf("the plan did not take the request's admission from the block: %+v, left %d", p, l.left[0])
	}
	// The key's limit is lowered; another request's write took a block of
	// 3 under the new limit.
	l.sync(after, now)
	l.left[0] = 3
	l.failed(p)
	if l.left[0] != 3 {
		t.Fatalf("the failed write gave its admission to the new limit's block: %d left, want 3", l.left[0])
	}
	// Under the same limits, the admission goes back.
	l2 := &lease{}
	l2.sync(before, now)
	l2.left[0] = 5
	p = l2.reserve(&store.Record{Key: before, RL: map[string]int64{}}, now, 1, &Options{ReserveInterval: DefaultReserveInterval})
	l2.failed(p)
	if l2.left[0] != 5 {
		t.Fatalf("a failed write under the same limits: %d left, want 5", l2.left[0])
	}
}
