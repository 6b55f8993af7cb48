package lifecycle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keygate/keygate/internal/lifecycle"
)

// fakeEventBridge answers PutEvents through a function field.
type fakeEventBridge struct {
	putEvents func(in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error)
}

func (f *fakeEventBridge) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	return f.putEvents(in)
}

var ev = lifecycle.Event{
	Type: lifecycle.KeyCreated, KeyID: "key_x", OwnerID: "acme", Actor: "local",
	Time: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Detail: map[string]any{"name": "n", "keyId": "spoofed"},
}

func TestEventBridgeEntry(t *testing.T) {
	var got *eventbridge.PutEventsInput
	p := &lifecycle.EventBridge{Bus: "keygate-bus", Client: &fakeEventBridge{putEvents: func(in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		got = in
		return &eventbridge.PutEventsOutput{}, nil
	}}}
	if err := p.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	e := got.Entries[0]
	var d map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(e.Detail)), &d); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(e.EventBusName) != "keygate-bus" || aws.ToString(e.Source) != "keygate" || aws.ToString(e.DetailType) != "key.created" ||
		d["keyId"] != "key_x" || d["ownerId"] != "acme" || d["name"] != "n" || d["actor"] != "local" {
		t.Fatalf("entry %+v detail %v", e, d)
	}
}

func TestEventBridgeFailuresAreErrors(t *testing.T) {
	for _, f := range []func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error){
		func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
			return nil, errors.New("network")
		},
		func(*eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
			return &eventbridge.PutEventsOutput{FailedEntryCount: 1, Entries: []ebtypes.PutEventsResultEntry{{ErrorCode: aws.String("InternalFailure")}}}, nil
		},
	} {
		p := &lifecycle.EventBridge{Bus: "b", Client: &fakeEventBridge{putEvents: f}}
		if err := p.Publish(context.Background(), ev); err == nil {
			t.Error("a failed publish returned nil")
		}
	}
}

func TestLogPublisher(t *testing.T) {
	var b bytes.Buffer
	p := &lifecycle.Log{Logger: slog.New(slog.NewJSONHandler(&b, nil))}
	if err := p.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"event":"key.created"`) || !strings.Contains(b.String(), `"keyId":"key_x"`) {
		t.Fatalf("log line %s", b.String())
	}
}
