package adminapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/actor"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/wire"
)

// The audit actions, as they appear in audit records.
const (
	ActionCreate = "key.create"
	ActionUpdate = "key.update"
	ActionRevoke = "key.revoke"
)

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// pathID returns the {id} of the route; an id that cannot exist is simply
// not found (the store refuses its shape before any lookup).
func pathID(r *http.Request) string { return r.PathValue("id") }

// onlyParams refuses query parameters a route does not take.
func onlyParams(q url.Values, allowed ...string) error {
	for name := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return httpedge.NewProblem(http.StatusBadRequest, httpedge.CodeInvalidRequest, name, "is not a known query parameter")
		}
		if len(q[name]) > 1 {
			return httpedge.NewProblem(http.StatusBadRequest, httpedge.CodeInvalidRequest, name, "must be given once")
		}
	}
	return nil
}

func (a *API) accepts(e key.Environment) bool {
	if len(a.o.Environments) == 0 {
		return true
	}
	for _, x := range a.o.Environments {
		if x == e {
			return true
		}
	}
	return false
}

// settingsChanges is what the audit record of a creation holds: the key's
// settings in wire form, without the hint or anything of the secret.
func settingsChanges(w wire.Key) map[string]any {
	return map[string]any{
		"name": w.Name, "ownerId": w.OwnerID, "type": w.Type, "environment": w.Environment,
		"scopes": w.Scopes, "expiresAt": w.ExpiresAt, "notBefore": w.NotBefore,
		"rateLimits": w.RateLimits, "quota": w.Quota, "allowedOrigins": w.AllowedOrigins,
		"allowedCidrs": w.AllowedCidrs, "stages": w.Stages, "metadata": w.Metadata,
	}
}

// newKey builds a key from an issue request and validates it.
func (a *API) newKey(req *wire.IssueRequest, now time.Time) (*key.Key, error) {
	if req.Type == "" {
		req.Type = key.Secret
	}
	k := &key.Key{
		ID: key.NewID(), Name: req.Name, OwnerID: req.OwnerID, Type: req.Type, Environment: req.Environment,
		Scopes: req.Scopes, Enabled: true, CreatedAt: now, UpdatedAt: now,
		RateLimits: req.RateLimits, Quota: req.Quota, AllowedOrigins: req.AllowedOrigins,
		Stages: req.Stages, Metadata: req.Metadata,
	}
	if req.ExpiresAt != nil && req.TTLSeconds != nil {
		return nil, fault.Fieldf("ttlSeconds", "%s", "give expiresAt or ttlSeconds, not both")
	}
	if req.ExpiresAt != nil {
		k.ExpiresAt = req.ExpiresAt.Time.UTC()
	}
	if req.TTLSeconds != nil {
		ttl := *req.TTLSeconds
		if ttl < 1 || ttl > int64(a.o.MaxTTL/time.Second) {
			return nil, fault.Fieldf("ttlSeconds", "must be from 1 to %d", int64(a.o.MaxTTL/time.Second))
		}
		k.ExpiresAt = now.Add(time.Duration(ttl) * time.Second)
	}
	if req.NotBefore != nil {
		k.NotBefore = req.NotBefore.Time.UTC()
	}
	cidrs, err := key.ParseCIDRs(req.AllowedCidrs)
	if err != nil {
		return nil, err
	}
	if len(cidrs) > 0 {
		k.AllowedCIDRs = cidrs
	}
	if err := k.Validate(now); err != nil {
		return nil, err
	}
	if !a.accepts(k.Environment) {
		return nil, fault.Fieldf("environment", "this deployment does not accept %s keys", k.Environment)
	}
	return k, nil
}

