// Package verify decides whether a request's API key may call a route: it
// finds the key, checks its format, state, environment, stage, type, origin,
// scopes, source IP, rate limits and quota in the order the design fixes,
// and counts the request, normally with one DynamoDB round trip (the
// store's Verify) and none when the answer is already known in process. It
// knows nothing of API Gateway's event shapes; internal/authorizer adapts
// those. docs/verification.md describes the behaviour for users.
//
// # One round trip
//
// The checks after the cache are one conditional UpdateItem on the key's hot item
// (store.Verify): its condition holds everything DynamoDB can evaluate and
// its update counts the request, returning the new item, which refreshes
// the cache. When the condition fails, DynamoDB returns the old item and
// check evaluates the same rules on it to say which one refused, and when a
// retry can succeed. The checks DynamoDB cannot do (CIDR allowlists,
// wildcard origins) run on the cached record before the call and again on
// the returned item (the key may be new to this environment, or its
// allowlists may have changed); a request refused there gets its counts
// taken back by store.Refund, so the limits stay exact (a refund can only
// make a limit admit fewer, never more).
//
// To name the counters the update must know the key's limits, so it is
// guarded on the stored rateLimits and quota being exactly the ones it
// counts: those of the cached record or, for a key never seen, those of the
// last key this environment saw (keys of one plan share them). A wrong
// guess is refused without counting and retried once with the real limits;
// that retry is the second round trip of a key's first verification (when
// its limits differ from the last key's) and of the first one after its
// limits changed. Other changes to a key need no retry: the condition
// re-checks state, scopes and the rest, and CIDRs and origins are
// re-checked on the returned item.
//
// # Hot keys
//
// A key this environment sees often is verified from reservations: the
// update takes a block of admissions from each limit at once, and the
// next requests are admitted from it in process (lease.go says how, and
// why that never admits more than a limit). Access tokens count against
// their key through the same update and the same blocks.
package verify

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

// Store is the part of internal/store the verifier needs: the one
// conditional update, its refund for the rare late refusal, and the report
// of usage admitted from reservations.
type Store interface {
	Verify(ctx context.Context, in store.VerifyInput) (store.VerifyResult, error)
	Refund(ctx context.Context, in store.VerifyInput, rec *store.Record) error
	Report(ctx context.Context, in store.ReportInput) (store.ReportResult, error)
}

// TokenVerifier is the seam for credentials that are not API keys: a bearer
// credential that does not parse as a key is offered to it (internal/token
// verifies signed access tokens offline). ok=false means the credential is
// not one of its tokens, and the request is refused as a malformed key. On
// an allow, Decision.Key is the key the token speaks for (its id, owner,
// scopes and rules, enabled, with no validity window or limits of its own)
// and Decision.TokenID the token's id; the verifier then applies what it
// knows of that key and every rule of the route, as for the key itself.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string, req *Request) (d Decision, ok bool)
}

// Request is what the verifier needs to know about one request. The
// authorizer fills it from API Gateway's event; SourceIP comes from the
// request context API Gateway sets, never from X-Forwarded-For.
type Request struct {
	RequestID string
	// Credential is the key (or token) the request carries, "" if none.
	Credential string
	// Bearer is true when the credential came from Authorization: Bearer.
	Bearer bool
	Method string
	Path   string
	Stage  string
	// SourceIP is "" when the dialect does not say (TOKEN authorizers): a
	// key with a CIDR allowlist is then refused.
	SourceIP string
	// Origin is the request's Origin header, "" if none.
	Origin string
}

// Decision is the verifier's answer. Reason is "" for an allow.
type Decision struct {
	Reason gateway.Reason
	// RetryAfter is the whole seconds until a retry can succeed, for
	// rate_limited and quota_exceeded; 0 when retrying will not help.
	RetryAfter int64
	// Key is the key, once recognised (nil for missing, malformed and
	// unknown keys). It is shared with the cache: never modify it.
	Key *key.Key
	// RateLimitRemaining ("name=n,...") and QuotaRemaining ("" without a
	// quota) are set on an allow that DynamoDB counted.
	RateLimitRemaining string
	QuotaRemaining     string
	// Calls is the DynamoDB round trips made; CacheHit whether the
	// in-process cache held the key; Stale whether the allow was served
	// from the cache because DynamoDB could not answer (serve-stale).
	Calls    int
	CacheHit bool
	Stale    bool
	// Err is the store error behind an unavailable decision, for the log.
	Err error
	// TokenID is the id (jti) of the access token the request carried, ""
	// for a key; TokenIssuedAt is the token's iat.
	TokenID       string
	TokenIssuedAt time.Time
	// Reserved is true for an allow admitted from a reservation this
	// environment holds, with no call (its usage is reported later).
	Reserved bool
}

