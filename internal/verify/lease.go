package verify

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// Reservations (docs/verification.md, "Limits at scale"): an environment
// that sees a key often takes blocks of admissions from each of its
// windows, and credits from its quota, in the verifying write itself
// (store.Reservation), and admits the key's next requests from them with
// no DynamoDB call. The hot item's counters count what was reserved, and
// the write's condition holds counter + block <= limit for every limit it
// takes from, so the blocks of all environments in a window never add up
// to more than the limit; an environment admits only from a block it
// holds, for the window its clock is in, and only while its record of the
// key is younger than the cache TTL. That is the whole exactness argument:
// it holds for any number of environments, any block sizes, and
// environments that die holding blocks (what they held is never admitted:
// under-admission, bounded by the block sizes below).
//
// Admissions made from blocks are usage that no write has counted yet: the
// environment reports them with its next write (every reservation write
// carries them, store.Reservation.Report), in a report write (store.Report)
// once the oldest is ReportInterval old, and at shutdown (Flush), so the
// hot item's usage counters, and from them the usage history, stay exact.

// Defaults of the reservation settings.
const (
	// DefaultReserveInterval is how much of a key's traffic in one
	// environment a block covers: about 5 reservation writes a second per
	// environment for a hot key, however hot.
	DefaultReserveInterval = 200 * time.Millisecond
	// DefaultReportInterval is how old the oldest unreported admission of
	// a key may get before a report write records it: the most usage a
	// crashed environment can lose.
	DefaultReportInterval = 2 * time.Second
)

const (
	// limitShare caps a block at this fraction of its limit, so that one
	// environment that dies holding blocks strands at most 1/16 of a
	// window, and a limit too small to share (under 32) is never reserved.
	limitShare = 16
	// leftShare caps a block at this fraction of what the window had left
	// at the last read: as a window nears its limit the blocks shrink, and
	// its last admissions are taken one at a time, as a cold key's are.
	leftShare = 8
	// returnMargin: blocks are given back at shutdown only from windows
	// that end at least this far ahead, so that no writer, even one whose
	// clock runs a few seconds ahead, can have removed the counter yet.
	returnMargin = 10 * time.Second
	// rateSamples is the requests a rate is first measured over.
	rateSamples = 2
	// flushWriters is how many report writes Flush makes at once.
	flushWriters = 16
	// minHot is the least block a key's rate must call for before it is
	// reserved for: below it, a key is cold and each request is one write.
	minHot = 2
)

// lease is what one environment holds of one key.
type lease struct {
	mu sync.Mutex
	// limits and quota are those the blocks were taken under; a record
	// with other limits voids the blocks.
	limits []key.RateLimit
	quota  *key.Quota
	// win[i] is the window start (Unix seconds) of the block of limit i,
	// left[i] the admissions left in it.
	win, left []int64
	// qPeriod is the quota period of qLeft, the credits held.
	qPeriod string
	qLeft   int64
	// pending is the usage admitted from blocks and not yet reported;
	// oldest the time of its first admission, last of its latest.
	pending      []store.UsageDelta
	oldest, last time.Time
	// day is key.UsageDay of dayN (days since the Unix epoch), kept so
	// that an admission formats its day only when the day changes.
	day  string
	dayN int64
	// The rate estimate: requests counted since bucketAt, and the
	// smoothed rate (requests a second) of the buckets before.
	bucketAt time.Time
	bucketN  int64
	rate     float64
}

// leases holds the environment's leases, bounded by the cache size: a
// lease is dropped only once it holds nothing (no block, no unreported
// usage), so that no admission goes unreported.
type leases struct {
	mu  sync.Mutex
	m   map[apikey.Hash]*lease
	max int
}

func (ls *leases) get(h apikey.Hash, create bool) *lease {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.m[h]; l != nil || !create {
		return l
	}
	if len(ls.m) >= ls.max {
		for victim, l := range ls.m {
			if l.empty() {
				delete(ls.m, victim)
				break
			}
		}
		if len(ls.m) >= ls.max {
			return nil // this key stays cold until a lease empties
		}
	}
	l := &lease{}
	ls.m[h] = l
	return l
}

func (ls *leases) all() map[apikey.Hash]*lease {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make(map[apikey.Hash]*lease, len(ls.m))
	for h, l := range ls.m {
		out[h] = l
	}
	return out
}

