package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/schema"
)

// DueShards is the number of gsi2 partitions that scheduled work is spread
// over. A key's shard is fixed by its id, so the load of keys that fall due
// together (a batch issued with the same TTL) is spread over all shards
// instead of landing on one partition, and "everything due by now" is
// DueShards small queries that need no remembered starting point (a day
// bucket would need the run to know the oldest day that may still hold
// work). The scheduled run never scans the table.
const DueShards = 16

const duePrefix = "DUE#"

func shardPK(shard int) string { return fmt.Sprintf("%s%02d", duePrefix, shard) }

// DueShard returns the shard (0 to DueShards-1) of a key id.
func DueShard(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % DueShards)
}

// dueSK is the gsi2sk of a key due at t: zero-padded Unix milliseconds, so
// that string order is time order, then the id, so that sort keys are unique.
func dueSK(t time.Time, id string) string { return fmt.Sprintf("%015d#%s", t.UnixMilli(), id) }

// dueNow puts a key that is being written on the schedule at once, so that
// the next scheduled run plans its lifecycle work (expiry notices, idle
// checks, TTL) with the rotator's settings, which the store and the issuer do
// not know. Every create, update and rotation calls it, so a changed expiry
// is always planned afresh.
func dueNow(it *recordItem, now time.Time) {
	it.GSI2PK, it.GSI2SK = shardPK(DueShard(it.ID)), dueSK(now, it.ID)
}

// Lifecycle is the bookkeeping the scheduled run keeps on a key's record item so that
// each of its actions is done at most once: the expiry that an expiring
// notice or an expired event was sent for, and the activity time that an idle
// event was sent for. A changed expiry, or a key used again, makes the action
// due again.
type Lifecycle struct {
	// DueSK is the gsi2sk the key is scheduled under (empty: not scheduled).
	// Advance is conditional on it, so two runs cannot both act on one due
	// time.
	DueSK string
	// ExpiringFor, ExpiredFor and IdleFor are zero until that was sent.
	ExpiringFor time.Time
	ExpiredFor  time.Time
	IdleFor     time.Time
	// LastUsageDay is the latest UTC day with counted usage (zero if none),
	// activity that counts even where lastUsedAt is absent.
	LastUsageDay time.Time
	// TTL is when DynamoDB deletes the key's items (zero: never): the
	// record item's, or the hot item's when only that one carries one.
	TTL time.Time
}

// lifecycleOf reads the bookkeeping attributes of a key's record item, and
// the latest day with usage from its hot item's day counters (nil when the
// hot item is gone).
func lifecycleOf(rec *recordItem, hot *hotItem) Lifecycle {
	lc := Lifecycle{
		DueSK: rec.GSI2SK, ExpiringFor: fromMS(rec.ExpiringFor), ExpiredFor: fromMS(rec.ExpiredFor),
		IdleFor: fromMS(rec.IdleFor),
	}
	if rec.TTL > 0 {
		lc.TTL = time.Unix(rec.TTL, 0).UTC()
	}
	if hot == nil {
		return lc
	}
	if lc.TTL.IsZero() && hot.TTL > 0 {
		lc.TTL = time.Unix(hot.TTL, 0).UTC()
	}
	for d, n := range hot.Usage {
		t, err := time.Parse(time.DateOnly, d)
		if err == nil && n > 0 && t.After(lc.LastUsageDay) {
			lc.LastUsageDay = t
		}
	}
	return lc
}

// DueKey is a key the scheduled run found due, as its item is now.
type DueKey struct {
	Key       *key.Key
	Lifecycle Lifecycle
}

// DuePage is one page of due keys of one shard.
type DuePage struct {
	Keys []DueKey
	// Next is the opaque cursor that continues the shard within this run
	// (signed like list cursors, and bound to the shard); empty when the
	// shard holds no more keys due.
	Next string
}

