// Package compose builds each keygate function's handler from its
// environment. It is the one composition of every function: the Lambda
// entry points (functions/<name>/main.go) run it at cold start, and the
// local stack runs the same code for `make dev`, so a setting read or a
// client wired in one place is wired in both.
//
// Clients are built once per composition, from the environment alone:
// DynamoDB Local when KEYGATE_DYNAMODB_ENDPOINT is set, AWS otherwise;
// EventBridge when KEYGATE_EVENT_BUS is set, the log otherwise; KMS when
// KEYGATE_SIGNING_KEY names keys, a local key folder otherwise. Loading the
// AWS configuration makes no network call (credentials resolve on the first
// request), so no composition touches the network.
package compose

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/rotator"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/tokenapi"
	"github.com/keygate/keygate/internal/verify"
)

// Env is what a composition reads.
type Env struct {
	// Getenv reads the function's environment (os.Getenv in Lambda).
	Getenv func(string) string
	// Stdout receives the function's JSON logs and metric lines (os.Stdout
	// in Lambda, where CloudWatch collects them).
	Stdout io.Writer
	// Name, when set, tags every log line with the function's name, for
	// the local stack, whose functions share one log.
	Name string
	// KMS, when set, replaces the KMS client built from the AWS
	// configuration (tests pass a fake one).
	KMS token.KMSClient
}

// Func composes one function.
type Func func(ctx context.Context, e Env) (lambda.Handler, error)

// Functions maps each function's name (as the route table and the stack
// name them) to its composition.
var Functions = map[string]Func{
	gateway.FnAuthorizer: Authorizer,
	gateway.FnIssuer:     Issuer,
	gateway.FnRotator:    Rotator,
	gateway.FnTokens:     Tokens,
}

// Main runs a function in Lambda: it composes the handler from the process
// environment and starts the Lambda runtime, or logs why it cannot start
// and exits. Every functions/<name>/main.go is one call to it.
func Main(name string, compose Func) {
	h, err := compose(context.Background(), Env{Getenv: os.Getenv, Stdout: os.Stdout})
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stdout, nil)).Error(name+" cannot start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	lambda.Start(h)
}

func (e Env) logger(level slog.Leveler) *slog.Logger {
	l := slog.New(slog.NewJSONHandler(e.Stdout, &slog.HandlerOptions{Level: level}))
	if e.Name != "" {
		l = l.With("function", e.Name)
	}
	return l
}

// clients builds a composition's AWS clients, loading the AWS configuration
// only if one of them needs it.
type clients struct {
	cfg config.Config
	env Env
	aws *aws.Config
}

func (c *clients) awsConfig(ctx context.Context) (aws.Config, error) {
	if c.aws == nil {
		ac, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return aws.Config{}, err
		}
		c.aws = &ac
	}
	return *c.aws, nil
}

func (c *clients) dynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	if c.cfg.DynamoDBEndpoint != "" {
		return store.LocalClient(c.cfg.DynamoDBEndpoint), nil
	}
	ac, err := c.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(ac), nil
}

// publisher is where lifecycle events go: the configured EventBridge bus, or
// the log when there is none.
func (c *clients) publisher(ctx context.Context, log *slog.Logger) (interface {
	Publish(context.Context, lifecycle.Event) error
}, error) {
	if c.cfg.EventBus == "" {
		return &lifecycle.Log{Logger: log}, nil
	}
	ac, err := c.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return &lifecycle.EventBridge{Client: eventbridge.NewFromConfig(ac), Bus: c.cfg.EventBus}, nil
}

// signing is the token signing backend the settings name: KMS keys or a
// local key folder.
func (c *clients) signing(ctx context.Context, ts token.Settings) (token.Backend, error) {
	kmsClient := c.env.KMS
	if kmsClient == nil && len(ts.KMSKeys) > 0 {
		ac, err := c.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		kmsClient = kms.NewFromConfig(ac)
	}
	return token.NewBackend(ts, func() token.KMSClient { return kmsClient })
}

// load reads the shared configuration of a composition.
func load(e Env) (config.Config, *clients, error) {
	cfg, err := config.Load(e.Getenv)
	if err != nil {
		return config.Config{}, nil, err
	}
	return cfg, &clients{cfg: cfg, env: e}, nil
}

// store opens the table.
func (c *clients) store(ctx context.Context, opts store.Options) (*store.Store, error) {
	db, err := c.dynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	return store.New(db, c.cfg.Table, opts), nil
}