func (a *API) issue(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	var req wire.IssueRequest
	if err := httpedge.DecodeBody(w, r, &req); err != nil {
		return err
	}
	digest, err := Digest("issue", actor.From(ctx), &req)
	if err != nil {
		return err
	}
	now := a.o.Now().UTC().Truncate(time.Millisecond)
	k, err := a.newKey(&req, now)
	if err != nil {
		return err
	}
	claim, replay, err := a.o.Idempotency.Begin(ctx, r, "issue", digest)
	if err != nil {
		return err
	}
	if replay != nil {
		return Replay(w, replay)
	}
	defer claim.Release()
	plain, err := a.o.Format.Generate(k.Type.APIKeyType(), apikey.Environment(k.Environment))
	if err != nil {
		return fault.Wrap(fault.Internal, err, "generate key")
	}
	k.Hash, k.Hint, k.Version = a.o.Hasher.Sum(plain.Plaintext), apikey.Hint(plain), 1
	view := wire.FromKey(k, now)
	rec := store.AuditRecord{KeyID: k.ID, At: now, Actor: actor.From(ctx), Action: ActionCreate, Changes: settingsChanges(view)}
	view.Key = plain.Plaintext
	resp, err := created(r, view)
	if err != nil {
		return err
	}
	if err := claim.Commit(ctx, resp, func(done *store.IdempotencyDone) error {
		return a.o.Store.CreateAudited(ctx, k, rec, done)
	}); err != nil {
		return err
	}
	a.publish(ctx, lifecycle.Event{Type: lifecycle.KeyCreated, KeyID: k.ID, OwnerID: k.OwnerID, Time: now, Actor: rec.Actor,
		Detail: map[string]any{"name": k.Name, "type": k.Type, "environment": k.Environment, "expiresAt": view.ExpiresAt}})
	return resp.Write(w)
}

// created is the 201 response of request r that created key w (issue,
// rotate): the key with its plaintext, where it lives (below the stage or
// base path r came through) and its ETag.
func created(r *http.Request, w wire.Key) (Response, error) {
	body, err := json.Marshal(w)
	if err != nil {
		return Response{}, fault.Wrap(fault.Internal, err, "encode key")
	}
	return Response{Status: http.StatusCreated, Headers: map[string]string{"Location": httpedge.Link(r, wire.KeyPath(w.ID, "")), "ETag": etag(w.Version)}, Body: body}, nil
}

func (a *API) publish(ctx context.Context, e lifecycle.Event) {
	if err := a.o.Publisher.Publish(ctx, e); err != nil {
		a.o.Logger.ErrorContext(ctx, "lifecycle event not published", "event", e.Type, "keyId", e.KeyID, "error", err.Error())
	}
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	k, counters, err := a.o.Store.GetCounted(r.Context(), pathID(r))
	if err != nil {
		return err
	}
	now := a.o.Now()
	out := wire.FromKey(k, now)
	out.Current = wire.CurrentOf(k, counters.RL, counters.Q, now)
	w.Header().Set("ETag", etag(k.Version))
	httpedge.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "ownerId", "status", "environment", "limit", "cursor"); err != nil {
		return err
	}
	opts := store.ListOptions{Cursor: q.Get("cursor")}
	switch s := key.Status(q.Get("status")); s {
	case "", key.Active, key.Disabled, key.Revoked, key.Expired:
		opts.Status = s
	default:
		return fault.Fieldf("status", "%s", `must be "active", "disabled", "revoked" or "expired"`)
	}
	switch e := key.Environment(q.Get("environment")); e {
	case "", key.Live, key.Test:
		opts.Environment = e
	default:
		return fault.Fieldf("environment", "%s", `must be "live" or "test"`)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return fault.Fieldf("limit", "must be a whole number from 1 to %d", store.MaxPageSize)
		}
		opts.Limit = n
	}
	p, err := a.o.Store.List(r.Context(), q.Get("ownerId"), opts)
	if err != nil {
		return err
	}
	out := wire.KeyList{Keys: make([]wire.Key, 0, len(p.Keys)), NextCursor: p.Next}
	now := a.o.Now()
	for _, k := range p.Keys {
		out.Keys = append(out.Keys, wire.FromKey(k, now))
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
	return nil
}

// ifMatch reads the version from If-Match: "3" (or a bare 3); sent is
// false when the request has no If-Match, which makes the change
// unconditional (as Stripe's, GitHub's and Unkey's APIs do: optimistic
// concurrency is the client's choice). A weak ETag (W/"3") is refused as
// failing the precondition: If-Match compares entity tags strongly, and a
// weak tag never matches strongly (RFC 9110, section 13.1.1), so a client
// that weakened the tag (or a proxy that did) must not get its write
// through as if it had checked the version.
func ifMatch(r *http.Request) (version int64, sent bool, err error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return 0, false, nil
	}
	if strings.HasPrefix(v, "W/") || strings.HasPrefix(v, "w/") {
		return 0, true, httpedge.NewProblem(http.StatusPreconditionFailed, httpedge.CodePreconditionFailed, "If-Match",
			`a weak ETag never matches: send the key's ETag as it was given, such as "3"`)
	}
	n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
	if err != nil || n < 1 {
		return 0, true, httpedge.NewProblem(http.StatusBadRequest, httpedge.CodeInvalidRequest, "If-Match", `must be the key's ETag, such as "3"`)
	}
	return n, true, nil
}

