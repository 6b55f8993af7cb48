package store

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/schema"
)

// Rotation replaces a key by a new one (see Rotate).
type Rotation struct {
	// Old is the key being rotated, as read (its Version is checked).
	Old *key.Key
	// New is its replacement, built with Old.Successor by the caller, who
	// generated its secret: the store never sees a plaintext.
	New *key.Key
	// Grace is how long Old keeps working; 0 stops it at once. The caller
	// enforces the configured maximum.
	Grace time.Duration
	// At is the instant of the rotation, so that the caller's response and
	// audit records say exactly what is stored; zero means the store's clock.
	At time.Time
	// Audit holds the audit records of the rotation (of the old key and of
	// the new one), written in the same transaction.
	Audit []AuditRecord
	// Done, when set, completes the idempotency record the request claimed,
	// in the same transaction: a retried rotation cannot rotate twice.
	Done *IdempotencyDone
}

// Rotate creates r.New and retires r.Old in ONE transaction: the new key's
// items (as Create writes them, with Old's quota counters so that a rotation
// never refills credits) and an update of the old key's items that links it
// to the new one (nextKeyId) and sets its expiresAt to now+Grace, unless it
// already expires sooner. The new key exists before the old one's expiry is set,
// since both happen at once, so at no instant does neither key work.
//
// The update is conditional on the old key being unchanged since it was read
// (its version), enabled, not revoked, not expired and not rotated already
// (attribute_not_exists(nextKeyId)): of two concurrent rotations exactly one
// commits and the other gets a fault.Conflict saying why. Rotate returns the
// old key as it is after the rotation.
func (s *Store) Rotate(ctx context.Context, r Rotation) (*key.Key, error) {
	now := r.At
	if now.IsZero() {
		now = s.now()
	}
	old, nk := r.Old, r.New
	nk.Version, nk.PreviousKeyID = 1, old.ID
	items, err := s.createItems(nk)
	if err != nil {
		return nil, err
	}
	cur, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(old.Hash), keySK), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("q"),
	})
	if err != nil {
		return nil, mapErr(err, "read quota counters")
	}
	if q, ok := cur.Item[attrQ]; ok {
		items[0].Put.Item[attrQ] = q // the hot item's
	}

	expires := now.Add(r.Grace)
	if !old.ExpiresAt.IsZero() && old.ExpiresAt.Before(expires) {
		expires = old.ExpiresAt
	}
	after := *old
	after.NextKeyID, after.ExpiresAt, after.Version, after.UpdatedAt = nk.ID, expires, old.Version+1, now
	due := &recordItem{keySettings: keySettings{ID: old.ID}}
	dueNow(due, now) // the scheduled run marks it expired when the grace ends
	kc := newKeyChange(old.ID, old.Hash)
	kc.rec.put("nextKeyId", nk.ID)
	kc.both("expiresAt", ms(expires))
	kc.rec.bump()
	kc.rec.put("updatedAt", ms(now))
	kc.rec.put(schema.GSI2PK, due.GSI2PK)
	kc.rec.put(schema.GSI2SK, due.GSI2SK)
	kc.rec.when("attribute_exists(#pk) AND #version = ? AND attribute_not_exists(#revokedAt) "+
		"AND attribute_not_exists(#nextKeyId) AND #enabled = ? AND (attribute_not_exists(#expiresAt) OR #expiresAt > ?)",
		num(old.Version), &ddb.AttributeValueMemberBOOL{Value: true}, num(ms(now)))
	kc.hot.when("attribute_exists(#pk)")
	upd, err := kc.items(s.table)
	if err != nil {
		return nil, err
	}
	oldAt := len(items)
	items = append(items, upd...)
	for i := range r.Audit {
		av, err := r.Audit[i].item()
		if err != nil {
			return nil, err
		}
		items = append(items, ddb.TransactWriteItem{Put: &ddb.Put{TableName: &s.table, Item: av}})
	}
	if r.Done != nil {
		items = append(items, r.Done.transactItem(s.table))
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		return nil, whyNotRotated(err, oldAt, r.Done != nil, old, now)
	}
	return &after, nil
}

// whyNotRotated explains a cancelled rotation from the old key's item as the
// failed condition saw it.
func whyNotRotated(err error, oldAt int, claimed bool, old *key.Key, now time.Time) error {
	var tce *ddb.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) <= oldAt {
		return mapErr(err, "rotate key")
	}
	r := tce.CancellationReasons[oldAt]
	switch aws.ToString(r.Code) {
	case "ConditionalCheckFailed":
	case "TransactionConflict":
		return fault.Errorf(fault.Conflict, "key %s is being changed by another request; retry", old.ID)
	default:
		if claimed && aws.ToString(tce.CancellationReasons[len(tce.CancellationReasons)-1].Code) == "ConditionalCheckFailed" {
			return fault.Errorf(fault.Conflict, "the Idempotency-Key lease ran out before the rotation committed; retry")
		}
		for _, o := range tce.CancellationReasons[:oldAt] {
			if aws.ToString(o.Code) == "ConditionalCheckFailed" {
				return fault.Errorf(fault.Conflict, "the new key's id or secret is already taken; retry")
			}
		}
		return mapErr(err, "rotate key")
	}
	if len(r.Item) == 0 {
		return fault.Errorf(fault.NotFound, "key not found")
	}
	cur, _, derr := decodeRecordItem(r.Item)
	if derr != nil {
		return derr
	}
	switch {
	case cur.NextKeyID != "":
		return fault.Errorf(fault.Conflict, "key %s was already rotated: its replacement is %s", cur.ID, cur.NextKeyID)
	case cur.StatusAt(now) == key.Revoked:
		return fault.Errorf(fault.Conflict, "key %s is revoked and cannot be rotated", cur.ID)
	case cur.StatusAt(now) == key.Disabled:
		return fault.Errorf(fault.Conflict, "key %s is disabled and cannot be rotated; enable it first", cur.ID)
	case cur.StatusAt(now) == key.Expired:
		return fault.Errorf(fault.Conflict, "key %s has expired and cannot be rotated", cur.ID)
	}
	return fault.Errorf(fault.Conflict, "key %s changed while it was being rotated (version %d, now %d); retry", cur.ID, old.Version, cur.Version)
}
