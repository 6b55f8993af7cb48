package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/rotator"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// The composition root wires a handler that serves both kinds of event the
// rotator receives, against DynamoDB Local; the fixtures' full replay is in
// internal/rotator.
func TestSetupServesScheduleAndRotate(t *testing.T) {
	endpoint := dynamotest.Endpoint(t)
	db, table := dynamotest.Table(t)
	env := map[string]string{"KEYGATE_TABLE": table, "KEYGATE_DYNAMODB_ENDPOINT": endpoint, "KEYGATE_PEPPER": "fixture-pepper"}
	var logs bytes.Buffer
	h, err := rotator.Compose(context.Background(), compose.Env{Getenv: func(k string) string { return env[k] }, Stdout: &logs})
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(db, table, store.Options{})
	format, _ := apikey.NewFormat("")
	pk, _ := format.Generate(apikey.Secret, apikey.Live)
	now := time.Now().UTC()
	if err := s.Create(context.Background(), &key.Key{ID: "key_0000000000000000000000rest", Name: "fixture", OwnerID: "acme",
		Type: key.Secret, Environment: key.Live, Hash: apikey.NewHasher([]byte("fixture-pepper")).Sum(pk.Plaintext),
		Hint: apikey.Hint(pk), Enabled: true, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]func(out []byte){
		"scheduled-eventbridge": func(out []byte) {
			var rep struct{ Complete bool }
			if err := json.Unmarshal(out, &rep); err != nil || !rep.Complete {
				t.Fatalf("scheduled run: %s", out)
			}
		},
		"rest-rotate": func(out []byte) {
			var resp struct {
				StatusCode int    `json:"statusCode"`
				Body       string `json:"body"`
			}
			if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 201 || !strings.Contains(resp.Body, `"previousKeyId":"key_0000000000000000000000rest"`) {
				t.Fatalf("rotate: %s", out)
			}
		},
	} {
		payload, err := os.ReadFile("../../events/rotator/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		out, err := lambda.NewHandler(h).Invoke(context.Background(), payload)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(out)
	}
	if strings.Contains(logs.String(), pk.Plaintext) {
		t.Fatal("the logs hold a plaintext key")
	}
}

func TestSetupRefusesBadSettings(t *testing.T) {
	env := map[string]string{"KEYGATE_DYNAMODB_ENDPOINT": "http://127.0.0.1:1", "KEYGATE_IDLE_ACTION": "delete"}
	_, err := rotator.Compose(context.Background(), compose.Env{Getenv: func(k string) string { return env[k] }, Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "KEYGATE_IDLE_ACTION") {
		t.Fatalf("a bad idle action: %v", err)
	}
}