// empty reports whether the lease holds no block and no unreported usage.
func (l *lease) empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending) == 0 && l.qLeft == 0 && !slices.ContainsFunc(l.left, func(n int64) bool { return n > 0 })
}

// observe counts a request in the rate estimate. The rate is measured over
// buckets of at least rateSamples requests or interval, whichever ends
// first, and never over no time: a key seen a few times, or many times in
// an instant, has no rate yet and stays cold.
func (l *lease) observe(now time.Time, interval time.Duration) {
	if l.bucketAt.IsZero() || now.Before(l.bucketAt) {
		l.bucketAt, l.bucketN = now, 0
	}
	l.bucketN++
	if el := now.Sub(l.bucketAt); el > 0 && (el >= interval || l.bucketN > rateSamples) {
		r := float64(l.bucketN-1) / el.Seconds()
		if l.rate == 0 {
			l.rate = r
		} else {
			l.rate = 0.5*l.rate + 0.5*r
		}
		l.bucketAt, l.bucketN = now, 1
	}
	// A key gone quiet cools down: a bucket open longer than the
	// interval caps the rate.
	if el := now.Sub(l.bucketAt); el > interval {
		l.rate = min(l.rate, float64(l.bucketN)/el.Seconds())
	}
}

// want is the block the key's rate calls for: the requests it expects in
// interval, at most until the window ends.
func (l *lease) want(interval, until time.Duration) int64 {
	if until < interval {
		interval = until
	}
	return int64(math.Ceil(l.rate * interval.Seconds()))
}

// hot reports whether the key's rate calls for blocks of at least minHot.
func (l *lease) hot(interval time.Duration) bool {
	return l.want(interval, interval) >= minHot
}

// sync makes the lease's blocks those of the record's limits and of the
// windows holding now: a block of a past window, or of limits the key no
// longer has, is dropped (it can never be admitted from again).
func (l *lease) sync(k *key.Key, now time.Time) {
	if !slices.Equal(l.limits, k.RateLimits) || !sameQuota(l.quota, k.Quota) {
		l.limits, l.quota = k.RateLimits, k.Quota
		l.win, l.left = make([]int64, len(k.RateLimits)), make([]int64, len(k.RateLimits))
		l.qPeriod, l.qLeft = "", 0
	}
	for i, rl := range l.limits {
		if w := rl.WindowStart(now); l.win[i] != w {
			l.win[i], l.left[i] = w, 0
		}
	}
	if q := l.quota; q != nil {
		// Compared as bytes, and formatted as a string only when the
		// period changes: a request admitted from blocks allocates no key.
		var b [16]byte
		if p := q.AppendPeriodKey(b[:0], now); l.qPeriod != string(p) {
			l.qPeriod, l.qLeft = string(p), 0
		}
	}
}

func sameQuota(a, b *key.Quota) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// admit admits one request of cost from the blocks held, when every limit
// has one left and the quota the credits; it reports whether it did.
func (l *lease) admit(now time.Time, cost int64) bool {
	for _, n := range l.left {
		if n < 1 {
			return false
		}
	}
	if l.quota != nil && l.qLeft < cost {
		return false
	}
	for i := range l.left {
		l.left[i]--
	}
	if l.quota != nil {
		l.qLeft -= cost
	}
	l.count(now, 1, cost)
	return true
}

// count adds admissions to the unreported usage.
func (l *lease) count(now time.Time, requests, credits int64) {
	if n := now.Unix() / 86400; n != l.dayN || l.day == "" {
		l.day, l.dayN = key.UsageDay(now), n
	}
	day := l.day
	if i := slices.IndexFunc(l.pending, func(d store.UsageDelta) bool { return d.Day == day }); i >= 0 {
		l.pending[i].Requests += requests
		l.pending[i].Credits += credits
	} else {
		l.pending = append(l.pending, store.UsageDelta{Day: day, Requests: requests, Credits: credits})
	}
	if l.oldest.IsZero() {
		l.oldest = now
	}
	if now.After(l.last) {
		l.last = now
	}
}

// takeReport hands the unreported usage to a write, which gives it back
// (putReport) if it fails.
func (l *lease) takeReport() (p []store.UsageDelta, oldest, last time.Time) {
	p, oldest, last = l.pending, l.oldest, l.last
	l.pending, l.oldest, l.last = nil, time.Time{}, time.Time{}
	return p, oldest, last
}

