package token

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

// KeySource reads the published signing keys (internal/store implements
// it with one Query; the authorizer needs GetItem-free read access to the
// SIGNKEY partition, nothing else of the ring).
type KeySource interface {
	SigningKeys(ctx context.Context) (store.SigningRing, error)
}

// emptyRefresh is how long a verifier trusts a read that found no key at
// all (a new deployment, before its first token): short, so the first
// key is known soon after it is published.
const emptyRefresh = 10 * time.Second

// Verifier verifies access tokens offline. It reads the published keys on
// the first token it sees (never at cold start, which makes no network
// call) and again when its read is older than VerifierRefresh; a token
// whose kid is not in its read is refused without another read, which is
// sound because keys are published PublishAhead before they sign. It is
// safe for concurrent use.
type Verifier struct {
	src      KeySource
	issuer   string
	audience string
	now      func() time.Time
	parser   *jwt.Parser

	mu   sync.Mutex // serialises reads of the key set
	keys atomic.Pointer[keySet]
	// readTimeout bounds one read of the key set (WithReadTimeout).
	readTimeout time.Duration

	// seen remembers tokens that verified, by the SHA-256 of the whole
	// token: a client sends the same token for its whole life, and the
	// signature check is most of the cost. A hit still checks the time
	// and that the kid is still published.
	seenMu  sync.Mutex
	seen    map[[32]byte]seenToken
	seenMax int
}

// seenMax bounds the verified-token memory (about 1 KiB an entry).
const seenMax = 4096

type seenToken struct {
	c   *Claims
	k   *key.Key
	kid string
}

// keySet is one read of the published keys: readAt is when it was read,
// or is moved so that a failed refresh is retried after emptyRefresh;
// goodAt is when it was read, for MaxStaleness.
type keySet struct {
	m      map[string]verifyKey
	readAt time.Time
	goodAt time.Time
}

type verifyKey struct {
	pub ed25519.PublicKey
	// notAfter is when the key stopped signing (zero while it signs): a
	// token it claims to have signed later is forged or replayed.
	notAfter time.Time
}

// NewVerifier returns a verifier of tokens for the given issuer and
// audience, reading keys from src; now is the clock (nil: time.Now).
func NewVerifier(src KeySource, issuer, audience string, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	v := &Verifier{src: src, issuer: issuer, audience: audience, now: now, seen: map[[32]byte]seenToken{}, seenMax: seenMax,
		readTimeout: verify.DefaultStoreTimeout}
	v.parser = jwt.NewParser(
		jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithLeeway(Leeway), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now), jwt.WithStrictDecoding(),
	)
	return v
}

// WithReadTimeout sets the deadline of one read of the published keys
// (default verify.DefaultStoreTimeout): the authorizer passes its
// KEYGATE_STORE_TIMEOUT, so a slow read of the key set refuses a token as
// unavailable in the time a slow key verification would. It returns v.
func (v *Verifier) WithReadTimeout(d time.Duration) *Verifier {
	if d > 0 {
		v.readTimeout = d
	}
	return v
}

// Result is a verification's outcome: the claims of a good token (shared
// with the verifier's memory: never modify them), or the reason it is
// refused. Calls counts the DynamoDB round trips made (a read
// of the key set; 0 almost always); Err is a failed read, for the log.
type Result struct {
	Claims *Claims
	// Key is Claims.Key(), built once per token (shared: never modify).
	Key    *key.Key
	Reason gateway.Reason
	Calls  int
	Err    error
}

// Sentinel causes returned by the key function, told apart after Parse.
var (
	errAlg        = errors.New("token algorithm is not EdDSA")
	errNoKID      = errors.New("token names no kid")
	errUnknownKID = errors.New("token kid is not a published key")
	errNoKeys     = errors.New("the published keys could not be read")
)

// Looks reports whether a bearer credential has the shape of a JWT (three
// base64url segments), so that the authorizer offers it to the verifier.
func Looks(s string) bool {
	return strings.Count(s, ".") == 2 && len(s) > 4 && s[0] == 'e'
}

