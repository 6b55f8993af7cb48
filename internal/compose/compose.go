// Package compose holds what every function's composition shares: the
// environment a composition reads (Env), the Lambda entry point (Main), and
// the clients every function needs (the AWS configuration, DynamoDB, the
// store). Each function's own composition is a package below this one
// (compose/authorizer, compose/issuer, compose/rotator, compose/tokens),
// so that a function binary links only the packages it runs: the
// authorizer links neither the admin API nor EventBridge nor KMS, and does
// not pay for their package initialisation on every cold start. The
// functions' main.go and the local stack run the same compositions.
//
// Clients are built once per composition, from the environment alone, and
// no composition touches the network: DynamoDB Local when
// KEYGATE_DYNAMODB_ENDPOINT is set; otherwise AWS, with the configuration
// built from the variables Lambda reserves (see AWS).
package compose

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/store"
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
}

// Func composes one function: its handler, with its clients, built once
// per Lambda environment.
type Func func(ctx context.Context, e Env) (lambda.Handler, error)

// Main runs a function in Lambda: it composes the handler from the process
// environment and starts the Lambda runtime, or logs why it cannot start
// and exits. Every functions/<name>/main.go is one call to it.
func Main(name string, compose Func) {
	h, err := compose(context.Background(), Env{Getenv: os.Getenv, Stdout: os.Stdout})
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stdout, nil)).Error(name+" cannot start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	var opts []lambda.Option
	if s, ok := h.(Shutdowner); ok {
		opts = append(opts, lambda.WithEnableSIGTERM(func() {
			ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
			defer cancel()
			s.Shutdown(ctx)
		}))
	}
	lambda.StartWithOptions(h, opts...)
}

// Shutdowner is a handler with work to finish before its environment ends
// (the authorizer: usage admitted from reservations, not yet reported).
// Main runs Shutdown on the SIGTERM Lambda sends before it shuts an
// environment down: lambda.WithEnableSIGTERM registers an internal
// extension (GoLangEnableSIGTERM, registered with the Extensions API of
// the runtime's own local endpoint, not a network call), which is what
// makes Lambda send SIGTERM to the function at all: a function with no
// extension gets none. A function with an internal extension gets 500 ms
// between SIGTERM and SIGKILL ("Shutdown phase" in
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html).
// The local stack runs Shutdown when it stops.
type Shutdowner interface {
	Shutdown(ctx context.Context)
}

// ShutdownTimeout is the time Shutdown gets: within the 500 ms Lambda
// leaves between SIGTERM and SIGKILL.
const ShutdownTimeout = 400 * time.Millisecond

// Logger returns the function's JSON logger at level (nil: info).
func (e Env) Logger(level slog.Leveler) *slog.Logger {
	l := slog.New(slog.NewJSONHandler(e.Stdout, &slog.HandlerOptions{Level: level}))
	if e.Name != "" {
		l = l.With("function", e.Name)
	}
	return l
}

// The variables Lambda sets in every function's environment: the region,
// and the execution role's temporary credentials.
const (
	envRegion       = "AWS_REGION"
	envAccessKeyID  = "AWS_ACCESS_KEY_ID"
	envSecretKey    = "AWS_SECRET_ACCESS_KEY"
	envSessionToken = "AWS_SESSION_TOKEN"
	// envEndpointURL, when set, sends every AWS call to one endpoint (the
	// SDK's AWS_ENDPOINT_URL; the cold-start tests point it at a listener
	// that counts connections).
	envEndpointURL = "AWS_ENDPOINT_URL"
)

// AWS returns the AWS configuration of a function running in Lambda, built
// from the reserved variables Lambda sets for every function (AWS_REGION,
// and the execution role's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN: "Defined runtime environment variables" in
// https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
// That is where the SDK's default chain finds them in Lambda too, as
// static credentials; building the configuration by hand instead of with
// config.LoadDefaultConfig keeps the shared-config, SSO, STS and sign-in
// code (and their package initialisation) out of every function binary,
// which BenchmarkColdStart (internal/artefact) measures. Only SnapStart
// hands credentials over another way (a container endpoint), and it is not
// offered for the provided.al2023 runtime the functions use; without the
// variables a function fails at cold start, saying so.
func (e Env) AWS() (aws.Config, error) {
	region, id, secret := e.Getenv(envRegion), e.Getenv(envAccessKeyID), e.Getenv(envSecretKey)
	if region == "" || id == "" || secret == "" {
		return aws.Config{}, errors.New("the AWS configuration needs AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which Lambda sets for every function")
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, e.Getenv(envSessionToken)),
	}
	if ep := e.Getenv(envEndpointURL); ep != "" {
		cfg.BaseEndpoint = aws.String(ep)
	}
	return cfg, nil
}

// DynamoDB returns the DynamoDB client: DynamoDB Local when
// KEYGATE_DYNAMODB_ENDPOINT is set, AWS otherwise.
func (e Env) DynamoDB() (*dynamodb.Client, error) {
	r := config.FromEnv(e.Getenv)
	endpoint := config.DynamoDBEndpoint.From(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	if endpoint != "" {
		return store.LocalClient(endpoint), nil
	}
	cfg, err := e.AWS()
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// Store opens the table (KEYGATE_TABLE) with opts.
func (e Env) Store(opts store.Options) (*store.Store, error) {
	r := config.FromEnv(e.Getenv)
	table := config.Table.From(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	db, err := e.DynamoDB()
	if err != nil {
		return nil, err
	}
	return store.New(db, table, opts), nil
}
