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
// the stream records of hot items into usage items, all in the partition
// of the key's owner:
//
//	USAGE#<owner>  K#<day>#<keyId>   one key's day: n (requests) c (credits)
//	                                 sh sq (the stream shard and sequence
//	                                 number of the last record applied) ttl
//	USAGE#<owner>  T#<day>#<shard>   the owner's day, as one stream shard saw
//	                                 it: n c sq ttl
const (
	usagePrefix  = "USAGE#"
	keyDayPrefix = "K#"
	ownDayPrefix = "T#"
	// seqDigits is the width sequence numbers are stored at: DynamoDB
	// Streams' are decimal, 21 to 40 digits, so zero-padded to 40 the
	// order of strings is the order of numbers.
	seqDigits = 40
)

// UsagePK is the partition key of an owner's usage items.
func UsagePK(owner string) string { return usagePrefix + owner }

func keyDaySK(day, keyID string) string   { return keyDayPrefix + day + "#" + keyID }
func ownerDaySK(day, shard string) string { return ownDayPrefix + day + "#" + shard }

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
	// Seq is the record's sequence number in its stream shard.
	Seq     string
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
func UsageChange(seq string, keys, old, new map[string]ddb.AttributeValue) (UsageRecord, bool, error) {
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
	r := UsageRecord{Seq: seq, KeyID: n.ID, OwnerID: n.OwnerID}
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
	for _, d := range days {
		if _, err := time.Parse(time.DateOnly, d.Day); err != nil {
			return UsageRecord{}, false, fault.Errorf(fault.Invalid, "hot item of key %s counts usage on %q, not a day", r.KeyID, d.Day)
		}
		r.Deltas = append(r.Deltas, *d)
	}
	sort.Slice(r.Deltas, func(i, j int) bool { return r.Deltas[i].Day < r.Deltas[j].Day })
	return r, true, nil
}

// usageTarget is one usage item a batch changes, with the records that
// change it, in stream order.
type usageTarget struct {
	pk, sk  string
	keyID   string // "" for an owner's day
	day     string
	records []targetRecord
}

type targetRecord struct {
	seq  string // zero-padded
	n, c int64
}

// padSeq zero-pads a sequence number to seqDigits; ok is false for
// anything that is not one.
func padSeq(seq string) (string, bool) {
	if seq == "" || len(seq) > seqDigits {
		return "", false
	}
	for i := 0; i < len(seq); i++ {
		if seq[i] < '0' || seq[i] > '9' {
			return "", false
		}
	}
	return strings.Repeat("0", seqDigits-len(seq)) + seq, true
}

// usageWriters bounds the usage writes RecordUsage runs at once.
const usageWriters = 8

