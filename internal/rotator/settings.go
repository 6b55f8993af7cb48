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
	"strconv"
	"time"

	"github.com/keygate/keygate/internal/fault"
)

// The rotator's environment variables (the shared ones are internal/config's).
const (
	EnvExpiringDays         = "KEYGATE_EXPIRING_DAYS"
	EnvMaxKeyAgeDays        = "KEYGATE_MAX_KEY_AGE_DAYS"
	EnvIdleDays             = "KEYGATE_IDLE_DAYS"
	EnvIdleAction           = "KEYGATE_IDLE_ACTION"
	EnvExpiredRetentionDays = "KEYGATE_EXPIRED_RETENTION_DAYS"
	EnvRunSeconds           = "KEYGATE_ROTATOR_MAX_RUN_SECONDS"
	EnvMaxGraceSeconds      = "KEYGATE_MAX_GRACE_SECONDS"
)

// The idle actions.
const (
	IdleNotify  = "notify"
	IdleDisable = "disable"
)

// Policy is what the scheduled run enforces.
type Policy struct {
	// ExpiringNotice is how long before its expiry a key gets key.expiring
	// (default 7 days; 0 sends none).
	ExpiringNotice time.Duration
	// MaxAge, when set, is the longest a key may live from its creation: an
	// older key is expired (its expiresAt is set to createdAt+MaxAge), not
	// revoked, so the denial says expired and an admin can still extend it
	// on purpose with PATCH expiresAt. Off (0) by default.
	MaxAge time.Duration
	// IdleAfter is how long a key may go unused (since its last use, or its
	// creation if never used) before key.idle (default 90 days; 0 turns
	// idle detection off).
	IdleAfter time.Duration
	// IdleAction is IdleNotify (default) or IdleDisable.
	IdleAction string
	// Retention is how long an expired key is kept (for audit and for a
	// clear "expired" denial) before DynamoDB's TTL deletes it (default 90
	// days).
	Retention time.Duration
	// MaxRun caps one run's time budget (default 4 minutes); the budget is
	// otherwise the Lambda deadline minus a margin.
	MaxRun time.Duration
	// MaxGrace caps gracePeriodSeconds of a rotation (default 7 days).
	MaxGrace time.Duration
}

// Defaults of the policy.
const (
	DefaultExpiringNotice = 7 * 24 * time.Hour
	DefaultIdleAfter      = 90 * 24 * time.Hour
	DefaultRetention      = 90 * 24 * time.Hour
	DefaultMaxRun         = 4 * time.Minute
	DefaultMaxGrace       = 7 * 24 * time.Hour
)

// PolicyFromEnv reads the policy through getenv (os.Getenv in main), with
// the defaults above for unset variables; a bad value is a fault.Invalid
// naming the variable.
func PolicyFromEnv(getenv func(string) string) (Policy, error) {
	p := Policy{
		ExpiringNotice: DefaultExpiringNotice, IdleAfter: DefaultIdleAfter, IdleAction: IdleNotify,
		Retention: DefaultRetention, MaxRun: DefaultMaxRun, MaxGrace: DefaultMaxGrace,
	}
	const day = 24 * time.Hour
	for _, v := range []struct {
		env      string
		min, max int
		unit     time.Duration
		into     *time.Duration
	}{
		{EnvExpiringDays, 0, 365, day, &p.ExpiringNotice},
		{EnvMaxKeyAgeDays, 0, 3650, day, &p.MaxAge},
		{EnvIdleDays, 0, 3650, day, &p.IdleAfter},
		{EnvExpiredRetentionDays, 1, 3650, day, &p.Retention},
		{EnvRunSeconds, 1, 900, time.Second, &p.MaxRun},
		{EnvMaxGraceSeconds, 0, 90 * 24 * 3600, time.Second, &p.MaxGrace},
	} {
		s := getenv(v.env)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < v.min || n > v.max {
			return Policy{}, fault.Fieldf(v.env, "must be a whole number from %d to %d", v.min, v.max)
		}
		*v.into = time.Duration(n) * v.unit
	}
	switch a := getenv(EnvIdleAction); a {
	case "":
	case IdleNotify, IdleDisable:
		p.IdleAction = a
	default:
		return Policy{}, fault.Fieldf(EnvIdleAction, "must be %q or %q", IdleNotify, IdleDisable)
	}
	return p, nil
}
