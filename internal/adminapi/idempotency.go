package adminapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/seal"
	"github.com/keygate/keygate/internal/store"
)

// The problem codes of idempotent requests, beyond internal/httpedge's.
// Like those, they are a contract with clients: never rename one.
const (
	CodeIdempotencyInProgress = "idempotency_in_progress"
	CodeIdempotencyKeyReused  = "idempotency_key_reused"
	CodeIdempotencyUnreadable = "idempotency_unreadable"
)

// IdempotencyHeader is the request header that makes a POST safe to retry.
const IdempotencyHeader = "Idempotency-Key"

// Idempotency windows: a completed record answers retries for IdempotencyTTL;
// a request that claimed a key and died holds it for idempotencyLease, after
// which a retry takes over (and the dead request can no longer complete).
const (
	IdempotencyTTL   = 24 * time.Hour
	idempotencyLease = 30 * time.Second
	maxIdemKeyLen    = 255
)

// Idempotency makes POSTs that create something (issue here, rotate in the
// rotator) safe to retry. A retried request with the same Idempotency-Key
// and the same body gets the first response again, plaintext key included,
// and creates nothing new; the same key with another body is refused.
//
// The stored response holds a plaintext key, so it is never stored as is:
// it is sealed (internal/seal: deployed, envelope encryption under a KMS
// key only the issuer and the rotator may decrypt; locally, a key in the
// local stack's secrets) with the record's key and the request's digest as
// associated data, so a sealed response can be neither read from a copy of
// the table, nor with the functions' configuration, nor replayed for
// another request.
//
// A creating handler (issue here, rotate in the rotator) uses it so, and
// cannot leave a key claimed on any way out:
//
//	claim, replay, err := idem.Begin(ctx, r, "rotate:"+id, digest) // after validating the body
//	if err != nil { return err }
//	if replay != nil { return Replay(w, replay) }
//	defer claim.Release() // a no-op once committed, and on a nil claim
//	// build the response (with the plaintext), then make the change in
//	// the store call whose transaction carries the completion:
//	err = claim.Commit(ctx, resp, func(done *store.IdempotencyDone) error { return st.Rotate(ctx, ..., done) })
type Idempotency struct {
	store  *store.Store
	sealer seal.Sealer
}

// NewIdempotency returns the idempotency support for s, sealing responses
// with sealer (nil: seal.Random, a key of this process alone, so retries
// are answered only by the process that served the first request: for
// tests, and never weaker than the table).
func NewIdempotency(s *store.Store, sealer seal.Sealer) *Idempotency {
	if sealer == nil {
		sealer = seal.Random()
	}
	return &Idempotency{store: s, sealer: sealer}
}

// Response is a response as an idempotency record keeps it.
type Response struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body"`
}

// Claim is an Idempotency-Key this request holds while it makes its change.
// A nil *Claim (a request without the header) is valid: Commit then makes
// the change without a completion, and Release does nothing.
type Claim struct {
	scope, key, token string
	digest            []byte
	idem              *Idempotency
	committed         bool
}

// Digest returns the digest of a request for idempotency: SHA-256 over the
// operation, the calling principal and the canonical JSON of the decoded
// request (so whitespace or field order in a retry does not matter). The
// caller is in it so that an Idempotency-Key is bound to the principal that
// used it first: another principal sending the same key and body is refused
// as a reused key and never receives the first caller's stored response.
func Digest(scope, caller string, req any) ([]byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode request digest")
	}
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(caller))
	h.Write([]byte{0})
	h.Write(b)
	return h.Sum(nil), nil
}

