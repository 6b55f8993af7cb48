// Package localstream reads the stream of a table in DynamoDB Local (which
// has DynamoDB Streams) and hands its records, a batch at a time, to a
// handler, as Lambda's event source mapping does for a deployed function:
// the same events.DynamoDBEvent, shards in lineage order (a parent shard to
// its end before its children), the records of a shard in order, a record
// only once the handler took the one before it, and a batch the handler
// failed delivered again, whole, until it succeeds. The local stack runs
// the usage consumer with it, so usage history works under `make dev`
// exactly as deployed; tests use it to drive the consumer from the real
// stream.
//
// It starts each shard at its trim horizon, so a restart delivers again
// what the stream still holds: the handler must be idempotent, as it must
// under Lambda too.
package localstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	st "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Handler takes one batch; an error delivers the batch again.
type Handler func(ctx context.Context, ev events.DynamoDBEvent) error

// Options configure a Poller. Zero values take the defaults noted.
type Options struct {
	// BatchSize is the most records in one batch (default 100).
	BatchSize int32
	// Interval is how long the poller waits when a pass found nothing new
	// (default 500 ms), and before delivering a failed batch again.
	Interval time.Duration
	// Filter, when set, keeps only the records it returns true for, as an
	// event source mapping's filter criteria do (filtered records are
	// passed over, never delivered).
	Filter func(events.DynamoDBEventRecord) bool
	// Logger receives failed batches.
	Logger *slog.Logger
}

// Poller follows one table's stream.
type Poller struct {
	streams *dynamodbstreams.Client
	arn     string
	handle  Handler
	o       Options

	mu     sync.Mutex
	shards map[string]*shard
	order  []string
}

type shard struct {
	id, parent string
	iterator   *string
	started    bool
	done       bool
}

// Client returns a DynamoDB Streams client for DynamoDB Local at endpoint,
// with the dummy credentials it accepts.
func Client(endpoint string) *dynamodbstreams.Client {
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
		APIOptions:   []func(*middleware.Stack) error{fixEmptyMaps},
	})
}

// emptyValue is an attribute value with no type, as DynamoDB Local writes
// an empty map in a stream image ("rl":{} where DynamoDB writes
// "rl":{"M":{}}); the SDK cannot read it and misreads the attribute as a
// neighbour's value. An attribute value always has exactly one type, so
// "name":{} is never anything else. (The map's content, "M":{}, is left
// alone: keygate names no attribute M.)
var emptyValue = regexp.MustCompile(`("(?:[^"\\]|\\.)*"):\{\}`)

// fixEmptyMaps rewrites DynamoDB Local's empty maps in GetRecords
// responses into what DynamoDB sends, before the SDK reads them.
func fixEmptyMaps(stack *middleware.Stack) error {
	return stack.Deserialize.Insert(middleware.DeserializeMiddlewareFunc("keygateFixEmptyMaps",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			resp, ok := out.RawResponse.(*smithyhttp.Response)
			if err != nil || !ok || resp.Body == nil || awsmiddleware.GetOperationName(ctx) != "GetRecords" {
				return out, md, err
			}
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr != nil {
				return out, md, rerr
			}
			b = emptyValue.ReplaceAllFunc(b, func(m []byte) []byte {
				if bytes.HasPrefix(m, []byte(`"M":`)) {
					return m
				}
				return append(m[:len(m)-2:len(m)-2], `{"M":{}}`...)
			})
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			return out, md, err
		}), "OperationDeserializer", middleware.After)
}

// StreamARN returns the ARN of the table's stream, which it must have.
func StreamARN(ctx context.Context, db *dynamodb.Client, table string) (string, error) {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("describe table %s: %w", table, err)
	}
	if out.Table.LatestStreamArn == nil {
		return "", fmt.Errorf("table %s has no stream", table)
	}
	return *out.Table.LatestStreamArn, nil
}

// New returns a poller of the stream arn that hands batches to handle.
func New(streams *dynamodbstreams.Client, arn string, handle Handler, o Options) *Poller {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Poller{streams: streams, arn: arn, handle: handle, o: o, shards: map[string]*shard{}}
}

// Run follows the stream until ctx ends. A failed batch is logged and
// delivered again after Interval.
func (p *Poller) Run(ctx context.Context) error {
	for {
		n, err := p.Pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.o.Logger.ErrorContext(ctx, "stream: batch failed; delivering it again", "error", err.Error())
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(p.o.Interval):
			}
		}
	}
}

