package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/key"
)

// Record is a key's hot item as the verifying update sees it: the key and
// its counters. RL holds "<limit>@<windowStartUnix>" -> requests in that
// window and Q "<period key>" -> credits spent in that period (see
// key.PeriodKey): the counters that limit. Usage holds "YYYY-MM-DD" ->
// requests admitted that UTC day, for the days the item still holds (the
// current one, and the previous one until the next update removes it): a
// counter that records, never limits.
//
// Floor (Unix seconds, 0 for none) is at or after the end of every rate
// limit window and quota period whose counter a verification removed: a
// verification counts only in windows and periods that end after it, so a
// Lambda environment whose clock lags never counts afresh in a window whose
// counter an environment ahead of it removed (which would admit that
// window's requests twice). It only rises.
type Record struct {
	Key   *key.Key
	RL    map[string]int64
	Q     map[string]int64
	Usage map[string]int64
	Floor int64
}

// VerifyInput is one verification: everything the conditional update checks
// and counts. The caller (the authorizer) decides what to ask for; the store
// only turns it into one UpdateItem.
type VerifyInput struct {
	Hash apikey.Hash
	Now  time.Time
	// Environments the deployment accepts; empty means any.
	Environments []key.Environment
	// SecretOnly refuses publishable keys: the method is not read-only.
	SecretOnly bool
	// Scopes the route requires; the key must hold each one exactly.
	Scopes []string
	// Stage, when set, must be listed by a key that lists stages.
	Stage string
	// Cost is the quota credits the request spends (at least 1).
	Cost int64
	// Known is the record last seen for this key, of any age, or nil. The
	// update counts its limits, guarded on the stored limits being exactly
	// these, and removes its counters of past windows.
	Known *Record
	// Shape, used when Known is nil, is a guess of the key's rate limits and
	// quota (the authorizer passes the last key it saw: most keys of a
	// deployment share a plan), with the same guard; nil guesses "no
	// limits".
	Shape *key.Key
	// Reserve, when set, makes the write a reservation (see Reservation);
	// nil counts exactly this one request, as a cold key's verification
	// does.
	Reserve *Reservation
}

// VerifyResult is the outcome of the update.
type VerifyResult struct {
	// Admitted is true when every condition held and the counters moved.
	Admitted bool
	// Record is the hot item after the update when admitted, the item as
	// the failed condition saw it otherwise, and nil when no such key
	// exists.
	Record *Record
	// WriteUnits is the write capacity DynamoDB reports the update
	// consumed (ReturnConsumedCapacity): 1 for a key whose hot item is at
	// most 1 KB, admitted or refused.
	WriteUnits float64
}

// skew is how long after a window or period ends its counter is kept, so
// that Lambda environments whose clocks lag a little rarely see a counter
// they still count in vanish; one that lags more is refused by the floor
// (Record.Floor), never admitted twice.
const skew = 5 * time.Second

// Verify runs the one conditional UpdateItem of a verification on the
// key's hot item KEY#<hash>: it checks that the key exists, is neither revoked nor
// disabled, is inside its validity window, belongs to an accepted
// environment, may use the method (type), holds the route's scopes, may call
// the stage, and that no rate limit or quota would be exceeded; when all
// hold it counts the request in every rate-limit window, spends Cost
// credits of the quota, counts the day's usage (requests and credits) and
// sets lastUsedAt, all in the same write. A failed condition is not an
// error: the result carries the item as the condition saw it, for the
// caller to tell the reasons apart. Errors are fault.Unavailable or
// fault.Throttled; Throttled whenever an attempt of the request was
// throttled, even when the error that ended it is a timeout (see
// throttleSeen).
func (s *Store) Verify(ctx context.Context, in VerifyInput) (VerifyResult, error) {
	upd, err := buildVerify(in)
	if err != nil {
		return VerifyResult{}, err
	}
	ctx, throttled := watchThrottling(ctx)
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(in.Hash), keySK),
		UpdateExpression:                    aws.String(upd.update),
		ConditionExpression:                 aws.String(upd.cond),
		ExpressionAttributeNames:            upd.names,
		ExpressionAttributeValues:           upd.values,
		ReturnValues:                        ddb.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: ddb.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              ddb.ReturnConsumedCapacityTotal,
	}, throttleSeen)
	if err != nil {
		var ccf *ddb.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			if throttled.Load() {
				return VerifyResult{}, fault.Wrap(fault.Throttled, err, "verify key: throttled by DynamoDB")
			}
			return VerifyResult{}, mapErr(err, "verify key")
		}
		if len(ccf.Item) == 0 {
			return VerifyResult{}, nil
		}
		// A refused update is charged too, by the item's size, but
		// DynamoDB returns no consumed capacity with the exception.
		rec, err := decodeRecord(ccf.Item)
		return VerifyResult{Record: rec}, err
	}
	rec, err := decodeRecord(out.Attributes)
	res := VerifyResult{Admitted: true, Record: rec}
	if out.ConsumedCapacity != nil {
		res.WriteUnits = aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
	}
	return res, err
}

