package rotator_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
)

const issueBody = `{"name":"billing","ownerId":"acme","environment":"live","scopes":["read:users"],
	"rateLimits":[{"name":"second","limit":10,"windowSeconds":1}],"quota":{"limit":1000,"period":"month"},
	"allowedCidrs":["203.0.113.0/24"],"metadata":{"plan":"pro"}}`

func TestRotateRouteGracePeriodFromBothSides(t *testing.T) {
	e := newEnv(t, policy())
	old := e.issue(issueBody)
	r := e.do(e.rotate, "POST", "/v1/keys/"+old+"/rotate", `{"gracePeriodSeconds": 3600}`)
	if r.status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	plain, _ := r.body["key"].(string)
	newID, _ := r.body["id"].(string)
	if !strings.HasPrefix(plain, "kg_sk_live_") || r.body["previousKeyId"] != old || newID == old || r.body["status"] != "active" {
		t.Fatalf("rotate response: %s", r.raw)
	}
	if r.header.Get("Location") != "/v1/keys/"+newID {
		t.Fatalf("Location = %q", r.header.Get("Location"))
	}
	nk, err := e.store.GetByHash(context.Background(), e.hasher.Sum(plain))
	if err != nil || nk.ID != newID {
		t.Fatalf("the returned plaintext does not find the new key: %v", err)
	}
	ok := e.get(old)
	if ok.NextKeyID != newID || nk.PreviousKeyID != old {
		t.Fatalf("not linked both ways: old.next=%q new.prev=%q", ok.NextKeyID, nk.PreviousKeyID)
	}
	if nk.Name != "billing" || nk.Quota.Limit != 1000 || nk.RateLimits[0].Limit != 10 || nk.Metadata["plan"] != "pro" ||
		len(nk.AllowedCIDRs) != 1 || nk.Scopes[0] != "read:users" {
		t.Fatalf("settings not carried over: %+v", nk)
	}
	end := t0.Add(time.Hour)
	for _, c := range []struct {
		at        time.Time
		old, next key.Status
	}{
		{t0, key.Active, key.Active},
		{end.Add(-time.Millisecond), key.Active, key.Active},
		{end, key.Expired, key.Active},
	} {
		if s := ok.StatusAt(c.at); s != c.old {
			t.Errorf("old key at t0+%v is %s, want %s", c.at.Sub(t0), s, c.old)
		}
		if s := nk.StatusAt(c.at); s != c.next {
			t.Errorf("new key at t0+%v is %s, want %s", c.at.Sub(t0), s, c.next)
		}
	}
	// The API says the same as the store.
	e.set(end.Add(-time.Millisecond))
	if g := e.do(e.issuer, "GET", "/v1/keys/"+old, ""); g.body["status"] != "active" {
		t.Fatalf("old key 1 ms before the grace ends: %s", g.raw)
	}
	e.set(end)
	if g := e.do(e.issuer, "GET", "/v1/keys/"+old, ""); g.body["status"] != "expired" {
		t.Fatalf("old key when the grace ends: %s", g.raw)
	}

	c := e.counts()
	if c[old][lifecycle.KeyRotated] != 1 {
		t.Fatalf("events: %v, want one key.rotated for the old key", c)
	}
	for _, id := range []string{old, newID} {
		p, err := e.store.ListAudit(context.Background(), id, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		last := p.Records[len(p.Records)-1]
		if last.Actor != alice {
			t.Fatalf("audit actor %q", last.Actor)
		}
		if id == old && last.Action != "key.rotate" || id == newID && last.Action != "key.create" {
			t.Fatalf("audit of %s: %+v", id, p.Records)
		}
	}
	e.checkNoPlaintext()
}

func TestRotateGraceZeroStopsTheOldKeyAtOnce(t *testing.T) {
	e := newEnv(t, policy())
	old := e.issue(issueBody)
	r := e.do(e.rotate, "POST", "/v1/keys/"+old+"/rotate", `{"gracePeriodSeconds": 0}`)
	if r.status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	if s := e.get(old).StatusAt(t0); s != key.Expired {
		t.Fatalf("grace 0: old key is %s, want expired", s)
	}
	// Without a body the default grace (a day, within the maximum) applies.
	other := e.issue(issueBody)
	if r := e.do(e.rotate, "POST", "/v1/keys/"+other+"/rotate", ""); r.status != http.StatusCreated {
		t.Fatalf("rotate without a body: %d %s", r.status, r.raw)
	}
	if got := e.get(other).ExpiresAt; !got.Equal(t0.Add(24 * time.Hour)) {
		t.Fatalf("default grace: old key expires %v", got)
	}
}

func TestRotateRetryWithIdempotencyKeyReturnsTheSameKey(t *testing.T) {
	e := newEnv(t, policy())
	old := e.issue(issueBody)
	first := e.do(e.rotate, "POST", "/v1/keys/"+old+"/rotate", `{"gracePeriodSeconds": 60}`, "Idempotency-Key", "rot-1")
	e.set(t0.Add(time.Second))
	again := e.do(e.rotate, "POST", "/v1/keys/"+old+"/rotate", `{ "gracePeriodSeconds":60 }`, "Idempotency-Key", "rot-1")
	if first.status != http.StatusCreated || again.status != http.StatusCreated {
		t.Fatalf("statuses %d, %d: %s", first.status, again.status, again.raw)
	}
	if again.body["id"] != first.body["id"] || again.body["key"] != first.body["key"] || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the retry returned another key:\n%s\n%s", first.raw, again.raw)
	}
	list := e.do(e.issuer, "GET", "/v1/keys?ownerId=acme", "")
	if n := len(list.body["keys"].([]any)); n != 2 {
		t.Fatalf("the owner has %d keys after a retried rotation, want 2", n)
	}
	if c := e.counts()[old][lifecycle.KeyRotated]; c != 1 {
		t.Fatalf("%d key.rotated events, want 1", c)
	}
	// The same header for another request is refused, and changes nothing.
	other := e.do(e.rotate, "POST", "/v1/keys/"+old+"/rotate", `{"gracePeriodSeconds": 0}`, "Idempotency-Key", "rot-1")
	if other.status != http.StatusUnprocessableEntity || other.body["code"] != "idempotency_key_reused" {
		t.Fatalf("reused key with another body: %d %s", other.status, other.raw)
	}
	e.checkNoPlaintext()
}