// Verify checks a token: size, structure, algorithm (EdDSA, whatever the
// header says), kid, signature, issuer, audience, exp, nbf and iat (with
// Leeway), and the claims keygate adds. The refusals:
//
//   - malformed_key: too big, not a JWT, another algorithm (none
//     included), no kid, claims missing or of the wrong type;
//   - unknown_key: unknown kid, a signature that does not verify (changed
//     header or payload, another key's signature), another issuer, or a
//     token issued after its key stopped signing;
//   - wrong_environment: a token for another audience;
//   - expired, not_yet_valid: outside its lifetime;
//   - unavailable: the key set was never read and cannot be now.
func (v *Verifier) Verify(ctx context.Context, raw string) (res Result) {
	if len(raw) > MaxSize || !Looks(raw) {
		res.Reason = gateway.MalformedKey
		return res
	}
	sum := sha256.Sum256([]byte(raw))
	v.seenMu.Lock()
	st, hit := v.seen[sum]
	v.seenMu.Unlock()
	if hit {
		return v.again(ctx, st)
	}
	var vk verifyKey
	var kid string
	c := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodEdDSA || t.Header["alg"] != Alg {
			return nil, errAlg
		}
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errNoKID
		}
		ks, calls, err := v.keySet(ctx)
		res.Calls, res.Err = res.Calls+calls, err
		if ks == nil {
			return nil, errNoKeys
		}
		var ok bool
		if vk, ok = ks.m[kid]; !ok {
			return nil, errUnknownKID
		}
		return vk.pub, nil
	})
	res.Reason = reasonOf(err)
	if res.Reason == "" && !c.valid() {
		res.Reason = gateway.MalformedKey
	}
	if res.Reason == "" && !vk.notAfter.IsZero() && c.IssuedAt.After(vk.notAfter.Add(Leeway)) {
		res.Reason = gateway.UnknownKey
	}
	var k *key.Key
	if res.Reason == "" {
		if k, err = c.Key(); err != nil {
			res.Reason = gateway.MalformedKey
		}
	}
	if res.Reason == "" {
		res.Claims, res.Key = c, k
		v.remember(sum, seenToken{c: c, k: k, kid: kid})
	}
	return res
}

// again decides a token that verified before: only time can have changed
// the answer, or its key having left the published set.
func (v *Verifier) again(ctx context.Context, st seenToken) (res Result) {
	ks, calls, err := v.keySet(ctx)
	res.Calls, res.Err = calls, err
	now := v.now()
	switch {
	case ks == nil:
		res.Reason = gateway.Unavailable
	case ks.m[st.kid].pub == nil:
		res.Reason = gateway.UnknownKey
	case !now.Before(st.c.ExpiresAt.Add(Leeway)):
		res.Reason = gateway.Expired
	default:
		res.Claims, res.Key = st.c, st.k
	}
	return res
}

// remember keeps a verified token until the memory is full; then an
// arbitrary entry makes room (expired ones first would cost a scan).
func (v *Verifier) remember(sum [32]byte, st seenToken) {
	v.seenMu.Lock()
	defer v.seenMu.Unlock()
	if v.seenMax == 0 {
		return
	}
	if len(v.seen) >= v.seenMax {
		for k := range v.seen {
			delete(v.seen, k)
			break
		}
	}
	v.seen[sum] = st
}

// reasonOf maps golang-jwt's errors (and the key function's) to reasons.
func reasonOf(err error) gateway.Reason {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errNoKeys):
		return gateway.Unavailable
	case errors.Is(err, errUnknownKID), errors.Is(err, jwt.ErrTokenSignatureInvalid),
		errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return gateway.UnknownKey
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return gateway.WrongEnvironment
	case errors.Is(err, jwt.ErrTokenExpired):
		return gateway.Expired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return gateway.NotYetValid
	}
	return gateway.MalformedKey
}

// keySet returns the current read of the published keys, reading them when
// there is none or it is stale, within the read timeout. A failed refresh
// keeps the old read (keys are stable; the next token tries again after
// emptyRefresh) for at most MaxStaleness since it was read; a verifier
// that never read any, or whose read is older, gets nil. calls is 1 when
// it read.
func (v *Verifier) keySet(ctx context.Context) (*keySet, int, error) {
	now := v.now()
	ks := v.keys.Load()
	if ks != nil && fresh(ks, now) {
		return usableSet(ks, now), 0, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if ks = v.keys.Load(); ks != nil && fresh(ks, now) {
		return usableSet(ks, now), 0, nil
	}
	rctx, cancel := context.WithTimeout(ctx, v.readTimeout)
	ring, err := v.src.SigningKeys(rctx)
	cancel()
	if err != nil {
		if ks != nil {
			// Try again in emptyRefresh, not on every token.
			v.keys.Store(&keySet{m: ks.m, readAt: now.Add(emptyRefresh - ttlOf(ks)), goodAt: ks.goodAt})
		}
		return usableSet(ks, now), 1, err
	}
	next := &keySet{m: make(map[string]verifyKey, len(ring.Keys)), readAt: now, goodAt: now}
	for _, sk := range live(ring.Keys, now) {
		j, pub, derr := DecodeJWK(sk.JWK)
		if derr != nil || j.Kid != sk.KID {
			err = errors.Join(err, fault.Errorf(fault.Internal, "published signing key %s is unreadable", sk.KID))
			continue
		}
		next.m[sk.KID] = verifyKey{pub: pub, notAfter: sk.NotAfter}
	}
	v.keys.Store(next)
	return next, 1, err
}

// usableSet returns ks unless it is older than MaxStaleness (or nil).
func usableSet(ks *keySet, now time.Time) *keySet {
	if ks == nil || now.Sub(ks.goodAt) > MaxStaleness {
		return nil
	}
	return ks
}

func fresh(ks *keySet, now time.Time) bool {
	age := now.Sub(ks.readAt)
	return age >= 0 && age < ttlOf(ks)
}

// ttlOf is how long a read is trusted: VerifierRefresh, or emptyRefresh
// for a read that found no key.
func ttlOf(ks *keySet) time.Duration {
	if len(ks.m) == 0 {
		return emptyRefresh
	}
	return VerifierRefresh
}
