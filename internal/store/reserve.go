package store

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
)

// Reservation is what a verifying write takes beyond the request it
// admits, for an authorizer environment that admits a hot key's next
// requests itself (internal/verify). Counters of the hot item count what
// was reserved, so the write's condition holds, for every limit it takes
// from, counter + taken <= limit: the blocks of all environments in a
// window never add up to more than the limit, and an environment admits
// only from a block it holds. The usage counters count admissions only:
// the request this write admits, and Report.
type Reservation struct {
	// Rate[i] is how many admissions the write takes from the current
	// window of the i-th counted rate limit, this request's included; 0
	// takes none (the environment still holds some of that window's
	// allowance, from which the request is admitted). Missing entries are
	// 0.
	Rate []int64
	// Credits is how many quota credits the write takes from the current
	// period, this request's cost included; 0 takes none.
	Credits int64
	// Report is usage admitted from earlier reservations that no write has
	// recorded yet: the write adds it to the usage counters with this
	// request's own.
	Report []UsageDelta
}

// rate is how many admissions r takes from the i-th rate limit: 1 without
// a reservation.
func (r *Reservation) rate(i int) int64 {
	if r == nil {
		return 1
	}
	if i < len(r.Rate) {
		return max(r.Rate[i], 0)
	}
	return 0
}

// mergeUsage adds the deltas of more to those of days, by day, dropping
// deltas that add nothing.
func mergeUsage(days []UsageDelta, more []UsageDelta) []UsageDelta {
	for _, m := range more {
		if m.Requests == 0 && m.Credits == 0 {
			continue
		}
		i := slices.IndexFunc(days, func(d UsageDelta) bool { return d.Day == m.Day })
		if i < 0 {
			days = append(days, m)
			continue
		}
		days[i].Requests += m.Requests
		days[i].Credits += m.Credits
	}
	return days
}

// ReportInput is a flush of one environment's reservations of a key: the
// usage it admitted from blocks that no write has recorded yet, and the
// parts of its blocks it gives back because it will never admit from them
// (it is shutting down).
type ReportInput struct {
	Hash apikey.Hash
	Now  time.Time
	// Usage is the admissions no write has recorded yet, by UTC day.
	Usage []UsageDelta
	// LastUsedAt, when set, is the latest of those admissions.
	LastUsedAt time.Time
	// Return maps rate-limit counters (as key.RateLimit.Counter names
	// them) to admissions reserved in them that will never be made;
	// ReturnCredits quota period keys (key.Quota.PeriodKey) to credits.
	Return        map[string]int64
	ReturnCredits map[string]int64
}

// Report records a flush in one UpdateItem on the key's hot item: it adds
// Usage to the usage counters (one useq step, so the usage consumer records
// it exactly once), sets lastUsedAt, and takes the returned admissions and
// credits off their counters. A return is conditional on the counter
// holding at least what is returned (a counter removed after its window
// ended is never made negative); when that fails, the usage is recorded
// without the returns, which only leaves a window admitting fewer. The
// key's hot item must exist; the result is the item after the write (nil
// when the key is gone). A report of nothing writes nothing.
func (s *Store) Report(ctx context.Context, in ReportInput) (ReportResult, error) {
	res, err := s.report(ctx, in, true)
	var ccf *ddb.ConditionalCheckFailedException
	if errors.As(err, &ccf) && (len(in.Return) > 0 || len(in.ReturnCredits) > 0) {
		first := res.Writes
		res, err = s.report(ctx, in, false)
		res.Writes += first
	}
	if errors.As(err, &ccf) {
		return res, nil // the key is gone: nothing left to count against
	}
	return res, err
}

// ReportResult is the outcome of a Report.
type ReportResult struct {
	// Record is the hot item after the write; nil when nothing was written
	// or the key is gone.
	Record *Record
	// WriteUnits is the write capacity DynamoDB reports the write consumed
	// (ReturnConsumedCapacity), and Writes the requests it took (0 to 2).
	WriteUnits float64
	Writes     int
}

func (s *Store) report(ctx context.Context, in ReportInput, returns bool) (ReportResult, error) {
	e := verifyExpr{names: map[string]string{}, values: map[string]ddb.AttributeValue{}}
	cond := []string{"attribute_exists(pk)"}
	var set, add []string
	if days := mergeUsage(nil, in.Usage); len(days) > 0 {
		add = countUsage(&e, map[string]bool{}, days)
	}
	if !in.LastUsedAt.IsZero() {
		e.names["#lu"], e.values[":lu"] = "lastUsedAt", num(in.LastUsedAt.UnixMilli())
		set = append(set, "#lu = :lu")
	}
	if returns {
		add, cond = returnTo(&e, add, cond, attrRL, "r", in.Return)
		add, cond = returnTo(&e, add, cond, attrQ, "p", in.ReturnCredits)
	}
	if len(add) == 0 && len(set) == 0 {
		return ReportResult{}, nil
	}
	upd := ""
	if len(set) > 0 {
		upd = "SET " + strings.Join(set, ", ") + " "
	}
	if len(add) > 0 {
		upd += "ADD " + strings.Join(add, ", ")
	}
	var once []func(*dynamodb.Options)
	if returns && (len(in.Return) > 0 || len(in.ReturnCredits) > 0) {
		// A return takes admissions off a counter: sent twice (a retry of
		// a write whose answer was lost after DynamoDB applied it), it
		// would give a window back admissions that were made, and the
		// window could admit more than its limit. So it is sent once; a
		// return lost with its answer only leaves the window admitting
		// fewer.
		once = append(once, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(in.Hash), keySK),
		UpdateExpression:          aws.String(upd),
		ConditionExpression:       aws.String(strings.Join(cond, " AND ")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
		ReturnValues:              ddb.ReturnValueAllNew,
		ReturnConsumedCapacity:    ddb.ReturnConsumedCapacityTotal,
	}, once...)
	res := ReportResult{Writes: 1}
	if err != nil {
		var ccf *ddb.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return res, err
		}
		return res, mapErr(err, "report usage")
	}
	if out.ConsumedCapacity != nil {
		res.WriteUnits = aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
	}
	res.Record, err = decodeRecord(out.Attributes)
	return res, err
}

// returnTo adds the ADD clauses that take n off each counter of the map
// attr, each conditional on the counter holding at least n.
func returnTo(e *verifyExpr, add, cond []string, attr, tag string, back map[string]int64) ([]string, []string) {
	names := make([]string, 0, len(back))
	for c, n := range back {
		if n > 0 {
			names = append(names, c)
		}
	}
	sort.Strings(names)
	for i, c := range names {
		an, n, v := "#"+tag+"a", "#"+tag+strconv.Itoa(i), ":"+tag+strconv.Itoa(i)
		e.names[an], e.names[n] = attr, c
		e.values[v], e.values[v+"m"] = num(back[c]), num(-back[c])
		add = append(add, an+"."+n+" "+v+"m")
		cond = append(cond, an+"."+n+" >= "+v)
	}
	return add, cond
}
