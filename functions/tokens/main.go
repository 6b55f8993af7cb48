// Command tokens is the Lambda function behind POST /v1/tokens (exchange an
// API key for a short-lived access token, behind the keygate authorizer)
// and GET /.well-known/jwks.json (the public keys that verify tokens). It
// wires configuration, the DynamoDB client, the signing backend (KMS when
// KEYGATE_SIGNING_KEY is set, else local keys under KEYGATE_SIGNING_DIR)
// and the handler, once at cold start; no call leaves the process until
// the first request.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/tokenapi"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := setup(context.Background(), os.Getenv, log, nil)
	if err != nil {
		log.Error("tokens cannot start", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h)
}

// setup builds the handler from the environment. kmsClient, when not nil,
// replaces the KMS client built from the default AWS config (tests pass a
// fake one).
func setup(ctx context.Context, getenv func(string) string, log *slog.Logger, kmsClient token.KMSClient) (func(context.Context, json.RawMessage) (json.RawMessage, error), error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	ts, err := token.SettingsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	var db *dynamodb.Client
	if cfg.DynamoDBEndpoint != "" {
		db = store.LocalClient(cfg.DynamoDBEndpoint)
	}
	var awsCfg *aws.Config
	needAWS := db == nil || (len(ts.KMSKeys) > 0 && kmsClient == nil)
	if needAWS {
		c, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, err
		}
		awsCfg = &c
	}
	if db == nil {
		db = dynamodb.NewFromConfig(*awsCfg)
	}
	backend, err := newBackend(ts, awsCfg, kmsClient)
	if err != nil {
		return nil, err
	}
	st := store.New(db, cfg.Table, store.Options{})
	ring := token.NewKeyring(st, backend, ts.Rotation)
	return lambdahttp.Handler(tokenapi.New(tokenapi.Options{
		Keys:   st,
		Issuer: token.NewIssuer(ring, ts),
		Ring:   ring,
		Logger: log,
	})), nil
}

// newBackend is KMS when KEYGATE_SIGNING_KEY names keys, else the local
// key directory; with neither the function refuses to start.
func newBackend(ts token.Settings, awsCfg *aws.Config, kmsClient token.KMSClient) (token.Backend, error) {
	return token.NewBackend(ts, func() token.KMSClient {
		if kmsClient != nil {
			return kmsClient
		}
		return kms.NewFromConfig(*awsCfg)
	})
}
