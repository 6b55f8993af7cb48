// Package authorizer composes the authorizer function: its settings, the
// DynamoDB client, the store, the access-token verifier, the verifier and
// the handler of internal/authorizer (imported under that same name: in
// this package, authorizer.X is always the handler's package), built once
// per cold start with no network call. functions/authorizer runs it in
// Lambda, and the local stack runs it too.
package authorizer

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/verify"
)

// Settings are the authorizer function's settings (see internal/config).
type Settings struct {
	// Verify holds the verification settings (its Tokens and Now are left
	// for the composition).
	Verify verify.Options
	// QueryParam, when set, is a query parameter that may carry the key.
	QueryParam string
	// LogLevel is the lowest level logged.
	LogLevel slog.Level
	// TokenIssuer and TokenAudience are the iss and aud access tokens must
	// carry.
	TokenIssuer, TokenAudience string
}

// LoadSettings reads the authorizer's settings through getenv (os.Getenv
// in Lambda, a map in tests); a bad value is a fault.Invalid naming its
// variable.
func LoadSettings(getenv func(string) string) (Settings, error) {
	r := config.FromEnv(getenv)
	s := Settings{
		Verify: verify.Options{
			Format:       config.KeyPrefix.From(r),
			Hasher:       apikey.NewHasher(config.Pepper.From(r)),
			Environments: config.Environments.From(r),
			Routes:       config.Routes.From(r),
			BasePath:     config.BasePath.From(r),
			Unmatched:    config.Unmatched.From(r),
			CacheTTL:     config.CacheTTL.From(r),
			NegativeTTL:  config.NegativeCacheTTL.From(r),
			CacheSize:    config.CacheSize.From(r),
			StoreTimeout: config.StoreTimeout.From(r),
			ServeStale:   config.ServeStale.From(r),
		},
		QueryParam:    config.KeyQueryParam.From(r),
		LogLevel:      config.LogLevel.From(r),
		TokenIssuer:   config.TokenIssuer.From(r),
		TokenAudience: config.TokenAudience.From(r),
	}
	return s, r.Err()
}

// Compose builds the authorizer's handler.
func Compose(ctx context.Context, e compose.Env) (lambda.Handler, error) {
	s, err := LoadSettings(e.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := e.Store(store.Options{})
	if err != nil {
		return nil, err
	}
	s.Verify.Tokens = token.NewVerifier(st, s.TokenIssuer, s.TokenAudience, nil).WithReadTimeout(s.Verify.StoreTimeout)
	return authorizer.New(verify.New(st, s.Verify), authorizer.Options{
		QueryParam: s.QueryParam,
		Logger:     e.Logger(s.LogLevel),
		Metrics:    metrics.New(e.Stdout),
	}), nil
}
