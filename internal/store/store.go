package store

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/schema"
)

// Store reads and writes keygate's table.
type Store struct {
	db     *dynamodb.Client
	table  string
	cursor cursorSigner
	now    func() time.Time
}

// Options configure a Store.
type Options struct {
	// CursorSecret signs list cursors so that a client cannot forge or alter
	// one. Every instance of a deployment must use the same secret.
	CursorSecret []byte
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
}

// New returns a store for the named table.
func New(db *dynamodb.Client, table string, opts Options) *Store {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, table: table, cursor: cursorSigner{secret: opts.CursorSecret}, now: now}
}

// Table returns the table name, for logs.
func (s *Store) Table() string { return s.table }

// Client returns the DynamoDB client, for packages that add their own item
// kinds to the table (audit, idempotency, signing keys) through this package.
func (s *Store) Client() *dynamodb.Client { return s.db }

// LocalClient returns a client for DynamoDB Local at endpoint (for example
// http://127.0.0.1:8000), with the fixed dummy credentials it accepts. Tests
// and the local stack use it; the functions use the default AWS config.
func LocalClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("local", "local", ""),
		RetryMaxAttempts: 1,
	})
}

// CreateTableInput returns the CreateTable request for schema.Keygate: the
// same table the CDK stack declares.
func CreateTableInput(name string) *dynamodb.CreateTableInput {
	t := schema.Keygate
	attrs := map[string]bool{t.PartitionKey: true, t.SortKey: true}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: ddb.BillingModePayPerRequest,
		KeySchema: []ddb.KeySchemaElement{
			{AttributeName: aws.String(t.PartitionKey), KeyType: ddb.KeyTypeHash},
			{AttributeName: aws.String(t.SortKey), KeyType: ddb.KeyTypeRange},
		},
		StreamSpecification: streamSpec(),
	}
	for _, ix := range t.Indexes {
		attrs[ix.PartitionKey], attrs[ix.SortKey] = true, true
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddb.GlobalSecondaryIndex{
			IndexName: aws.String(ix.Name),
			KeySchema: []ddb.KeySchemaElement{
				{AttributeName: aws.String(ix.PartitionKey), KeyType: ddb.KeyTypeHash},
				{AttributeName: aws.String(ix.SortKey), KeyType: ddb.KeyTypeRange},
			},
			Projection: projection(ix),
		})
	}
	for _, a := range []string{t.PartitionKey, t.SortKey, schema.GSI1PK, schema.GSI1SK, schema.GSI2PK, schema.GSI2SK} {
		if attrs[a] {
			in.AttributeDefinitions = append(in.AttributeDefinitions, ddb.AttributeDefinition{
				AttributeName: aws.String(a), AttributeType: ddb.ScalarAttributeTypeS,
			})
			delete(attrs, a)
		}
	}
	return in
}

// projection is the index's projection: keys only, or keys and Include.
func projection(ix schema.Index) *ddb.Projection {
	if len(ix.Include) == 0 {
		return &ddb.Projection{ProjectionType: ddb.ProjectionTypeKeysOnly}
	}
	return &ddb.Projection{ProjectionType: ddb.ProjectionTypeInclude, NonKeyAttributes: ix.Include}
}

// streamSpec is the table's stream, as schema.Keygate declares it.
func streamSpec() *ddb.StreamSpecification {
	return &ddb.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddb.StreamViewType(schema.Keygate.Stream)}
}

// EnsureTable creates the table and enables TTL if it does not exist yet, and
// waits until it is active; a table made before it had a stream gets its
// stream. The local stack and tests call it; in AWS the CDK stack owns the
// table.
func EnsureTable(ctx context.Context, db *dynamodb.Client, name string) error {
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err == nil {
		if s := desc.Table.StreamSpecification; s != nil && aws.ToBool(s.StreamEnabled) {
			return nil
		}
		_, err = db.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), StreamSpecification: streamSpec()})
		return mapErr(err, "enable the table's stream")
	}
	var nf *ddb.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return mapErr(err, "describe table")
	}
	if _, err := db.CreateTable(ctx, CreateTableInput(name)); err != nil {
		var inUse *ddb.ResourceInUseException
		if !errors.As(err, &inUse) {
			return mapErr(err, "create table")
		}
	}
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		return fault.Wrap(fault.Unavailable, err, "table %s did not become active", name)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &ddb.TimeToLiveSpecification{
			AttributeName: aws.String(schema.Keygate.TTLAttribute), Enabled: aws.Bool(true),
		},
	})
	if err != nil && !isTTLAlreadyEnabled(err) {
		return mapErr(err, "enable TTL")
	}
	return nil
}

func isTTLAlreadyEnabled(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ValidationException"
}

// mapErr turns an SDK error into a fault error, so callers branch on codes
// and never on strings. Conditional failures are mapped by the callers, who
// know what the condition meant.
func mapErr(err error, op string) error {
	if err == nil {
		return nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	var (
		nf  *ddb.ResourceNotFoundException
		ccf *ddb.ConditionalCheckFailedException
		tce *ddb.TransactionCanceledException
		ae  smithy.APIError
	)
	switch {
	case errors.As(err, &ccf):
		return fault.Wrap(fault.Conflict, err, "%s: condition failed", op)
	case errors.As(err, &tce):
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return fault.Wrap(fault.Conflict, err, "%s: condition failed", op)
			}
		}
		return fault.Wrap(fault.Unavailable, err, "%s: transaction cancelled", op)
	case isThrottle(err):
		return fault.Wrap(fault.Throttled, err, "%s: throttled by DynamoDB", op)
	case errors.As(err, &nf):
		return fault.Wrap(fault.Unavailable, err, "%s: table not found", op)
	case errors.As(err, &ae) && ae.ErrorCode() == "TransactionConflictException":
		return fault.Wrap(fault.Throttled, err, "%s: throttled by DynamoDB", op)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fault.Wrap(fault.Unavailable, err, "%s: timed out", op)
	}
	return fault.Wrap(fault.Unavailable, err, "%s: DynamoDB request failed", op)
}