// unconditionalAttempts bounds how often a PATCH without If-Match reads
// the key again after a concurrent change won the race: the patch applies
// to the key as it is, so a lost race is retried, not reported.
const unconditionalAttempts = 3

// apply applies a patch to a copy of k; it reports whether anything was set.
func (a *API) apply(k *key.Key, p *wire.UpdateRequest) (bool, error) {
	nameSet, err := p.Name.Required("name", &k.Name)
	if err != nil {
		return true, err
	}
	enabledSet, err := p.Enabled.Required("enabled", &k.Enabled)
	if err != nil {
		return true, err
	}
	set := nameSet || enabledSet
	if p.Scopes.Set {
		set, k.Scopes = true, p.Scopes.V
	}
	if p.ExpiresAt.Set {
		set, k.ExpiresAt = true, p.ExpiresAt.V.Time.UTC()
	}
	if p.NotBefore.Set {
		set, k.NotBefore = true, p.NotBefore.V.Time.UTC()
	}
	if p.RateLimits.Set {
		set, k.RateLimits = true, p.RateLimits.V
	}
	if p.Quota.Set {
		set, k.Quota = true, nil
		if !p.Quota.Null {
			q := p.Quota.V
			k.Quota = &q
		}
	}
	if p.AllowedOrigins.Set {
		set, k.AllowedOrigins = true, p.AllowedOrigins.V
	}
	if p.AllowedCidrs.Set {
		set = true
		cidrs, err := key.ParseCIDRs(p.AllowedCidrs.V)
		if err != nil {
			return true, err
		}
		k.AllowedCIDRs = nil
		if len(cidrs) > 0 {
			k.AllowedCIDRs = cidrs
		}
	}
	if p.Stages.Set {
		set, k.Stages = true, p.Stages.V
	}
	if p.Metadata.Set {
		set, k.Metadata = true, p.Metadata.V
	}
	return set, nil
}

// diff returns the fields that differ between two wire forms, as
// {"field": {"from": old, "to": new}}, for the audit record.
func diff(before, after wire.Key) map[string]any {
	var bm, am map[string]any
	bb, _ := json.Marshal(before)
	ab, _ := json.Marshal(after)
	_ = json.Unmarshal(bb, &bm)
	_ = json.Unmarshal(ab, &am)
	out := map[string]any{}
	for f, v := range am {
		switch f {
		case "version", "updatedAt", "status", "key":
			continue
		}
		if !reflect.DeepEqual(bm[f], v) {
			out[f] = map[string]any{"from": bm[f], "to": v}
		}
	}
	return out
}

func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	b, err := httpedge.ReadBody(w, r)
	if err != nil {
		return err
	}
	version, conditional, err := ifMatch(r)
	if err != nil {
		return err
	}
	var p wire.UpdateRequest
	if err := httpedge.Decode(b, &p); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		updated, changes, err := a.updateOnce(ctx, pathID(r), &p, version, conditional)
		if !conditional && attempt < unconditionalAttempts && fault.CodeOf(err) == fault.PreconditionFailed {
			continue // a concurrent change won: apply the patch to the key as it is now
		}
		if err != nil {
			return err
		}
		now := a.o.Now().UTC().Truncate(time.Millisecond)
		after := wire.FromKey(updated, now)
		fields := make([]string, 0, len(changes))
		for f := range changes {
			fields = append(fields, f)
		}
		a.publish(ctx, lifecycle.Event{Type: lifecycle.KeyUpdated, KeyID: updated.ID, OwnerID: updated.OwnerID, Time: now, Actor: actor.From(ctx),
			Detail: map[string]any{"fields": fields, "status": after.Status, "version": after.Version}})
		w.Header().Set("ETag", etag(updated.Version))
		httpedge.WriteJSON(w, http.StatusOK, after)
		return nil
	}
}

