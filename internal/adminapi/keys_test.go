package adminapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/store"
)

const fullBody = `{
  "name": "billing service", "ownerId": "acme", "type": "secret", "environment": "live",
  "scopes": ["read:users", "write:orders"], "expiresAt": "2027-06-01T00:00:00Z",
  "rateLimits": [{"name": "second", "limit": 10, "windowSeconds": 1}, {"name": "day", "limit": 10000, "windowSeconds": 86400}],
  "quota": {"limit": 100000, "period": "month"},
  "allowedOrigins": ["https://app.example.com"], "allowedCidrs": ["203.0.113.7/24"],
  "metadata": {"plan": "pro"}
}`

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	issued := e.issue(fullBody)
	id, plain := issued.str("id"), issued.str("key")
	if _, err := format.Parse(plain); err != nil || !strings.HasPrefix(plain, "kg_sk_live_") {
		t.Fatalf("issued key %q does not parse: %v", plain, err)
	}
	if issued.Header().Get("ETag") != `"1"` || issued.Header().Get("Location") != "/v1/keys/"+id {
		t.Fatalf("ETag %q Location %q", issued.Header().Get("ETag"), issued.Header().Get("Location"))
	}
	if issued.str("hint") != apikey.Hint(apikey.Key{Plaintext: plain}) || issued.str("status") != "active" ||
		issued.json["allowedCidrs"].([]any)[0] != "203.0.113.0/24" || issued.json["version"] != 1.0 {
		t.Fatalf("issued key: %s", issued.Body)
	}
	// The table finds the key by the hash of what the client got.
	if k, err := e.store.GetByHash(context.Background(), e.hasher.Sum(plain)); err != nil || k.ID != id {
		t.Fatalf("key not stored under the hash of its plaintext: %v", err)
	}

	got := e.do(http.MethodGet, "/v1/keys/"+id, "")
	if got.Code != 200 || got.json["key"] != nil || got.str("name") != "billing service" || got.Header().Get("ETag") != `"1"` {
		t.Fatalf("get: %d %s", got.Code, got.Body)
	}

	list := e.do(http.MethodGet, "/v1/keys?ownerId=acme", "")
	if list.Code != 200 || len(list.json["keys"].([]any)) != 1 {
		t.Fatalf("list: %d %s", list.Code, list.Body)
	}

	e.advance(time.Minute)
	upd := e.do(http.MethodPatch, "/v1/keys/"+id, `{"name":"billing v2","enabled":false,"quota":null,"scopes":["read:users"]}`, "If-Match", `"1"`)
	if upd.Code != 200 || upd.str("status") != "disabled" || upd.json["quota"] != nil || upd.json["version"] != 2.0 ||
		upd.Header().Get("ETag") != `"2"` || upd.str("name") != "billing v2" {
		t.Fatalf("update: %d %s", upd.Code, upd.Body)
	}
	if r := e.do(http.MethodPatch, "/v1/keys/"+id, `{"enabled":true}`, "If-Match", `"1"`); r.Code != 412 || r.str("code") != "precondition_failed" {
		t.Fatalf("stale If-Match: %d %s", r.Code, r.Body)
	}
	if r := e.do(http.MethodPatch, "/v1/keys/"+id, `{"enabled":true}`, "If-Match", `"2"`); r.Code != 200 || r.str("status") != "active" {
		t.Fatalf("re-enable: %d %s", r.Code, r.Body)
	}

	e.advance(time.Minute)
	rev := e.do(http.MethodDelete, "/v1/keys/"+id, "")
	if rev.Code != 200 || rev.str("status") != "revoked" || rev.str("revokedAt") == "" {
		t.Fatalf("revoke: %d %s", rev.Code, rev.Body)
	}
	e.advance(time.Minute)
	again := e.do(http.MethodDelete, "/v1/keys/"+id, "")
	if again.Code != 200 || again.str("revokedAt") != rev.str("revokedAt") || again.json["version"] != rev.json["version"] {
		t.Fatalf("second revoke changed the key: %s then %s", rev.Body, again.Body)
	}
	if r := e.do(http.MethodPatch, "/v1/keys/"+id, `{"name":"zombie"}`, "If-Match", fmt.Sprint(rev.json["version"])); r.Code != 409 || r.str("code") != "conflict" {
		t.Fatalf("update of a revoked key: %d %s", r.Code, r.Body)
	}
	// The record is kept, with a TTL 90 days out.
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &e.table, Key: store.ItemKey(store.KeyPK(e.hasher.Sum(plain)), "KEY")})
	if err != nil {
		t.Fatal(err)
	}
	ttl, _ := out.Item["ttl"].(*ddb.AttributeValueMemberN)
	wantTTL := fmt.Sprint(e.clock().Add(-time.Minute).Add(90 * 24 * time.Hour).Unix())
	if ttl == nil || ttl.Value != wantTTL {
		t.Fatalf("revoked key ttl = %v, want %s", ttl, wantTTL)
	}

	// Audit: one record per change, oldest first, by alice, never a secret.
	audit := e.do(http.MethodGet, "/v1/keys/"+id+"/audit", "")
	recs := audit.json["records"].([]any)
	var actions []string
	for _, r := range recs {
		m := r.(map[string]any)
		actions = append(actions, m["action"].(string))
		if m["actor"] != alice || m["keyId"] != id {
			t.Fatalf("audit record %v", m)
		}
	}
	if strings.Join(actions, ",") != "key.create,key.update,key.update,key.revoke" {
		t.Fatalf("audit actions = %v", actions)
	}
	firstUpdate := recs[1].(map[string]any)["changes"].(map[string]any)
	if firstUpdate["name"].(map[string]any)["to"] != "billing v2" || firstUpdate["quota"].(map[string]any)["to"] != nil {
		t.Fatalf("update audit changes = %v", firstUpdate)
	}
	// Disabling and enabling say so (the wire shows them only as a status).
	for i, want := range map[int][2]any{1: {true, false}, 2: {false, true}} {
		c, _ := recs[i].(map[string]any)["changes"].(map[string]any)["enabled"].(map[string]any)
		if c["from"] != want[0] || c["to"] != want[1] {
			t.Errorf("audit record %d: enabled changes %v, want from %v to %v", i, c, want[0], want[1])
		}
	}
	if page := e.do(http.MethodGet, "/v1/keys/"+id+"/audit?limit=3", ""); len(page.json["records"].([]any)) != 3 || page.str("nextCursor") == "" {
		t.Fatalf("audit page: %s", page.Body)
	} else if next := e.do(http.MethodGet, "/v1/keys/"+id+"/audit?limit=3&cursor="+page.str("nextCursor"), ""); len(next.json["records"].([]any)) != 1 {
		t.Fatalf("audit next page: %s", next.Body)
	}

	// Events: created, updated twice, revoked once (the second revoke is a no-op).
	var types []string
	for _, ev := range e.eventsCopy() {
		types = append(types, ev.Type)
		if ev.KeyID != id || ev.Actor != alice {
			t.Fatalf("event %+v", ev)
		}
	}
	if strings.Join(types, ",") != "key.created,key.updated,key.updated,key.revoked" {
		t.Fatalf("events = %v", types)
	}
}

