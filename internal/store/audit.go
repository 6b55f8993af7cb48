package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

const auditPrefix = "AUDIT#"

// AuditRecord is one change to a key: who made it, what it was and when.
// Changes holds the settings that changed (wire names to new values) and
// must never hold a secret; the callers build it from key settings only.
type AuditRecord struct {
	KeyID   string
	At      time.Time
	Actor   string
	Action  string
	Changes map[string]any
	// Version is the key's version after the change. It orders records
	// written in the same millisecond and makes each record's sort key
	// unique: every change makes a new version.
	Version int64
}

type auditItem struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	KeyID   string `dynamodbav:"keyId"`
	At      int64  `dynamodbav:"at"`
	Actor   string `dynamodbav:"actor"`
	Action  string `dynamodbav:"action"`
	Changes string `dynamodbav:"changes,omitempty"`
	Version int64  `dynamodbav:"version"`
}

func (r *AuditRecord) item() (map[string]ddb.AttributeValue, error) {
	it := auditItem{
		PK: auditPrefix + r.KeyID, SK: fmt.Sprintf("%015d#%012d", r.At.UnixMilli(), r.Version),
		KeyID: r.KeyID, At: r.At.UnixMilli(), Actor: r.Actor, Action: r.Action, Version: r.Version,
	}
	if len(r.Changes) > 0 {
		b, err := json.Marshal(r.Changes)
		if err != nil {
			return nil, fault.Wrap(fault.Internal, err, "encode audit changes")
		}
		it.Changes = string(b)
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode audit record")
	}
	return av, nil
}

// PutAudit writes an audit record, conditional on no record with the same
// key, time and version (a retried write never doubles a record). Audit records carry no ttl: they outlive
// the key they describe (a revoked key is deleted after its retention, its
// trail is not).
func (s *Store) PutAudit(ctx context.Context, r AuditRecord) error {
	av, err := r.item()
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av,
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	return mapErr(err, "write audit record")
}

// AuditPage is one page of a key's audit trail, oldest first.
type AuditPage struct {
	Records []AuditRecord
	// Next continues the trail; empty on the last page.
	Next string
}

// ListAudit returns a key's audit trail oldest first, limit records at a
// time (1 to 100, default 25), continuing from cursor (a Next of the same
// key's trail; signed like list cursors).
func (s *Store) ListAudit(ctx context.Context, keyID string, limit int, cursor string) (AuditPage, error) {
	if limit == 0 {
		limit = 25
	}
	if limit < 1 || limit > MaxPageSize {
		return AuditPage{}, fault.Fieldf("limit", "must be from 1 to %d", MaxPageSize)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":pk": str(auditPrefix + keyID)},
		Limit:                     aws.Int32(int32(limit)),
		ConsistentRead:            aws.Bool(true),
	}
	if cursor != "" {
		start, err := s.cursor.open(cursor, auditPrefix+keyID)
		if err != nil {
			return AuditPage{}, err
		}
		in.ExclusiveStartKey = start
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return AuditPage{}, mapErr(err, "list audit records")
	}
	var p AuditPage
	for _, av := range out.Items {
		var it auditItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return AuditPage{}, fault.Wrap(fault.Internal, err, "decode audit record")
		}
		r := AuditRecord{KeyID: it.KeyID, At: fromMS(it.At), Actor: it.Actor, Action: it.Action, Version: it.Version}
		if it.Changes != "" {
			if err := json.Unmarshal([]byte(it.Changes), &r.Changes); err != nil {
				return AuditPage{}, fault.Wrap(fault.Internal, err, "decode audit changes")
			}
		}
		p.Records = append(p.Records, r)
	}
	if len(out.LastEvaluatedKey) > 0 {
		if p.Next, err = s.cursor.seal(out.LastEvaluatedKey, auditPrefix+keyID); err != nil {
			return AuditPage{}, err
		}
	}
	return p, nil
}

// CreateAudited creates a key (as Create does) together with its audit
// record and, when done is set, the completion of the idempotency record the
// request claimed: all in one transaction, so a key never exists without its
// audit record, and an idempotent issue cannot create two keys. A lost
// idempotency lease, like a duplicate id, is a fault.Conflict.
func (s *Store) CreateAudited(ctx context.Context, k *key.Key, rec AuditRecord, done *IdempotencyDone) error {
	k.Version, rec.Version = 1, 1
	items, err := s.createItems(k)
	if err != nil {
		return err
	}
	av, err := rec.item()
	if err != nil {
		return err
	}
	items = append(items, ddb.TransactWriteItem{Put: &ddb.Put{TableName: &s.table, Item: av}})
	if done != nil {
		items = append(items, done.transactItem(s.table))
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return mapErr(err, "create key")
}

// AuditBy returns an audit builder for Revoke that records only the actor
// and the action, for callers with nothing more to say (tools and tests).
func AuditBy(actor string) func(*key.Key) AuditRecord {
	return func(*key.Key) AuditRecord { return AuditRecord{Actor: actor, Action: "key.revoke"} }
}
