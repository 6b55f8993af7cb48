package store

import (
	"context"
	"errors"
	"sort"
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

// Create stores a new key (version 1) and its id item in one transaction.
// Neither may exist already: a create never overwrites, and a duplicate id or
// hash is a fault.Conflict.
func (s *Store) Create(ctx context.Context, k *key.Key) error {
	k.Version = 1
	items, err := s.createItems(k)
	if err != nil {
		return err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	return mapErr(err, "create key")
}

// createItems returns the transaction items that create k: its key item and
// its id item, each conditional on not existing. Rotation adds its own items
// to the same transaction.
func (s *Store) createItems(k *key.Key) ([]ddb.TransactWriteItem, error) {
	it, err := toItem(k)
	if err != nil {
		return nil, err
	}
	dueNow(it, s.now())
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, err, "encode key item")
	}
	idItem := keyOf(idPK(k.ID), idSK)
	idItem["hash"] = str(k.Hash.String())
	idItem["ownerId"] = str(k.OwnerID)
	notExists := aws.String("attribute_not_exists(pk)")
	return []ddb.TransactWriteItem{
		{Put: &ddb.Put{TableName: &s.table, Item: av, ConditionExpression: notExists}},
		{Put: &ddb.Put{TableName: &s.table, Item: idItem, ConditionExpression: notExists}},
	}, nil
}

// GetByHash returns the key whose keyed hash is h, or fault.NotFound.
func (s *Store) GetByHash(ctx context.Context, h apikey.Hash) (*key.Key, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(h), keySK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, mapErr(err, "get key")
	}
	if out.Item == nil {
		return nil, fault.Errorf(fault.NotFound, "key not found")
	}
	k, _, err := decodeKey(out.Item)
	return k, err
}

// hashOf resolves a key id to its hash through the id item.
func (s *Store) hashOf(ctx context.Context, id string) (apikey.Hash, error) {
	if !key.ValidID(id) {
		return apikey.Hash{}, fault.Errorf(fault.NotFound, "key not found")
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: keyOf(idPK(id), idSK), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return apikey.Hash{}, mapErr(err, "get key id")
	}
	hv, ok := out.Item["hash"].(*ddb.AttributeValueMemberS)
	if !ok {
		return apikey.Hash{}, fault.Errorf(fault.NotFound, "key not found")
	}
	h, ok := apikey.ParseHash(hv.Value)
	if !ok {
		return apikey.Hash{}, fault.Errorf(fault.Internal, "id item %s has a bad hash", id)
	}
	return h, nil
}