func TestSessionKeyTTL(t *testing.T) {
	e := newEnv(t)
	issued := e.clock()
	r := e.issue(`{"name":"session","ownerId":"acme","environment":"test","type":"publishable","ttlSeconds":900}`)
	if r.str("expiresAt") != issued.Add(15*time.Minute).Format(time.RFC3339Nano) || !strings.HasPrefix(r.str("key"), "kg_pk_test_") {
		t.Fatalf("session key: %s", r.Body)
	}
	e.advance(16 * time.Minute)
	if g := e.do(http.MethodGet, "/v1/keys/"+r.str("id"), ""); g.str("status") != "expired" {
		t.Fatalf("after its TTL the key is %q", g.str("status"))
	}
	// An expired key can still be changed without touching its expiry.
	if u := e.do(http.MethodPatch, "/v1/keys/"+r.str("id"), `{"name":"old session"}`, "If-Match", `"1"`); u.Code != 200 || u.str("status") != "expired" {
		t.Fatalf("rename of an expired key: %d %s", u.Code, u.Body)
	}
	if u := e.do(http.MethodPatch, "/v1/keys/"+r.str("id"), `{"expiresAt":"`+issued.Format(time.RFC3339)+`"}`, "If-Match", `"2"`); u.Code != 400 || u.str("field") != "expiresAt" {
		t.Fatalf("a new expiry in the past: %d %s", u.Code, u.Body)
	}
}