// Due returns up to limit (1 to 100) keys of shard that are due at or before
// now, earliest first, continuing from cursor (a Next of the same shard; ""
// to start). The index is
// eventually consistent, so it only nominates keys: each is then read with a
// strongly consistent BatchGetItem, and a key whose current due time is
// after now (rescheduled meanwhile) or that is gone is left out.
func (s *Store) Due(ctx context.Context, shard int, now time.Time, limit int, cursor string) (DuePage, error) {
	if shard < 0 || shard >= DueShards || limit < 1 || limit > 100 {
		return DuePage{}, fault.Errorf(fault.Internal, "due: shard %d or limit %d out of range", shard, limit)
	}
	var next map[string]ddb.AttributeValue
	if cursor != "" {
		var err error
		if next, err = s.cursor.open(cursor, shardPK(shard)); err != nil {
			return DuePage{}, err
		}
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(schema.GSI2),
		KeyConditionExpression:    aws.String("#p = :p AND #s < :upper"),
		ExpressionAttributeNames:  map[string]string{"#p": schema.GSI2PK, "#s": schema.GSI2SK, "#pk": schema.PK},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":p": str(shardPK(shard)), ":upper": str(fmt.Sprintf("%015d", now.UnixMilli()+1))},
		ProjectionExpression:      aws.String("#pk"),
		Limit:                     aws.Int32(int32(limit)),
		ExclusiveStartKey:         next,
	})
	if err != nil {
		return DuePage{}, mapErr(err, "query due keys")
	}
	var page DuePage
	if len(out.LastEvaluatedKey) > 0 {
		if page.Next, err = s.cursor.seal(out.LastEvaluatedKey, shardPK(shard)); err != nil {
			return DuePage{}, err
		}
	}
	if len(out.Items) == 0 {
		return page, nil
	}
	keys := make([]map[string]ddb.AttributeValue, 0, len(out.Items))
	order := map[string]int{}
	for _, it := range out.Items {
		pk, ok := it[schema.PK].(*ddb.AttributeValueMemberS)
		if _, dup := order[pk.Value]; !ok || dup {
			continue
		}
		order[pk.Value] = len(keys)
		keys = append(keys, keyOf(pk.Value, idSK))
	}
	records, err := s.batchGet(ctx, keys, "")
	if err != nil {
		return DuePage{}, err
	}
	upper := fmt.Sprintf("%015d", now.UnixMilli()+1)
	type due struct {
		k   *key.Key
		rec *recordItem
	}
	var found []due
	hotKeys := make([]map[string]ddb.AttributeValue, 0, len(records))
	for _, av := range records {
		k, rec, err := decodeRecordItem(av)
		if err != nil {
			return DuePage{}, err
		}
		if rec.GSI2SK == "" || rec.GSI2SK >= upper {
			continue // rescheduled or unscheduled since the index was written
		}
		found = append(found, due{k, rec})
		hotKeys = append(hotKeys, keyOf(KeyPK(k.Hash), keySK))
	}
	hots, err := s.batchGet(ctx, hotKeys, "pk, id, lastUsedAt, #u, #ttl")
	if err != nil {
		return DuePage{}, err
	}
	byPK := map[string]*hotItem{}
	for _, av := range hots {
		var it hotItem
		if err := attributevalue.UnmarshalMap(av, &it); err != nil {
			return DuePage{}, fault.Wrap(fault.Internal, err, "decode hot item")
		}
		byPK[it.PK] = &it
	}
	for _, d := range found {
		hot := byPK[KeyPK(d.k.Hash)]
		if hot != nil {
			d.k.LastUsedAt = fromMS(hot.LastUsedAt)
		}
		page.Keys = append(page.Keys, DueKey{Key: d.k, Lifecycle: lifecycleOf(d.rec, hot)})
	}
	// Earliest first, as the index returned them.
	sortBy(page.Keys, func(d DueKey) int { return order[RecordPK(d.Key.ID)] })
	return page, nil
}

