package adminapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
)

// ActionRotate is the audit action of a rotation, on the old key (the new
// key's record is a key.create that names its previousKeyId).
const ActionRotate = "key.rotate"

// RotateRoute is the one route the rotator function serves.
const RotateRoute = "POST /v1/keys/{id}/rotate"

// RotatorRoutes lists the rotator function's routes, as Routes does the
// issuer's, for the OpenAPI test and the gateway's route table.
var RotatorRoutes = []string{RotateRoute}

// DefaultGrace is the grace period of a rotation whose body does not give
// one: a day, so that a rotation never cuts off a deployed client by
// surprise. gracePeriodSeconds 0 stops the old key at once.
const DefaultGrace = 24 * time.Hour

// RotateRequest is the body of POST /v1/keys/{id}/rotate; the body may be
// absent (the defaults apply).
type RotateRequest struct {
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`
}

// Rotator is the rotator function's part of the admin API: the rotate route,
// served with the same conventions as the rest (problems, actor, access log,
// audit records, events, Idempotency-Key) by the same API machinery.
type Rotator struct {
	*API
	maxGrace time.Duration
}

// NewRotator returns the handler the rotator function serves. maxGrace caps
// gracePeriodSeconds (7 days when 0); the default grace is DefaultGrace, or
// maxGrace if that is shorter.
func NewRotator(o Options, maxGrace time.Duration) *Rotator {
	if maxGrace == 0 {
		maxGrace = 7 * 24 * time.Hour
	}
	a := &Rotator{API: New(o), maxGrace: maxGrace} // New applies the defaults of Options
	a.mux = http.NewServeMux()
	a.mux.HandleFunc(RotateRoute, a.rotate)
	a.mux.HandleFunc("/v1/keys/{id}/rotate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, newProblem(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "this route takes POST"))
	})
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, newProblem(http.StatusNotFound, CodeNotFound, "", "no such route"))
	})
	return a
}

// rotateDigest is what an Idempotency-Key is bound to: the key rotated and
// the grace asked for.
type rotateDigest struct {
	ID    string `json:"id"`
	Grace int64  `json:"grace"`
}

func (a *Rotator) rotate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := onlyParams(r.URL.Query()); err != nil {
		a.fail(w, r, err)
		return
	}
	var req RotateRequest
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
		b, err := readBody(w, r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if len(b) > 0 {
			if err := decode(b, &req); err != nil {
				a.fail(w, r, err)
				return
			}
		}
	}
	grace := min(DefaultGrace, a.maxGrace)
	if req.GracePeriodSeconds != nil {
		g := *req.GracePeriodSeconds
		if g < 0 || g > int64(a.maxGrace/time.Second) {
			a.fail(w, r, fault.Fieldf("gracePeriodSeconds", "must be from 0 to %d seconds", int64(a.maxGrace/time.Second)))
			return
		}
		grace = time.Duration(g) * time.Second
	}
	id := pathID(r)
	if !key.ValidID(id) {
		a.fail(w, r, fault.Errorf(fault.NotFound, "key not found"))
		return
	}
	digest, err := Digest("rotate", actor.From(ctx), rotateDigest{ID: id, Grace: int64(grace / time.Second)})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	claim, replay, err := a.o.Idempotency.Begin(ctx, r, "rotate:"+id, digest)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if replay != nil {
		Replay(w, replay)
		return
	}
	release := func() {
		if claim != nil {
			claim.Release()
		}
	}
	old, err := a.o.Store.Get(ctx, id)
	if err != nil {
		release()
		a.fail(w, r, err)
		return
	}
	now := a.o.Now().UTC().Truncate(time.Millisecond)
	if err := rotatable(old, now); err != nil {
		release()
		a.fail(w, r, err)
		return
	}
	plain, err := a.o.Format.Generate(old.Type.APIKeyType(), apikey.Environment(old.Environment))
	if err != nil {
		release()
		a.fail(w, r, fault.Wrap(fault.Internal, err, "generate key"))
		return
	}
	nk := old.Successor(key.NewID(), now)
	nk.Hash, nk.Hint = a.o.Hasher.Sum(plain.Plaintext), apikey.Hint(plain)
	oldExpires := now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(oldExpires) {
		oldExpires = old.ExpiresAt
	}
	wire := ToWire(nk, now)
	who := actor.From(ctx)
	created := settingsChanges(wire)
	created["previousKeyId"] = old.ID
	recs := []store.AuditRecord{
		{KeyID: nk.ID, At: now, Actor: who, Action: ActionCreate, Version: 1, Changes: created},
		{KeyID: old.ID, At: now, Actor: who, Action: ActionRotate, Version: old.Version + 1, Changes: map[string]any{
			"nextKeyId": map[string]any{"from": nil, "to": nk.ID},
			"expiresAt": map[string]any{"from": optTime(old.ExpiresAt), "to": timeString(oldExpires)},
		}},
	}
	wire.Key = plain.Plaintext
	body, err := json.Marshal(wire)
	if err != nil {
		release()
		a.fail(w, r, fault.Wrap(fault.Internal, err, "encode key"))
		return
	}
	resp := Response{Status: http.StatusCreated, Headers: map[string]string{"Location": "/v1/keys/" + nk.ID, "ETag": etag(1)}, Body: body}
	var done *store.IdempotencyDone
	if claim != nil {
		if done, err = claim.Done(resp); err != nil {
			release()
			a.fail(w, r, err)
			return
		}
	}
	after, err := a.o.Store.Rotate(ctx, store.Rotation{Old: old, New: nk, Grace: grace, At: now, Audit: recs, Done: done})
	if err != nil {
		release()
		a.fail(w, r, err)
		return
	}
	a.publish(ctx, lifecycle.Event{Type: lifecycle.KeyRotated, KeyID: old.ID, OwnerID: old.OwnerID, Time: now, Actor: who,
		Detail: map[string]any{"newKeyId": nk.ID, "previousKeyId": old.ID, "name": nk.Name, "environment": nk.Environment,
			"previousKeyExpiresAt": timeString(after.ExpiresAt), "gracePeriodSeconds": int64(grace / time.Second)}})
	for h, v := range resp.Headers {
		w.Header().Set(h, v)
	}
	writeRaw(w, resp.Status, resp.Body)
}

// rotatable refuses, before a secret is generated, a key that cannot be
// rotated; the store's transaction checks the same conditions again.
func rotatable(k *key.Key, now time.Time) error {
	if k.NextKeyID != "" {
		return fault.Errorf(fault.Conflict, "key %s was already rotated: its replacement is %s", k.ID, k.NextKeyID)
	}
	switch k.StatusAt(now) {
	case key.Revoked:
		return fault.Errorf(fault.Conflict, "key %s is revoked and cannot be rotated", k.ID)
	case key.Disabled:
		return fault.Errorf(fault.Conflict, "key %s is disabled and cannot be rotated; enable it first", k.ID)
	case key.Expired:
		return fault.Errorf(fault.Conflict, "key %s has expired and cannot be rotated", k.ID)
	}
	return nil
}
