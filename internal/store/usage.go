package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/schema"
)

// Usage history (see doc.go, "Usage history"): the usage consumer turns
// the stream records of hot items into usage items, in the partition of
// the key's owner:
//
//	USAGE#<owner>  K#<day>#<keyId>  a key's day: n (requests) c (credits) sq
//	                                (the hot item's useq of the last change
//	                                applied) keyId day ttl
//	USAGE#<owner>  T#<day>          the owner's day: gen (bumped after every
//	                                batch that changed one of its key's days)
//	                                tn tc tgen (its totals, valid while tgen
//	                                = gen) day ttl
const (
	usagePrefix  = "USAGE#"
	keyDayPrefix = "K#"
	ownDayPrefix = "T#"
)

// UsagePK is the partition key of an owner's usage items.
func UsagePK(owner string) string { return usagePrefix + owner }

func keyDaySK(day, keyID string) string { return keyDayPrefix + day + "#" + keyID }
func ownerDaySK(day string) string      { return ownDayPrefix + day }

// DayCount is a day's usage: requests admitted and credits spent.
type DayCount struct {
	Day   string // YYYY-MM-DD
	Count int64
	// Credits is the quota credits the day's requests spent (a route's
	// cost each; 1 for routes without one).
	Credits int64
}

// KeyDayCount is one key's usage on one day.
type KeyDayCount struct {
	KeyID string
	DayCount
}

// UsageDelta is what one change of a hot item did to its key's usage on
// one UTC day.
type UsageDelta struct {
	Day      string
	Requests int64
	Credits  int64
}

// UsageRecord is one stream record of a key's hot item, reduced to what it
// changed of the key's usage.
type UsageRecord struct {
	// Seq is the hot item's useq after the change: every write that moves
	// its usage counters adds 1 to it, so it orders a key's changes and
	// names each one, whatever stream shard carries it.
	Seq     int64
	KeyID   string
	OwnerID string
	// Deltas holds the days whose counters the change moved (never a
	// zero delta).
	Deltas []UsageDelta
}

// usageImage is the part of a hot item's stream image the usage history
// needs.
type usageImage struct {
	ID      string           `dynamodbav:"id"`
	OwnerID string           `dynamodbav:"ownerId"`
	Usage   map[string]int64 `dynamodbav:"usage"`
	Spent   map[string]int64 `dynamodbav:"spent"`
	Seq     int64            `dynamodbav:"useq"`
}

// UsageChange reads one stream record of the table: its item's keys and its
// old and new images (either may be empty: an insert has no old image, a
// deletion no new one). ok is false for an item that is not a key's hot
// item, and for a change that moved no usage counter.
//
// A day's delta is the new value of its counter minus the old one (0 when
// absent), for every day the new image holds. A day the new image no longer
// holds was removed by a later update after the day ended: that is not
// negative usage, and counts 0. A counter that comes back after its removal
// (a writer whose clock lags, an ADD of usage admitted earlier) counts what
// it holds, so the history stays exact whatever order the days are
// written in.
func UsageChange(keys, old, new map[string]ddb.AttributeValue) (UsageRecord, bool, error) {
	pk, _ := keys[schema.PK].(*ddb.AttributeValueMemberS)
	sk, _ := keys[schema.SK].(*ddb.AttributeValueMemberS)
	if pk == nil || sk == nil || sk.Value != keySK || !strings.HasPrefix(pk.Value, keyPrefix) {
		return UsageRecord{}, false, nil
	}
	var o, n usageImage
	if err := attributevalue.UnmarshalMap(old, &o); err != nil {
		return UsageRecord{}, false, fault.Wrap(fault.Invalid, err, "decode old image")
	}
	if err := attributevalue.UnmarshalMap(new, &n); err != nil {
		return UsageRecord{}, false, fault.Wrap(fault.Invalid, err, "decode new image")
	}
	r := UsageRecord{Seq: n.Seq, KeyID: n.ID, OwnerID: n.OwnerID}
	if r.KeyID == "" {
		r.KeyID, r.OwnerID = o.ID, o.OwnerID
	}
	days := map[string]*UsageDelta{}
	at := func(d string) *UsageDelta {
		if days[d] == nil {
			days[d] = &UsageDelta{Day: d}
		}
		return days[d]
	}
	for d, v := range n.Usage {
		if dv := v - o.Usage[d]; dv != 0 {
			at(d).Requests = dv
		}
	}
	for d, v := range n.Spent {
		if dv := v - o.Spent[d]; dv != 0 {
			at(d).Credits = dv
		}
	}
	if len(days) == 0 {
		return UsageRecord{}, false, nil
	}
	if r.KeyID == "" || r.OwnerID == "" {
		return UsageRecord{}, false, fault.Errorf(fault.Invalid, "hot item %s has no id or owner", pk.Value)
	}
	if n.Seq <= o.Seq {
		return UsageRecord{}, false, fault.Errorf(fault.Invalid, "hot item of key %s changed its usage without a new useq (%d, was %d)", r.KeyID, n.Seq, o.Seq)
	}
	for _, d := range days {
		if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
			return UsageRecord{}, false, fault.Errorf(fault.Invalid, "hot item of key %s counts usage on %q, not a day", r.KeyID, d.Day)
		}
		r.Deltas = append(r.Deltas, *d)
	}
	sort.Slice(r.Deltas, func(i, j int) bool { return r.Deltas[i].Day < r.Deltas[j].Day })
	return r, true, nil
}

