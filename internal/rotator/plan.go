package rotator

import (
	"time"

	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
)

// The audit actions of the scheduled run's changes.
const (
	ActionExpire  = "key.expire"
	ActionDisable = "key.disable"
)

// idleRecheck is how long after a key.idle notice the key is looked at
// again: if it was used meanwhile and then went idle again, it gets a new
// notice then.
const idleRecheck = 7 * 24 * time.Hour

// review is the longest a live key stays off the run's sight: a key with
// nothing due is looked at again after it.
const review = 30 * 24 * time.Hour

// plan is what is due for one key now: the step to record and the events to
// send once it is recorded.
type plan struct {
	step   store.Step
	events []lifecycle.Event
}

// plan decides what is due for d at now under the policy: a pure function of
// the key's current item, so a second run over the same item decides the
// same and its conditional write finds it already done.
func (p Policy) plan(d store.DueKey, now time.Time) plan {
	k, lc := d.Key, d.Lifecycle
	pl := plan{step: store.Step{Key: k, Lifecycle: lc}}
	st := &pl.step
	event := func(typ string, detail map[string]any) {
		detail["name"], detail["environment"] = k.Name, k.Environment
		pl.events = append(pl.events, lifecycle.Event{Type: typ, KeyID: k.ID, OwnerID: k.OwnerID, Time: now, Actor: lifecycle.Rotator, Detail: detail})
	}
	// An audited step is a change to the key: it increments the version
	// (store.Advance), so the record carries the version after it.
	audit := func(action string, changes map[string]any) {
		st.Audit = append(st.Audit, store.AuditRecord{KeyID: k.ID, At: now, Actor: lifecycle.Rotator, Action: action,
			Version: k.Version + 1, Changes: changes})
	}

	if !k.RevokedAt.IsZero() {
		// The revocation gave both of the key's items their TTL; the step
		// writes it again (so both go together) and the key leaves the
		// schedule.
		st.TTL = lc.TTL
		if st.TTL.IsZero() {
			st.TTL = k.RevokedAt.Add(p.Retention)
		}
		return pl
	}

	expiry, reason := k.ExpiresAt, "expiresAt"
	if p.MaxAge > 0 {
		if limit := k.CreatedAt.Add(p.MaxAge); expiry.IsZero() || limit.Before(expiry) {
			expiry, reason = limit, "max_age"
		}
	}
	if !expiry.IsZero() && !now.Before(expiry) {
		st.TTL = expiry.Add(p.Retention)
		changes := map[string]any{"status": map[string]any{"to": "expired"}, "reason": reason}
		if !k.ExpiresAt.Equal(expiry) {
			st.ExpireAt = expiry
			changes["expiresAt"] = map[string]any{"from": optRFC3339(k.ExpiresAt), "to": rfc3339(expiry)}
		}
		if !lc.ExpiredFor.Equal(expiry) || !st.ExpireAt.IsZero() {
			st.ExpiredFor = expiry
			audit(ActionExpire, changes)
			event(lifecycle.KeyExpired, map[string]any{"expiresAt": rfc3339(expiry), "reason": reason})
		}
		return pl // nothing more is due for an expired key
	}
	// Live again (an expiry moved into the future, say): any TTL its items
	// still carry goes, in the same step, so DynamoDB never deletes a key
	// that verifies.
	st.ClearTTL = !lc.TTL.IsZero()

	var next time.Time
	due := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if !expiry.IsZero() {
		due(expiry)
	}
	// A rotated key is meant to stop and to fall idle: no notices for it.
	watched := k.Enabled && k.NextKeyID == ""
	// A key issued to live less than the notice period (a session key) was
	// meant to be short-lived: no notice for it.
	noticeable := !expiry.IsZero() && expiry.Sub(k.CreatedAt) > p.ExpiringNotice
	if watched && p.ExpiringNotice > 0 && noticeable && !lc.ExpiringFor.Equal(expiry) {
		if at := expiry.Add(-p.ExpiringNotice); now.Before(at) {
			due(at)
		} else {
			st.ExpiringFor = expiry
			event(lifecycle.KeyExpiring, map[string]any{"expiresAt": rfc3339(expiry), "reason": reason,
				"secondsLeft": int64(expiry.Sub(now) / time.Second)})
		}
	}
	if watched && p.IdleAfter > 0 {
		last := latest(k.CreatedAt, k.NotBefore, k.LastUsedAt, lc.LastUsageDay)
		recheck := now.Add(min(idleRecheck, p.IdleAfter))
		switch at := last.Add(p.IdleAfter); {
		case lc.IdleFor.Equal(last):
			due(recheck) // reported already; look again later
		case now.Before(at):
			due(at)
		default:
			st.IdleFor, st.CheckActivity = last, true
			var lastUsed any
			if !k.LastUsedAt.IsZero() {
				lastUsed = rfc3339(k.LastUsedAt)
			}
			idleDays := int64(now.Sub(last) / (24 * time.Hour))
			event(lifecycle.KeyIdle, map[string]any{"lastUsedAt": lastUsed, "idleDays": idleDays, "action": p.IdleAction})
			if p.IdleAction == IdleDisable {
				st.Disable = true
				audit(ActionDisable, map[string]any{"enabled": map[string]any{"from": true, "to": false},
					"status": map[string]any{"to": "disabled"}, "reason": "idle", "idleDays": idleDays})
				event(lifecycle.KeyDisabled, map[string]any{"reason": "idle", "idleDays": idleDays})
			} else {
				due(recheck)
			}
		}
	}
	if next.IsZero() {
		// Nothing is due (no expiry, idle detection off or the key
		// disabled): look again later, so that a changed policy reaches
		// every live key.
		next = now.Add(review)
	}
	st.Next = next
	return pl
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optRFC3339(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return rfc3339(t)
}
