// Package usage is the usage consumer: the function that reads the
// table's DynamoDB stream and keeps usage history (per key, per owner, per
// UTC day) outside the hot items that verifications write. Lambda runs it
// with an event source mapping on the stream; the local stack runs the same
// handler, fed by internal/localstream.
//
// # Why a stream
//
// A verification writes one small item, the key's hot item, which holds
// only the current day's usage counters (requests, credits, and useq, the
// number of usage changes made to the item). Each change of a hot item
// reaches the stream with its old and new images; what a change did to a
// day is the difference of the day's counters between the two. The
// consumer adds those differences to usage items (internal/store,
// RecordUsage): each key's day exactly once, by useq, however often Lambda
// delivers a batch again (retries, bisection); and the owner's day is
// marked changed, so the admin API sums it afresh from the keys' days.
//
// # Failure
//
// A record the consumer cannot read (not a hot item's shape, a counter of
// no day) is logged and skipped: it cannot become readable by retrying, and
// a batch that failed on it would stall the shard. Any DynamoDB error fails
// the batch: Lambda retries it (bisecting it) until it succeeds or its
// records are 23 hours old, an hour before the stream (24 hours) would drop
// them; only then does it discard them, into the on-failure queue. Nothing
// is lost while the consumer catches up within those 23 hours, and the hot
// items keep counting meanwhile. docs/usage.md says what an operator sees
// and does.
package usage

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/schema"
	"github.com/keygate/keygate/internal/store"
)

// Recorder is the part of the store the consumer needs.
type Recorder interface {
	RecordUsage(ctx context.Context, recs []store.UsageRecord, retention time.Duration) error
}

// Metrics receives what each batch did.
type Metrics interface {
	UsageBatch(at time.Time, records, changes, skipped int)
}

// Options configure a Handler.
type Options struct {
	// Retention is how long usage items are kept after their day ends
	// (default config.UsageRetention's: 400 days, 13 months and a few days,
	// so a month is still there on the same day of the next year's month).
	Retention time.Duration
	Logger    *slog.Logger
	// Metrics, when set, receives a line per batch.
	Metrics Metrics
	// Now is the clock of the metric lines; nil means time.Now.
	Now func() time.Time
}

// Handler consumes batches of stream records.
type Handler struct {
	st Recorder
	o  Options
}

// New returns a handler that records into st.
func New(st Recorder, o Options) *Handler {
	if o.Retention <= 0 {
		o.Retention = config.UsageRetention.Default()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{st: st, o: o}
}

// Wanted reports whether a stream record is of a key's hot item, the only
// records the consumer reads: the local stack's poller filters with it,
// and the stack's event source mapping filters on the same sort key
// (store.HotSK), so that no other change invokes the function.
func Wanted(r events.DynamoDBEventRecord) bool {
	sk, ok := r.Change.Keys[schema.SK]
	return ok && sk.DataType() == events.DataTypeString && sk.String() == store.HotSK
}

// Handle records one batch. It returns an error only when the batch must
// be delivered again (a DynamoDB error); RecordUsage makes a delivery of
// records already applied change nothing.
func (h *Handler) Handle(ctx context.Context, ev events.DynamoDBEvent) error {
	recs := make([]store.UsageRecord, 0, len(ev.Records))
	skipped := 0
	for _, r := range ev.Records {
		rec, ok, err := store.UsageChange(attrs(r.Change.Keys), attrs(r.Change.OldImage), attrs(r.Change.NewImage))
		if err != nil {
			skipped++
			h.o.Logger.ErrorContext(ctx, "usage: a stream record that cannot be read was skipped",
				"eventID", r.EventID, "sequenceNumber", r.Change.SequenceNumber, "error", err.Error())
			continue
		}
		if ok {
			recs = append(recs, rec)
		}
	}
	if len(recs) > 0 {
		if err := h.st.RecordUsage(ctx, recs, h.o.Retention); err != nil {
			h.o.Logger.ErrorContext(ctx, "usage: batch not recorded; Lambda delivers it again",
				"records", len(ev.Records), "error", err.Error())
			return err
		}
	}
	if h.o.Metrics != nil {
		h.o.Metrics.UsageBatch(h.o.Now(), len(ev.Records), len(recs), skipped)
	}
	return nil
}

// attrs converts a stream image as aws-lambda-go decodes it into the SDK's
// attribute values, which the store reads.
func attrs(m map[string]events.DynamoDBAttributeValue) map[string]ddb.AttributeValue {
	if m == nil {
		return nil
	}
	out := make(map[string]ddb.AttributeValue, len(m))
	for k, v := range m {
		out[k] = attr(v)
	}
	return out
}

func attr(v events.DynamoDBAttributeValue) ddb.AttributeValue {
	switch v.DataType() {
	case events.DataTypeString:
		return &ddb.AttributeValueMemberS{Value: v.String()}
	case events.DataTypeNumber:
		return &ddb.AttributeValueMemberN{Value: v.Number()}
	case events.DataTypeBinary:
		return &ddb.AttributeValueMemberB{Value: v.Binary()}
	case events.DataTypeBoolean:
		return &ddb.AttributeValueMemberBOOL{Value: v.Boolean()}
	case events.DataTypeStringSet:
		return &ddb.AttributeValueMemberSS{Value: v.StringSet()}
	case events.DataTypeNumberSet:
		return &ddb.AttributeValueMemberNS{Value: v.NumberSet()}
	case events.DataTypeBinarySet:
		return &ddb.AttributeValueMemberBS{Value: v.BinarySet()}
	case events.DataTypeList:
		l := v.List()
		out := make([]ddb.AttributeValue, len(l))
		for i, e := range l {
			out[i] = attr(e)
		}
		return &ddb.AttributeValueMemberL{Value: out}
	case events.DataTypeMap:
		return &ddb.AttributeValueMemberM{Value: attrs(v.Map())}
	}
	return &ddb.AttributeValueMemberNULL{Value: true}
}
