// Package lifecycle defines keygate's lifecycle events (a key created,
// updated, rotated, revoked...) and sends them to EventBridge, or to the log
// when no bus is configured. An event describes a key by its id and
// settings only: it never carries a secret, so it is safe for any rule
// target to read.
package lifecycle

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keygate/keygate/internal/fault"
)

// Source is the EventBridge source of every keygate event, for rules to
// match on.
const Source = "keygate"

// The event types (EventBridge detail-type). They are a contract with rule
// authors; never rename one.
const (
	KeyCreated = "key.created"
	KeyUpdated = "key.updated"
	KeyRevoked = "key.revoked"
)

// Event is one lifecycle event.
type Event struct {
	// Type is the detail-type, such as KeyCreated.
	Type    string
	KeyID   string
	OwnerID string
	Time    time.Time
	// Actor is who caused the change (an IAM ARN, "local", or the rotator).
	Actor string
	// Detail holds more of the key's settings (wire names), never a secret.
	Detail map[string]any
}

// detail is the JSON EventBridge carries as the event's detail.
func (e Event) detail() ([]byte, error) {
	d := map[string]any{"keyId": e.KeyID, "ownerId": e.OwnerID, "actor": e.Actor, "time": e.Time.UTC().Format(time.RFC3339Nano)}
	for k, v := range e.Detail {
		if _, taken := d[k]; !taken {
			d[k] = v
		}
	}
	return json.Marshal(d)
}

// PutEventsAPI is the part of the EventBridge client EventBridge uses, so
// that tests can hand it a fake.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge publishes events to one bus.
type EventBridge struct {
	Client PutEventsAPI
	Bus    string
}

// Publish sends one event. A partial failure (FailedEntryCount) is an error
// too: EventBridge reports those in the response, not as an error.
func (p *EventBridge) Publish(ctx context.Context, e Event) error {
	d, err := e.detail()
	if err != nil {
		return fault.Wrap(fault.Internal, err, "encode event")
	}
	out, err := p.Client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(p.Bus), Source: aws.String(Source), DetailType: aws.String(e.Type),
		Detail: aws.String(string(d)), Time: aws.Time(e.Time), Resources: []string{},
	}}})
	if err != nil {
		return fault.Wrap(fault.Unavailable, err, "publish %s", e.Type)
	}
	if out.FailedEntryCount > 0 {
		code := ""
		if len(out.Entries) > 0 {
			code = aws.ToString(out.Entries[0].ErrorCode)
		}
		return fault.Errorf(fault.Unavailable, "publish %s: EventBridge refused the entry (%s)", e.Type, code)
	}
	return nil
}

// PublisherFunc is a function that publishes events: Publish calls it. It
// makes any function a publisher, as http.HandlerFunc makes one a handler
// (tests record events with it).
type PublisherFunc func(ctx context.Context, e Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, e Event) error { return f(ctx, e) }

// Log "publishes" events as log lines, for deployments and the local stack
// that have no bus configured.
type Log struct {
	Logger *slog.Logger
}

// Publish logs the event at info level.
func (p *Log) Publish(ctx context.Context, e Event) error {
	d, err := e.detail()
	if err != nil {
		return fault.Wrap(fault.Internal, err, "encode event")
	}
	p.Logger.InfoContext(ctx, "lifecycle event", "event", e.Type, "keyId", e.KeyID, "detail", json.RawMessage(d))
	return nil
}
