// Command authorizer is the Lambda authorizer: the composition root only.
// It reads the configuration, builds the DynamoDB client, the store, the
// verifier and the handler once per cold start (no network call: the SDK
// resolves credentials lazily on the first request), and hands the handler
// to the Lambda runtime.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/verify"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fail(log, "configuration", err)
	}
	settings, err := authorizer.LoadSettings(cfg, os.Getenv)
	if err != nil {
		fail(log, "configuration", err)
	}
	var db *dynamodb.Client
	if cfg.DynamoDBEndpoint != "" {
		db = store.LocalClient(cfg.DynamoDBEndpoint)
	} else {
		aws, err := awsconfig.LoadDefaultConfig(context.Background())
		if err != nil {
			fail(log, "AWS configuration", err)
		}
		db = dynamodb.NewFromConfig(aws)
	}
	st := store.New(db, cfg.Table, store.Options{})
	ts, err := token.SettingsFromEnv(os.Getenv)
	if err != nil {
		fail(log, "configuration", err)
	}
	// Access tokens are verified offline against the published signing
	// keys, read from the table on the first token (not here: init makes
	// no network call).
	settings.Verify.Tokens = token.NewVerifier(st, ts.Issuer, ts.Audience, nil)
	log = slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: settings.LogLevel}))
	h := authorizer.New(verify.New(st, settings.Verify), authorizer.Options{
		QueryParam: settings.QueryParam,
		Logger:     log,
		Metrics:    metrics.New(os.Stdout),
	})
	lambda.Start(h)
}

func fail(log *slog.Logger, what string, err error) {
	log.Error("authorizer cannot start", slog.String("what", what), slog.String("error", err.Error()))
	os.Exit(1)
}