// Begin handles the Idempotency-Key header of r for the operation scope. It
// returns (nil, nil, nil) when there is no header (a nil claim is valid); a
// claim when this request may go ahead, to release with a deferred
// Release; a response to replay when an earlier request with
// the same key and body completed; or an error (a problem) for a reused key,
// a key in progress, or a bad header.
func (i *Idempotency) Begin(ctx context.Context, r *http.Request, scope string, digest []byte) (*Claim, *Response, error) {
	key := r.Header.Get(IdempotencyHeader)
	if _, sent := r.Header[http.CanonicalHeaderKey(IdempotencyHeader)]; !sent {
		return nil, nil, nil
	}
	if !validIdemKey(key) {
		return nil, nil, httpedge.NewProblem(http.StatusBadRequest, httpedge.CodeInvalidRequest, IdempotencyHeader,
			"must be 1 to 255 visible ASCII characters, such as a UUID")
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, nil, fault.Wrap(fault.Internal, err, "idempotency token")
	}
	c := &Claim{scope: scope, key: key, token: hex.EncodeToString(tok[:]), digest: digest, idem: i}
	old, err := i.store.ClaimIdempotency(ctx, scope, key, digest, c.token, idempotencyLease, IdempotencyTTL)
	if err != nil {
		return nil, nil, err
	}
	if old == nil {
		return c, nil, nil
	}
	if string(old.Digest) != string(digest) {
		return nil, nil, httpedge.NewProblem(http.StatusUnprocessableEntity, CodeIdempotencyKeyReused, IdempotencyHeader,
			"this Idempotency-Key was used with a different request; use a new key for a new request")
	}
	if !old.Done {
		p := httpedge.NewProblem(http.StatusConflict, CodeIdempotencyInProgress, IdempotencyHeader,
			"a request with this Idempotency-Key is still in progress; retry shortly")
		p.RetryAfterSeconds = 1
		return nil, nil, p
	}
	plain, err := i.sealer.Open(ctx, old.Sealed, c.aad())
	if fault.Is(err, fault.Invalid) {
		return nil, nil, httpedge.NewProblem(http.StatusConflict, CodeIdempotencyUnreadable, IdempotencyHeader,
			"the stored response for this Idempotency-Key cannot be opened (it was sealed under another key); use a new key")
	}
	if err != nil {
		return nil, nil, err
	}
	var resp Response
	if err := json.Unmarshal(plain, &resp); err != nil {
		return nil, nil, fault.Wrap(fault.Internal, err, "decode stored response")
	}
	return nil, &resp, nil
}

func (c *Claim) aad() []byte {
	return append([]byte(store.IdempotencyPK(c.scope, c.key)+"\x00"), c.digest...)
}

// Commit seals resp and makes the change: change must write the completion
// it is given in its own transaction (see store.CreateAudited), so that the
// change and the stored response are one. Without a claim the completion is
// nil. Once change succeeds the claim is complete and Release does nothing.
func (c *Claim) Commit(ctx context.Context, resp Response, change func(done *store.IdempotencyDone) error) error {
	if c == nil {
		return change(nil)
	}
	done, err := c.seal(ctx, resp)
	if err != nil {
		return err
	}
	if err := change(done); err != nil {
		return err
	}
	c.committed = true
	return nil
}

// seal seals the response into the completion of the claim.
func (c *Claim) seal(ctx context.Context, resp Response) (*store.IdempotencyDone, error) {
	b, err := json.Marshal(resp)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode response")
	}
	defer clear(b)
	sealed, err := c.idem.sealer.Seal(ctx, b, c.aad())
	if err != nil {
		return nil, err
	}
	return &store.IdempotencyDone{Scope: c.scope, Key: c.key, Token: c.token, Status: resp.Status, Sealed: sealed}, nil
}

// Release gives the key up after the change failed, so that a retry runs at
// once rather than waiting out the lease: defer it right after Begin. It
// does nothing on a nil claim or once Commit succeeded. It uses a fresh
// context: the request's may be what failed.
func (c *Claim) Release() {
	if c == nil || c.committed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.idem.store.ReleaseIdempotency(ctx, c.scope, c.key, c.token)
}

// Replay writes a stored response, marked as a replay.
func Replay(w http.ResponseWriter, resp *Response) error {
	w.Header().Set("Idempotent-Replayed", "true")
	return resp.Write(w)
}

// Write writes the response.
func (resp *Response) Write(w http.ResponseWriter) error {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	httpedge.WriteRaw(w, resp.Status, resp.Body)
	return nil
}

func validIdemKey(k string) bool {
	if len(k) == 0 || len(k) > maxIdemKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}
