package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/rotator"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/lambdatest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// The composition root wires a handler that serves both kinds of event the
// rotator receives, against DynamoDB Local; the fixtures' full replay is in
// internal/rotator.
func TestSetupServesScheduleAndRotate(t *testing.T) {
	f := lambdatest.Compose(t, rotator.Compose, nil)
	plain := f.Key(t, "key_0000000000000000000000rest", nil)
	events := lambdatest.Events(t, "rotator")
	var rep struct{ Complete bool }
	if out := f.Invoke(t, events["scheduled-eventbridge"]); json.Unmarshal(out, &rep) != nil || !rep.Complete {
		t.Fatalf("scheduled run: %s", out)
	}
	resp := lambdatest.DecodeResponse(t, events["rest-rotate"], f.Invoke(t, events["rest-rotate"]))
	if resp.StatusCode != 201 || !strings.Contains(resp.Body, `"previousKeyId":"key_0000000000000000000000rest"`) {
		t.Fatalf("rotate: %d %s", resp.StatusCode, resp.Body)
	}
	if strings.Contains(f.Logs.String(), plain) {
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