// Get returns the key with the given id, or fault.NotFound.
func (s *Store) Get(ctx context.Context, id string) (*key.Key, error) {
	h, err := s.hashOf(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.GetByHash(ctx, h)
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
		k, _, err := decodeKey(av)
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

func (s *Store) update(ctx context.Context, k *key.Key, expectVersion int64, rec *AuditRecord) (*key.Key, error) {
	it, err := toItem(k)
	if err != nil {
		return nil, err
	}
	// A changed key is planned afresh by the next scheduled run, which also
	// sets its TTL again if it is still expired (an expiry moved into the
	// future must not leave the old deletion time behind).
	dueNow(it, s.now())
	set := map[string]any{
		"name": it.Name, "scopes": it.Scopes, "enabled": it.Enabled,
		"notBefore": it.NotBefore, "expiresAt": it.ExpiresAt,
		"rateLimits": it.RateLimits, "quota": it.Quota, "origins": it.Origins,
		"cidrs": it.CIDRs, "stages": it.Stages, "metadata": it.Metadata,
		"nextKeyId": it.NextKeyID, "gsi2pk": it.GSI2PK, "gsi2sk": it.GSI2SK,
		schema.TTL: int64(0), // removed
	}
	return s.updateAttrs(ctx, k.Hash, set, expectVersion, "update key", rec)
}

// updateAttrs sets (or, for empty values, removes) the given attributes of a
// key item, conditional on the item existing, not being revoked and, when
// expectVersion > 0, having that version. It bumps version and updatedAt.
// With rec, the update and the audit record are one transaction, and the
// key is read back afterwards (a transaction returns no item).
func (s *Store) updateAttrs(ctx context.Context, h apikey.Hash, set map[string]any, expectVersion int64, op string, rec *AuditRecord) (*key.Key, error) {
	names := map[string]string{"#v": "version", "#u": "updatedAt", "#r": "revokedAt"}
	values := map[string]ddb.AttributeValue{":one": num(1), ":now": num(s.now().UnixMilli())}
	sets := []string{"#v = #v + :one", "#u = :now"}
	var removes []string
	attrs := make([]string, 0, len(set))
	for a := range set {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs) // stable expressions, for readable logs
	for i, a := range attrs {
		n := "#a" + strconv.Itoa(i)
		names[n] = a
		av, err := attributevalue.Marshal(set[a])
		if err != nil {
			return nil, fault.Wrap(fault.Internal, err, "encode %s", a)
		}
		if isEmpty(av) {
			removes = append(removes, n)
			continue
		}
		values[":a"+strconv.Itoa(i)] = av
		sets = append(sets, n+" = :a"+strconv.Itoa(i))
	}
	expr := "SET " + join(sets)
	if len(removes) > 0 {
		expr += " REMOVE " + join(removes)
	}
	cond := "attribute_exists(pk) AND attribute_not_exists(#r)"
	if expectVersion > 0 {
		cond += " AND #v = :ev"
		values[":ev"] = num(expectVersion)
	}
	if rec != nil {
		upd := &ddb.Update{
			TableName: &s.table, Key: keyOf(KeyPK(h), keySK),
			UpdateExpression: aws.String(expr), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
		}
		if err := s.transactAudited(ctx, upd, rec, expectVersion, op); err != nil {
			return nil, err
		}
		return s.GetByHash(ctx, h)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(h), keySK),
		UpdateExpression: aws.String(expr), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ReturnValues:                        ddb.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		var ccf *ddb.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return nil, whyFailed(ccf.Item, expectVersion)
		}
		return nil, mapErr(err, op)
	}
	k, _, err := decodeKey(out.Attributes)
	return k, err
}

// whyFailed explains a failed update condition from the old item.
func whyFailed(old map[string]ddb.AttributeValue, expectVersion int64) error {
	if len(old) == 0 {
		return fault.Errorf(fault.NotFound, "key not found")
	}
	if _, ok := old["revokedAt"]; ok {
		return fault.Errorf(fault.Conflict, "key is revoked and cannot be changed")
	}
	return fault.Errorf(fault.PreconditionFailed, "key version is no longer %d", expectVersion)
}

func isEmpty(av ddb.AttributeValue) bool {
	switch v := av.(type) {
	case *ddb.AttributeValueMemberNULL:
		return true
	case *ddb.AttributeValueMemberS:
		return v.Value == ""
	case *ddb.AttributeValueMemberN:
		return v.Value == "0"
	case *ddb.AttributeValueMemberL:
		return len(v.Value) == 0
	case *ddb.AttributeValueMemberM:
		return len(v.Value) == 0
	}
	return false
}

func join(parts []string) string {
	s := ""
	for i, p := range parts {
		if i > 0 {
			s += ", "
		}
		s += p
	}
	return s
}

// DayCount is a key's admitted requests (or credits spent) on one UTC day.
type DayCount struct {
	Day   string // YYYY-MM-DD
	Count int64
}