// Allowed reports whether the decision admits the request.
func (d Decision) Allowed() bool { return d.Reason == "" }

// Options configure a Verifier. Zero values take the defaults noted.
type Options struct {
	Format apikey.Format
	Hasher *apikey.Hasher
	// Environments the deployment accepts (default: any).
	Environments []key.Environment
	Routes       Routes
	// BasePath is stripped from request paths before they are matched
	// against Routes (see ParseBasePath); "" for none.
	BasePath string
	// Unmatched is what a request matching no route needs (default:
	// nothing beyond a valid key).
	Unmatched Unmatched
	// CacheTTL is how long a record read from DynamoDB is trusted to refuse
	// a key without a call (default DefaultCacheTTL). Allows always go to
	// DynamoDB.
	CacheTTL time.Duration
	// NegativeTTL is how long an unknown key is refused without a call
	// (default DefaultNegativeTTL).
	NegativeTTL time.Duration
	// CacheSize bounds the entries kept (default DefaultCacheSize).
	CacheSize int
	// StoreTimeout is the deadline for DynamoDB, well under API Gateway's
	// 10 s authorizer limit (default DefaultStoreTimeout).
	StoreTimeout time.Duration
	// ServeStale, when positive, admits a key that DynamoDB admitted within
	// this long when DynamoDB cannot answer, from the cached record (limits
	// are not counted then). Zero (the default) fails closed always.
	ServeStale time.Duration
	// ReserveInterval is how much of a hot key's traffic in this
	// environment one reservation covers (default DefaultReserveInterval);
	// negative turns reservations off, so that every admission is one
	// write. See lease.go.
	ReserveInterval time.Duration
	// ReportInterval is the longest an admission made from a reservation
	// waits to be reported while the environment lives (default
	// DefaultReportInterval); Flush reports.
	ReportInterval time.Duration
	// Tokens verifies bearer credentials that are not keys; nil for none.
	Tokens TokenVerifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// The defaults of Options, which the settings registry (internal/config)
// declares as the authorizer's defaults too.
const (
	DefaultCacheTTL     = 5 * time.Second
	DefaultNegativeTTL  = time.Minute
	DefaultCacheSize    = 10000
	DefaultStoreTimeout = 2 * time.Second
)

// maxDenyCache caps how long a rate-limit or quota denial is served from
// the cache, so raising a day-long limit bites within a minute.
const maxDenyCache = time.Minute

// maxAttempts bounds the updates of one verification: a wrong guess of the
// key's limits, or limits changed since the cached record, cost one more,
// never a loop.
const maxAttempts = 3

// Verifier verifies requests. It is safe for concurrent use; build one per
// process at cold start.
type Verifier struct {
	o      Options
	routes *RouteTable
	cache  *cache
	store  Store
	// shape is the last key record seen, used to guess the limits of a key
	// never seen before (keys of one plan share them), so that its first
	// verification is one round trip too.
	shape atomic.Pointer[key.Key]
	// leases are the blocks this environment holds of hot keys, and the
	// usage admitted from them that is not reported yet.
	leases *leases
}

// New returns a verifier over st.
func New(st Store, o Options) *Verifier {
	if o.Hasher == nil {
		o.Hasher = apikey.NewHasher(nil)
	}
	if o.Format.Prefix() == "" {
		o.Format, _ = apikey.NewFormat("")
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = DefaultNegativeTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = DefaultStoreTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReserveInterval == 0 {
		o.ReserveInterval = DefaultReserveInterval
	}
	if o.ReportInterval <= 0 {
		o.ReportInterval = DefaultReportInterval
	}
	return &Verifier{o: o, routes: NewRouteTable(o.Routes, o.BasePath, o.Unmatched), cache: newCache(o.CacheSize), store: st,
		leases: &leases{m: map[apikey.Hash]*lease{}, max: o.CacheSize}}
}

// Messages are the human-readable texts that go with each reason.
var Messages = map[gateway.Reason]string{
	gateway.MissingKey:        "no API key: send it in the x-api-key header or as Authorization: Bearer",
	gateway.MalformedKey:      "the API key is malformed",
	gateway.InvalidPath:       "the request path is not canonical: empty or dot segments, escaped separators or dots, backslashes and semicolons are refused",
	gateway.RouteNotAllowed:   "no route of this API matches the method and path",
	gateway.UnknownKey:        "the API key is not known",
	gateway.Disabled:          "the API key is disabled",
	gateway.Revoked:           "the API key is revoked",
	gateway.Expired:           "the API key has expired",
	gateway.NotYetValid:       "the API key is not valid yet",
	gateway.WrongEnvironment:  "the API key is not for this environment or stage",
	gateway.InsufficientScope: "the API key lacks a scope this route requires",
	gateway.MethodNotAllowed:  "publishable keys may only use GET, HEAD and OPTIONS",
	gateway.OriginNotAllowed:  "the API key may not be used from this origin",
	gateway.IPNotAllowed:      "the API key may not be used from this address",
	gateway.RateLimited:       "rate limit exceeded",
	gateway.QuotaExceeded:     "quota exceeded",
	gateway.Unavailable:       "the key could not be verified; try again",
}

// local is the outcome of the in-process part of a verification.
type local struct {
	hash  apikey.Hash
	route *Route
	e     entry
	hit   bool
	// token: the credential is not a key but may be an access token.
	token bool
}

// Verify decides one request. It never panics: a panic is recovered and
// refuses with unavailable, as does any store error or timeout.
func (v *Verifier) Verify(ctx context.Context, req *Request) (d Decision) {
	defer func() {
		if p := recover(); p != nil {
			d = Decision{Reason: gateway.Unavailable, Err: fault.Errorf(fault.Internal, "panic: %v", p)}
		}
	}()
	now := v.o.Now()
	l, d, done := v.local(req, now)
	if done {
		return d
	}
	if l.token {
		return v.token(ctx, req, now)
	}
	if d, ok := v.reserved(&l, now, false); ok {
		return d
	}
	return v.remote(ctx, req, &l, now)
}

// reserved admits a request from the blocks this environment holds of
// its key, with no call, when the cached record is within the cache TTL
// (local has checked every rule on it), and counts it as unreported usage.
// A key without limits or quota has no blocks to hold: a hot one (or an
// access token's, always) is admitted on the fresh record alone. ok is
// false when the request must go to DynamoDB: the key is cold, or a block
// is spent. Unreported usage never sends a request to DynamoDB: the next
// write carries it, or Flush reports it.
func (v *Verifier) reserved(l *local, now time.Time, token bool) (d Decision, ok bool) {
	rec := l.e.rec
	if v.o.ReserveInterval < 0 || rec == nil {
		return d, false
	}
	ls := v.leases.get(l.hash, true)
	if ls == nil {
		return d, false
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.observe(now, v.o.ReserveInterval)
	if now.Sub(l.e.readAt) >= v.o.CacheTTL || now.Before(l.e.readAt) {
		return d, false
	}
	ls.sync(rec.Key, now)
	cost := max(l.route.Cost, 1)
	if len(ls.limits) == 0 && ls.quota == nil {
		if !token && !ls.hot(v.o.ReserveInterval) {
			return d, false
		}
		ls.count(now, 1, cost)
	} else if !ls.admit(now, cost) {
		return d, false
	}
	d = Decision{Key: rec.Key, CacheHit: true, Reserved: true}
	d.RateLimitRemaining, d.QuotaRemaining = remaining(rec, now, ls)
	return d, true
}

// token decides a request that carries an access token: the token
// verifier checks the token offline, and the token's own rules (its
// scopes, a subset of the key's) apply against the route. Then the request
// counts against its key exactly as the key's own would: the token names
// its key's hot item (Decision.Key.Hash, from the token), so the cached
// record refuses what it refuses (a revoked key at any age, a disabled,
// expired or rate-limited one within the cache TTL), a hot key's requests
// are admitted from this environment's blocks, and the rest make the
// key's one conditional write, with the same reasons and retry times. A
// key with no limits and no quota holds no blocks: its token's requests
// are admitted on the cached record alone, and their usage reported later.
func (v *Verifier) token(ctx context.Context, req *Request, now time.Time) Decision {
	td, ok := v.o.Tokens.VerifyToken(ctx, req.Credential, req)
	if !ok {
		return Decision{Reason: gateway.MalformedKey}
	}
	if !td.Allowed() {
		return td
	}
	if td.Key == nil || td.Key.Hash == (apikey.Hash{}) {
		td.Reason = gateway.MalformedKey
		return td
	}
	route, reason := v.routes.Resolve(req.Method, req.Path)
	if reason != "" {
		td.Reason = reason
		return td
	}
	l := local{hash: td.Key.Hash, route: route}
	l.e, l.hit = v.cache.get(l.hash)
	if now.Before(l.e.unknownUntil) {
		td.Reason, td.Key = gateway.UnknownKey, nil
		return td
	}
	rec := l.e.rec
	if !l.hit || rec == nil || rec.Key.ID != td.Key.ID {
		rec = nil
	}
	if r := v.tokenRefusedByCache(&td, rec, l.e.readAt, now); r != "" {
		td.Reason = r
		return td
	}
	if r := v.check(td.Key, req, l.route, now); r != "" {
		td.Reason = r
		return td
	}
	d := td
	if rec != nil {
		if now.Sub(l.e.readAt) < v.o.CacheTTL {
			if r := v.check(rec.Key, req, l.route, now); r != "" {
				d.Reason = r
				return d
			}
		}
		if now.Before(l.e.deniedUntil) && (l.e.deniedReason != gateway.QuotaExceeded || l.route.Cost > l.e.quotaLeft) {
			d.Reason, d.RetryAfter = l.e.deniedReason, retryAfter(now, l.e.retryAt)
			return d
		}
		if rd, ok := v.reserved(&l, now, true); ok {
			d.CacheHit, d.Reserved = true, true
			d.RateLimitRemaining, d.QuotaRemaining = rd.RateLimitRemaining, rd.QuotaRemaining
			return d
		}
	}
	rd := v.remote(ctx, req, &l, now)
	rd.Calls += td.Calls
	rd.TokenID, rd.TokenIssuedAt = td.TokenID, td.TokenIssuedAt
	if rd.Allowed() {
		// The context speaks for the token: its scopes, not the key's.
		rd.Key = td.Key
	}
	return rd
}

// tokenRefusedByCache refuses a token by the record of its key this process
// holds (rec, read at readAt; nil for none), if it says the key is not
// active now:
//
//   - revoked, at any age: revocation is final;
//   - disabled, expired or not yet valid, when the record was read after
//     the token was issued (the key stopped being usable since: the token
//     stays refused here for the rest of its life, even if the key is
//     re-enabled or extended later, so a client takes a new token), or
//     within the cache TTL whenever it was issued (as a key is refused
//     from the cache). An older record about a newer token is not trusted:
//     the token's exchange may have followed an enable or an extension.
//
// The token's iat is in whole seconds, so a token issued in the second a
// record was read counts as newer than it.
func (v *Verifier) tokenRefusedByCache(td *Decision, rec *store.Record, readAt, now time.Time) gateway.Reason {
	if rec == nil {
		return ""
	}
	st := rec.Key.StatusAt(now)
	switch {
	case st == key.Active:
		return ""
	case st == key.Revoked:
		return gateway.Revoked
	case now.Sub(readAt) < v.o.CacheTTL || !td.TokenIssuedAt.Add(time.Second).After(readAt):
		return gateway.Reason(st)
	}
	return ""
}

// local does everything that needs no DynamoDB: find and parse the key,
// resolve the route (a path refused whatever the key is refused here, so it
// costs no DynamoDB call), hash the key, look it up in the cache and decide
// from the cached record when that is enough. done reports whether d is
// the answer. It allocates nothing; TestVerificationCoreAllocatesNothing
// holds it to that.
func (v *Verifier) local(req *Request, now time.Time) (l local, d Decision, done bool) {
	if req.Credential == "" {
		return l, Decision{Reason: gateway.MissingKey}, true
	}
	pk, err := v.o.Format.Parse(req.Credential)
	if err != nil {
		if req.Bearer && v.o.Tokens != nil {
			l.token = true
			return l, d, false
		}
		return l, Decision{Reason: gateway.MalformedKey}, true
	}
	var reason gateway.Reason
	if l.route, reason = v.routes.Resolve(req.Method, req.Path); reason != "" {
		return l, Decision{Reason: reason}, true
	}
	l.hash = v.o.Hasher.Sum(pk.Plaintext)
	l.e, l.hit = v.cache.get(l.hash)
	if !l.hit {
		return l, d, false
	}
	e := &l.e
	d.CacheHit = true
	if now.Before(e.unknownUntil) {
		d.Reason = gateway.UnknownKey
		return l, d, true
	}
	if e.rec == nil {
		return l, d, false
	}
	d.Key = e.rec.Key
	if now.Before(e.deniedUntil) && (e.deniedReason != gateway.QuotaExceeded || l.route.Cost > e.quotaLeft) {
		d.Reason, d.RetryAfter = e.deniedReason, retryAfter(now, e.retryAt)
		if r := v.check(e.rec.Key, req, l.route, now); r != "" {
			d.Reason, d.RetryAfter = r, 0 // a refusal that comes first in the order
		}
		return l, d, true
	}
	if now.Sub(e.readAt) < v.o.CacheTTL {
		if r := v.check(e.rec.Key, req, l.route, now); r != "" {
			d.Reason = r
			return l, d, true
		}
	}
	return l, d, false
}

// check applies every rule the key's record decides, in the design's
// order, and returns the first refusal or "". Rate limits and quotas are
// not here: only DynamoDB can decide them exactly.
func (v *Verifier) check(k *key.Key, req *Request, r *Route, now time.Time) gateway.Reason {
	switch k.StatusAt(now) {
	case key.Revoked:
		return gateway.Revoked
	case key.Disabled:
		return gateway.Disabled
	case key.Expired:
		return gateway.Expired
	case key.NotYetValid:
		return gateway.NotYetValid
	}
	if len(v.o.Environments) > 0 && !slices.Contains(v.o.Environments, k.Environment) {
		return gateway.WrongEnvironment
	}
	if len(k.Stages) > 0 && !slices.Contains(k.Stages, req.Stage) {
		return gateway.WrongEnvironment
	}
	if k.Type == key.Publishable && !readOnly(req.Method) {
		return gateway.MethodNotAllowed
	}
	if len(k.AllowedOrigins) > 0 && !originAllowed(k.AllowedOrigins, req.Origin) {
		return gateway.OriginNotAllowed
	}
	for _, s := range r.Scopes {
		if !slices.Contains(k.Scopes, s) {
			return gateway.InsufficientScope
		}
	}
	if len(k.AllowedCIDRs) > 0 && !ipAllowed(k.AllowedCIDRs, req.SourceIP) {
		return gateway.IPNotAllowed
	}
	return ""
}

// readOnly reports whether a method is one publishable keys may use.
func readOnly(method string) bool {
	return method == "GET" || method == "HEAD" || method == "OPTIONS"
}

// originAllowed matches an Origin header against allowed origins: exactly
// (ignoring case), or, for "scheme://*.host[:port]", any subdomain of host at
// any depth with the same scheme and port (not host itself).
func originAllowed(allowed []string, origin string) bool {
	if origin == "" {
		return false
	}
	for _, a := range allowed {
		if strings.EqualFold(a, origin) {
			return true
		}
		i := strings.Index(a, "://*.")
		if i < 0 {
			continue
		}
		scheme, suffix := a[:i+3], a[i+4:] // "https://", ".example.com[:port]"
		if len(origin) <= len(scheme)+len(suffix) ||
			!strings.EqualFold(origin[:len(scheme)], scheme) ||
			!strings.EqualFold(origin[len(origin)-len(suffix):], suffix) {
			continue
		}
		label := origin[len(scheme) : len(origin)-len(suffix)]
		if !strings.ContainsAny(label, "/:@?#") && label[len(label)-1] != '.' {
			return true
		}
	}
	return false
}

// ipAllowed checks the source IP (IPv4 or IPv6; IPv4-mapped IPv6 counts as
// IPv4) against the allowlist. An absent or unparsable IP is refused.
func ipAllowed(cidrs []netip.Prefix, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range cidrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remote makes the conditional update, and retries it when the record
// shows the update named the wrong limits (a guessed shape, or limits
// changed since the cached record), at most maxAttempts times. For a hot
// key the update is a reservation (see lease.go): refused because a block
// does not fit, it is retried with smaller blocks, the last attempt taking
// only what the request needs, so that a refusal then means a limit is
// spent.
func (v *Verifier) remote(ctx context.Context, req *Request, l *local, now time.Time) Decision {
	d := Decision{CacheHit: l.hit}
	in := store.VerifyInput{
		Hash: l.hash, Now: now, Environments: v.o.Environments,
		SecretOnly: !readOnly(req.Method), Scopes: l.route.Scopes, Stage: req.Stage, Cost: l.route.Cost,
		Known: l.e.rec,
	}
	if in.Known == nil {
		in.Shape = v.shape.Load()
	}
	var ls *lease
	var p *plan
	if v.o.ReserveInterval > 0 && in.Known != nil {
		if ls = v.leases.get(l.hash, false); ls != nil {
			ls.mu.Lock()
			ls.sync(in.Known.Key, now)
			if p = ls.reserve(in.Known, now, max(in.Cost, 1), &v.o); p != nil {
				in.Reserve = &p.res
			}
			ls.mu.Unlock()
		}
	}
	// undo gives back what the plan took from the blocks, and its report,
	// when its write admitted nothing.
	undo := func() {
		if p != nil {
			ls.mu.Lock()
			ls.failed(p)
			ls.mu.Unlock()
			p, in.Reserve = nil, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, v.o.StoreTimeout)
	defer cancel()
	for attempt := range maxAttempts {
		res, err := v.store.Verify(ctx, in)
		d.Calls++
		if err != nil {
			undo()
			return v.failed(req, l, now, d, err)
		}
		rec := res.Record
		if rec == nil {
			undo()
			v.cache.put(l.hash, entry{unknownUntil: now.Add(v.o.NegativeTTL)})
			d.Reason = gateway.UnknownKey
			return d
		}
		d.Key = rec.Key
		v.shape.Store(rec.Key)
		if res.Admitted {
			if p != nil {
				ls.mu.Lock()
				ls.taken(p, rec, now)
				ls.mu.Unlock()
			}
			if r := v.check(rec.Key, req, l.route, now); r != "" {
				// DynamoDB cannot evaluate CIDRs or wildcard origins: take
				// back what it counted for this refused request.
				d.Calls++
				if err := v.store.Refund(ctx, in, rec); err != nil {
					d.Err = err // logged; the limits err towards admitting fewer
				}
				v.remember(l, rec, now, false)
				d.Reason = r
				return d
			}
			v.remember(l, rec, now, true)
			d.RateLimitRemaining, d.QuotaRemaining = remaining(rec, now, nil)
			return d
		}
		if r := v.check(rec.Key, req, l.route, now); r != "" {
			undo()
			v.remember(l, rec, now, false)
			d.Reason = r
			return d
		}
		if guardMatched(in, rec) {
			if p != nil && p.shrink(rec, now, attempt+2 >= maxAttempts) {
				in.Known = rec // smaller blocks, again
				continue
			}
			var held []bool
			heldQ := false
			if p != nil {
				held, heldQ = p.held, p.heldQ
			}
			if r, until := overLimit(rec, now, in.Cost, held, heldQ); r != "" {
				undo()
				e := entry{rec: rec, readAt: now, admittedAt: l.e.admittedAt, deniedReason: r, retryAt: until,
					deniedUntil: now.Add(min(v.o.CacheTTL, maxDenyCache))}
				if q := rec.Key.Quota; r == gateway.QuotaExceeded {
					e.quotaLeft = q.Limit - rec.Q[q.PeriodKey(now)]
				}
				if !until.IsZero() {
					e.deniedUntil = minTime(until, now.Add(maxDenyCache))
				}
				v.cache.put(l.hash, e)
				d.Reason, d.RetryAfter = r, retryAfter(now, until)
				return d
			}
		}
		// The update named other limits than the key has now: again, with
		// the record DynamoDB just returned (and no reservation: the
		// blocks held were of the old limits).
		undo()
		in.Known, in.Shape = rec, nil
	}
	undo()
	// Never served stale: DynamoDB answered every attempt (this is no
	// outage), and an uncounted admission here could pass a limit that
	// other environments keep.
	d.Err = fault.Errorf(fault.Unavailable, "key record kept changing under %d verifications", maxAttempts)
	d.Reason = gateway.Unavailable
	return d
}

// failed decides when DynamoDB could not: unavailable, unless serve-stale
// is on and the key was admitted recently. Never when DynamoDB throttled:
// a client could otherwise hammer one hot key until DynamoDB throttles it
// and then be admitted without being counted.
func (v *Verifier) failed(req *Request, l *local, now time.Time, d Decision, err error) Decision {
	d.Err = err
	if v.o.ServeStale > 0 && !fault.Is(err, fault.Throttled) && l.e.rec != nil && !l.e.admittedAt.IsZero() &&
		now.Sub(l.e.admittedAt) <= v.o.ServeStale && v.check(l.e.rec.Key, req, l.route, now) == "" {
		d.Key, d.Stale, d.Reason = l.e.rec.Key, true, ""
		return d
	}
	d.Reason = gateway.Unavailable
	return d
}

// remember caches a record DynamoDB returned; admitted records when the
// key was last admitted, for serve-stale.
func (v *Verifier) remember(l *local, rec *store.Record, now time.Time, admitted bool) {
	e := entry{rec: rec, readAt: now, admittedAt: l.e.admittedAt}
	if admitted {
		e.admittedAt = now
	}
	v.cache.put(l.hash, e)
}

// guardMatched reports whether the update was guarded on the limits the
// record has, so that a refusal can only be the limits' doing.
func guardMatched(in store.VerifyInput, rec *store.Record) bool {
	var rl []key.RateLimit
	var q *key.Quota
	switch {
	case in.Known != nil:
		rl, q = in.Known.Key.RateLimits, in.Known.Key.Quota
	case in.Shape != nil:
		rl, q = in.Shape.RateLimits, in.Shape.Quota
	}
	return slices.Equal(rl, rec.Key.RateLimits) && sameQuota(q, rec.Key.Quota)
}

// overLimit finds which limit refused a request from the record the failed
// condition saw: the floor (a clock behind), the rate limits, then the
// quota. until is when a retry can succeed (zero for a total quota, which
// never refills). A limit whose block held the request's admission
// (held[i], heldQ for the quota) did not refuse it.
func overLimit(rec *store.Record, now time.Time, cost int64, held []bool, heldQ bool) (gateway.Reason, time.Time) {
	if rec.Behind(now) {
		// This environment's clock lags behind a window another one
		// closed: refused until it catches up, never counted twice.
		return gateway.RateLimited, time.Unix(rec.Floor+1, 0)
	}
	var until time.Time
	for i, l := range rec.Key.RateLimits {
		if i < len(held) && held[i] {
			continue
		}
		if rec.RL[l.Counter(now)]+1 > l.Limit {
			until = maxTime(until, l.WindowEnd(now))
		}
	}
	if !until.IsZero() {
		return gateway.RateLimited, until
	}
	if q := rec.Key.Quota; q != nil && !heldQ && rec.Q[q.PeriodKey(now)]+max(cost, 1) > q.Limit {
		return gateway.QuotaExceeded, q.PeriodEnd(now)
	}
	return "", time.Time{}
}

// remaining formats what is left of each limit after an admitted request:
// what the record's counters leave and, for a request admitted from
// blocks, what this environment still holds of them (held; nil after a
// write, whose record already counts them). Both answers share one
// string, so that an admission allocates once for what it tells the
// client; held is synced to rec (lease.sync), so its blocks line up with
// rec's limits and its credits are of the quota period of now.
func remaining(rec *store.Record, now time.Time, held *lease) (rate, quota string) {
	var out [128]byte
	var name [96]byte
	b := out[:0]
	for i, l := range rec.Key.RateLimits {
		if i > 0 {
			b = append(b, ',')
		}
		left := max(l.Limit-rec.RL[string(l.AppendCounter(name[:0], now))], 0)
		if held != nil {
			left += held.left[i]
		}
		b = append(b, l.Name...)
		b = append(b, '=')
		b = strconv.AppendInt(b, left, 10)
	}
	n := len(b)
	if q := rec.Key.Quota; q != nil {
		left := max(q.Limit-rec.Q[string(q.AppendPeriodKey(name[:0], now))], 0)
		if held != nil {
			left += held.qLeft
		}
		b = strconv.AppendInt(b, left, 10)
	}
	both := string(b)
	return both[:n], both[n:]
}

// retryAfter is the whole seconds from now to until, rounded up; 0 for the
// zero time (retrying will not help).
func retryAfter(now, until time.Time) int64 {
	if until.IsZero() {
		return 0
	}
	d := until.Sub(now)
	return max(int64((d+time.Second-1)/time.Second), 1)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