func (l *lease) putReport(p []store.UsageDelta, oldest, last time.Time) {
	for _, d := range p {
		if i := slices.IndexFunc(l.pending, func(x store.UsageDelta) bool { return x.Day == d.Day }); i >= 0 {
			l.pending[i].Requests += d.Requests
			l.pending[i].Credits += d.Credits
		} else {
			l.pending = append(l.pending, d)
		}
	}
	if len(p) > 0 && (l.oldest.IsZero() || oldest.Before(l.oldest)) {
		l.oldest = oldest
	}
	if last.After(l.last) {
		l.last = last
	}
}

// plan is one reservation write of a verification: what it takes, what the
// request took from blocks already held (given back if the write fails),
// and the report it carries.
type plan struct {
	res        store.Reservation
	held       []bool // held[i]: the request's admission came from limit i's block
	heldQ      bool
	cost       int64
	win        []int64
	qPeriod    string
	oldest, at time.Time
	// limits and quota are the lease's when the plan was made: what its
	// held admissions came from.
	limits []key.RateLimit
	quota  *key.Quota
}

// reserve plans the reservation write of a request that its blocks could
// not admit: every limit's block is topped up to what the key's rate calls
// for (capped by the window's time left, limitShare of the limit and
// leftShare of what the last read left), at least the one admission the
// request needs where no block holds one. nil means no reservation: the
// key is cold, and the write is a cold key's (exactly this request).
func (l *lease) reserve(rec *store.Record, now time.Time, cost int64, o *Options) *plan {
	hot := l.hot(o.ReserveInterval)
	if !hot && len(l.pending) == 0 && l.qLeft == 0 && !slices.ContainsFunc(l.left, func(n int64) bool { return n > 0 }) {
		return nil
	}
	p := &plan{cost: cost, held: make([]bool, len(l.limits)), win: slices.Clone(l.win), qPeriod: l.qPeriod, limits: l.limits, quota: l.quota}
	p.res.Rate = make([]int64, len(l.limits))
	for i, rl := range l.limits {
		need := int64(1)
		if l.left[i] >= 1 {
			l.left[i]--
			p.held[i], need = true, 0
		}
		block := int64(0)
		if hot {
			left := rl.Limit - rec.RL[string(rl.AppendCounter(nil, now))]
			block = min(l.want(o.ReserveInterval, rl.WindowEnd(now).Sub(now)), rl.Limit/limitShare, left/leftShare) - l.left[i]
		}
		p.res.Rate[i] = max(block, need)
	}
	if q := l.quota; q != nil {
		need := cost
		if l.qLeft >= cost {
			l.qLeft -= cost
			p.heldQ, need = true, 0
		}
		block := int64(0)
		if hot {
			left := q.Limit - rec.Q[l.qPeriod]
			block = min(l.want(o.ReserveInterval, o.ReserveInterval)*cost, q.Limit/limitShare, left/leftShare) - l.qLeft
		}
		p.res.Credits = max(block, need)
	}
	p.res.Report, p.oldest, p.at = l.takeReport()
	return p
}

// shrink makes p's blocks fit what the refused write's record shows each
// limit has left (final: only what the request needs), and reports
// whether a retry can succeed: false when a limit the request needs is
// spent, or when the floor refused (this environment's clock lags behind a
// window another one closed).
func (p *plan) shrink(rec *store.Record, now time.Time, final bool) bool {
	limits, quota := rec.Key.RateLimits, rec.Key.Quota
	if rec.Behind(now) {
		return false // the floor refused: no block fits
	}
	ok := true
	for i, rl := range limits {
		need := int64(1)
		if p.held[i] {
			need = 0
		}
		left := rl.Limit - rec.RL[rl.Counter(now)]
		if left < need {
			ok = false
		}
		if final {
			p.res.Rate[i] = need
		} else {
			p.res.Rate[i] = max(min(p.res.Rate[i], left/2), need)
		}
	}
	if quota != nil {
		need := p.cost
		if p.heldQ {
			need = 0
		}
		left := quota.Limit - rec.Q[quota.PeriodKey(now)]
		if left < need {
			ok = false
		}
		if final {
			p.res.Credits = need
		} else {
			p.res.Credits = max(min(p.res.Credits, left/2), need)
		}
	}
	return ok
}

