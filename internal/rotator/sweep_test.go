package rotator_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/rotator"
	"github.com/keygate/keygate/internal/store"
)

const day = 24 * time.Hour

// runUntilDone runs the sweep with a budget that a ticking clock (1 ms per
// reading) spends after a few keys, until a run reports it completed; it
// returns how many runs that took. Then it runs twice more, which must
// find nothing new to do.
func (e *env) runUntilDone(budget time.Duration) int {
	e.t.Helper()
	var tick time.Time
	e.sweeper.Clock = func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	for runs := 1; runs < 200; runs++ {
		rep, err := e.sweeper.Run(context.Background(), budget)
		if err != nil {
			e.t.Fatalf("run %d: %v", runs, err)
		}
		if rep.Failed > 0 || rep.EventsFailed > 0 {
			e.t.Fatalf("run %d: %+v", runs, rep)
		}
		if rep.Complete {
			for i := 0; i < 2; i++ {
				again, err := e.sweeper.Run(context.Background(), time.Hour)
				if err != nil || !again.Complete || len(again.Events) != 0 || again.Applied != 0 {
					e.e(err, "a run after completion did something: %+v", again)
				}
			}
			return runs
		}
	}
	e.t.Fatal("the sweep never completed")
	return 0
}

func (e *env) e(err error, format string, args ...any) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Fatalf(format, args...)
}

func TestScheduledRunOverManyKeysWithASmallBudget(t *testing.T) {
	p := policy()
	p.IdleAfter = 10 * day
	e := newEnv(t, p)
	var later, soon, open []string // expire on day 30, on day 3, never
	for i := 0; i < 20; i++ {
		later = append(later, e.issue(fmt.Sprintf(`{"name":"later %d","ownerId":"acme","environment":"live","expiresAt":%q}`, i, t0.Add(30*day).Format(time.RFC3339))))
		e.set(t0.Add(-8 * day)) // issued to live 11 days, so a notice is due
		soon = append(soon, e.issue(fmt.Sprintf(`{"name":"soon %d","ownerId":"acme","environment":"live","expiresAt":%q}`, i, t0.Add(3*day).Format(time.RFC3339))))
		e.set(t0)
		open = append(open, e.issue(fmt.Sprintf(`{"name":"open %d","ownerId":"acme","environment":"test"}`, i)))
	}
	want := map[string]map[string]int{}
	expect := func(ids []string, typ string) {
		for _, id := range ids {
			if want[id] == nil {
				want[id] = map[string]int{}
			}
			want[id][typ]++
		}
	}
	check := func(stage string) {
		t.Helper()
		got := e.counts()
		for _, ids := range [][]string{later, soon, open} {
			for _, id := range ids {
				for _, typ := range []string{lifecycle.KeyExpiring, lifecycle.KeyExpired, lifecycle.KeyIdle} {
					if got[id][typ] != want[id][typ] {
						t.Fatalf("%s: key %s has %d %s events, want %d", stage, id, got[id][typ], typ, want[id][typ])
					}
				}
			}
		}
	}

	// Day 0: the keys expiring within the notice period get key.expiring.
	runs := e.runUntilDone(40 * time.Millisecond)
	if runs < 3 {
		t.Fatalf("60 keys took %d runs: the budget did not limit a run", runs)
	}
	expect(soon, lifecycle.KeyExpiring)
	check("day 0")

	// Day 11: the soon keys expired; the keys nobody used went idle, except
	// five that were used on day 5.
	e.set(t0.Add(5 * day))
	for _, id := range open[:5] {
		e.use(id)
	}
	e.set(t0.Add(11 * day))
	e.runUntilDone(40 * time.Millisecond)
	expect(soon, lifecycle.KeyExpired)
	expect(later, lifecycle.KeyIdle)
	expect(open[5:], lifecycle.KeyIdle)
	check("day 11")
	for _, id := range soon {
		k := e.get(id)
		if k.StatusAt(e.clock()) != key.Expired {
			t.Fatalf("soon key is %s on day 11", k.StatusAt(e.clock()))
		}
		if ttl := e.ttlOf(store.KeyPK(k.Hash), "KEY"); ttl != k.ExpiresAt.Add(p.Retention).Unix() {
			t.Fatalf("expired key ttl = %d, want expiry + retention", ttl)
		}
		if ttl := e.ttlOf("ID#"+id, "ID"); ttl != k.ExpiresAt.Add(p.Retention).Unix() {
			t.Fatalf("expired key's id item ttl = %d, want expiry + retention", ttl)
		}
	}

	// Day 40: the later keys expired (their notice, missed while no run
	// happened, is not sent after the fact); the keys used on day 5 are
	// idle now; the idle keys already reported are not reported again.
	e.set(t0.Add(40 * day))
	e.runUntilDone(40 * time.Millisecond)
	expect(later, lifecycle.KeyExpired)
	expect(open[:5], lifecycle.KeyIdle)
	check("day 40")
	e.checkNoPlaintext()
}

