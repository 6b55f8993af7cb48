package rotator

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

// Publisher sends lifecycle events (internal/lifecycle implements it for
// EventBridge and for the log).
type Publisher interface {
	Publish(ctx context.Context, e lifecycle.Event) error
}

// Sweeper runs the scheduled lifecycle work.
type Sweeper struct {
	Store     *store.Store
	Policy    Policy
	Publisher Publisher
	Logger    *slog.Logger
	// Now is the time decisions are made at (the store's clock); nil means
	// time.Now.
	Now func() time.Time
	// Clock measures the time budget; nil means time.Now. Tests inject one
	// that advances per call to make budgets deterministic.
	Clock func() time.Time
	// PageSize is how many due keys are read at a time per shard (default 25).
	PageSize int
	// SigningKeys rotates the access tokens' signing keys (token.Keyring);
	// nil when the function has no signing key configured.
	SigningKeys SigningKeys
}

// SigningKeys publishes the next token signing key when one is due
// (internal/token's Keyring); each scheduled run asks it once.
type SigningKeys interface {
	RotateSigningKeys(ctx context.Context, now time.Time) (token.Rotation, error)
}

// Report says what one run did; the Lambda handler returns it, so it shows
// in the invocation's result and the log.
type Report struct {
	// Due is how many due keys the run looked at; Applied how many steps it
	// recorded; Skipped how many keys changed under it (left for later).
	Due     int `json:"due"`
	Applied int `json:"applied"`
	Skipped int `json:"skipped"`
	// Failed counts keys whose step failed (DynamoDB errors); they stay due.
	Failed int `json:"failed"`
	// Events counts the events sent, by type; EventsFailed those that
	// EventBridge refused (logged with the key id).
	Events       map[string]int `json:"events"`
	EventsFailed int            `json:"eventsFailed"`
	// Complete is true when no key was left due; false when the budget ran
	// out first (the next run picks up the rest).
	Complete bool `json:"complete"`
	// SigningKeyPublished is the kid of the token signing key this run
	// published ("" when none was due); SigningKeyFailed is set when the
	// signing key rotation failed (logged; the next run tries again).
	SigningKeyPublished string `json:"signingKeyPublished,omitempty"`
	SigningKeyFailed    bool   `json:"signingKeyFailed,omitempty"`
}

// Run does the work due now, shard by shard in turns of one page each (so
// that no shard waits behind another), until nothing is due or the budget
// is spent. It returns an error only when it could not read the schedule at
// all; a failed key is counted and stays due.
func (s *Sweeper) Run(ctx context.Context, budget time.Duration) (Report, error) {
	now, clock := s.Now, s.Clock
	if now == nil {
		now = time.Now
	}
	if clock == nil {
		clock = time.Now
	}
	log := s.logger()
	size := s.PageSize
	if size == 0 {
		size = 25
	}
	at := now()
	stop := clock().Add(budget)
	left := func() bool { return clock().Before(stop) && ctx.Err() == nil }
	rep := Report{Events: map[string]int{}}
	if s.SigningKeys != nil {
		// First, and cheap (one Query, rarely a transaction): the sweep
		// below may spend the whole budget.
		rot, err := s.SigningKeys.RotateSigningKeys(ctx, at)
		switch {
		case err != nil:
			rep.SigningKeyFailed = true
			log.ErrorContext(ctx, "token signing key rotation failed", "error", err.Error())
		case rot.Published != "":
			rep.SigningKeyPublished = rot.Published
			log.InfoContext(ctx, "token signing key published", "kid", rot.Published,
				"startsAt", rot.StartsAt, "retired", rot.Retired)
		}
	}
	var (
		next [store.DueShards]string
		done [store.DueShards]bool
	)
	// Each run starts at a random shard, so a run that the budget stops
	// early does not leave the same shards to wait every time.
	first := rand.IntN(store.DueShards)
	for open := store.DueShards; open > 0; {
		for i := range store.DueShards {
			shard := (first + i) % store.DueShards
			if done[shard] {
				continue
			}
			if !left() {
				return rep, nil
			}
			page, err := s.Store.Due(ctx, shard, at, size, next[shard])
			if err != nil {
				return rep, err
			}
			for _, d := range page.Keys {
				if !left() {
					return rep, nil // the rest stays due for the next run
				}
				s.one(ctx, d, at, &rep, log)
			}
			next[shard] = page.Next
			if page.Next == "" {
				done[shard] = true
				open--
			}
		}
	}
	rep.Complete = true
	return rep, nil
}

// one plans and records the step of one due key, then sends its events.
func (s *Sweeper) one(ctx context.Context, d store.DueKey, now time.Time, rep *Report, log *slog.Logger) {
	rep.Due++
	pl := s.Policy.plan(d, now)
	ok, err := s.Store.Advance(ctx, pl.step)
	switch {
	case err != nil:
		rep.Failed++
		log.ErrorContext(ctx, "scheduled step failed", "keyId", d.Key.ID, "error", err.Error())
		return
	case !ok:
		rep.Skipped++
		return
	}
	rep.Applied++
	for _, e := range pl.events {
		if err := s.Publisher.Publish(ctx, e); err != nil {
			rep.EventsFailed++
			log.ErrorContext(ctx, "lifecycle event not published", "event", e.Type, "keyId", e.KeyID, "error", err.Error())
			continue
		}
		rep.Events[e.Type]++
	}
}

func (s *Sweeper) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}