// keyDay is one key's day that a batch changes, with its records in useq
// order.
type keyDay struct {
	owner, keyID, day string
	records           []dayRecord
}

type dayRecord struct {
	seq, n, c int64
}

// usageWriters bounds the usage writes RecordUsage runs at once.
const usageWriters = 8

// RecordUsage applies the usage records of one batch of the stream to the
// usage items, exactly once however often the batch, or any part of it, is
// delivered again: a key's day remembers the useq of the last change it
// took, and a write takes only changes after it. A key's changes reach the
// stream in the order they were made, and Lambda (and the local stack's
// poller) hands a key's records to the consumer in that order, so a change
// at or below the mark has been applied.
//
// It writes each key's day the batch touches once, then bumps the
// generation of each owner's day it touched, which tells readers that the
// owner's cached totals of that day are stale (see OwnerUsage). Usage items
// are kept for retention after their day ends (DynamoDB's TTL deletes
// them).
func (s *Store) RecordUsage(ctx context.Context, recs []UsageRecord, retention time.Duration) error {
	days := map[[2]string]*keyDay{}
	var order [][2]string
	owners := map[[2]string]bool{}
	var ownerDays [][2]string
	for _, r := range recs {
		for _, d := range r.Deltas {
			id := [2]string{r.KeyID, d.Day}
			kd := days[id]
			if kd == nil {
				kd = &keyDay{owner: r.OwnerID, keyID: r.KeyID, day: d.Day}
				days[id] = kd
				order = append(order, id)
			}
			kd.records = append(kd.records, dayRecord{seq: r.Seq, n: d.Requests, c: d.Credits})
			if od := [2]string{r.OwnerID, d.Day}; !owners[od] {
				owners[od] = true
				ownerDays = append(ownerDays, od)
			}
		}
	}
	err := parallel(len(order), func(i int) error {
		kd := days[order[i]]
		sort.SliceStable(kd.records, func(a, b int) bool { return kd.records[a].seq < kd.records[b].seq })
		return s.applyKeyDay(ctx, kd, retention)
	})
	if err != nil {
		return err
	}
	// Only after every key's day is written: a reader that sees the new
	// generation then sees those writes too.
	return parallel(len(ownerDays), func(i int) error {
		od := ownerDays[i]
		ttl, err := usageTTL(od[1], retention)
		if err != nil {
			return err
		}
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: keyOf(UsagePK(od[0]), ownerDaySK(od[1])),
			UpdateExpression:          aws.String("ADD #g :one SET #d = :d, #t = :t"),
			ExpressionAttributeNames:  map[string]string{"#g": "gen", "#d": "day", "#t": schema.TTL},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{":one": num(1), ":d": str(od[1]), ":t": num(ttl)},
		})
		return mapErr(err, "record owner usage")
	})
}

// parallel runs f for 0..n-1, at most usageWriters at once, and returns the
// first error.
func parallel(n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, usageWriters)
	)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// usageTTL is when DynamoDB deletes the usage items of day: retention after
// the day ends.
func usageTTL(day string, retention time.Duration) (int64, error) {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return 0, fault.Errorf(fault.Invalid, "usage on %q, not a day", day)
	}
	return t.AddDate(0, 0, 1).Add(retention).Unix(), nil
}