// Refund takes back what an admitted Verify counted, for the rare request
// that DynamoDB admitted but a check it cannot evaluate (a CIDR allowlist, a
// wildcard origin) refuses afterwards. in must be the input of that Verify
// and rec its record. Counters only ever go down by what was added, so a
// refund can make a limit admit fewer requests, never more.
func (s *Store) Refund(ctx context.Context, in VerifyInput, rec *Record) error {
	cost := max(in.Cost, 1)
	names := map[string]string{"#u": attrUsage, "#sp": attrSpent, "#d": key.UsageDay(in.Now), "#us": attrUseq}
	values := map[string]ddb.AttributeValue{":m1": num(-1), ":mc": num(-cost), ":p1": num(1)}
	parts := []string{"#u.#d :m1", "#sp.#d :mc", "#us :p1"}
	k := rec.Key
	for i, l := range k.RateLimits {
		c := l.Counter(in.Now)
		if _, ok := rec.RL[c]; !ok {
			continue
		}
		n := "#c" + strconv.Itoa(i)
		names["#rl"], names[n] = "rl", c
		parts = append(parts, "#rl."+n+" :m1")
	}
	if k.Quota != nil {
		if _, ok := rec.Q[k.Quota.PeriodKey(in.Now)]; ok {
			names["#q"], names["#qp"] = "q", k.Quota.PeriodKey(in.Now)
			parts = append(parts, "#q.#qp :mc")
		}
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: keyOf(KeyPK(in.Hash), keySK),
		UpdateExpression:          aws.String("ADD " + strings.Join(parts, ", ")),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	return mapErr(err, "refund verification")
}

type verifyExpr struct {
	update, cond string
	names        map[string]string
	values       map[string]ddb.AttributeValue
}

// limitsOf returns the limits the update counts: the known record's, else
// the guessed shape's.
func limitsOf(in VerifyInput) ([]key.RateLimit, *key.Quota) {
	switch {
	case in.Known != nil:
		return in.Known.Key.RateLimits, in.Known.Key.Quota
	case in.Shape != nil:
		return in.Shape.RateLimits, in.Shape.Quota
	}
	return nil, nil
}

func buildVerify(in VerifyInput) (verifyExpr, error) {
	now := in.Now
	cost := max(in.Cost, 1)
	nowMS := now.UnixMilli()
	e := verifyExpr{
		names: map[string]string{
			"#en": "enabled", "#rv": "revokedAt", "#ex": "expiresAt", "#nb": "notBefore", "#lu": "lastUsedAt",
		},
		values: map[string]ddb.AttributeValue{
			":t": &ddb.AttributeValueMemberBOOL{Value: true}, ":now": num(nowMS),
		},
	}
	var set, add, remove []string
	cond := []string{
		"attribute_exists(pk)", "#en = :t", "attribute_not_exists(#rv)",
		"(attribute_not_exists(#ex) OR #ex > :now)", "(attribute_not_exists(#nb) OR #nb <= :now)",
	}
	if len(in.Environments) > 0 {
		e.names["#env"] = "env"
		var vs []string
		for i, env := range in.Environments {
			v := ":env" + strconv.Itoa(i)
			e.values[v] = str(string(env))
			vs = append(vs, v)
		}
		cond = append(cond, "#env IN ("+strings.Join(vs, ", ")+")")
	}
	if in.Stage != "" {
		e.names["#stg"] = "stages"
		e.values[":stage"] = str(in.Stage)
		cond = append(cond, "(attribute_not_exists(#stg) OR contains(#stg, :stage))")
	}
	if in.SecretOnly {
		e.names["#ty"] = "type"
		e.values[":secret"] = str(string(key.Secret))
		cond = append(cond, "#ty = :secret")
	}
	if len(in.Scopes) > 0 {
		e.names["#sc"] = "scopes"
		for i, sc := range in.Scopes {
			v := ":sc" + strconv.Itoa(i)
			e.values[v] = str(sc)
			cond = append(cond, "contains(#sc, "+v+")")
		}
	}

	// The guard: the limits named below are exactly the stored ones, so a
	// refusal is never a miscount and an admission counts the right
	// windows. Other settings may have changed since the caller's record:
	// the condition checks those that DynamoDB can, and the caller checks
	// the rest on the returned item.
	limits, quota := limitsOf(in)
	e.names["#rls"], e.names["#qt"] = "rateLimits", "quota"
	if len(limits) == 0 {
		cond = append(cond, "attribute_not_exists(#rls)")
	} else {
		av, err := attributevalue.Marshal(limits)
		if err != nil {
			return e, fault.Wrap(fault.Internal, err, "encode limits")
		}
		e.values[":rls"] = av
		cond = append(cond, "#rls = :rls")
	}
	if quota == nil {
		cond = append(cond, "attribute_not_exists(#qt)")
	} else {
		av, err := attributevalue.Marshal(quota)
		if err != nil {
			return e, fault.Wrap(fault.Internal, err, "encode quota")
		}
		e.values[":qt"] = av
		cond = append(cond, "#qt = :qt")
	}

	current := map[string]bool{}
	impossible := false
	for i, l := range limits {
		n, lim := "#c"+strconv.Itoa(i), ":l"+strconv.Itoa(i)
		c := l.Counter(now)
		current[c] = true
		take := in.Reserve.rate(i)
		if take == 0 {
			continue // admitted from a block the caller holds
		}
		if take > l.Limit {
			impossible = true
			continue
		}
		e.names["#rl"], e.names[n] = attrRL, c
		e.values[":zero"] = num(0)
		tv := ":t" + strconv.Itoa(i)
		e.values[tv] = num(take)
		e.values[lim] = num(l.Limit - take)
		set = append(set, "#rl."+n+" = if_not_exists(#rl."+n+", :zero) + "+tv)
		cond = append(cond, "(attribute_not_exists(#rl."+n+") OR #rl."+n+" <= "+lim+")")
	}
	if quota != nil {
		pk := quota.PeriodKey(now)
		current["q:"+pk] = true
		take := cost
		if in.Reserve != nil {
			take = in.Reserve.Credits
		}
		switch {
		case take > quota.Limit:
			impossible = true
		case take > 0:
			e.names["#q"], e.names["#qp"] = attrQ, pk
			e.values[":zero"], e.values[":cost"] = num(0), num(take)
			e.values[":qlim"] = num(quota.Limit - take)
			set = append(set, "#q.#qp = if_not_exists(#q.#qp, :zero) + :cost")
			cond = append(cond, "(attribute_not_exists(#q.#qp) OR #q.#qp <= :qlim)")
		}
	}
	if impossible {
		// Can never be afforded. (DynamoDB refuses a request whose values
		// are not all used, so the limit's value is set only when it can.)
		cond = append(cond, "attribute_not_exists(pk)")
	}
	set = append(set, "#lu = :now")
	days := []UsageDelta{{Day: key.UsageDay(now), Requests: 1, Credits: cost}}
	if in.Reserve != nil {
		days = mergeUsage(days, in.Reserve.Report)
	}
	add = countUsage(&e, current, days)

	// Every window and period counted must end after the floor.
	if end := firstEnd(limits, quota, now); end > 0 {
		e.names["#lf"], e.values[":end"] = "lf", num(end)
		cond = append(cond, "(attribute_not_exists(#lf) OR #lf < :end)")
	}

	// Counters of windows, periods and days that ended (more than skew
	// ago) go, so the item stays small. Only counters the caller has seen
	// can be named. Removing a limit counter that ends after the floor the
	// caller saw raises the floor to its end, in the same write, on the
	// condition that the floor is not above that already (it only rises).
	if in.Known != nil {
		var floor int64
		remove, floor = staleCounters(in.Known, now, current, e.names)
		if floor > in.Known.Floor {
			e.names["#lf"], e.values[":lf"] = "lf", num(floor)
			set = append(set, "#lf = :lf")
			cond = append(cond, "(attribute_not_exists(#lf) OR #lf <= :lf)")
		}
	}
	e.update = "SET " + strings.Join(set, ", ") + " ADD " + strings.Join(add, ", ")
	if len(remove) > 0 {
		e.update += " REMOVE " + strings.Join(remove, ", ")
	}
	e.cond = strings.Join(cond, " AND ")
	return e, nil
}

// countUsage returns the ADD clauses that record, for each of days,
// requests admitted and credits spent on that UTC day in the hot item's
// usage counters, usage["YYYY-MM-DD"] and spent["YYYY-MM-DD"], and marks
// the days current (so that the same write removes none of them). These
// counters record and never limit (the limits have their own, rl and q),
// so a write may add usage it did not admit itself (admissions made
// elsewhere, reported with it), and an ADD of a negative amount takes
// usage back (Refund). Every write that moves them adds 1 to useq, which
// numbers the item's usage changes: the usage consumer (internal/usage)
// turns the changes into usage history from the table's stream, each
// exactly once by its number.
func countUsage(e *verifyExpr, current map[string]bool, days []UsageDelta) []string {
	e.names["#u"], e.names["#sp"], e.names["#us"] = attrUsage, attrSpent, attrUseq
	e.values[":us"] = num(1)
	out := []string{"#us :us"}
	for i, d := range days {
		n := strconv.Itoa(i)
		e.names["#d"+n] = d.Day
		e.values[":ur"+n], e.values[":uc"+n] = num(d.Requests), num(d.Credits)
		out = append(out, "#u.#d"+n+" :ur"+n, "#sp.#d"+n+" :uc"+n)
		current["u:"+d.Day] = true
	}
	return out
}

// maxRemovals bounds the REMOVE clause, so an item that collected many
// counters is cleaned up over a few requests instead of one huge one.
const maxRemovals = 8

// Behind reports whether the floor refuses a verification at now: the
// caller's clock lags so far that a window or period it would count in
// ended at or before the floor (see Record.Floor). It is refused until its
// clock passes the floor.
func (r *Record) Behind(now time.Time) bool {
	end := firstEnd(r.Key.RateLimits, r.Key.Quota, now)
	return r.Floor > 0 && end > 0 && end <= r.Floor
}

// firstEnd is when the first of the windows and the period a verification
// at now counts in ends (Unix seconds; 0 when it counts in none that ends).
func firstEnd(limits []key.RateLimit, quota *key.Quota, now time.Time) int64 {
	var end int64
	for _, l := range limits {
		if e := l.WindowEnd(now).Unix(); end == 0 || e < end {
			end = e
		}
	}
	if quota != nil && quota.Period != key.Total {
		if e := quota.PeriodEnd(now).Unix(); end == 0 || e < end {
			end = e
		}
	}
	return end
}

// staleCounters names the counters of rec that a verification at now
// removes: the limit counters of windows and periods that ended more than
// skew ago (or that no limit of the key counts any more), and the days of
// usage that ended more than skew ago. floor is the latest end of the limit
// counters removed (see Record.Floor).
func staleCounters(rec *Record, now time.Time, current map[string]bool, names map[string]string) (out []string, floor int64) {
	window := map[string]int64{}
	for _, l := range rec.Key.RateLimits {
		window[l.Name] = l.WindowSeconds
	}
	cut := now.Add(-skew).Unix()
	gone := func(end int64) {
		floor = max(floor, end)
	}
	for c := range rec.RL {
		if len(out) == maxRemovals {
			return out, floor
		}
		if current[c] {
			continue
		}
		w, known := window[key.CounterName(c)]
		end, ok := key.CounterWindowEnd(c, max(w, 1))
		if known && ok && end > cut {
			continue
		}
		if known && ok {
			gone(end)
		}
		n := "#x" + strconv.Itoa(len(out))
		names[n], names["#rl"] = c, "rl"
		out = append(out, "#rl."+n)
	}
	if q := rec.Key.Quota; q != nil && q.Period != key.Total {
		for p := range rec.Q {
			if len(out) == maxRemovals {
				return out, floor
			}
			end, ok := key.PeriodKeyEnd(p)
			if current["q:"+p] || p == "total" || (ok && end > cut) {
				continue // a later period is some environment's current one
			}
			if ok {
				gone(end)
			}
			n := "#x" + strconv.Itoa(len(out))
			names[n], names["#q"] = p, "q"
			out = append(out, "#q."+n)
		}
	}
	// A day's usage counters go once the day ended more than skew ago:
	// the consumer has its final values from the stream by then (the
	// update that removes them carries them in its old image).
	today := key.UsageDay(now.Add(-skew))
	for d := range rec.Usage {
		if len(out) >= maxRemovals-1 {
			return out, floor
		}
		if current["u:"+d] || d >= today {
			continue
		}
		n := "#x" + strconv.Itoa(len(out))
		names[n], names["#u"], names["#sp"] = d, attrUsage, attrSpent
		out = append(out, "#u."+n, "#sp."+n)
	}
	return out, floor
}

func decodeRecord(av map[string]ddb.AttributeValue) (*Record, error) {
	k, it, err := decodeHot(av)
	if err != nil {
		return nil, err
	}
	rl, q, u := it.RL, it.Q, it.Usage
	if rl == nil {
		rl = map[string]int64{}
	}
	if q == nil {
		q = map[string]int64{}
	}
	if u == nil {
		u = map[string]int64{}
	}
	return &Record{Key: k, RL: rl, Q: q, Usage: u, Floor: it.Floor}, nil
}