func TestScheduledRunMaxAgeAndIdleDisable(t *testing.T) {
	p := policy()
	p.MaxAge = 30 * day
	p.IdleAfter = 10 * day
	p.IdleAction = rotator.IdleDisable
	e := newEnv(t, p)
	old := e.issue(`{"name":"old","ownerId":"acme","environment":"live"}`)
	e.set(t0.Add(25 * day))
	busy := e.issue(`{"name":"busy","ownerId":"acme","environment":"live"}`)
	e.set(t0.Add(31 * day))
	e.use(old) // used, but too old
	e.runUntilDone(time.Hour)

	k := e.get(old)
	if !k.ExpiresAt.Equal(t0.Add(30*day)) || k.StatusAt(e.clock()) != key.Expired {
		t.Fatalf("a key past the maximum age: expiresAt %v, status %s", k.ExpiresAt, k.StatusAt(e.clock()))
	}
	c := e.counts()
	if c[old][lifecycle.KeyExpiring] != 0 || c[old][lifecycle.KeyExpired] != 1 || c[busy][lifecycle.KeyIdle] != 0 {
		t.Fatalf("events: %v", c)
	}
	e.set(t0.Add(36 * day))
	e.runUntilDone(time.Hour)
	b := e.get(busy)
	if b.StatusAt(e.clock()) != key.Disabled {
		t.Fatalf("an idle key with IdleAction=disable is %s", b.StatusAt(e.clock()))
	}
	c = e.counts()
	if c[busy][lifecycle.KeyIdle] != 1 || c[busy][lifecycle.KeyDisabled] != 1 {
		t.Fatalf("events of the disabled key: %v", c[busy])
	}
	audit, err := e.store.ListAudit(context.Background(), busy, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	last := audit.Records[len(audit.Records)-1]
	if last.Action != rotator.ActionDisable || last.Actor != lifecycle.Rotator {
		t.Fatalf("audit of the disabled key: %+v", audit.Records)
	}
	audit, _ = e.store.ListAudit(context.Background(), old, 10, "")
	if last := audit.Records[len(audit.Records)-1]; last.Action != rotator.ActionExpire || last.Actor != lifecycle.Rotator {
		t.Fatalf("audit of the expired key: %+v", audit.Records)
	}
	// Enabling it again (a PATCH) puts it back on the schedule: it is idle
	// again only IdleAfter after that.
	r := e.do(e.issuer, "PATCH", "/v1/keys/"+busy, `{"enabled": true}`, "If-Match", fmt.Sprintf(`"%d"`, b.Version))
	if r.status != http.StatusOK {
		t.Fatalf("re-enable: %d %s", r.status, r.raw)
	}
	e.use(busy)
	e.runUntilDone(time.Hour)
	if e.get(busy).StatusAt(e.clock()) != key.Active {
		t.Fatal("a key used after re-enabling was disabled again at once")
	}
}

func TestSessionKeyExpiresAndIsRemovedByTTL(t *testing.T) {
	e := newEnv(t, policy())
	id := e.issue(`{"name":"session","ownerId":"acme","environment":"live","ttlSeconds":60}`)
	k := e.get(id)
	if !k.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("session key expires at %v", k.ExpiresAt)
	}
	if s := k.StatusAt(t0.Add(time.Minute - time.Millisecond)); s != key.Active {
		t.Fatalf("session key 1 ms before its TTL: %s", s)
	}
	if s := k.StatusAt(t0.Add(time.Minute)); s != key.Expired {
		t.Fatalf("session key at its TTL: %s", s)
	}
	if r := e.do(e.issuer, "POST", "/v1/keys", `{"name":"s","ownerId":"acme","environment":"live","ttlSeconds":3601}`); r.status != http.StatusBadRequest || r.body["field"] != "ttlSeconds" {
		t.Fatalf("ttlSeconds above the maximum: %d %s", r.status, r.raw)
	}
	e.set(t0.Add(30 * time.Second))
	e.runUntilDone(time.Hour) // mid-life: nothing to say about a session key
	e.set(t0.Add(2 * time.Minute))
	e.runUntilDone(time.Hour)
	// No run happened before it expired, so there was no notice to send.
	if c := e.counts()[id]; c[lifecycle.KeyExpired] != 1 || c[lifecycle.KeyExpiring] != 0 {
		t.Fatalf("session key events: %v", c)
	}
	wantTTL := t0.Add(time.Minute).Add(e.sweeper.Policy.Retention).Unix()
	if got := e.ttlOf(store.KeyPK(k.Hash), "KEY"); got != wantTTL {
		t.Fatalf("session key ttl %d, want %d (expiry + retention)", got, wantTTL)
	}
}