// taken adds what an admitted write reserved to the blocks, less the
// request's own admission.
func (l *lease) taken(p *plan, rec *store.Record, now time.Time) {
	l.sync(rec.Key, now)
	if !slices.Equal(l.limits, rec.Key.RateLimits) {
		return
	}
	for i := range l.limits {
		if i < len(p.win) && l.win[i] == p.win[i] {
			l.left[i] += p.res.Rate[i]
			if !p.held[i] {
				l.left[i]--
			}
		}
	}
	if l.quota != nil && l.qPeriod == p.qPeriod {
		l.qLeft += p.res.Credits
		if !p.heldQ {
			l.qLeft -= p.cost
		}
	}
}

// failed gives back what a write that admitted nothing had taken from the
// blocks, and its report.
func (l *lease) failed(p *plan) {
	l.putReport(p.res.Report, p.oldest, p.at)
	if !slices.Equal(l.limits, p.limits) || !sameQuota(l.quota, p.quota) {
		// The lease moved to other limits while the write was out: its
		// blocks are not those the plan took from.
		return
	}
	for i := range l.left {
		if i < len(p.held) && p.held[i] && l.win[i] == p.win[i] {
			l.left[i]++
		}
	}
	if p.heldQ && l.qPeriod == p.qPeriod {
		l.qLeft += p.cost
	}
}

// Flush reports every key's unreported usage that is at least
// ReportInterval old (all of it when final), one report write per key;
// when final (the environment is shutting down) it also gives back the
// blocks it holds, from windows that end at least returnMargin ahead, and
// forgets them. It returns the first error; a key whose report failed keeps
// its usage for the next flush. Keys are reported flushWriters at a time,
// so that many hot keys fit in the 500 ms Lambda leaves after SIGTERM. The
// authorizer runs it every ReportInterval, and with final on SIGTERM.
func (v *Verifier) Flush(ctx context.Context, final bool) error {
	now := v.o.Now()
	var (
		first error
		errMu sync.Mutex
		wg    sync.WaitGroup
		sem   = make(chan struct{}, flushWriters)
	)
	for h, l := range v.leases.all() {
		in := store.ReportInput{Hash: h, Now: now}
		var oldest time.Time
		l.mu.Lock()
		if len(l.pending) > 0 && (final || now.Sub(l.oldest) >= v.o.ReportInterval) {
			in.Usage, oldest, in.LastUsedAt = l.takeReport()
		}
		if final {
			for i, rl := range l.limits {
				if l.left[i] > 0 && rl.WindowEnd(now).Sub(now) >= returnMargin && l.win[i] == rl.WindowStart(now) {
					if in.Return == nil {
						in.Return = map[string]int64{}
					}
					in.Return[rl.Counter(now)] = l.left[i]
				}
				l.left[i] = 0
			}
			if q := l.quota; q != nil && l.qLeft > 0 && l.qPeriod == q.PeriodKey(now) &&
				(q.Period == key.Total || q.PeriodEnd(now).Sub(now) >= returnMargin) {
				in.ReturnCredits = map[string]int64{l.qPeriod: l.qLeft}
			}
			l.qLeft = 0
		}
		l.mu.Unlock()
		if len(in.Usage) == 0 && len(in.Return) == 0 && len(in.ReturnCredits) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rr, err := v.store.Report(ctx, in)
			if err != nil {
				l.mu.Lock()
				l.putReport(in.Usage, oldest, in.LastUsedAt)
				l.mu.Unlock()
				errMu.Lock()
				if first == nil {
					first = err
				}
				errMu.Unlock()
				return
			}
			if rr.Record != nil {
				// The item as the report left it: a fresher record (a
				// cached denial stands).
				e, _ := v.cache.get(h)
				e.rec, e.readAt = rr.Record, now
				v.cache.put(h, e)
			}
		}()
	}
	wg.Wait()
	return first
}

// ReportEvery runs Flush every interval until ctx ends: the reports of
// keys that went quiet, whose usage no reservation write carries.
func (v *Verifier) ReportEvery(ctx context.Context, errs func(error)) {
	t := time.NewTicker(v.o.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := v.Flush(ctx, false); err != nil && errs != nil {
			errs(err)
		}
	}
}