// RecordUsage applies the usage records of one batch of one stream shard
// (in stream order) to the usage items, exactly once however often the
// batch, or any part of it, is delivered again: each usage item remembers
// the sequence number of the last record it took (and, for a key's day,
// the shard), and a write takes only records after it. It writes each item
// the batch touches once: a key's day per key and day, and the owner's day
// as this shard saw it per owner and day (an owner's totals are the sum of
// those, so no two shards ever write the same item). Usage items are kept
// for retention after their day ends (DynamoDB's TTL deletes them).
//
// Records of one shard arrive in order and a key's records move to a
// child shard only after its parent shard is done (how Lambda reads
// DynamoDB Streams, and the local stack's poller too); so a key's day
// whose last record came from another shard has taken none of this one's.
func (s *Store) RecordUsage(ctx context.Context, shard string, recs []UsageRecord, retention time.Duration) error {
	if shard == "" || strings.Contains(shard, "#") {
		return fault.Errorf(fault.Invalid, "usage from a shard without a usable id %q", shard)
	}
	targets := map[[2]string]*usageTarget{}
	var order [][2]string
	add := func(pk, sk, keyID, day string, r targetRecord) {
		id := [2]string{pk, sk}
		t := targets[id]
		if t == nil {
			t = &usageTarget{pk: pk, sk: sk, keyID: keyID, day: day}
			targets[id] = t
			order = append(order, id)
		}
		t.records = append(t.records, r)
	}
	for _, r := range recs {
		seq, ok := padSeq(r.Seq)
		if !ok {
			return fault.Errorf(fault.Invalid, "usage record with sequence number %q", r.Seq)
		}
		for _, d := range r.Deltas {
			tr := targetRecord{seq: seq, n: d.Requests, c: d.Credits}
			add(UsagePK(r.OwnerID), keyDaySK(d.Day, r.KeyID), r.KeyID, d.Day, tr)
			add(UsagePK(r.OwnerID), ownerDaySK(d.Day, shard), "", d.Day, tr)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, usageWriters)
	)
	for _, id := range order {
		t := targets[id]
		sort.SliceStable(t.records, func(i, j int) bool { return t.records[i].seq < t.records[j].seq })
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.applyUsage(ctx, shard, t, retention); err != nil {
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

// applyUsage writes one usage item: it adds the records after the item's
// mark and moves the mark to the last of them, conditional on the mark
// being what it was read as; a condition that fails returns the item,
// whose mark says which records are still to add.
func (s *Store) applyUsage(ctx context.Context, shard string, t *usageTarget, retention time.Duration) error {
	day, err := time.Parse(time.DateOnly, t.day)
	if err != nil {
		return fault.Errorf(fault.Invalid, "usage on %q, not a day", t.day)
	}
	ttl := day.AddDate(0, 0, 1).Add(retention).Unix()
	recs := t.records
	mark := "" // the item's mark, once a refused write has shown it
	for attempt := 0; attempt < 3; attempt++ {
		if len(recs) == 0 {
			return nil
		}
		var n, c int64
		for _, r := range recs {
			n, c = n+r.n, c+r.c
		}
		names := map[string]string{"#n": "n", "#c": "c", "#sq": "sq", "#d": "day", "#t": schema.TTL}
		values := map[string]ddb.AttributeValue{
			":n": num(n), ":c": num(c), ":last": str(recs[len(recs)-1].seq), ":d": str(t.day), ":t": num(ttl),
		}
		set := "#sq = :last, #d = :d, #t = :t"
		var cond string
		switch {
		case mark == "" && t.keyID == "":
			cond, values[":first"] = "attribute_not_exists(#sq) OR #sq < :first", str(recs[0].seq)
		case mark == "":
			cond, values[":first"] = "attribute_not_exists(#sq) OR #sh <> :sh OR #sq < :first", str(recs[0].seq)
		case t.keyID == "":
			cond, values[":mark"] = "#sq = :mark", str(mark)
		default:
			cond, values[":mark"] = "#sh = :sh AND #sq = :mark", str(mark)
		}
		if t.keyID != "" {
			names["#sh"], names["#k"] = "sh", "keyId"
			values[":sh"], values[":k"] = str(shard), str(t.keyID)
			set += ", #sh = :sh, #k = :k"
		}
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: keyOf(t.pk, t.sk),
			UpdateExpression:                    aws.String("ADD #n :n, #c :c SET " + set),
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            names,
			ExpressionAttributeValues:           values,
			ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var ccf *ddb.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return mapErr(err, "record usage")
		}
		// Part of the batch was applied already (a retried or bisected
		// batch): keep the records after the item's mark.
		m, _ := ccf.Item["sq"].(*ddb.AttributeValueMemberS)
		if m == nil {
			return fault.Errorf(fault.Unavailable, "usage item %s %s refused a write but has no mark", t.pk, t.sk)
		}
		mark = m.Value
		recs = recs[sort.Search(len(recs), func(i int) bool { return recs[i].seq > mark }):]
	}
	return fault.Errorf(fault.Unavailable, "usage item %s %s kept changing", t.pk, t.sk)
}

// usageItem is a usage item as DynamoDB holds it.
type usageItem struct {
	SK    string `dynamodbav:"sk"`
	KeyID string `dynamodbav:"keyId"`
	Day   string `dynamodbav:"day"`
	N     int64  `dynamodbav:"n"`
	C     int64  `dynamodbav:"c"`
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
// inclusive, days without usage included as zero: one Query of the owner's
// daily totals (one item per day and stream shard), whatever the number of
// keys. It is what the usage consumer has recorded: it trails the
// verifications by the consumer's batching window (see docs/usage.md).
func (s *Store) OwnerUsage(ctx context.Context, owner string, from, to time.Time) ([]DayCount, error) {
	if err := key.ValidateOwner(owner); err != nil {
		return nil, err
	}
	days := daysOf(from, to)
	got := map[string]DayCount{}
	_, err := s.queryUsage(ctx, owner, ownDayPrefix, days, nil, 0, func(it usageItem) {
		c := got[it.Day]
		got[it.Day] = DayCount{Day: it.Day, Count: c.Count + it.N, Credits: c.Credits + it.C}
	})
	if err != nil {
		return nil, err
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
	last, err := s.queryUsage(ctx, owner, keyDayPrefix, days, start, limit, func(it usageItem) {
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

// queryUsage reads an owner's usage items of one kind (prefix) for days,
// in sort key order, from start (nil for the beginning): every page when
// limit is 0; else one page of limit items, and the key to continue after
// (nil at the end).
func (s *Store) queryUsage(ctx context.Context, owner, prefix string, days []string, start map[string]ddb.AttributeValue, limit int, each func(usageItem)) (map[string]ddb.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": schema.PK, "#sk": schema.SK},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":pk": str(UsagePK(owner)), ":lo": str(prefix + days[0] + "#"), ":hi": str(prefix + days[len(days)-1] + "#~"),
		},
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
