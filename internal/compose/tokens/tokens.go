// Package tokens composes the token function (POST /v1/tokens and the
// JWKS): its settings, the store, the signing backend (internal/compose/signing),
// the keyring, the issuer and the internal/tokenapi handler behind
// internal/lambdahttp. functions/tokens runs it in Lambda, and the local
// stack runs it too.
package tokens

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/signing"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/tokenapi"
)

// LoadSettings reads the token settings through getenv; a bad value is a
// fault.Invalid naming its variable.
func LoadSettings(getenv func(string) string) (token.Settings, error) {
	r := config.FromEnv(getenv)
	s := token.Settings{
		Issuer:   config.TokenIssuer.From(r),
		Audience: config.TokenAudience.From(r),
		TTL:      config.TokenTTL.From(r),
		MaxTTL:   config.TokenMaxTTL.From(r),
		Rotation: config.SigningKeyRotation.From(r),
	}
	if err := r.Err(); err != nil {
		return token.Settings{}, err
	}
	if s.TTL > s.MaxTTL {
		return token.Settings{}, fault.Fieldf(config.TokenTTL.Setting().Env, "must not exceed %s (%s)",
			config.TokenMaxTTL.Setting().Env, config.FormatDuration(s.MaxTTL))
	}
	return s, nil
}

// Compose builds the token function's handler.
func Compose(_ context.Context, e compose.Env) (lambda.Handler, error) {
	ts, err := LoadSettings(e.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := e.Store(store.Options{})
	if err != nil {
		return nil, err
	}
	backend, err := signing.Backend(e)
	if err != nil {
		return nil, err
	}
	r := config.FromEnv(e.Getenv)
	exchanges := config.TokenExchanges.From(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	ring := token.NewKeyring(st, backend, ts.Rotation)
	return lambda.NewHandler(lambdahttp.Handler(tokenapi.New(tokenapi.Options{
		Keys:               st,
		Issuer:             token.NewIssuer(ring, ts),
		Ring:               ring,
		Exchanges:          st,
		ExchangesPerMinute: int64(exchanges),
		Logger:             e.Logger(nil),
	}))), nil
}
