package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/schema"
)

func str(s string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: s} }
func num(n int64) ddb.AttributeValue {
	return &ddb.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func keyOf(pk, sk string) map[string]ddb.AttributeValue {
	return map[string]ddb.AttributeValue{schema.PK: str(pk), schema.SK: str(sk)}
}

// Create stores a new key (version 1): its record item and its hot item,
// in one transaction. Neither may exist already: a create never
// overwrites, and a duplicate id or hash is a fault.Conflict.
func (s *Store) Create(ctx context.Context, k *key.Key) error {
	k.Version = 1
	items, err := s.createItems(k)
	if err != nil {
		return err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return mapErr(err, "create key")
}

// createItems returns the transaction items that create k: its record item
// and its hot item, each conditional on not existing. Rotation adds its own
// items to the same transaction. The hot item is the first item.
func (s *Store) createItems(k *key.Key) ([]ddb.TransactWriteItem, error) {
	rec, err := toRecord(k)
	if err != nil {
		return nil, err
	}
	dueNow(rec, s.now())
	rav, err := attributevalue.MarshalMap(rec)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode record item")
	}
	hav, err := attributevalue.MarshalMap(toHot(k))
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode hot item")
	}
	notExists := aws.String("attribute_not_exists(pk)")
	return []ddb.TransactWriteItem{
		{Put: &ddb.Put{TableName: &s.table, Item: hav, ConditionExpression: notExists}},
		{Put: &ddb.Put{TableName: &s.table, Item: rav, ConditionExpression: notExists}},
	}, nil
}

// GetByHash returns the key whose keyed hash is h, or fault.NotFound.
func (s *Store) GetByHash(ctx context.Context, h apikey.Hash) (*key.Key, error) {
	hot, _, err := s.getHot(ctx, h, "")
	if err != nil {
		return nil, err
	}
	k, err := s.getRecord(ctx, hot.ID)
	if err != nil {
		return nil, err
	}
	k.LastUsedAt = hot.LastUsedAt
	return k, nil
}

// getHot reads the hot item of the key whose hash is h (the attributes
// projection names, all when empty), strongly consistent.
func (s *Store) getHot(ctx context.Context, h apikey.Hash, projection string) (*key.Key, *hotItem, error) {
	in := &dynamodb.GetItemInput{TableName: &s.table, Key: keyOf(KeyPK(h), keySK), ConsistentRead: aws.Bool(true)}
	if projection != "" {
		in.ProjectionExpression = aws.String(projection)
	}
	out, err := s.db.GetItem(ctx, in)
	if err != nil {
		return nil, nil, mapErr(err, "get key")
	}
	if out.Item == nil {
		return nil, nil, fault.Errorf(fault.NotFound, "key not found")
	}
	if projection != "" {
		out.Item[schema.PK] = str(KeyPK(h))
	}
	return decodeHot(out.Item)
}

