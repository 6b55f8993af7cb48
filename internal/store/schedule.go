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
func dueNow(it *keyItem, now time.Time) {
	it.GSI2PK, it.GSI2SK = shardPK(DueShard(it.ID)), dueSK(now, it.ID)
}

// Lifecycle is the bookkeeping the scheduled run keeps on a key item so that
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
	// TTL is when DynamoDB deletes the key item (zero: never).
	TTL time.Time
}

type lifecycleItem struct {
	GSI2SK      string           `dynamodbav:"gsi2sk"`
	ExpiringFor int64            `dynamodbav:"lcExpiringFor"`
	ExpiredFor  int64            `dynamodbav:"lcExpiredFor"`
	IdleFor     int64            `dynamodbav:"lcIdleFor"`
	Usage       map[string]int64 `dynamodbav:"usage"`
	TTL         int64            `dynamodbav:"ttl"`
}

// lifecycleOf reads the bookkeeping attributes of a key item.
func lifecycleOf(av map[string]ddb.AttributeValue) (Lifecycle, error) {
	var it lifecycleItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return Lifecycle{}, fault.Wrap(fault.Internal, err, "decode lifecycle")
	}
	lc := Lifecycle{
		DueSK: it.GSI2SK, ExpiringFor: fromMS(it.ExpiringFor), ExpiredFor: fromMS(it.ExpiredFor),
		IdleFor: fromMS(it.IdleFor),
	}
	if it.TTL > 0 {
		lc.TTL = time.Unix(it.TTL, 0).UTC()
	}
	for d, n := range it.Usage {
		t, err := time.Parse(time.DateOnly, d)
		if err == nil && n > 0 && t.After(lc.LastUsageDay) {
			lc.LastUsageDay = t
		}
	}
	return lc, nil
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
	seen := map[string]bool{}
	for _, it := range out.Items {
		pk, ok := it[schema.PK].(*ddb.AttributeValueMemberS)
		if !ok || seen[pk.Value] {
			continue
		}
		seen[pk.Value] = true
		keys = append(keys, keyOf(pk.Value, keySK))
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return DuePage{}, err
	}
	upper := fmt.Sprintf("%015d", now.UnixMilli()+1)
	for _, av := range items {
		lc, err := lifecycleOf(av)
		if err != nil {
			return DuePage{}, err
		}
		if lc.DueSK == "" || lc.DueSK >= upper {
			continue // rescheduled or unscheduled since the index was written
		}
		k, _, err := decodeKey(av)
		if err != nil {
			return DuePage{}, err
		}
		page.Keys = append(page.Keys, DueKey{Key: k, Lifecycle: lc})
	}
	// Earliest first, as the index returned them.
	order := map[string]int{}
	for i, k := range keys {
		order[k[schema.PK].(*ddb.AttributeValueMemberS).Value] = i
	}
	sortBy(page.Keys, func(d DueKey) int { return order[KeyPK(d.Key.Hash)] })
	return page, nil
}

// batchGet reads items with strongly consistent reads, retrying the keys
// DynamoDB leaves unprocessed until the context ends.
func (s *Store) batchGet(ctx context.Context, keys []map[string]ddb.AttributeValue) ([]map[string]ddb.AttributeValue, error) {
	var items []map[string]ddb.AttributeValue
	for len(keys) > 0 {
		out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddb.KeysAndAttributes{
			s.table: {Keys: keys, ConsistentRead: aws.Bool(true)},
		}})
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
	// TTL, when set, is written to the key item and its id item, so that
	// DynamoDB deletes both after the retention period.
	TTL time.Time
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
	names := map[string]string{"#v": "version", "#g": schema.GSI2SK}
	values := map[string]ddb.AttributeValue{":ver": num(k.Version), ":seen": str(st.Lifecycle.DueSK)}
	cond := []string{"attribute_exists(pk)", "#v = :ver", "#g = :seen"}
	var set, remove []string
	if st.CheckActivity {
		names["#lu"] = "lastUsedAt"
		if k.LastUsedAt.IsZero() {
			cond = append(cond, "attribute_not_exists(#lu)")
		} else {
			values[":lu"] = num(ms(k.LastUsedAt))
			cond = append(cond, "#lu = :lu")
		}
	}
	put := func(attr string, v ddb.AttributeValue) {
		n, p := "#"+attr, ":"+attr
		names[n], values[p] = attr, v
		set = append(set, n+" = "+p)
	}
	for attr, t := range map[string]time.Time{"lcExpiringFor": st.ExpiringFor, "lcExpiredFor": st.ExpiredFor, "lcIdleFor": st.IdleFor} {
		if !t.IsZero() {
			put(attr, num(ms(t)))
		}
	}
	bump := len(st.Audit) > 0
	if !st.ExpireAt.IsZero() {
		put("expiresAt", num(ms(st.ExpireAt)))
		bump = true
	}
	if st.Disable {
		put("enabled", &ddb.AttributeValueMemberBOOL{Value: false})
		bump = true
	}
	if bump {
		values[":one"] = num(1)
		set = append(set, "#v = #v + :one")
		put("updatedAt", num(ms(s.now())))
	}
	if !st.TTL.IsZero() {
		put(schema.TTL, num(st.TTL.Unix()))
	}
	if st.Next.IsZero() {
		names["#gp"] = schema.GSI2PK
		remove = append(remove, "#gp", "#g")
	} else {
		values[":next"] = str(dueSK(st.Next, k.ID))
		set = append(set, "#g = :next")
	}
	expr := ""
	if len(set) > 0 {
		expr = "SET " + strings.Join(set, ", ")
	}
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	items := []ddb.TransactWriteItem{{Update: &ddb.Update{
		TableName: &s.table, Key: keyOf(KeyPK(k.Hash), keySK),
		UpdateExpression: aws.String(strings.TrimSpace(expr)), ConditionExpression: aws.String(strings.Join(cond, " AND ")),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}}}
	if !st.TTL.IsZero() {
		items = append(items, ddb.TransactWriteItem{Update: &ddb.Update{
			TableName: &s.table, Key: keyOf(idPK(k.ID), idSK),
			UpdateExpression:          aws.String("SET #t = :t"),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeNames:  map[string]string{"#t": schema.TTL},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{":t": num(st.TTL.Unix())},
		}})
	}
	for i := range st.Audit {
		av, err := st.Audit[i].item()
		if err != nil {
			return false, err
		}
		items = append(items, ddb.TransactWriteItem{Put: &ddb.Put{TableName: &s.table, Item: av}})
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
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
