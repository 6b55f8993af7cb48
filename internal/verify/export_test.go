package verify

import (
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/store"
)

// Local exposes the in-process part of a verification to the benchmarks.
func (v *Verifier) Local(req *Request, now time.Time) (Decision, bool) {
	_, d, done := v.local(req, now)
	return d, done
}

// Remember puts a record into the cache, as an admitted verification would.
func (v *Verifier) Remember(h apikey.Hash, rec *store.Record, now time.Time) {
	v.remember(&local{hash: h}, rec, now, true)
}

// DenyUntil caches a rate-limit denial, as a refused verification would.
func (v *Verifier) DenyUntil(h apikey.Hash, rec *store.Record, now, until time.Time) {
	v.cache.put(h, entry{rec: rec, readAt: now, deniedUntil: until, retryAt: until, deniedReason: "rate_limited"})
}