// getRecord reads the record item of the key with the given id, strongly
// consistent.
func (s *Store) getRecord(ctx context.Context, id string) (*key.Key, error) {
	if !key.ValidID(id) {
		return nil, fault.Errorf(fault.NotFound, "key not found")
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: keyOf(RecordPK(id), idSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, mapErr(err, "get key record")
	}
	if out.Item == nil {
		return nil, fault.Errorf(fault.NotFound, "key not found")
	}
	k, _, err := decodeRecordItem(out.Item)
	return k, err
}

// Get returns the key with the given id, or fault.NotFound: its record
// item, and the time it was last used from its hot item.
func (s *Store) Get(ctx context.Context, id string) (*key.Key, error) {
	k, _, err := s.get(ctx, id, "id, lastUsedAt")
	return k, err
}

// Counters are what a key's hot item counts now: rl, the admissions
// reserved in each rate-limit window (by key.RateLimit.Counter: those
// admitted, and those authorizer environments hold in blocks for a hot
// key), and q, the quota credits spent in each period (by
// key.Quota.PeriodKey). Windows that ended may be missing (a verification
// removes them); a missing counter is 0.
type Counters struct {
	RL map[string]int64
	Q  map[string]int64
}

// GetCounted is Get, with the key's counters from the same strongly
// consistent read of its hot item: what the admin API shows of a key's
// current windows.
func (s *Store) GetCounted(ctx context.Context, id string) (*key.Key, Counters, error) {
	return s.get(ctx, id, "id, lastUsedAt, rl, q")
}

func (s *Store) get(ctx context.Context, id, projection string) (*key.Key, Counters, error) {
	k, err := s.getRecord(ctx, id)
	if err != nil {
		return nil, Counters{}, err
	}
	hot, it, err := s.getHot(ctx, k.Hash, projection)
	if err != nil {
		return nil, Counters{}, err
	}
	k.LastUsedAt = hot.LastUsedAt
	return k, Counters{RL: it.RL, Q: it.Q}, nil
}

// ListOptions select a page of an owner's keys.
type ListOptions struct {
	// Limit is the page size, 1 to 100 (default 25).
	Limit int
	// Cursor continues a previous listing; it must come from Page.Next of a
	// listing of the same owner.
	Cursor string
	// Status and Environment, when set, keep only keys that match (at the
	// store's clock). Filtering happens after the read, so a page may hold
	// fewer keys than Limit while Next is still set.
	Status      key.Status
	Environment key.Environment
}

// Page is one page of a listing.
type Page struct {
	Keys []*key.Key
	// Next continues the listing; empty on the last page.
	Next string
}

// MaxPageSize is the largest page List returns.
const MaxPageSize = 100

// List returns an owner's keys, newest first, a page at a time.
func (s *Store) List(ctx context.Context, owner string, opts ListOptions) (Page, error) {
	if err := key.ValidateOwner(owner); err != nil {
		return Page{}, err
	}
	limit := opts.Limit
	if limit == 0 {
		limit = 25
	}
	if limit < 1 || limit > MaxPageSize {
		return Page{}, fault.Fieldf("limit", "must be from 1 to %d", MaxPageSize)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(schema.GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :o"),
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":o": str(ownerPrefix + owner)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(limit)),
	}
	if opts.Cursor != "" {
		start, err := s.cursor.open(opts.Cursor, owner)
		if err != nil {
			return Page{}, err
		}
		in.ExclusiveStartKey = start
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return Page{}, mapErr(err, "list keys")
	}
	var p Page
	now := s.now()
	for _, av := range out.Items {
		k, _, err := decodeRecordItem(av)
		if err != nil {
			return Page{}, err
		}
		if opts.Status != "" && k.WireStatus(now) != opts.Status {
			continue
		}
		if opts.Environment != "" && k.Environment != opts.Environment {
			continue
		}
		p.Keys = append(p.Keys, k)
	}
	if len(out.LastEvaluatedKey) > 0 {
		if p.Next, err = s.cursor.seal(out.LastEvaluatedKey, owner); err != nil {
			return Page{}, err
		}
	}
	return p, nil
}

// Update writes k's settings (name, scopes, limits, quota, origins, CIDRs,
// stages, metadata, validity window, enabled) if the stored version is
// still expectVersion, and increments the version. A revoked key cannot be
// changed. It puts the key on the schedule (gsi2) due at once and removes its
// ttl, so that the next scheduled run plans the changed key afresh. It returns
// the stored key after the change; fault.NotFound if the key is gone,
// fault.PreconditionFailed if the version moved on, and fault.Conflict if the
// key is revoked.
func (s *Store) Update(ctx context.Context, k *key.Key, expectVersion int64) (*key.Key, error) {
	return s.update(ctx, k, expectVersion, nil)
}

// UpdateAudited is Update together with the change's audit record, in one
// transaction: a key never changes without its record. rec's KeyID and
// Version (expectVersion+1) are set here; expectVersion must be above 0.
func (s *Store) UpdateAudited(ctx context.Context, k *key.Key, expectVersion int64, rec AuditRecord) (*key.Key, error) {
	if expectVersion < 1 {
		return nil, fault.Errorf(fault.Internal, "an audited update needs the expected version")
	}
	rec.KeyID, rec.Version = k.ID, expectVersion+1
	return s.update(ctx, k, expectVersion, &rec)
}

// update changes both of the key's items in one transaction, with rec's
// audit record when set, and reads the key back (a transaction returns no
// item).
func (s *Store) update(ctx context.Context, k *key.Key, expectVersion int64, rec *AuditRecord) (*key.Key, error) {
	it, err := toRecord(k)
	if err != nil {
		return nil, err
	}
	// A changed key is planned afresh by the next scheduled run, which also
	// sets its TTL again if it is still expired (an expiry moved into the
	// future must not leave the old deletion time behind).
	dueNow(it, s.now())
	kc := newKeyChange(k.ID, k.Hash)
	kc.rec.putAll(map[string]any{
		"name": it.Name, "scopes": it.Scopes, "enabled": it.Enabled,
		"notBefore": it.NotBefore, "expiresAt": it.ExpiresAt,
		"rateLimits": it.RateLimits, "quota": it.Quota, "origins": it.Origins,
		"cidrs": it.CIDRs, "stages": it.Stages, "metadata": it.Metadata,
		"nextKeyId": it.NextKeyID, schema.GSI2PK: it.GSI2PK, schema.GSI2SK: it.GSI2SK,
		"updatedAt": ms(s.now()),
	})
	kc.hot.putAll(hotSettings(k))
	kc.ttl(time.Time{})
	kc.rec.bump()
	kc.rec.when("attribute_exists(#pk) AND attribute_not_exists(#revokedAt)")
	if expectVersion > 0 {
		kc.rec.when("#version = ?", num(expectVersion))
	}
	kc.hot.when("attribute_exists(#pk)")
	if err := s.transactKey(ctx, kc, rec, expectVersion, "update key"); err != nil {
		return nil, err
	}
	return s.Get(ctx, k.ID)
}

// transactKey writes a key change and, when set, its audit record as one
// transaction. A failed condition of the record item is explained from its
// old item (whyFailed).
func (s *Store) transactKey(ctx context.Context, kc *keyChange, rec *AuditRecord, expectVersion int64, op string) error {
	items, err := kc.items(s.table)
	if err != nil {
		return err
	}
	if rec != nil {
		av, err := rec.item()
		if err != nil {
			return err
		}
		items = append(items, ddb.TransactWriteItem{Put: &ddb.Put{TableName: &s.table, Item: av, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *ddb.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 {
		switch r := tce.CancellationReasons; {
		case aws.ToString(r[0].Code) == "ConditionalCheckFailed":
			return whyFailed(r[0].Item, expectVersion)
		case len(r) > 1 && aws.ToString(r[1].Code) == "ConditionalCheckFailed":
			return fault.Errorf(fault.NotFound, "key not found")
		}
	}
	return mapErr(err, op)
}

// whyFailed explains a failed update condition from the old record item.
func whyFailed(old map[string]ddb.AttributeValue, expectVersion int64) error {
	if len(old) == 0 {
		return fault.Errorf(fault.NotFound, "key not found")
	}
	if _, ok := old["revokedAt"]; ok {
		return fault.Errorf(fault.Conflict, "key is revoked and cannot be changed")
	}
	return fault.Errorf(fault.PreconditionFailed, "key version is no longer %d", expectVersion)
}

// ItemKey returns the primary key attributes of an item, for tests and tools
// that read items directly.
func ItemKey(pk, sk string) map[string]ddb.AttributeValue { return keyOf(pk, sk) }

// Revoke marks a key revoked at the store's clock and sets the TTL of its
// items so that DynamoDB deletes them after retention (the record is kept
// for audit until then), together with its audit record in one
// transaction, so that a key is never revoked without its record; audit
// builds the record from the key as revoked (RevokedAt and Version set).
// Revoking a revoked key writes nothing and returns it as it is, so the
// call is idempotent. It returns the key and whether this call revoked it.
func (s *Store) Revoke(ctx context.Context, id string, retention time.Duration, audit func(revoked *key.Key) AuditRecord) (*key.Key, bool, error) {
	// The record's sort key needs the version the revocation makes, so the
	// key is read first and the write is conditional on that version; a
	// concurrent change means reading again.
	for attempt := 0; attempt < 3; attempt++ {
		cur, err := s.Get(ctx, id)
		if err != nil {
			return nil, false, err
		}
		if !cur.RevokedAt.IsZero() {
			return cur, false, nil
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		revoked := *cur
		revoked.RevokedAt, revoked.UpdatedAt, revoked.Version = now, now, cur.Version+1
		rec := audit(&revoked)
		rec.KeyID, rec.At, rec.Version = cur.ID, revoked.RevokedAt, revoked.Version
		kc := newKeyChange(cur.ID, cur.Hash)
		kc.both("revokedAt", ms(now))
		kc.rec.put("updatedAt", ms(now))
		kc.rec.bump()
		kc.ttl(now.Add(retention))
		kc.rec.when("attribute_exists(#pk) AND attribute_not_exists(#revokedAt) AND #version = ?", num(cur.Version))
		kc.hot.when("attribute_exists(#pk)")
		err = s.transactKey(ctx, kc, &rec, cur.Version, "revoke key")
		if fault.Is(err, fault.PreconditionFailed) || fault.Is(err, fault.Conflict) {
			continue // changed or revoked meanwhile: look again
		}
		if err != nil {
			return nil, false, err
		}
		k, err := s.Get(ctx, id)
		return k, err == nil, err
	}
	return nil, false, fault.Errorf(fault.Conflict, "the key kept changing during its revocation; retry")
}
