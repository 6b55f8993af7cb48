// Package issuer composes the issuer function, the admin API's /v1/keys
// routes: its settings, the store, the lifecycle event publisher
// (EventBridge when KEYGATE_EVENT_BUS is set, the log otherwise), the
// idempotency support (its responses sealed with the KMS key
// KEYGATE_SEAL_KEY, or the local stack's KEYGATE_SEAL_LOCAL_KEY) and the
// internal/adminapi handler behind
// internal/lambdahttp. functions/issuer runs it in Lambda, the local stack
// runs it too, and the rotator's composition builds its rotate route from
// the same Options.
package issuer

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/seal"
	"github.com/keygate/keygate/internal/store"
)

// Options reads the admin API's settings and builds what it needs: the
// store (with its list cursors signed), the publisher and the idempotency
// support, once per cold start.
func Options(e compose.Env) (adminapi.Options, error) {
	r := config.FromEnv(e.Getenv)
	pepper := config.Pepper.From(r)
	secret := config.CursorSecret.From(r)
	if len(secret) == 0 {
		secret = pepper
	}
	sealKey, sealLocal := config.SealKey.From(r), config.SealLocalKey.From(r)
	o := adminapi.Options{
		Format:       config.KeyPrefix.From(r),
		Hasher:       apikey.NewHasher(pepper),
		Environments: config.Environments.From(r),
		Retention:    config.RevokedRetention.From(r),
		MaxTTL:       config.MaxKeyTTL.From(r),
		Logger:       e.Logger(nil),
	}
	bus := config.EventBus.From(r)
	if err := r.Err(); err != nil {
		return adminapi.Options{}, err
	}
	s, err := e.Store(store.Options{CursorSecret: adminapi.CursorSecret(secret)})
	if err != nil {
		return adminapi.Options{}, err
	}
	o.Store = s
	var sealer seal.Sealer // nil: a key of this process (seal.Random)
	switch {
	case sealKey != "":
		cfg, err := e.AWS()
		if err != nil {
			return adminapi.Options{}, err
		}
		sealer = seal.NewKMS(cfg, sealKey)
	case sealLocal != nil:
		if sealer, err = seal.NewLocal(sealLocal); err != nil {
			return adminapi.Options{}, err
		}
	}
	o.Idempotency = adminapi.NewIdempotency(s, sealer)
	o.Publisher = &lifecycle.Log{Logger: o.Logger}
	if bus != "" {
		cfg, err := e.AWS()
		if err != nil {
			return adminapi.Options{}, err
		}
		o.Publisher = &lifecycle.EventBridge{Client: eventbridge.NewFromConfig(cfg), Bus: bus}
	}
	return o, nil
}

// Compose builds the issuer's handler.
func Compose(_ context.Context, e compose.Env) (lambda.Handler, error) {
	o, err := Options(e)
	if err != nil {
		return nil, err
	}
	return lambda.NewHandler(lambdahttp.Handler(adminapi.New(o))), nil
}