func TestRevokedAndRotatedKeysLeaveTheSchedule(t *testing.T) {
	e := newEnv(t, policy())
	revoked := e.issue(issueBody)
	rotated := e.issue(issueBody)
	e.do(e.issuer, "DELETE", "/v1/keys/"+revoked, "")
	r := e.do(e.rotate, "POST", "/v1/keys/"+rotated+"/rotate", `{"gracePeriodSeconds": 3600}`)
	newID := r.body["id"].(string)
	e.set(t0.Add(2 * time.Hour))
	e.runUntilDone(time.Hour)
	k := e.get(revoked)
	if kt, it := e.ttlOf(store.KeyPK(k.Hash), "KEY"), e.ttlOf("ID#"+revoked, "ID"); kt == 0 || it != kt {
		t.Fatalf("revoked key ttl %d, its id item's %d: want the same", kt, it)
	}
	c := e.counts()
	if c[rotated][lifecycle.KeyExpired] != 1 || c[rotated][lifecycle.KeyExpiring] != 0 || c[newID][lifecycle.KeyExpired] != 0 ||
		c[revoked][lifecycle.KeyExpired] != 0 {
		t.Fatalf("events: %v", c)
	}
	for _, id := range []string{revoked, rotated} {
		page, err := e.store.Due(context.Background(), store.DueShard(id), t0.Add(1000*day), 100, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Keys {
			if d.Key.ID == id {
				t.Fatalf("key %s is still on the schedule", id)
			}
		}
	}
}

func TestBudgetKeepsAMarginBeforeTheDeadline(t *testing.T) {
	now := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(time.Minute))
	defer cancel()
	if b := rotator.Budget(ctx, now, 10*time.Minute); b != 55*time.Second {
		t.Fatalf("budget with a minute left: %v, want 55s", b)
	}
	if b := rotator.Budget(ctx, now, 10*time.Second); b != 10*time.Second {
		t.Fatalf("budget capped at 10s: %v", b)
	}
	short, cancel2 := context.WithDeadline(context.Background(), now.Add(5*time.Second))
	defer cancel2()
	if b := rotator.Budget(short, now, time.Minute); b != 4*time.Second {
		t.Fatalf("budget with 5s left: %v, want 4s", b)
	}
}

