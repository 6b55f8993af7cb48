package adminapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/localstream"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/usage"
)

// consume runs the usage consumer over everything the env's table stream
// holds, as the local stack does.
func (e *env) consume() {
	e.t.Helper()
	ctx := context.Background()
	arn, err := localstream.StreamARN(ctx, e.db, e.table)
	if err != nil {
		e.t.Fatal(err)
	}
	h := usage.New(store.New(e.db, e.table, store.Options{}), usage.Options{})
	p := localstream.New(localstream.Client(dynamotest.Endpoint(e.t)), arn,
		func(ctx context.Context, ev events.DynamoDBEvent) error { return h.Handle(ctx, ev) },
		localstream.Options{Filter: usage.Wanted})
	if err := p.Drain(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// verify counts n requests of the key issued in r, at a route of the given
// cost, as the authorizer does.
func (e *env) verify(r resp, n int, cost int64) {
	e.t.Helper()
	k, err := e.store.GetByHash(context.Background(), e.hasher.Sum(r.str("key")))
	if err != nil {
		e.t.Fatal(err)
	}
	var rec *store.Record
	for range n {
		in := store.VerifyInput{Hash: k.Hash, Now: e.clock(), Cost: cost, Known: rec, Shape: k}
		res, err := e.store.Verify(context.Background(), in)
		if err != nil || !res.Admitted {
			e.t.Fatalf("verification: admitted=%v err=%v", res.Admitted, err)
		}
		rec = res.Record
	}
}

func csvRows(t *testing.T, r resp) [][]string {
	t.Helper()
	if ct := r.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q, want text/csv", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(r.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// An owner's usage per day and per key and day, as JSON and as CSV, and a
// key's usage as CSV, all agree with the requests made and with each other.
func TestOwnerUsageJSONAndCSV(t *testing.T) {
	e := newEnv(t)
	a := e.issue(`{"name":"a","ownerId":"acme","environment":"live"}`)
	b := e.issue(`{"name":"b","ownerId":"acme","environment":"live"}`)
	other := e.issue(`{"name":"c","ownerId":"globex","environment":"live"}`)
	day0 := e.clock().Format(time.DateOnly)
	e.verify(a, 3, 1)
	e.verify(b, 2, 5)
	e.verify(other, 7, 1)
	e.advance(24 * time.Hour)
	day1 := e.clock().Format(time.DateOnly)
	e.verify(a, 1, 1)
	e.consume()

	q := "?from=" + day0 + "&to=" + day1
	u := e.do(http.MethodGet, "/v1/owners/acme/usage"+q, "")
	if u.Code != 200 || u.str("ownerId") != "acme" || u.json["total"] != 6.0 || u.json["credits"] != 14.0 {
		t.Fatalf("owner usage: %d %s", u.Code, u.Body)
	}
	days, _ := json.Marshal(u.json["days"])
	if want := `[{"count":5,"credits":13,"date":"` + day0 + `"},{"count":1,"credits":1,"date":"` + day1 + `"}]`; string(days) != want {
		t.Fatalf("owner days %s, want %s", days, want)
	}
	if _, ok := u.json["keys"]; ok {
		t.Fatalf("keys without by=key: %s", u.Body)
	}
	rows := csvRows(t, e.do(http.MethodGet, "/v1/owners/acme/usage"+q, "", "Accept", "text/csv"))
	if want := [][]string{{"date", "count", "credits"}, {day0, "5", "13"}, {day1, "1", "1"}}; !equalRows(rows, want) {
		t.Fatalf("owner CSV %v, want %v", rows, want)
	}
	byKey := e.do(http.MethodGet, "/v1/owners/acme/usage"+q+"&by=key", "")
	keys, _ := json.Marshal(byKey.json["keys"])
	ida, idb := a.str("id"), b.str("id")
	first, second := ida, idb
	if idb < ida {
		first, second = idb, ida
	}
	want := map[string][2]string{day0 + " " + ida: {"3", "3"}, day0 + " " + idb: {"2", "10"}, day1 + " " + ida: {"1", "1"}}
	if byKey.Code != 200 || byKey.json["total"] != 6.0 || !strings.Contains(string(keys), first) || strings.Index(string(keys), first) > strings.Index(string(keys), second) {
		t.Fatalf("by key: %s", byKey.Body)
	}
	// CSV, one row per page: each page links the next.
	var got [][]string
	next := "/v1/owners/acme/usage" + q + "&by=key&limit=1"
	for pages := 0; next != ""; pages++ {
		r := e.do(http.MethodGet, next, "", "Accept", "text/csv")
		rows := csvRows(t, r)
		if strings.Join(rows[0], ",") != "date,keyId,count,credits" {
			t.Fatalf("header %v", rows[0])
		}
		got = append(got, rows[1:]...)
		next = ""
		if l := r.Header().Get("Link"); l != "" {
			ref := strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
			u, err := url.Parse(ref)
			if err != nil || u.Path != "" {
				t.Fatalf("Link %q: want a query-only reference", l)
			}
			next = "/v1/owners/acme/usage?" + u.RawQuery
		}
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
	}
	if len(got) != len(want) {
		t.Fatalf("per-key CSV rows %v, want %v", got, want)
	}
	for _, r := range got {
		if w, ok := want[r[0]+" "+r[1]]; !ok || w != [2]string{r[2], r[3]} {
			t.Fatalf("per-key CSV row %v, want one of %v", r, want)
		}
	}
	// A key's usage as CSV: one row per day, zero-filled.
	rows = csvRows(t, e.do(http.MethodGet, "/v1/keys/"+ida+"/usage"+q, "", "Accept", "text/csv, application/json;q=0.5"))
	if want := [][]string{{"date", "keyId", "count", "credits"}, {day0, ida, "3", "3"}, {day1, ida, "1", "1"}}; !equalRows(rows, want) {
		t.Fatalf("key CSV %v, want %v", rows, want)
	}
	// JSON wins when preferred or when Accept names neither.
	for _, accept := range []string{"application/json", "text/csv;q=0.2, application/json", "*/*", "text/html"} {
		if r := e.do(http.MethodGet, "/v1/keys/"+ida+"/usage"+q, "", "Accept", accept); r.json["total"] != 4.0 || r.json["credits"] != 4.0 {
			t.Fatalf("Accept %q: %s", accept, r.Body)
		}
	}
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], ",") != strings.Join(b[i], ",") {
			return false
		}
	}
	return true
}