// updateOnce reads the key, applies the patch and writes it with its audit
// record, conditional on the version read (and, when the request sent
// If-Match, on that being the version it names). It returns the key as
// written and the audit record's changes.
func (a *API) updateOnce(ctx context.Context, id string, p *wire.UpdateRequest, version int64, conditional bool) (*key.Key, map[string]any, error) {
	old, err := a.o.Store.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	now := a.o.Now().UTC().Truncate(time.Millisecond)
	if !old.RevokedAt.IsZero() {
		return nil, nil, fault.Errorf(fault.Conflict, "key is revoked and cannot be changed")
	}
	if conditional && old.Version != version {
		return nil, nil, fault.Errorf(fault.PreconditionFailed, "the key's version is %d, not %d; read it again", old.Version, version)
	}
	k := *old
	set, err := a.apply(&k, p)
	if err != nil {
		return nil, nil, err
	}
	if !set {
		return nil, nil, httpedge.NewProblem(http.StatusBadRequest, httpedge.CodeInvalidRequest, "", "the body changes nothing; send at least one field")
	}
	// An expiry the patch leaves alone is not checked again: an expired key
	// can still be renamed or disabled, and only a new expiresAt must lie in
	// the future.
	validAt := now
	if !p.ExpiresAt.Set && !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(now) {
		validAt = k.ExpiresAt.Add(-time.Millisecond)
	}
	if err := k.Validate(validAt); err != nil {
		return nil, nil, err
	}
	// The audit record is written in the update's own transaction, so it
	// describes the change from the settings sent (version and updatedAt,
	// which the store sets, are not part of a diff).
	changes := diff(wire.FromKey(old, now), wire.FromKey(&k, now))
	// The wire form shows enabled only through status, which diff leaves
	// out (it depends on the time): record it as the change it is.
	if old.Enabled != k.Enabled {
		changes["enabled"] = map[string]any{"from": old.Enabled, "to": k.Enabled}
	}
	rec := store.AuditRecord{At: now, Actor: actor.From(ctx), Action: ActionUpdate, Changes: changes}
	updated, err := a.o.Store.UpdateAudited(ctx, &k, old.Version, rec)
	return updated, changes, err
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	who := actor.From(ctx)
	// The audit record is written in the revocation's own transaction.
	k, revoked, err := a.o.Store.Revoke(ctx, pathID(r), a.o.Retention, func(k *key.Key) store.AuditRecord {
		return store.AuditRecord{Actor: who, Action: ActionRevoke,
			Changes: map[string]any{"status": map[string]any{"to": key.Revoked}, "revokedAt": wire.Time(k.RevokedAt)}}
	})
	if err != nil {
		return err
	}
	if revoked {
		a.publish(ctx, lifecycle.Event{Type: lifecycle.KeyRevoked, KeyID: k.ID, OwnerID: k.OwnerID, Time: k.RevokedAt, Actor: who,
			Detail: map[string]any{"revokedAt": wire.Time(k.RevokedAt)}})
	}
	w.Header().Set("ETag", etag(k.Version))
	httpedge.WriteJSON(w, http.StatusOK, wire.FromKey(k, a.o.Now()))
	return nil
}

func (a *API) audit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onlyParams(q, "limit", "cursor"); err != nil {
		return err
	}
	id := pathID(r)
	if !key.ValidID(id) {
		return fault.Errorf(fault.NotFound, "key not found")
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPageSize {
			return fault.Fieldf("limit", "must be a whole number from 1 to %d", store.MaxPageSize)
		}
		limit = n
	}
	p, err := a.o.Store.ListAudit(r.Context(), id, limit, q.Get("cursor"))
	if err != nil {
		return err
	}
	if len(p.Records) == 0 && q.Get("cursor") == "" {
		// No trail at all: tell an unknown id from a key without records.
		if _, err := a.o.Store.Get(r.Context(), id); err != nil {
			return err
		}
	}
	out := wire.AuditList{Records: make([]wire.AuditEntry, 0, len(p.Records)), NextCursor: p.Next}
	for _, rec := range p.Records {
		c := rec.Changes
		if c == nil {
			c = map[string]any{}
		}
		out.Records = append(out.Records, wire.AuditEntry{KeyID: rec.KeyID, At: wire.Time(rec.At), Actor: rec.Actor, Action: rec.Action, Version: rec.Version, Changes: c})
	}
	httpedge.WriteJSON(w, http.StatusOK, out)
	return nil
}
