// Package rotator is the rotator function's work besides the rotate route
// (which lives with the rest of the admin API in internal/adminapi): the
// scheduled lifecycle run, and the Lambda handler that tells a schedule
// event from an API Gateway request by the payload's shape.
//
// The scheduled run finds due keys through the gsi2 index (see
// internal/store: keys sit in one of store.DueShards partitions under their
// next due time), never by scanning the table: it queries each partition
// for keys due by now, a page at a time, taking the partitions in turns,
// and reads those keys with strongly consistent reads. For each due key it
// decides from the key's current item what is due now (plan.go), records
// what it did in one conditional transaction (store.Advance) together with
// the key's next due time, and only then publishes the events. An action
// whose transaction fails (another run got there first, or the key changed)
// is not done: so each action happens at most once, and a run can stop
// anywhere and be run again. docs/lifecycle.md describes the run for users.
package rotator

import (
	"time"

	"github.com/keygate/keygate/internal/config"
)

// The idle actions (config.IdleAction's values).
const (
	IdleNotify  = "notify"
	IdleDisable = "disable"
)

// Policy is what the scheduled run enforces. Its settings are read by the
// rotator's composition (internal/compose/rotator, from internal/config).
type Policy struct {
	// ExpiringNotice is how long before its expiry a key gets key.expiring
	// (0 sends none).
	ExpiringNotice time.Duration
	// MaxAge, when set, is the longest a key may live from its creation: an
	// older key is expired (its expiresAt is set to createdAt+MaxAge), not
	// revoked, so the denial says expired and an admin can still extend it
	// on purpose with PATCH expiresAt. Off (0) by default.
	MaxAge time.Duration
	// IdleAfter is how long a key may go unused (since its last use, or its
	// creation if never used) before key.idle (0 turns idle detection off).
	IdleAfter time.Duration
	// IdleAction is IdleNotify or IdleDisable.
	IdleAction string
	// Retention is how long an expired key is kept (for audit and for a
	// clear "expired" denial) before DynamoDB's TTL deletes it.
	Retention time.Duration
	// MaxRun caps one run's time budget; the budget is otherwise the
	// Lambda deadline minus a margin.
	MaxRun time.Duration
	// MaxGrace caps gracePeriodSeconds of a rotation.
	MaxGrace time.Duration
}

// DefaultPolicy is the policy of a deployment that sets none: the
// registry's defaults.
func DefaultPolicy() Policy {
	return Policy{
		ExpiringNotice: config.ExpiringNotice.Default(), MaxAge: config.MaxKeyAge.Default(),
		IdleAfter: config.IdleAfter.Default(), IdleAction: config.IdleAction.Default(),
		Retention: config.ExpiredRetention.Default(), MaxRun: config.RotatorMaxRun.Default(),
		MaxGrace: config.MaxGrace.Default(),
	}
}
