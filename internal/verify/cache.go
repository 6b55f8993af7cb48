package verify

import (
	"sync"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/store"
)

// entry is what the process remembers about one key hash.
type entry struct {
	// rec is the last record read from DynamoDB (nil for an unknown key),
	// and readAt when. Within the cache TTL a denial it implies is served
	// without a call; at any age it names the counters and guards the next
	// update by its version.
	rec    *store.Record
	readAt time.Time
	// unknownUntil: the key does not exist; refuse without a call until then.
	unknownUntil time.Time
	// deniedUntil: a rate limit or quota refused the key; refuse with
	// deniedReason without a call until then (the window's end, capped).
	deniedUntil  time.Time
	deniedReason gateway.Reason
	// quotaLeft is, for a quota denial, the credits the quota had left
	// when it refused: a request that costs no more than that (a cheaper
	// route) may still be admitted, so only dearer ones are refused from
	// the cache.
	quotaLeft int64
	// retryAt is when the limit frees up (the window's or period's end,
	// zero for a total quota), for retryAfterSeconds; deniedUntil may be
	// earlier, as it is capped.
	retryAt time.Time
	// admittedAt is the last time DynamoDB admitted the key, for serve-stale.
	admittedAt time.Time
}

// cache is the in-process key cache, keyed by the key's hash (never the
// plaintext), bounded in size. It is safe for concurrent use; a Lambda
// environment serves one request at a time, so the lock is uncontended.
type cache struct {
	mu  sync.Mutex
	m   map[apikey.Hash]entry
	max int
}

func newCache(max int) *cache {
	return &cache{m: make(map[apikey.Hash]entry, min(max, 1024)), max: max}
}

func (c *cache) get(h apikey.Hash) (entry, bool) {
	c.mu.Lock()
	e, ok := c.m[h]
	c.mu.Unlock()
	return e, ok
}

// put stores the entry of h, evicting an arbitrary entry when the cache is
// full.
func (c *cache) put(h apikey.Hash, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[h]; !ok && len(c.m) >= c.max {
		for victim := range c.m {
			delete(c.m, victim)
			break
		}
	}
	c.m[h] = e
}