func TestListFiltersAndPagination(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 5; i++ {
		e.advance(time.Second)
		env := "live"
		if i%2 == 1 {
			env = "test"
		}
		ids = append(ids, e.issue(fmt.Sprintf(`{"name":"k%d","ownerId":"acme","environment":"%s"}`, i, env)).str("id"))
	}
	e.issue(`{"name":"other","ownerId":"globex","environment":"live"}`)
	e.do(http.MethodDelete, "/v1/keys/"+ids[0], "")

	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		path := "/v1/keys?ownerId=acme&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		p := e.do(http.MethodGet, path, "")
		if p.Code != 200 || pages > 5 {
			t.Fatalf("page: %d %s", p.Code, p.Body)
		}
		for _, k := range p.json["keys"].([]any) {
			seen = append(seen, k.(map[string]any)["id"].(string))
		}
		if cursor = p.str("nextCursor"); cursor == "" {
			break
		}
	}
	if len(seen) != 5 || seen[0] != ids[4] || seen[4] != ids[0] {
		t.Fatalf("listing %v, want newest first %v", seen, ids)
	}
	ids2 := func(path string) (out []string) {
		for _, k := range e.do(http.MethodGet, path, "").json["keys"].([]any) {
			out = append(out, k.(map[string]any)["id"].(string))
		}
		return out
	}
	if got := ids2("/v1/keys?ownerId=acme&status=revoked"); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("status=revoked: %v", got)
	}
	if got := ids2("/v1/keys?ownerId=acme&environment=test"); len(got) != 2 {
		t.Fatalf("environment=test: %v", got)
	}
	// A cursor is bound to its owner and signed.
	first := e.do(http.MethodGet, "/v1/keys?ownerId=acme&limit=2", "")
	if r := e.do(http.MethodGet, "/v1/keys?ownerId=globex&cursor="+first.str("nextCursor"), ""); r.Code != 400 || r.str("field") != "cursor" {
		t.Fatalf("cursor of another owner: %d %s", r.Code, r.Body)
	}
}

func TestUsageRange(t *testing.T) {
	e := newEnv(t)
	// day is the UTC date n days from the harness clock's.
	day := func(n int) string { return e.clock().AddDate(0, 0, n).Format(time.DateOnly) }
	r := e.issue(`{"name":"metered","ownerId":"acme","environment":"live"}`)
	// The authorizer's counts, as it writes them on the key item.
	_, err := e.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: &e.table, Key: store.ItemKey(store.KeyPK(e.hasher.Sum(r.str("key"))), "KEY"),
		UpdateExpression:          aws("SET #u.#a = :a, #u.#b = :b, #u.#c = :c"),
		ExpressionAttributeNames:  map[string]string{"#u": "usage", "#a": day(-6), "#b": day(-4), "#c": day(0)},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":a": n("5"), ":b": n("7"), ":c": n("11")},
	})
	if err != nil {
		t.Fatal(err)
	}
	u := e.do(http.MethodGet, "/v1/keys/"+r.str("id")+"/usage?from="+day(-5)+"&to="+day(-3), "")
	b, _ := json.Marshal(u.json["days"])
	// (credits: the raw write above counts requests only)
	want := `[{"count":0,"credits":0,"date":"` + day(-5) + `"},{"count":7,"credits":0,"date":"` + day(-4) + `"},{"count":0,"credits":0,"date":"` + day(-3) + `"}]`
	if u.Code != 200 || string(b) != want || u.json["total"] != 7.0 {
		t.Fatalf("usage: %d %s", u.Code, u.Body)
	}
	def := e.do(http.MethodGet, "/v1/keys/"+r.str("id")+"/usage", "")
	if len(def.json["days"].([]any)) != 30 || def.json["total"] != 23.0 || def.str("to") != day(0) {
		t.Fatalf("default range: %s", def.Body)
	}
}