func TestConcurrentRotationsThroughTheAPI(t *testing.T) {
	e := newEnv(t, policy())
	old := e.issue(issueBody)
	var wg sync.WaitGroup
	statuses := make([]response, 5)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do(e.rotate, "POST", "/v1/keys/"+old+"/rotate", `{"gracePeriodSeconds": 60}`)
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range statuses {
		switch {
		case r.status == http.StatusCreated:
			won++
		case r.status == http.StatusConflict && r.body["code"] == "conflict" && strings.Contains(r.raw, old):
		default:
			t.Errorf("a losing rotation got %d %s, want 409 conflict naming the key", r.status, r.raw)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent rotations succeeded, want 1", won)
	}
	list := e.do(e.issuer, "GET", "/v1/keys?ownerId=acme", "")
	if n := len(list.body["keys"].([]any)); n != 2 {
		t.Fatalf("the owner has %d keys, want 2", n)
	}
}

func TestRotateBadInputIsAProblemAndChangesNothing(t *testing.T) {
	e := newEnv(t, policy())
	old := e.issue(issueBody)
	revoked := e.issue(issueBody)
	e.do(e.issuer, "DELETE", "/v1/keys/"+revoked, "")
	for _, c := range []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "/v1/keys/" + old + "/rotate", `{"gracePeriodSeconds": -1}`, 400, "invalid_request", "gracePeriodSeconds"},
		{"POST", "/v1/keys/" + old + "/rotate", `{"gracePeriodSeconds": 604801}`, 400, "invalid_request", "gracePeriodSeconds"},
		{"POST", "/v1/keys/" + old + "/rotate", `{"gracePeriodSeconds": "1h"}`, 400, "invalid_request", "gracePeriodSeconds"},
		{"POST", "/v1/keys/" + old + "/rotate", `{"grace": 1}`, 400, "invalid_request", ""}, // an unknown field is never named
		{"POST", "/v1/keys/" + old + "/rotate", `{`, 400, "invalid_request", ""},
		{"POST", "/v1/keys/" + old + "/rotate?x=1", `{}`, 400, "invalid_request", "x"},
		{"POST", "/v1/keys/" + key.NewID() + "/rotate", `{}`, 404, "not_found", ""},
		{"POST", "/v1/keys/not-an-id/rotate", `{}`, 404, "not_found", ""},
		{"POST", "/v1/keys/" + revoked + "/rotate", `{}`, 409, "conflict", ""},
		{"GET", "/v1/keys/" + old + "/rotate", ``, 405, "method_not_allowed", ""},
		{"POST", "/v1/keys", `{}`, 404, "not_found", ""},
	} {
		r := e.do(e.rotate, c.method, c.path, c.body)
		if r.status != c.status || r.body["code"] != c.code || (c.field != "" && r.body["field"] != c.field) ||
			r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s %s: %d %s, want %d %s field %q", c.method, c.path, c.body, r.status, r.raw, c.status, c.code, c.field)
		}
	}
	if k := e.get(old); k.NextKeyID != "" || k.Version != 1 {
		t.Fatalf("bad input changed the key: %+v", k)
	}
	if list := e.do(e.issuer, "GET", "/v1/keys?ownerId=acme", ""); len(list.body["keys"].([]any)) != 2 {
		t.Fatalf("bad input created a key: %s", list.raw)
	}
}