// Usage returns a key's usage per UTC day from from to to inclusive (both
// YYYY-MM-DD), days without usage included as zero.
func (s *Store) Usage(ctx context.Context, id string, from, to time.Time) ([]DayCount, error) {
	h, err := s.hashOf(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(h), keySK),
		ProjectionExpression:     aws.String("#u"),
		ExpressionAttributeNames: map[string]string{"#u": "usage"},
	})
	if err != nil {
		return nil, mapErr(err, "get usage")
	}
	var it struct {
		Usage map[string]int64 `dynamodbav:"usage"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "decode usage")
	}
	var days []DayCount
	for d := from.UTC().Truncate(24 * time.Hour); !d.After(to); d = d.AddDate(0, 0, 1) {
		day := d.Format(time.DateOnly)
		days = append(days, DayCount{Day: day, Count: it.Usage[day]})
	}
	return days, nil
}

// ItemKey returns the primary key attributes of an item, for tests and tools
// that read items directly.
func ItemKey(pk, sk string) map[string]ddb.AttributeValue { return keyOf(pk, sk) }

// transactAudited runs a key item's update and the put of its audit record
// as one transaction. A failed update condition is explained from the old
// item, as whyFailed does for a plain update.
func (s *Store) transactAudited(ctx context.Context, upd *ddb.Update, rec *AuditRecord, expectVersion int64, op string) error {
	av, err := rec.item()
	if err != nil {
		return err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddb.TransactWriteItem{
		{Update: upd},
		{Put: &ddb.Put{TableName: &s.table, Item: av, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
	}})
	var tce *ddb.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return whyFailed(tce.CancellationReasons[0].Item, expectVersion)
	}
	return mapErr(err, op)
}

// Revoke marks a key revoked at the store's clock and sets its TTL so that
// DynamoDB deletes it after retention (the record is kept for audit until
// then), together with its audit record in one transaction, so that a key is
// never revoked without its record; audit builds the record from the key as
// revoked (RevokedAt and Version set). Revoking a revoked key writes nothing
// and returns it as it is, so the call is idempotent. It returns the key and
// whether this call revoked it.
func (s *Store) Revoke(ctx context.Context, id string, retention time.Duration, audit func(revoked *key.Key) AuditRecord) (*key.Key, bool, error) {
	h, err := s.hashOf(ctx, id)
	if err != nil {
		return nil, false, err
	}
	// The record's sort key needs the version the revocation makes, so the
	// key is read first and the write is conditional on that version; a
	// concurrent change means reading again.
	for attempt := 0; attempt < 3; attempt++ {
		cur, err := s.GetByHash(ctx, h)
		if err != nil {
			return nil, false, err
		}
		if !cur.RevokedAt.IsZero() {
			return cur, false, nil
		}
		now := s.now()
		revoked := *cur
		revoked.RevokedAt, revoked.UpdatedAt, revoked.Version = now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond), cur.Version+1
		rec := audit(&revoked)
		rec.KeyID, rec.At, rec.Version = cur.ID, revoked.RevokedAt, revoked.Version
		upd := &ddb.Update{
			TableName:           &s.table,
			Key:                 keyOf(KeyPK(h), keySK),
			UpdateExpression:    aws.String("SET #r = :now, #u = :now, #t = :ttl, #v = #v + :one"),
			ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(#r) AND #v = :ev"),
			ExpressionAttributeNames: map[string]string{
				"#r": "revokedAt", "#u": "updatedAt", "#t": schema.TTL, "#v": "version",
			},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{
				":now": num(now.UnixMilli()), ":ttl": num(now.Add(retention).Unix()), ":one": num(1), ":ev": num(cur.Version),
			},
			ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
		}
		err = s.transactAudited(ctx, upd, &rec, cur.Version, "revoke key")
		if fault.Is(err, fault.PreconditionFailed) || fault.Is(err, fault.Conflict) {
			continue // changed or revoked meanwhile: look again
		}
		if err != nil {
			return nil, false, err
		}
		k, err := s.GetByHash(ctx, h)
		return k, err == nil, err
	}
	return nil, false, fault.Errorf(fault.Conflict, "the key kept changing during its revocation; retry")
}