// Authorizer composes the Lambda authorizer.
func Authorizer(ctx context.Context, e Env) (lambda.Handler, error) {
	cfg, c, err := load(e)
	if err != nil {
		return nil, err
	}
	settings, err := authorizer.LoadSettings(cfg, e.Getenv)
	if err != nil {
		return nil, err
	}
	ts, err := token.SettingsFromEnv(e.Getenv)
	if err != nil {
		return nil, err
	}
	st, err := c.store(ctx, store.Options{})
	if err != nil {
		return nil, err
	}
	settings.Verify.Tokens = token.NewVerifier(st, ts.Issuer, ts.Audience, nil)
	return authorizer.New(verify.New(st, settings.Verify), authorizer.Options{
		QueryParam: settings.QueryParam,
		Logger:     e.logger(settings.LogLevel),
		Metrics:    metrics.New(e.Stdout),
	}), nil
}

// adminOptions are the admin API's options, shared by the issuer and the
// rotator's rotate route.
func adminOptions(ctx context.Context, e Env) (adminapi.Options, *clients, *store.Store, error) {
	cfg, c, err := load(e)
	if err != nil {
		return adminapi.Options{}, nil, nil, err
	}
	settings, err := adminapi.SettingsFromEnv(e.Getenv, cfg.Pepper)
	if err != nil {
		return adminapi.Options{}, nil, nil, err
	}
	s, err := c.store(ctx, store.Options{CursorSecret: settings.CursorSecret()})
	if err != nil {
		return adminapi.Options{}, nil, nil, err
	}
	log := e.logger(nil)
	pub, err := c.publisher(ctx, log)
	if err != nil {
		return adminapi.Options{}, nil, nil, err
	}
	idem, err := adminapi.NewIdempotency(s, settings.Secret)
	if err != nil {
		return adminapi.Options{}, nil, nil, err
	}
	return adminapi.Options{
		Store:        s,
		Format:       cfg.Format,
		Hasher:       cfg.Hasher(),
		Environments: cfg.Environments,
		Idempotency:  idem,
		Publisher:    pub,
		Logger:       log,
		Retention:    settings.Retention,
		MaxTTL:       settings.MaxTTL,
	}, c, s, nil
}

// Issuer composes the admin API's /v1/keys function.
func Issuer(ctx context.Context, e Env) (lambda.Handler, error) {
	opts, _, _, err := adminOptions(ctx, e)
	if err != nil {
		return nil, err
	}
	return lambda.NewHandler(lambdahttp.Handler(adminapi.New(opts))), nil
}

// Rotator composes the rotation route and the scheduled lifecycle run.
// Token signing keys rotate on the same schedule when a signing key (KMS,
// or a local folder) is configured; without one, tokens are still signed
// (the token function publishes a first key) but never rotated, and the
// log says so.
func Rotator(ctx context.Context, e Env) (lambda.Handler, error) {
	policy, err := rotator.PolicyFromEnv(e.Getenv)
	if err != nil {
		return nil, err
	}
	ts, err := token.SettingsFromEnv(e.Getenv)
	if err != nil {
		return nil, err
	}
	opts, c, s, err := adminOptions(ctx, e)
	if err != nil {
		return nil, err
	}
	var signing rotator.SigningKeys
	if backend, err := c.signing(ctx, ts); err == nil {
		signing = token.NewKeyring(s, backend, ts.Rotation)
	} else {
		opts.Logger.Warn("token signing keys will not rotate", "error", err.Error())
	}
	admin := adminapi.NewRotator(opts, policy.MaxGrace)
	sweeper := &rotator.Sweeper{Store: s, Policy: policy, Publisher: opts.Publisher, Logger: opts.Logger, SigningKeys: signing}
	return lambda.NewHandler(rotator.Handler(sweeper, admin, policy.MaxRun)), nil
}

// Tokens composes the access-token exchange and the JWKS.
func Tokens(ctx context.Context, e Env) (lambda.Handler, error) {
	ts, err := token.SettingsFromEnv(e.Getenv)
	if err != nil {
		return nil, err
	}
	_, c, err := load(e)
	if err != nil {
		return nil, err
	}
	st, err := c.store(ctx, store.Options{})
	if err != nil {
		return nil, err
	}
	backend, err := c.signing(ctx, ts)
	if err != nil {
		return nil, err
	}
	ring := token.NewKeyring(st, backend, ts.Rotation)
	return lambda.NewHandler(lambdahttp.Handler(tokenapi.New(tokenapi.Options{
		Keys:   st,
		Issuer: token.NewIssuer(ring, ts),
		Ring:   ring,
		Logger: e.logger(nil),
	}))), nil
}
