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
	"time"

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
			// 0 is off in the registry, negative in verify.Options.
			ReserveInterval: orOff(config.ReserveInterval.From(r)),
			ReportInterval:  config.ReportInterval.From(r),
		},
		QueryParam:    config.KeyQueryParam.From(r),
		LogLevel:      config.LogLevel.From(r),
		TokenIssuer:   config.TokenIssuer.From(r),
		TokenAudience: config.TokenAudience.From(r),
	}
	return s, r.Err()
}

func orOff(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Compose builds the authorizer's handler. It also starts the verifier's
// reporter (verify.Verifier.ReportEvery), which runs while the environment
// does, and the handler's Shutdown (run on SIGTERM by compose.Main, and by
// the local stack when it stops) flushes what the environment holds.
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
	v := verify.New(st, s.Verify)
	log := e.Logger(s.LogLevel)
	rctx, stop := context.WithCancel(context.Background())
	go v.ReportEvery(rctx, func(err error) {
		log.Error("usage report failed; the next write or report carries it", slog.String("error", err.Error()))
	})
	return authorizer.New(v, authorizer.Options{
		QueryParam: s.QueryParam,
		Logger:     log,
		Metrics:    metrics.New(e.Stdout),
		Stop:       stop,
	}), nil
}
