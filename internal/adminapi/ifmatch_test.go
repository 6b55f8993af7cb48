package adminapi_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// An admin disabling a key with curl sends no If-Match: the change applies
// to the key as it is, and is audited like any other. If-Match, when sent,
// is still enforced.
func TestUpdateWithoutIfMatchAppliesToTheCurrentKey(t *testing.T) {
	e := newEnv(t)
	id := e.issue(fullBody).str("id")
	if r := e.do(http.MethodPatch, "/v1/keys/"+id, `{"name":"renamed"}`, "If-Match", `"1"`); r.Code != 200 {
		t.Fatalf("update with If-Match: %d %s", r.Code, r.Body)
	}
	r := e.do(http.MethodPatch, "/v1/keys/"+id, `{"enabled":false}`)
	if r.Code != 200 || r.str("status") != "disabled" || r.str("name") != "renamed" || r.Header().Get("ETag") != `"3"` {
		t.Fatalf("disable without If-Match: %d %s", r.Code, r.Body)
	}
	if r := e.do(http.MethodPatch, "/v1/keys/"+id, `{"enabled":true}`, "If-Match", `"2"`); r.Code != 412 || r.str("code") != "precondition_failed" {
		t.Fatalf("a stale If-Match after an unconditional change: %d %s", r.Code, r.Body)
	}
	recs := e.do(http.MethodGet, "/v1/keys/"+id+"/audit", "").json["records"].([]any)
	last := recs[len(recs)-1].(map[string]any)
	if last["action"] != "key.update" || last["version"] != 3.0 || last["changes"].(map[string]any)["enabled"] == nil {
		t.Fatalf("the unconditional change's audit record: %v", last)
	}
}

// Concurrent changes without If-Match all read the same version; the ones
// that lose the race are applied again to the key as it then is, never
// refused with 412: the client asked for no precondition.
func TestUnconditionalUpdatesNeverFailAPrecondition(t *testing.T) {
	e := newEnv(t)
	id := e.issue(fullBody).str("id")
	const writers = 3
	codes := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do(http.MethodPatch, "/v1/keys/"+id, `{"name":"writer `+strconv.Itoa(i)+`"}`).Code
		}()
	}
	wg.Wait()
	applied := 0
	for i, c := range codes {
		switch c {
		case 200:
			applied++
		case 503: // DynamoDB refused a transaction that collided with another: retry
		default:
			t.Errorf("writer %d: %d, want 200 (or 503 for a transaction conflict)", i, c)
		}
	}
	got := e.do(http.MethodGet, "/v1/keys/"+id, "")
	if got.json["version"] != float64(1+applied) {
		t.Errorf("version %v after %d applied changes", got.json["version"], applied)
	}
}