// Bad usage requests are refused with a problem naming the field, and
// change nothing.
func TestOwnerUsageBadInput(t *testing.T) {
	e := newEnv(t)
	today := e.clock().Format(time.DateOnly)
	for path, field := range map[string]string{
		"/v1/owners/acme/usage?by=owner":                         "by",
		"/v1/owners/acme/usage?limit=10":                         "by",
		"/v1/owners/acme/usage?by=key&limit=0":                   "limit",
		"/v1/owners/acme/usage?by=key&limit=1001":                "limit",
		"/v1/owners/acme/usage?by=key&cursor=forged":             "cursor",
		"/v1/owners/acme/usage?from=2025-01-01&to=" + today:      "from",
		"/v1/owners/acme/usage?from=" + today + "&to=2020-01-01": "to",
		"/v1/owners/acme/usage?to=yesterday":                     "to",
		"/v1/owners/acme/usage?ownerId=acme":                     "ownerId",
		"/v1/owners/a%20b/usage":                                 "ownerId",
	} {
		if r := e.do(http.MethodGet, path, ""); r.Code != 400 || r.str("field") != field {
			t.Errorf("%s: %d %s, want 400 on %s", path, r.Code, r.Body, field)
		}
	}
	if r := e.do(http.MethodPost, "/v1/owners/acme/usage", ""); r.Code != 405 || !strings.Contains(r.Header().Get("Allow"), "GET") {
		t.Errorf("POST: %d %s", r.Code, r.Body)
	}
	// A cursor of another owner's listing is refused too.
	a := e.issue(`{"name":"a","ownerId":"acme","environment":"live"}`)
	b := e.issue(`{"name":"b","ownerId":"acme","environment":"live"}`)
	e.verify(a, 1, 1)
	e.verify(b, 1, 1)
	e.consume()
	p := e.do(http.MethodGet, "/v1/owners/acme/usage?by=key&limit=1", "")
	if p.str("nextCursor") == "" {
		t.Fatalf("no next page: %s", p.Body)
	}
	if r := e.do(http.MethodGet, "/v1/owners/globex/usage?by=key&cursor="+url.QueryEscape(p.str("nextCursor")), ""); r.Code != 400 || r.str("field") != "cursor" {
		t.Fatalf("cursor of another owner: %d %s", r.Code, r.Body)
	}
}