func aws(s string) *string                  { return &s }
func n(v string) *ddb.AttributeValueMemberN { return &ddb.AttributeValueMemberN{Value: v} }

func TestEventPublishFailureDoesNotFailTheChange(t *testing.T) {
	failing := lifecycle.PublisherFunc(func(context.Context, lifecycle.Event) error {
		return fmt.Errorf("bus down")
	})
	e2 := newEnvWith(t, failing)
	r := e2.issue(`{"name":"k","ownerId":"acme","environment":"live"}`)
	if g := e2.do(http.MethodGet, "/v1/keys/"+r.str("id"), ""); g.Code != 200 {
		t.Fatalf("key missing after a failed publish: %d", g.Code)
	}
	if !strings.Contains(e2.logs.String(), "lifecycle event not published") {
		t.Fatalf("failed publish not logged: %s", e2.logs.String())
	}
}

func TestDeploymentRefusesEnvironmentsItDoesNotAccept(t *testing.T) {
	e := newEnv(t)
	idem := adminapi.NewIdempotency(e.store, nil)
	liveOnly := adminapi.New(adminapi.Options{Store: e.store, Format: format, Hasher: e.hasher, Idempotency: idem, Now: e.clock,
		Environments: []key.Environment{key.Live}, Logger: discard()})
	rec := serve(liveOnly, http.MethodPost, "/v1/keys", `{"name":"n","ownerId":"acme","environment":"test"}`)
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"field":"environment"`) {
		t.Fatalf("test key on a live-only deployment: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(liveOnly, http.MethodPost, "/v1/keys", `{"name":"n","ownerId":"acme","environment":"live"}`); rec.Code != 201 {
		t.Fatalf("live key: %d %s", rec.Code, rec.Body)
	}
}

// TestStoreFailureIsUnavailable points the API at a table that does not
// exist: every route answers 503 unavailable with Retry-After, and nothing
// of DynamoDB's error reaches the client.
func TestStoreFailureIsUnavailable(t *testing.T) {
	e := newEnv(t)
	broken := store.New(e.db, "no-such-table", store.Options{})
	idem := adminapi.NewIdempotency(broken, nil)
	e.api = adminapi.New(adminapi.Options{Store: broken, Format: format, Hasher: e.hasher, Idempotency: idem, Now: e.clock, Logger: discard()})
	id := "key_00000000000000000000000001"
	for _, c := range [][3]string{
		{"POST", "/v1/keys", `{"name":"n","ownerId":"acme","environment":"live"}`},
		{"GET", "/v1/keys/" + id, ""},
		{"GET", "/v1/keys?ownerId=acme", ""},
		{"DELETE", "/v1/keys/" + id, ""},
		{"GET", "/v1/keys/" + id + "/usage", ""},
		{"GET", "/v1/keys/" + id + "/audit", ""},
	} {
		r := e.do(c[0], c[1], c[2])
		if r.Code != 503 || r.str("code") != "unavailable" || r.Header().Get("Retry-After") != "1" || strings.Contains(r.Body.String(), "no-such-table") {
			t.Errorf("%s %s: %d %s", c[0], c[1], r.Code, r.Body)
		}
	}
}
