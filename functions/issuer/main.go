// Command issuer is the Lambda function behind the admin API's /v1/keys
// routes: it wires configuration, the DynamoDB and EventBridge clients and
// the admin API handler, once at cold start, and serves REST API (v1) and
// HTTP API (v2) proxy events through internal/lambdahttp.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := setup(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("issuer cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h)
}

// setup builds the handler from the environment. AWS clients are built from
// the default config (no network call: credentials resolve lazily).
func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, json.RawMessage) (json.RawMessage, error), error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	settings, err := adminapi.SettingsFromEnv(getenv, cfg.Pepper)
	if err != nil {
		return nil, err
	}
	var db *dynamodb.Client
	var pub adminapi.Publisher = &lifecycle.Log{Logger: log}
	if cfg.DynamoDBEndpoint != "" {
		db = store.LocalClient(cfg.DynamoDBEndpoint)
	}
	if db == nil || cfg.EventBus != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, err
		}
		if db == nil {
			db = dynamodb.NewFromConfig(awsCfg)
		}
		if cfg.EventBus != "" {
			pub = &lifecycle.EventBridge{Client: eventbridge.NewFromConfig(awsCfg), Bus: cfg.EventBus}
		}
	}
	s := store.New(db, cfg.Table, store.Options{CursorSecret: settings.CursorSecret()})
	idem, err := adminapi.NewIdempotency(s, settings.Secret)
	if err != nil {
		return nil, err
	}
	return lambdahttp.Handler(adminapi.New(adminapi.Options{
		Store:        s,
		Format:       cfg.Format,
		Hasher:       cfg.Hasher(),
		Environments: cfg.Environments,
		Idempotency:  idem,
		Publisher:    pub,
		Logger:       log,
		Retention:    settings.Retention,
		MaxTTL:       settings.MaxTTL,
	})), nil
}
