package adminapi

import (
	"net/http"
	"time"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/wire"
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

// Rotator is the rotator function's part of the admin API: the rotate route,
// served with the same conventions as the rest (problems, actor, access log,
// audit records, events, Idempotency-Key) by the same API machinery.
type Rotator struct {
	*API
	maxGrace time.Duration
}

// NewRotator returns the handler the rotator function serves. maxGrace caps
// gracePeriodSeconds (0: the registry's default, config.MaxGrace); the
// default grace is DefaultGrace, or maxGrace if that is shorter.
func NewRotator(o Options, maxGrace time.Duration) *Rotator {
	if maxGrace == 0 {
		maxGrace = config.MaxGrace.Default()
	}
	a := &Rotator{API: New(o), maxGrace: maxGrace} // New applies the defaults of Options
	a.mux = a.newMux(RotatorRoutes, map[string]httpedge.HandlerFunc{RotateRoute: a.rotate})
	return a
}

// rotateDigest is what an Idempotency-Key is bound to: the key rotated and
// the grace asked for.
type rotateDigest struct {
	ID    string `json:"id"`
	Grace int64  `json:"grace"`
}

func (a *Rotator) rotate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	var req wire.RotateRequest
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
		b, err := httpedge.ReadBody(w, r)
		if err != nil {
			return err
		}
		if len(b) > 0 {
			if err := httpedge.Decode(b, &req); err != nil {
				return err
			}
		}
	}
	grace := min(DefaultGrace, a.maxGrace)
	if req.GracePeriodSeconds != nil {
		g := *req.GracePeriodSeconds
		if g < 0 || g > int64(a.maxGrace/time.Second) {
			return fault.Fieldf("gracePeriodSeconds", "must be from 0 to %d seconds", int64(a.maxGrace/time.Second))
		}
		grace = time.Duration(g) * time.Second
	}
	id := pathID(r)
	if !key.ValidID(id) {
		return fault.Errorf(fault.NotFound, "key not found")
	}
	digest, err := Digest("rotate", actor.From(ctx), rotateDigest{ID: id, Grace: int64(grace / time.Second)})
	if err != nil {
		return err
	}
	claim, replay, err := a.o.Idempotency.Begin(ctx, r, "rotate:"+id, digest)
	if err != nil {
		return err
	}
	if replay != nil {
		return Replay(w, replay)
	}
	defer claim.Release()
	old, err := a.o.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	now := a.o.Now().UTC().Truncate(time.Millisecond)
	if err := rotatable(old, now); err != nil {
		return err
	}
	plain, err := a.o.Format.Generate(old.Type.APIKeyType(), apikey.Environment(old.Environment))
	if err != nil {
		return fault.Wrap(fault.Internal, err, "generate key")
	}
	nk := old.Successor(key.NewID(), now)
	nk.Hash, nk.Hint = a.o.Hasher.Sum(plain.Plaintext), apikey.Hint(plain)
	oldExpires := now.Add(grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(oldExpires) {
		oldExpires = old.ExpiresAt
	}
	view := wire.FromKey(nk, now)
	who := actor.From(ctx)
	changes := settingsChanges(view)
	changes["previousKeyId"] = old.ID
	recs := []store.AuditRecord{
		{KeyID: nk.ID, At: now, Actor: who, Action: ActionCreate, Version: 1, Changes: changes},
		{KeyID: old.ID, At: now, Actor: who, Action: ActionRotate, Version: old.Version + 1, Changes: map[string]any{
			"nextKeyId": map[string]any{"from": nil, "to": nk.ID},
			"expiresAt": map[string]any{"from": wire.OptTime(old.ExpiresAt), "to": wire.Time(oldExpires)},
		}},
	}
	view.Key = plain.Plaintext
	resp, err := created(r, view)
	if err != nil {
		return err
	}
	var after *key.Key
	if err := claim.Commit(ctx, resp, func(done *store.IdempotencyDone) error {
		after, err = a.o.Store.Rotate(ctx, store.Rotation{Old: old, New: nk, Grace: grace, At: now, Audit: recs, Done: done})
		return err
	}); err != nil {
		return err
	}
	a.publish(ctx, lifecycle.Event{Type: lifecycle.KeyRotated, KeyID: old.ID, OwnerID: old.OwnerID, Time: now, Actor: who,
		Detail: map[string]any{"newKeyId": nk.ID, "previousKeyId": old.ID, "name": nk.Name, "environment": nk.Environment,
			"previousKeyExpiresAt": wire.Time(after.ExpiresAt), "gracePeriodSeconds": int64(grace / time.Second)}})
	return resp.Write(w)
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
