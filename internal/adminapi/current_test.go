package adminapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/wire"
)

// current reads GET /v1/keys/{id}'s current field.
func (e *env) current(id string) *wire.Current {
	e.t.Helper()
	r := e.do(http.MethodGet, "/v1/keys/"+id, "")
	var k wire.Key
	if err := json.Unmarshal(r.Body.Bytes(), &k); err != nil || r.Code != http.StatusOK {
		e.t.Fatalf("GET the key: %d %s", r.Code, r.Body)
	}
	if k.Current == nil {
		e.t.Fatalf("GET the key has no current: %s", r.Body)
	}
	return k.Current
}

// An admin sees how much of each limit the key has used in the window now
// open, and when it resets; listings leave it out.
func TestGetShowsWhatTheOpenWindowsHold(t *testing.T) {
	e := newEnv(t)
	r := e.issue(`{"name":"metered","ownerId":"acme","type":"secret","environment":"live","scopes":[],
		"rateLimits":[{"name":"minute","limit":5,"windowSeconds":60},{"name":"day","limit":1000,"windowSeconds":86400}],
		"quota":{"limit":100,"period":"day"}}`)
	id := r.str("id")
	e.verify(r, 3, 2)

	c := e.current(id)
	now := e.clock()
	minuteEnd := now.Truncate(time.Minute).Add(time.Minute).UTC().Format(time.RFC3339Nano)
	dayEnd := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour).Format(time.RFC3339Nano)
	if len(c.RateLimits) != 2 {
		t.Fatalf("current rate limits: %+v", c.RateLimits)
	}
	if w := c.RateLimits[0]; w.Name != "minute" || w.Limit != 5 || w.Used != 3 || w.Remaining != 2 || w.ResetAt == nil || *w.ResetAt != minuteEnd {
		t.Errorf("the minute window: %+v (reset %v), want 3 used, 2 remaining, reset at %s", w, deref(w.ResetAt), minuteEnd)
	}
	if w := c.RateLimits[1]; w.Name != "day" || w.Used != 3 || w.Remaining != 997 {
		t.Errorf("the day window: %+v", w)
	}
	// Three requests at a cost of 2 spent 6 credits.
	if q := c.Quota; q == nil || q.Used != 6 || q.Remaining != 94 || q.ResetAt == nil || *q.ResetAt != dayEnd {
		t.Errorf("the quota: %+v, want 6 used, 94 remaining, reset at %s", q, dayEnd)
	}

	// A minute on, the minute window is new; the day and the quota are not.
	e.advance(time.Minute)
	c = e.current(id)
	if w := c.RateLimits[0]; w.Used != 0 || w.Remaining != 5 {
		t.Errorf("the next minute: %+v, want nothing used", w)
	}
	if w := c.RateLimits[1]; w.Used != 3 {
		t.Errorf("the day a minute later: %+v", w)
	}
	if q := c.Quota; q.Used != 6 {
		t.Errorf("the quota a minute later: %+v", q)
	}

	if l := e.do(http.MethodGet, "/v1/keys?ownerId=acme", ""); l.Code != http.StatusOK || json.Valid(l.Body.Bytes()) && containsKey(l.Body.Bytes(), "current") {
		t.Errorf("a listing shows current windows (it reads no hot item): %s", l.Body)
	}
}

// A key without limits shows none, and a total quota never resets.
func TestGetShowsATotalQuotaWithoutReset(t *testing.T) {
	e := newEnv(t)
	r := e.issue(`{"name":"prepaid","ownerId":"acme","type":"secret","environment":"live","scopes":[],"quota":{"limit":10,"period":"total"}}`)
	e.verify(r, 1, 1)
	c := e.current(r.str("id"))
	if len(c.RateLimits) != 0 || c.Quota == nil || c.Quota.Used != 1 || c.Quota.Remaining != 9 || c.Quota.ResetAt != nil {
		t.Errorf("current: %+v, quota %+v", c, c.Quota)
	}
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// containsKey reports whether any object in the JSON document has the
// field name.
func containsKey(doc []byte, name string) bool {
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v[name]; ok {
				return true
			}
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		case []any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	var v any
	_ = json.Unmarshal(doc, &v)
	return walk(v)
}