// Drain delivers everything the stream holds now, then returns; for
// tests, which call it after the writes they want consumed. It returns the
// first error of a batch (which it delivers again at the next call).
func (p *Poller) Drain(ctx context.Context) error {
	for {
		n, err := p.Pass(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

// Pass discovers new shards and reads one batch from each shard whose
// parent is done, handing each non-empty batch to the handler. It returns
// how many records it delivered, and the first error, after which that
// shard stays where it was.
func (p *Poller) Pass(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.discover(ctx); err != nil {
		return 0, err
	}
	delivered := 0
	for _, id := range p.order {
		sh := p.shards[id]
		if sh.done || !p.ready(sh) {
			continue
		}
		n, err := p.next(ctx, sh)
		delivered += n
		if err != nil {
			return delivered, err
		}
	}
	return delivered, nil
}

// ready reports whether a shard's parent is done (or gone from the stream).
func (p *Poller) ready(sh *shard) bool {
	parent, ok := p.shards[sh.parent]
	return sh.parent == "" || !ok || parent.done
}

func (p *Poller) discover(ctx context.Context) error {
	var start *string
	for {
		out, err := p.streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: &p.arn, ExclusiveStartShardId: start})
		if err != nil {
			return fmt.Errorf("describe stream: %w", err)
		}
		for _, s := range out.StreamDescription.Shards {
			id := aws.ToString(s.ShardId)
			if _, ok := p.shards[id]; !ok {
				p.shards[id] = &shard{id: id, parent: aws.ToString(s.ParentShardId)}
				p.order = append(p.order, id)
			}
		}
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return nil
		}
	}
}

// next reads the shard's next batch and delivers it; the shard moves on
// only when the handler took it.
func (p *Poller) next(ctx context.Context, sh *shard) (int, error) {
	if !sh.started {
		out, err := p.streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: &p.arn, ShardId: &sh.id, ShardIteratorType: st.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return 0, fmt.Errorf("shard iterator of %s: %w", sh.id, err)
		}
		sh.iterator, sh.started = out.ShardIterator, true
	}
	if sh.iterator == nil {
		sh.done = true
		return 0, nil
	}
	out, err := p.streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: sh.iterator, Limit: aws.Int32(p.o.BatchSize)})
	var expired *st.ExpiredIteratorException
	if errors.As(err, &expired) {
		sh.started = false // start again at the trim horizon: the handler is idempotent
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("records of %s: %w", sh.id, err)
	}
	ev := events.DynamoDBEvent{}
	for _, r := range out.Records {
		rec := record(p.arn, r)
		if p.o.Filter == nil || p.o.Filter(rec) {
			ev.Records = append(ev.Records, rec)
		}
	}
	if len(ev.Records) > 0 {
		if err := p.handle(ctx, ev); err != nil {
			return 0, err
		}
	}
	sh.iterator = out.NextShardIterator
	if sh.iterator == nil {
		sh.done = true
	}
	return len(out.Records), nil
}

// record converts a stream record as the Streams API returns it into the
// event record Lambda delivers.
func record(arn string, r st.Record) events.DynamoDBEventRecord {
	d := r.Dynamodb
	out := events.DynamoDBEventRecord{
		AWSRegion:      aws.ToString(r.AwsRegion),
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    aws.ToString(r.EventSource),
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: arn,
	}
	if d == nil {
		return out
	}
	out.Change = events.DynamoDBStreamRecord{
		Keys: image(d.Keys), NewImage: image(d.NewImage), OldImage: image(d.OldImage),
		SequenceNumber: aws.ToString(d.SequenceNumber), SizeBytes: aws.ToInt64(d.SizeBytes),
		StreamViewType: string(d.StreamViewType),
	}
	if d.ApproximateCreationDateTime != nil {
		out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
	}
	return out
}

func image(m map[string]st.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if m == nil {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	for k, v := range m {
		out[k] = value(v)
	}
	return out
}

func value(v st.AttributeValue) events.DynamoDBAttributeValue {
	switch v := v.(type) {
	case *st.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value)
	case *st.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value)
	case *st.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value)
	case *st.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value)
	case *st.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value)
	case *st.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value)
	case *st.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value)
	case *st.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			l[i] = value(e)
		}
		return events.NewListAttribute(l)
	case *st.AttributeValueMemberM:
		return events.NewMapAttribute(image(v.Value))
	}
	return events.NewNullAttribute()
}
