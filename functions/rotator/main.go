// Command rotator is the Lambda function that rotates keys
// (POST /v1/keys/{id}/rotate, through internal/lambdahttp) and runs the
// scheduled lifecycle work (an EventBridge schedule, hourly by default). It
// only wires configuration, the DynamoDB and EventBridge clients and the
// handler, once at cold start; internal/rotator tells the two kinds of event
// apart.
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
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/rotator"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := setup(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("rotator cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h)
}

// setup builds the handler from the environment. AWS clients are built from
// the default config (no network call: credentials resolve lazily).
func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, json.RawMessage) (any, error), error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	settings, err := adminapi.SettingsFromEnv(getenv, cfg.Pepper)
	if err != nil {
		return nil, err
	}
	policy, err := rotator.PolicyFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	ts, err := token.SettingsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	var db *dynamodb.Client
	var pub rotator.Publisher = &lifecycle.Log{Logger: log}
	var newKMS func() token.KMSClient
	if cfg.DynamoDBEndpoint != "" {
		db = store.LocalClient(cfg.DynamoDBEndpoint)
	}
	if db == nil || cfg.EventBus != "" || len(ts.KMSKeys) > 0 {
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
		newKMS = func() token.KMSClient { return kms.NewFromConfig(awsCfg) }
	}
	s := store.New(db, cfg.Table, store.Options{CursorSecret: settings.CursorSecret()})
	// Token signing keys rotate on the same schedule, when a signing key
	// (KMS, or a local directory) is configured; without one, tokens are
	// still signed (the token function publishes a first key) but never
	// rotated, and the log says so.
	var signing rotator.SigningKeys
	if backend, err := token.NewBackend(ts, newKMS); err == nil {
		signing = token.NewKeyring(s, backend, ts.Rotation)
	} else {
		log.Warn("token signing keys will not rotate", "error", err.Error())
	}
	idem, err := adminapi.NewIdempotency(s, settings.Secret)
	if err != nil {
		return nil, err
	}
	admin := adminapi.NewRotator(adminapi.Options{
		Store:        s,
		Format:       cfg.Format,
		Hasher:       cfg.Hasher(),
		Environments: cfg.Environments,
		Idempotency:  idem,
		Publisher:    pub,
		Logger:       log,
		Retention:    settings.Retention,
		MaxTTL:       settings.MaxTTL,
	}, policy.MaxGrace)
	sweeper := &rotator.Sweeper{Store: s, Policy: policy, Publisher: pub, Logger: log, SigningKeys: signing}
	return rotator.Handler(sweeper, admin, policy.MaxRun), nil
}