func TestOverlappingRunsDoEachActionOnce(t *testing.T) {
	p := policy()
	e := newEnv(t, p)
	var ids []string
	e.set(t0.Add(-30 * day))
	for i := 0; i < 24; i++ {
		ids = append(ids, e.issue(fmt.Sprintf(`{"name":"k%d","ownerId":"acme","environment":"live","expiresAt":%q}`, i, t0.Add(time.Duration(i)*time.Hour).Format(time.RFC3339))))
	}
	e.set(t0.Add(12 * time.Hour)) // half expired, half within the notice period
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		sw := *e.sweeper
		sw.PageSize = 3
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := sw.Run(context.Background(), time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e.runUntilDone(time.Hour)
	c := e.counts()
	for i, id := range ids {
		want := lifecycle.KeyExpiring
		if time.Duration(i)*time.Hour <= 12*time.Hour {
			want = lifecycle.KeyExpired
		}
		if c[id][want] != 1 || c[id][lifecycle.KeyExpiring]+c[id][lifecycle.KeyExpired] != 1 {
			t.Fatalf("key %d: events %v, want exactly one %s", i, c[id], want)
		}
	}
}

func TestAChangedPolicyReachesEveryLiveKey(t *testing.T) {
	p := policy()
	p.IdleAfter = 0 // nothing is ever due for a key without an expiry
	e := newEnv(t, p)
	id := e.issue(`{"name":"forever","ownerId":"acme","environment":"live"}`)
	e.runUntilDone(time.Hour)
	e.sweeper.Policy.MaxAge = 10 * day // the deployment turns on a maximum age
	e.set(t0.Add(31 * day))
	e.runUntilDone(time.Hour)
	if c := e.counts()[id]; c[lifecycle.KeyExpired] != 1 {
		t.Fatalf("a maximum age turned on later did not reach an existing key: %v", c)
	}
}

func TestScheduledRunNeverScans(t *testing.T) {
	e := newEnv(t, policy())
	e.set(t0.Add(-30 * day))
	for i := 0; i < 30; i++ {
		e.issue(fmt.Sprintf(`{"name":"k%d","ownerId":"acme","environment":"live","expiresAt":%q}`, i, t0.Add(3*day).Format(time.RFC3339)))
	}
	e.set(t0)
	calls := &dynamotest.Calls{}
	db := dynamotest.Watched(e.db, calls.See)
	e.sweeper.Store = store.New(db, e.table, store.Options{Now: e.clock})
	e.sweeper.PageSize = 10
	rep, err := e.sweeper.Run(context.Background(), time.Hour)
	if err != nil || !rep.Complete || rep.Applied != 30 || rep.Events[lifecycle.KeyExpiring] != 30 {
		t.Fatalf("run: %+v %v", rep, err)
	}
	// One Query per shard page, two BatchGetItems per non-empty page (the
	// keys' record items, then their hot items for their last use), one
	// transaction per key: no Scan, and the reads do not grow with the table.
	ops := calls.Ops()
	if ops["Scan"] != 0 || ops["TransactWriteItems"] != 30 || ops["Query"] > store.DueShards+3*2 ||
		ops["BatchGetItem"] > 2*ops["Query"] || len(ops) != 3 {
		t.Fatalf("DynamoDB calls of one run over 30 due keys: %v", ops)
	}
	t.Logf("DynamoDB calls of one run over 30 due keys: %v", ops)
}

// A key that expired, was given its TTL by the scheduled run and was then
// extended stays manageable: the change clears both of its items' TTL in
// its transaction, a TTL left on either item of a live key (by an older
// version's change, which cleared only one) is removed by the next run,
// and every admin call answers long after the old deletion time.
func TestExtendedKeyLosesItsTTLAndStaysManageable(t *testing.T) {
	e := newEnv(t, policy())
	id := e.issue(fmt.Sprintf(`{"name":"extended","ownerId":"acme","environment":"live","expiresAt":%q}`, t0.Add(day).Format(time.RFC3339)))
	k := e.get(id)
	ttls := func() (hot, rec int64) { return e.ttlOf(store.KeyPK(k.Hash), "KEY"), e.ttlOf("ID#"+id, "ID") }

	e.set(t0.Add(2 * day))
	e.runUntilDone(time.Hour)
	if hot, rec := ttls(); hot == 0 || rec != hot {
		t.Fatalf("expired key: ttl %d on its hot item, %d on its record, want both set, equal", hot, rec)
	}

	until := t0.Add(400 * day).Format(time.RFC3339)
	etag := func() string { return e.do(e.issuer, "GET", "/v1/keys/"+id, "").header.Get("ETag") }
	if r := e.do(e.issuer, "PATCH", "/v1/keys/"+id, fmt.Sprintf(`{"expiresAt":%q}`, until), "If-Match", etag()); r.status != http.StatusOK || r.body["status"] != "active" {
		t.Fatalf("extend: %d %s", r.status, r.raw)
	}
	if hot, rec := ttls(); hot != 0 || rec != 0 {
		t.Fatalf("extended key: ttl %d on its hot item, %d on its record, want none", hot, rec)
	}
	e.runUntilDone(time.Hour)
	if hot, rec := ttls(); hot != 0 || rec != 0 {
		t.Fatalf("extended key after a run: ttl %d, %d, want none", hot, rec)
	}

	// A live key's item still carrying a TTL, either one: the run repairs it.
	for _, pk := range []string{"ID#" + id, store.KeyPK(k.Hash)} {
		sk := "ID"
		if pk != "ID#"+id {
			sk = "KEY"
		}
		if _, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName: aws.String(e.table), Key: store.ItemKey(pk, sk), UpdateExpression: aws.String("SET #t = :t, gsi2sk = :due"),
			ExpressionAttributeNames:  map[string]string{"#t": "ttl"},
			ExpressionAttributeValues: map[string]ddb.AttributeValue{":t": &ddb.AttributeValueMemberN{Value: strconv.FormatInt(t0.Add(3*day).Unix(), 10)}, ":due": &ddb.AttributeValueMemberS{Value: "0"}},
		}); err != nil {
			t.Fatal(err)
		}
		if sk == "KEY" { // gsi2sk belongs to the record: put it back on the schedule, due now
			if _, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
				TableName: aws.String(e.table), Key: store.ItemKey("ID#"+id, "ID"), UpdateExpression: aws.String("SET gsi2sk = :due"),
				ExpressionAttributeValues: map[string]ddb.AttributeValue{":due": &ddb.AttributeValueMemberS{Value: "0"}},
			}); err != nil {
				t.Fatal(err)
			}
		}
		e.runUntilDone(time.Hour)
		if hot, rec := ttls(); hot != 0 || rec != 0 {
			t.Fatalf("a live key with a TTL on %s after a run: ttl %d, %d, want none", pk, hot, rec)
		}
	}

	// Long past the old deletion time, every admin call still answers.
	e.set(t0.Add(200 * day))
	for _, c := range []struct {
		h            http.Handler
		method, path string
		body         string
		want         int
		hdr          []string
	}{
		{e.issuer, "GET", "/v1/keys/" + id, "", http.StatusOK, nil},
		{e.issuer, "GET", "/v1/keys?ownerId=acme", "", http.StatusOK, nil},
		{e.issuer, "PATCH", "/v1/keys/" + id, `{"name":"still here"}`, http.StatusOK, []string{"If-Match", etag()}},
		{e.issuer, "GET", "/v1/keys/" + id + "/usage", "", http.StatusOK, nil},
		{e.rotate, "POST", "/v1/keys/" + id + "/rotate", `{"gracePeriodSeconds":60}`, http.StatusCreated, nil},
		{e.issuer, "DELETE", "/v1/keys/" + id, "", http.StatusOK, nil},
	} {
		if r := e.do(c.h, c.method, c.path, c.body, c.hdr...); r.status != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, r.status, r.raw, c.want)
		}
	}
	e.checkNoPlaintext()
}
