package store

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/schema"
)

const (
	idemPrefix = "IDEM#"
	idemSK     = "IDEM"

	idemPending = "pending"
	idemDone    = "done"
)

// Idempotency is the record of one Idempotency-Key: who holds it (Token,
// while the request runs), what request it belongs to (Digest, a hash of the
// request, never the request) and, once done, the response sealed by the
// caller under a key the table does not hold. The store never sees a
// plaintext response.
type Idempotency struct {
	Scope  string
	Key    string
	Digest []byte
	// Token identifies the request that claimed the record; only it may
	// complete the record.
	Token string
	// Done is true once the response is stored; until then the record is a
	// lease that runs until LeaseUntil.
	Done       bool
	LeaseUntil time.Time
	Status     int
	Sealed     []byte
	Expires    time.Time
}

type idemItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Digest []byte `dynamodbav:"digest"`
	Token  string `dynamodbav:"token"`
	State  string `dynamodbav:"state"`
	Lease  int64  `dynamodbav:"leaseUntil,omitempty"`
	Status int    `dynamodbav:"status,omitempty"`
	Sealed []byte `dynamodbav:"response,omitempty"`
	TTL    int64  `dynamodbav:"ttl"`
}

// IdempotencyPK is the partition key of the idempotency record of key in
// scope (the operation, such as "issue"), so that the same header value used
// for two operations never collides.
func IdempotencyPK(scope, key string) string { return idemPrefix + scope + "#" + key }

// ClaimIdempotency claims the idempotency record of (scope, key) for the
// request identified by token: it writes a pending record with a lease and a
// TTL, conditional on no live record existing. It returns nil when this
// request now holds the key, and the existing record otherwise (done, or
// pending under another request's lease) for the caller to replay or
// refuse. A record whose lease ran out without completing (its request
// died) or whose TTL passed (DynamoDB deletes expired items lazily) counts
// as absent and is taken over.
func (s *Store) ClaimIdempotency(ctx context.Context, scope, key string, digest []byte, token string, lease, ttl time.Duration) (*Idempotency, error) {
	now := s.now()
	it := idemItem{
		PK: IdempotencyPK(scope, key), SK: idemSK, Digest: digest, Token: token,
		State: idemPending, Lease: now.Add(lease).UnixMilli(), TTL: now.Add(ttl).Unix(),
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode idempotency record")
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: av,
		ConditionExpression: aws.String("attribute_not_exists(pk) OR (#s = :pending AND #l < :nowms) OR #t < :nows"),
		ExpressionAttributeNames: map[string]string{
			"#s": "state", "#l": "leaseUntil", "#t": schema.TTL,
		},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":pending": str(idemPending), ":nowms": num(now.UnixMilli()), ":nows": num(now.Unix()),
		},
		ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return nil, nil
	}
	var ccf *ddb.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, mapErr(err, "claim idempotency key")
	}
	if len(ccf.Item) == 0 {
		// Deleted between the check and the read: the caller may retry.
		return nil, fault.Errorf(fault.Conflict, "idempotency key changed concurrently")
	}
	var old idemItem
	if err := attributevalue.UnmarshalMap(ccf.Item, &old); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "decode idempotency record")
	}
	return &Idempotency{
		Scope: scope, Key: key, Digest: old.Digest, Token: old.Token,
		Done: old.State == idemDone, LeaseUntil: fromMS(old.Lease),
		Status: old.Status, Sealed: old.Sealed, Expires: time.Unix(old.TTL, 0).UTC(),
	}, nil
}

// IdempotencyDone completes a claimed record inside the transaction that
// makes the change, so that the change and the stored response commit
// together or not at all: a request whose lease was taken over cannot
// complete, and so cannot make its change twice.
type IdempotencyDone struct {
	Scope, Key, Token string
	Status            int
	// Sealed is the response, encrypted by the caller.
	Sealed []byte
}

// transactItem returns the conditional update that completes the record.
func (d *IdempotencyDone) transactItem(table string) ddb.TransactWriteItem {
	return ddb.TransactWriteItem{Update: &ddb.Update{
		TableName:           aws.String(table),
		Key:                 keyOf(IdempotencyPK(d.Scope, d.Key), idemSK),
		UpdateExpression:    aws.String("SET #s = :done, #st = :status, #r = :resp REMOVE #l"),
		ConditionExpression: aws.String("#tk = :token AND #s = :pending"),
		ExpressionAttributeNames: map[string]string{
			"#s": "state", "#st": "status", "#r": "response", "#l": "leaseUntil", "#tk": "token",
		},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":done": str(idemDone), ":pending": str(idemPending), ":status": num(int64(d.Status)),
			":resp": &ddb.AttributeValueMemberB{Value: d.Sealed}, ":token": str(d.Token),
		},
	}}
}

// ReleaseIdempotency deletes a pending record this request holds, after the
// change failed, so that a retry can run at once instead of waiting for the
// lease. A record held by another request is left alone.
func (s *Store) ReleaseIdempotency(ctx context.Context, scope, key, token string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &s.table,
		Key:                       keyOf(IdempotencyPK(scope, key), idemSK),
		ConditionExpression:       aws.String("#tk = :token AND #s = :pending"),
		ExpressionAttributeNames:  map[string]string{"#tk": "token", "#s": "state"},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":token": str(token), ":pending": str(idemPending)},
	})
	var ccf *ddb.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil
	}
	return mapErr(err, "release idempotency key")
}