// applyKeyDay writes one key's day: it adds the changes after the item's
// mark and moves the mark to the last of them, conditional on the mark
// being below the first; a refused write returns the item, whose mark says
// which changes are still to add (those of a batch delivered again in part).
func (s *Store) applyKeyDay(ctx context.Context, kd *keyDay, retention time.Duration) error {
	ttl, err := usageTTL(kd.day, retention)
	if err != nil {
		return err
	}
	recs := kd.records
	for attempt := 0; attempt < 3; attempt++ {
		if len(recs) == 0 {
			return nil
		}
		var n, c int64
		for _, r := range recs {
			n, c = n+r.n, c+r.c
		}
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: keyOf(UsagePK(kd.owner), keyDaySK(kd.day, kd.keyID)),
			UpdateExpression:    aws.String("ADD #n :n, #c :c SET #sq = :last, #k = :k, #d = :d, #t = :t"),
			ConditionExpression: aws.String("attribute_not_exists(#sq) OR #sq < :first"),
			ExpressionAttributeNames: map[string]string{
				"#n": "n", "#c": "c", "#sq": "sq", "#k": "keyId", "#d": "day", "#t": schema.TTL,
			},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{
				":n": num(n), ":c": num(c), ":first": num(recs[0].seq), ":last": num(recs[len(recs)-1].seq),
				":k": str(kd.keyID), ":d": str(kd.day), ":t": num(ttl),
			},
			ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var ccf *ddb.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return mapErr(err, "record usage")
		}
		var it struct {
			Seq int64 `dynamodbav:"sq"`
		}
		if err := attributevalue.UnmarshalMap(ccf.Item, &it); err != nil {
			return fault.Wrap(fault.Internal, err, "decode usage mark")
		}
		recs = recs[sort.Search(len(recs), func(i int) bool { return recs[i].seq > it.Seq }):]
	}
	return fault.Errorf(fault.Unavailable, "usage of key %s on %s kept changing", kd.keyID, kd.day)
}

// usageItem is a usage item as DynamoDB holds it: a key's day, or an
// owner's day.
type usageItem struct {
	KeyID string `dynamodbav:"keyId"`
	Day   string `dynamodbav:"day"`
	N     int64  `dynamodbav:"n"`
	C     int64  `dynamodbav:"c"`
	Gen   int64  `dynamodbav:"gen"`
	TN    int64  `dynamodbav:"tn"`
	TC    int64  `dynamodbav:"tc"`
	TGen  int64  `dynamodbav:"tgen"`
}

// daysOf lists the UTC days from from to to, inclusive.
func daysOf(from, to time.Time) []string {
	var out []string
	for d := from.UTC().Truncate(24 * time.Hour); !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

// Usage returns a key's usage per UTC day from from to to inclusive (both
// YYYY-MM-DD), days without usage included as zero. Days come from the
// key's usage items; a day its hot item still counts (the current day,
// and the previous one until the next verification removes it) is read
// from there too and the larger value wins, so that today's usage is
// exact at once, before the usage consumer has caught up.
func (s *Store) Usage(ctx context.Context, id string, from, to time.Time) ([]DayCount, error) {
	k, err := s.getRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	days := daysOf(from, to)
	keys := make([]map[string]ddb.AttributeValue, len(days))
	for i, d := range days {
		keys[i] = keyOf(UsagePK(k.OwnerID), keyDaySK(d, k.ID))
	}
	got := map[string]DayCount{}
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 100)]
		keys = keys[len(chunk):]
		items, err := s.batchGet(ctx, chunk, "")
		if err != nil {
			return nil, err
		}
		for _, av := range items {
			var it usageItem
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return nil, fault.Wrap(fault.Internal, err, "decode usage")
			}
			got[it.Day] = DayCount{Day: it.Day, Count: it.N, Credits: it.C}
		}
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(k.Hash), keySK), ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#u, #sp"),
		ExpressionAttributeNames: map[string]string{"#u": attrUsage, "#sp": attrSpent},
	})
	if err != nil {
		return nil, mapErr(err, "get usage")
	}
	var hot usageImage
	if err := attributevalue.UnmarshalMap(out.Item, &hot); err != nil {
		return nil, fault.Wrap(fault.Internal, err, "decode usage")
	}
	res := make([]DayCount, len(days))
	for i, d := range days {
		c := got[d]
		res[i] = DayCount{Day: d, Count: max(c.Count, hot.Usage[d]), Credits: max(c.Credits, hot.Spent[d])}
	}
	return res, nil
}

