package localstack

import (
	"io"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/localgw"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/rotator"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/tokenapi"
	"github.com/keygate/keygate/internal/verify"
)

// env is what every function's composition reads: the environment (with the
// local stack's settings laid over it), the shared configuration, and the
// function's standard output, where its logs and metric lines go.
type env struct {
	name   string
	getenv func(string) string
	cfg    config.Config
	stdout io.Writer
}

// logger is the function's JSON logger at level (nil: info), tagged with
// the function's name, since all functions share one log file.
func (e env) logger(level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.stdout, &slog.HandlerOptions{Level: level})).With("function", e.name)
}

// composers builds each function's handler as its functions/<name>/main.go
// does at cold start, with two local differences: DynamoDB is always
// DynamoDB Local (KEYGATE_DYNAMODB_ENDPOINT), and lifecycle events are
// logged rather than sent to EventBridge. Every function the route table
// reaches, and the authorizer, must have an entry here;
// TestEveryRoutedFunctionRunsLocally holds that.
var composers = map[string]func(e env) (lambda.Handler, error){
	gateway.FnAuthorizer: authorizerFn,
	gateway.FnIssuer:     issuer,
	gateway.FnRotator:    rotatorFn,
	gateway.FnTokens:     tokens,
}

// Factories returns a localgw.Factory per function, each building one
// environment of the function on demand.
func Factories(e env) map[string]localgw.Factory {
	out := make(map[string]localgw.Factory, len(composers))
	for name, compose := range composers {
		fe := e
		fe.name = name
		out[name] = func() (lambda.Handler, error) { return compose(fe) }
	}
	return out
}

// issuer is functions/issuer's composition.
func issuer(e env) (lambda.Handler, error) {
	settings, err := adminapi.SettingsFromEnv(e.getenv, e.cfg.Pepper)
	if err != nil {
		return nil, err
	}
	log := e.logger(nil)
	s := store.New(store.LocalClient(e.cfg.DynamoDBEndpoint), e.cfg.Table, store.Options{CursorSecret: settings.CursorSecret()})
	idem, err := adminapi.NewIdempotency(s, settings.Secret)
	if err != nil {
		return nil, err
	}
	return lambda.NewHandler(lambdahttp.Handler(adminapi.New(adminapi.Options{
		Store:        s,
		Format:       e.cfg.Format,
		Hasher:       e.cfg.Hasher(),
		Environments: e.cfg.Environments,
		Idempotency:  idem,
		Publisher:    &lifecycle.Log{Logger: log},
		Logger:       log,
		Retention:    settings.Retention,
		MaxTTL:       settings.MaxTTL,
	}))), nil
}

// authorizerFn is functions/authorizer's composition.
func authorizerFn(e env) (lambda.Handler, error) {
	settings, err := authorizer.LoadSettings(e.cfg, e.getenv)
	if err != nil {
		return nil, err
	}
	st := store.New(store.LocalClient(e.cfg.DynamoDBEndpoint), e.cfg.Table, store.Options{})
	ts, err := token.SettingsFromEnv(e.getenv)
	if err != nil {
		return nil, err
	}
	settings.Verify.Tokens = token.NewVerifier(st, ts.Issuer, ts.Audience, nil)
	return authorizer.New(verify.New(st, settings.Verify), authorizer.Options{
		QueryParam: settings.QueryParam,
		Logger:     e.logger(settings.LogLevel),
		Metrics:    metrics.New(e.stdout),
	}), nil
}

// rotatorFn is functions/rotator's composition.
func rotatorFn(e env) (lambda.Handler, error) {
	settings, err := adminapi.SettingsFromEnv(e.getenv, e.cfg.Pepper)
	if err != nil {
		return nil, err
	}
	policy, err := rotator.PolicyFromEnv(e.getenv)
	if err != nil {
		return nil, err
	}
	ts, err := token.SettingsFromEnv(e.getenv)
	if err != nil {
		return nil, err
	}
	log := e.logger(nil)
	pub := &lifecycle.Log{Logger: log}
	s := store.New(store.LocalClient(e.cfg.DynamoDBEndpoint), e.cfg.Table, store.Options{CursorSecret: settings.CursorSecret()})
	backend, err := signingKeys(ts)
	if err != nil {
		return nil, err
	}
	idem, err := adminapi.NewIdempotency(s, settings.Secret)
	if err != nil {
		return nil, err
	}
	admin := adminapi.NewRotator(adminapi.Options{
		Store:        s,
		Format:       e.cfg.Format,
		Hasher:       e.cfg.Hasher(),
		Environments: e.cfg.Environments,
		Idempotency:  idem,
		Publisher:    pub,
		Logger:       log,
		Retention:    settings.Retention,
		MaxTTL:       settings.MaxTTL,
	}, policy.MaxGrace)
	sweeper := &rotator.Sweeper{Store: s, Policy: policy, Publisher: pub, Logger: log,
		SigningKeys: token.NewKeyring(s, backend, ts.Rotation)}
	return lambda.NewHandler(rotator.Handler(sweeper, admin, policy.MaxRun)), nil
}

// tokens is functions/tokens' composition.
func tokens(e env) (lambda.Handler, error) {
	ts, err := token.SettingsFromEnv(e.getenv)
	if err != nil {
		return nil, err
	}
	backend, err := signingKeys(ts)
	if err != nil {
		return nil, err
	}
	st := store.New(store.LocalClient(e.cfg.DynamoDBEndpoint), e.cfg.Table, store.Options{})
	ring := token.NewKeyring(st, backend, ts.Rotation)
	return lambda.NewHandler(lambdahttp.Handler(tokenapi.New(tokenapi.Options{
		Keys:   st,
		Issuer: token.NewIssuer(ring, ts),
		Ring:   ring,
		Logger: e.logger(nil),
	}))), nil
}

// signingKeys is the token signing backend of the local stack: the local
// key folder (KEYGATE_SIGNING_DIR, under .local/), never KMS, which Start
// turns off.
func signingKeys(ts token.Settings) (token.Backend, error) {
	return token.NewBackend(ts, func() token.KMSClient {
		panic("localstack: KMS signing keys in the local stack") // Start clears KEYGATE_SIGNING_KEY
	})
}
