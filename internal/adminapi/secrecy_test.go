package adminapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/leaktest"
)

// TestPlaintextOnlyInTheIssueResponse drives every route, including
// idempotent replays and errors, then looks for any run of
// leaktest.MinRun characters of each issued key's secret in every other
// response (problem bodies included), every log line, every audit record
// (through the API and in the table), every event and the whole table.
func TestPlaintextOnlyInTheIssueResponse(t *testing.T) {
	e := newEnv(t)
	var plains, ids []string
	for i, hdr := range [][]string{nil, {"Idempotency-Key", "secrecy"}} {
		r := e.issue(fmt.Sprintf(`{"name":"k%d","ownerId":"acme","environment":"live","metadata":{"team":"a"}}`, i), hdr...)
		plains, ids = append(plains, r.str("key")), append(ids, r.str("id"))
	}
	// A replay is a response that issues (returns) the key again: it is the
	// issue response, repeated on purpose. Everything else must not show it.
	e.issue(`{"name":"k1","ownerId":"acme","environment":"live","metadata":{"team":"a"}}`, "Idempotency-Key", "secrecy")
	for _, id := range ids {
		e.do(http.MethodGet, "/v1/keys/"+id, "")
		e.do(http.MethodPatch, "/v1/keys/"+id, `{"name":"renamed","metadata":{"team":"b"}}`, "If-Match", `"1"`)
		e.do(http.MethodGet, "/v1/keys/"+id+"/usage", "")
		e.do(http.MethodGet, "/v1/keys/"+id+"/audit", "")
		e.do(http.MethodDelete, "/v1/keys/"+id, "")
		e.do(http.MethodDelete, "/v1/keys/"+id, "")
		e.do(http.MethodPatch, "/v1/keys/"+id, `{"name":"x"}`, "If-Match", `"3"`)
	}
	e.do(http.MethodGet, "/v1/keys?ownerId=acme&limit=1", "")
	e.do(http.MethodPost, "/v1/keys", `{"name":"k1","ownerId":"acme","environment":"test"}`, "Idempotency-Key", "secrecy")
	e.advance(time.Hour)

	events, _ := json.Marshal(e.eventsCopy())
	places := map[string]string{
		"responses": strings.Join(e.responses, "\n"),
		"logs":      e.logs.String(),
		"events":    string(events),
		"table":     e.dump(),
	}
	if len(e.eventsCopy()) != 6 || !strings.Contains(places["logs"], "admin request") {
		t.Fatalf("the test saw too little: %d events, logs %q", len(e.eventsCopy()), places["logs"])
	}
	leaktest.Check(t, places, plains...)
}