// OwnerUsage returns an owner's usage per UTC day from from to to
// inclusive, days without usage included as zero. It is what the usage
// consumer has recorded, so it trails the verifications by the consumer's
// batching window (docs/usage.md), and it is always the sum of the owner's
// keys' usage (OwnerKeyUsage).
//
// One Query reads the owner's days. A day's totals are cached on its item
// and valid while the consumer has not changed the day since (tgen = gen);
// a day changed since (today, mostly) is summed from its keys' days (one
// Query of that day) and its totals are cached again, conditional on the
// generation read before the sum: a consumer that bumped it meanwhile wrote
// its keys' days before, so the cache never holds a sum that misses a
// change it claims to include.
func (s *Store) OwnerUsage(ctx context.Context, owner string, from, to time.Time) ([]DayCount, error) {
	if err := key.ValidateOwner(owner); err != nil {
		return nil, err
	}
	days := daysOf(from, to)
	var stale []usageItem
	got := map[string]DayCount{}
	_, err := s.queryUsage(ctx, owner, ownDayPrefix, days[0], days[len(days)-1], nil, 0, func(it usageItem) {
		if it.TGen == it.Gen && it.Gen > 0 {
			got[it.Day] = DayCount{Day: it.Day, Count: it.TN, Credits: it.TC}
		} else {
			stale = append(stale, it)
		}
	})
	if err != nil {
		return nil, err
	}
	for _, od := range stale {
		var sum DayCount
		_, err := s.queryUsage(ctx, owner, keyDayPrefix, od.Day, od.Day, nil, 0, func(it usageItem) {
			sum.Count, sum.Credits = sum.Count+it.N, sum.Credits+it.C
		})
		if err != nil {
			return nil, err
		}
		got[od.Day] = sum
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: keyOf(UsagePK(owner), ownerDaySK(od.Day)),
			UpdateExpression:          aws.String("SET #tn = :n, #tc = :c, #tg = :g"),
			ConditionExpression:       aws.String("#g = :g"),
			ExpressionAttributeNames:  map[string]string{"#tn": "tn", "#tc": "tc", "#tg": "tgen", "#g": "gen"},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{":n": num(sum.Count), ":c": num(sum.Credits), ":g": num(od.Gen)},
		})
		var ccf *ddb.ConditionalCheckFailedException
		if err != nil && !errors.As(err, &ccf) {
			return nil, mapErr(err, "cache owner usage")
		}
	}
	res := make([]DayCount, len(days))
	for i, d := range days {
		res[i] = got[d]
		res[i].Day = d
	}
	return res, nil
}

// KeyUsagePage is one page of an owner's usage per key and day.
type KeyUsagePage struct {
	// Rows holds the key-days with usage, by day and then key id.
	Rows []KeyDayCount
	// Next continues the listing; empty on the last page.
	Next string
}

// MaxUsageRows is the most rows a page of OwnerKeyUsage holds.
const MaxUsageRows = 1000

// OwnerKeyUsage returns an owner's usage per key and UTC day from from to to
// inclusive, a page of at most limit (1 to MaxUsageRows) rows at a time,
// only key-days with usage, ordered by day and key: one Query per page of
// the owner's usage partition. cursor continues a previous page of the same
// owner and range.
func (s *Store) OwnerKeyUsage(ctx context.Context, owner string, from, to time.Time, limit int, cursor string) (KeyUsagePage, error) {
	if err := key.ValidateOwner(owner); err != nil {
		return KeyUsagePage{}, err
	}
	if limit < 1 || limit > MaxUsageRows {
		return KeyUsagePage{}, fault.Fieldf("limit", "must be from 1 to %d", MaxUsageRows)
	}
	days := daysOf(from, to)
	scope := fmt.Sprintf("usage:%s:%s:%s", owner, days[0], days[len(days)-1])
	var start map[string]ddb.AttributeValue
	if cursor != "" {
		var err error
		if start, err = s.cursor.open(cursor, scope); err != nil {
			return KeyUsagePage{}, err
		}
	}
	var p KeyUsagePage
	last, err := s.queryUsage(ctx, owner, keyDayPrefix, days[0], days[len(days)-1], start, limit, func(it usageItem) {
		if it.N != 0 || it.C != 0 {
			p.Rows = append(p.Rows, KeyDayCount{KeyID: it.KeyID, DayCount: DayCount{Day: it.Day, Count: it.N, Credits: it.C}})
		}
	})
	if err != nil {
		return KeyUsagePage{}, err
	}
	if len(last) > 0 {
		if p.Next, err = s.cursor.seal(last, scope); err != nil {
			return KeyUsagePage{}, err
		}
	}
	return p, nil
}

// queryUsage reads, strongly consistent, an owner's usage items of one kind
// (prefix) for the days from first to last, in sort key order, from start
// (nil for the beginning): every page when limit is 0; else one page of
// limit items, and the key to continue after (nil at the end).
func (s *Store) queryUsage(ctx context.Context, owner, prefix, first, last string, start map[string]ddb.AttributeValue, limit int, each func(usageItem)) (map[string]ddb.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": schema.PK, "#sk": schema.SK},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":pk": str(UsagePK(owner)), ":lo": str(prefix + first), ":hi": str(prefix + last + "~"),
		},
		ConsistentRead:    aws.Bool(true),
		ExclusiveStartKey: start,
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(limit))
	}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, mapErr(err, "query usage")
		}
		for _, av := range out.Items {
			var it usageItem
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return nil, fault.Wrap(fault.Internal, err, "decode usage")
			}
			each(it)
		}
		if limit > 0 || len(out.LastEvaluatedKey) == 0 {
			return out.LastEvaluatedKey, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