// batchGet reads items (at most 100) with strongly consistent reads,
// projected on projection when set ("#u" in it names the usage counters,
// "#ttl" the TTL),
// retrying the keys DynamoDB leaves unprocessed until the context ends.
func (s *Store) batchGet(ctx context.Context, keys []map[string]ddb.AttributeValue, projection string) ([]map[string]ddb.AttributeValue, error) {
	var items []map[string]ddb.AttributeValue
	for len(keys) > 0 {
		ka := ddb.KeysAndAttributes{Keys: keys, ConsistentRead: aws.Bool(true)}
		if projection != "" {
			ka.ProjectionExpression = aws.String(projection)
			ka.ExpressionAttributeNames = map[string]string{}
			for n, attr := range map[string]string{"#u": attrUsage, "#ttl": schema.TTL} {
				if strings.Contains(projection, n) {
					ka.ExpressionAttributeNames[n] = attr
				}
			}
		}
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddb.KeysAndAttributes{s.table: ka}})
		if err != nil {
			return nil, mapErr(err, "read due keys")
		}
		items = append(items, out.Responses[s.table]...)
		keys = out.UnprocessedKeys[s.table].Keys
		if len(keys) > 0 {
			select {
			case <-ctx.Done():
				return nil, mapErr(ctx.Err(), "read due keys")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return items, nil
}

func sortBy[T any](s []T, rank func(T) int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && rank(s[j]) < rank(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Step is what the scheduled run did to one due key, to be recorded in one
// transaction: the bookkeeping that makes each action happen at most once,
// the changes to the key (an enforced expiry, disabling), the TTLs and the
// key's next due time.
type Step struct {
	// Key and Lifecycle are the key as Due returned it. The step applies
	// only if the key's version and due time are still those (and, with
	// CheckActivity, its lastUsedAt), so two runs never both apply a step.
	Key           *key.Key
	Lifecycle     Lifecycle
	CheckActivity bool
	// ExpiringFor, ExpiredFor and IdleFor record a sent notice when set.
	ExpiringFor, ExpiredFor, IdleFor time.Time
	// ExpireAt, when set, becomes the key's expiresAt (a maximum lifetime
	// enforced); Disable disables the key. These, and any step with audit
	// records, are changes to the key and increment its version.
	ExpireAt time.Time
	Disable  bool
	// TTL, when set, is written to both of the key's items, so that
	// DynamoDB deletes both after the retention period. ClearTTL removes
	// both items' TTL instead: the repair of a key that is live again
	// (neither expired nor revoked) but still carries one, which would
	// otherwise be deleted while it verifies.
	TTL      time.Time
	ClearTTL bool
	// Next is the key's next due time; zero takes it off the schedule.
	Next time.Time
	// Audit holds the audit records of the changes, written in the same
	// transaction (each with the key's version after the step).
	Audit []AuditRecord
}

// Advance records a step. It returns false, and changes nothing, when the key
// changed since Due read it (another run took this step, an admin changed
// the key, or with CheckActivity a request used it); the key is then due
// again at its new due time, so nothing is lost.
func (s *Store) Advance(ctx context.Context, st Step) (bool, error) {
	k := st.Key
	kc := newKeyChange(k.ID, k.Hash)
	kc.rec.when("attribute_exists(#pk) AND #version = ? AND #gsi2sk = ?", num(k.Version), str(st.Lifecycle.DueSK))
	if st.CheckActivity {
		if k.LastUsedAt.IsZero() {
			kc.hot.when("attribute_not_exists(#lastUsedAt)")
		} else {
			kc.hot.when("#lastUsedAt = ?", num(ms(k.LastUsedAt)))
		}
	}
	for attr, t := range map[string]time.Time{"lcExpiringFor": st.ExpiringFor, "lcExpiredFor": st.ExpiredFor, "lcIdleFor": st.IdleFor} {
		if !t.IsZero() {
			kc.rec.put(attr, ms(t))
		}
	}
	bump := len(st.Audit) > 0
	if !st.ExpireAt.IsZero() {
		kc.both("expiresAt", ms(st.ExpireAt))
		bump = true
	}
	if st.Disable {
		kc.both("enabled", false)
		bump = true
	}
	if bump {
		kc.rec.bump()
		kc.rec.put("updatedAt", ms(s.now()))
	}
	if !st.TTL.IsZero() || st.ClearTTL {
		kc.ttl(st.TTL)
	}
	if st.Next.IsZero() {
		kc.rec.put(schema.GSI2PK, "")
		kc.rec.put(schema.GSI2SK, "")
	} else {
		kc.rec.put(schema.GSI2SK, dueSK(st.Next, k.ID))
	}
	if len(kc.hot.set)+len(kc.hot.remove) > 0 {
		kc.hot.when("attribute_exists(#pk)")
	}
	items, err := kc.items(s.table)
	if err != nil {
		return false, err
	}
	for i := range st.Audit {
		av, err := st.Audit[i].item()
		if err != nil {
			return false, err
		}
		items = append(items, ddb.TransactWriteItem{Put: &ddb.Put{TableName: &s.table, Item: av}})
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if lostRace(err) {
		return false, nil
	}
	if err != nil {
		return false, mapErr(err, "advance scheduled key")
	}
	return true, nil
}

// lostRace reports whether a transaction was cancelled only because another
// writer got there first: a condition that no longer holds, or a concurrent
// transaction on the same item.
func lostRace(err error) bool {
	var tce *ddb.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	lost := false
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed", "TransactionConflict":
			lost = true
		case "", "None":
		default:
			return false
		}
	}
	return lost
}
