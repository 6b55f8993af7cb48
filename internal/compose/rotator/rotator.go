// Package rotator composes the rotator function: the rotate route (the
// admin API's Options, from internal/compose/issuer), the scheduled
// lifecycle run with its policy, and the rotation of the token signing
// keys, behind internal/rotator's handler (imported under that same name:
// in this package, rotator.X is always that package). functions/rotator
// runs it in Lambda, and the local stack runs it too.
package rotator

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/issuer"
	"github.com/keygate/keygate/internal/compose/signing"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/rotator"
	"github.com/keygate/keygate/internal/token"
)

// LoadPolicy reads the scheduled run's policy through getenv; a bad value
// is a fault.Invalid naming its variable.
func LoadPolicy(getenv func(string) string) (rotator.Policy, error) {
	r := config.FromEnv(getenv)
	p := rotator.Policy{
		ExpiringNotice: config.ExpiringNotice.From(r),
		MaxAge:         config.MaxKeyAge.From(r),
		IdleAfter:      config.IdleAfter.From(r),
		IdleAction:     config.IdleAction.From(r),
		Retention:      config.ExpiredRetention.From(r),
		MaxRun:         config.RotatorMaxRun.From(r),
		MaxGrace:       config.MaxGrace.From(r),
	}
	return p, r.Err()
}

// Compose builds the rotator's handler. Token signing keys rotate on the
// same schedule when a signing backend (KMS keys, or a local folder) is
// configured; without one, tokens are still signed (the token function
// publishes a first key) but never rotated, and the log says so.
func Compose(_ context.Context, e compose.Env) (lambda.Handler, error) {
	policy, err := LoadPolicy(e.Getenv)
	if err != nil {
		return nil, err
	}
	r := config.FromEnv(e.Getenv)
	rotation := config.SigningKeyRotation.From(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	opts, err := issuer.Options(e)
	if err != nil {
		return nil, err
	}
	var keys rotator.SigningKeys
	if backend, err := signing.Backend(e); err == nil {
		keys = token.NewKeyring(opts.Store, backend, rotation)
	} else {
		opts.Logger.Warn("token signing keys will not rotate", "error", err.Error())
	}
	admin := adminapi.NewRotator(opts, policy.MaxGrace)
	sweeper := &rotator.Sweeper{Store: opts.Store, Policy: policy, Publisher: opts.Publisher, Logger: opts.Logger, SigningKeys: keys}
	return lambda.NewHandler(rotator.Handler(sweeper, admin, policy.MaxRun)), nil
}
