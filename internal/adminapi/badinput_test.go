package adminapi_test

import (
	"strings"
	"testing"
)

// TestBadInputIsAProblemAndChangesNothing sends every kind of bad request
// and checks each gets the documented problem, with its code and field, and
// that the table is exactly as it was afterwards.
func TestBadInputIsAProblemAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	k := e.issue(`{"name":"victim","ownerId":"acme","environment":"live","quota":{"limit":10,"period":"day"}}`)
	id := k.str("id")
	missing := "key_00000000000000000000000000"
	big := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	valid := func(extra string) string {
		return `{"name":"n","ownerId":"acme","environment":"live"` + extra + `}`
	}
	cases := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code, field              string
	}{
		{"malformed JSON", "POST", "/v1/keys", `{"name":`, nil, 400, "invalid_request", ""},
		{"not JSON", "POST", "/v1/keys", `name=x`, nil, 400, "invalid_request", ""},
		{"empty body", "POST", "/v1/keys", ``, []string{"Content-Type", "application/json"}, 400, "invalid_request", ""},
		{"two objects", "POST", "/v1/keys", valid("") + `{}`, nil, 400, "invalid_request", ""},
		{"wrong type", "POST", "/v1/keys", `{"name":5,"ownerId":"acme","environment":"live"}`, nil, 400, "invalid_request", "name"},
		{"nested wrong type", "POST", "/v1/keys", valid(`,"quota":{"limit":"lots","period":"day"}`), nil, 400, "invalid_request", "quota.limit"},
		{"unknown field", "POST", "/v1/keys", valid(`,"admin":true`), nil, 400, "invalid_request", ""},
		{"unknown nested field", "POST", "/v1/keys", valid(`,"quota":{"limit":1,"period":"day","x":1}`), nil, 400, "invalid_request", "quota"},
		{"missing name", "POST", "/v1/keys", `{"ownerId":"acme","environment":"live"}`, nil, 400, "invalid_request", "name"},
		{"missing owner", "POST", "/v1/keys", `{"name":"n","environment":"live"}`, nil, 400, "invalid_request", "ownerId"},
		{"bad type", "POST", "/v1/keys", valid(`,"type":"root"`), nil, 400, "invalid_request", "type"},
		{"bad environment", "POST", "/v1/keys", `{"name":"n","ownerId":"acme","environment":"prod"}`, nil, 400, "invalid_request", "environment"},
		{"expiry in the past", "POST", "/v1/keys", valid(`,"expiresAt":"2020-01-01T00:00:00Z"`), nil, 400, "invalid_request", "expiresAt"},
		{"expiry not a time", "POST", "/v1/keys", valid(`,"expiresAt":"tomorrow"`), nil, 400, "invalid_request", "expiresAt"},
		{"expiry and ttl", "POST", "/v1/keys", valid(`,"expiresAt":"2027-01-01T00:00:00Z","ttlSeconds":60`), nil, 400, "invalid_request", "ttlSeconds"},
		{"ttl too long", "POST", "/v1/keys", valid(`,"ttlSeconds":86401`), nil, 400, "invalid_request", "ttlSeconds"},
		{"ttl negative", "POST", "/v1/keys", valid(`,"ttlSeconds":-5`), nil, 400, "invalid_request", "ttlSeconds"},
		{"negative limit", "POST", "/v1/keys", valid(`,"rateLimits":[{"name":"s","limit":-1,"windowSeconds":1}]`), nil, 400, "invalid_request", "rateLimits.limit"},
		{"absurd limit", "POST", "/v1/keys", valid(`,"rateLimits":[{"name":"s","limit":99999999999,"windowSeconds":1}]`), nil, 400, "invalid_request", "rateLimits.limit"},
		{"fractional limit", "POST", "/v1/keys", valid(`,"rateLimits":[{"name":"s","limit":1.5,"windowSeconds":1}]`), nil, 400, "invalid_request", "rateLimits.limit"},
		{"absurd quota", "POST", "/v1/keys", valid(`,"quota":{"limit":10000000000000,"period":"day"}`), nil, 400, "invalid_request", "quota.limit"},
		{"bad quota period", "POST", "/v1/keys", valid(`,"quota":{"limit":1,"period":"year"}`), nil, 400, "invalid_request", "quota.period"},
		{"bad CIDR", "POST", "/v1/keys", valid(`,"allowedCidrs":["10.0.0.0/33"]`), nil, 400, "invalid_request", "allowedCidrs"},
		{"bad origin", "POST", "/v1/keys", valid(`,"allowedOrigins":["javascript:alert(1)"]`), nil, 400, "invalid_request", "allowedOrigins"},
		{"bad scope", "POST", "/v1/keys", valid(`,"scopes":["<script>"]`), nil, 400, "invalid_request", "scopes"},
		{"metadata not an object", "POST", "/v1/keys", valid(`,"metadata":[1]`), nil, 400, "invalid_request", "metadata"},
		{"too large", "POST", "/v1/keys", big, nil, 413, "body_too_large", ""},
		{"not JSON media type", "POST", "/v1/keys", valid(""), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "Content-Type"},
		{"bad idempotency key", "POST", "/v1/keys", valid(""), []string{"Idempotency-Key", "has space"}, 400, "invalid_request", "Idempotency-Key"},
		{"query on issue", "POST", "/v1/keys?dryRun=1", valid(""), nil, 400, "invalid_request", "dryRun"},
		{"get unknown id", "GET", "/v1/keys/" + missing, "", nil, 404, "not_found", ""},
		{"get garbage id", "GET", "/v1/keys/%3Cscript%3E", "", nil, 404, "not_found", ""},
		{"list without owner", "GET", "/v1/keys", "", nil, 400, "invalid_request", "ownerId"},
		{"list bad status", "GET", "/v1/keys?ownerId=acme&status=zombie", "", nil, 400, "invalid_request", "status"},
		{"list bad environment", "GET", "/v1/keys?ownerId=acme&environment=prod", "", nil, 400, "invalid_request", "environment"},
		{"list bad limit", "GET", "/v1/keys?ownerId=acme&limit=1000", "", nil, 400, "invalid_request", "limit"},
		{"list forged cursor", "GET", "/v1/keys?ownerId=acme&cursor=eyJvIjoiYWNtZSJ9", "", nil, 400, "invalid_request", "cursor"},
		{"list unknown parameter", "GET", "/v1/keys?ownerId=acme&sort=name", "", nil, 400, "invalid_request", "sort"},
		{"update bad If-Match", "PATCH", "/v1/keys/" + id, `{"name":"x"}`, []string{"If-Match", "*"}, 400, "invalid_request", "If-Match"},
		{"update stale If-Match", "PATCH", "/v1/keys/" + id, `{"name":"x"}`, []string{"If-Match", `"7"`}, 412, "precondition_failed", "If-Match"},
		{"update weak If-Match", "PATCH", "/v1/keys/" + id, `{"name":"x"}`, []string{"If-Match", `W/"1"`}, 412, "precondition_failed", "If-Match"},
		{"update unknown field", "PATCH", "/v1/keys/" + id, `{"ownerId":"evil"}`, []string{"If-Match", `"1"`}, 400, "invalid_request", ""},
		{"update nothing", "PATCH", "/v1/keys/" + id, `{}`, []string{"If-Match", `"1"`}, 400, "invalid_request", ""},
		{"update null name", "PATCH", "/v1/keys/" + id, `{"name":null}`, []string{"If-Match", `"1"`}, 400, "invalid_request", "name"},
		{"update bad quota", "PATCH", "/v1/keys/" + id, `{"quota":{"limit":0,"period":"day"}}`, []string{"If-Match", `"1"`}, 400, "invalid_request", "quota.limit"},
		{"update wrong type", "PATCH", "/v1/keys/" + id, `{"enabled":"no"}`, []string{"If-Match", `"1"`}, 400, "invalid_request", "enabled"},
		{"update expiry past", "PATCH", "/v1/keys/" + id, `{"expiresAt":"2001-01-01T00:00:00Z"}`, []string{"If-Match", `"1"`}, 400, "invalid_request", "expiresAt"},
		{"update unknown id", "PATCH", "/v1/keys/" + missing, `{"name":"x"}`, []string{"If-Match", `"1"`}, 404, "not_found", ""},
		{"update media type", "PATCH", "/v1/keys/" + id, `{"name":"x"}`, []string{"If-Match", `"1"`, "Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "Content-Type"},
		{"revoke unknown id", "DELETE", "/v1/keys/" + missing, "", nil, 404, "not_found", ""},
		{"usage bad date", "GET", "/v1/keys/" + id + "/usage?from=26-11-2026", "", nil, 400, "invalid_request", "from"},
		{"usage reversed", "GET", "/v1/keys/" + id + "/usage?from=2026-11-20&to=2026-11-01", "", nil, 400, "invalid_request", "to"},
		{"usage too long", "GET", "/v1/keys/" + id + "/usage?from=2024-01-01&to=2026-11-01", "", nil, 400, "invalid_request", "from"},
		{"usage unknown id", "GET", "/v1/keys/" + missing + "/usage", "", nil, 404, "not_found", ""},
		{"audit unknown id", "GET", "/v1/keys/" + missing + "/audit", "", nil, 404, "not_found", ""},
		{"audit bad limit", "GET", "/v1/keys/" + id + "/audit?limit=0", "", nil, 400, "invalid_request", "limit"},
		{"method not allowed", "PUT", "/v1/keys", valid(""), nil, 405, "method_not_allowed", ""},
		{"method not allowed on a key", "POST", "/v1/keys/" + id, valid(""), nil, 405, "method_not_allowed", ""},
		{"no such route", "GET", "/v2/keys", "", nil, 404, "not_found", ""},
	}
	before := e.dump()
	for _, c := range cases {
		r := e.do(c.method, c.path, c.body, c.headers...)
		if r.Code != c.status || r.str("code") != c.code || r.str("field") != c.field {
			t.Errorf("%s: got %d %s field %q, want %d %s field %q (%s)", c.name, r.Code, r.str("code"), r.str("field"), c.status, c.code, c.field, r.Body)
			continue
		}
		if ct := r.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", c.name, ct)
		}
		if r.str("type") != "urn:keygate:problem:"+c.code || r.json["status"] != float64(c.status) || r.str("detail") == "" {
			t.Errorf("%s: not an RFC 9457 problem: %s", c.name, r.Body)
		}
	}
	if after := e.dump(); after != before {
		t.Fatalf("bad input changed the table:\nbefore %s\nafter  %s", before, after)
	}
	// Go's mux serves HEAD wherever it serves GET, so Allow says so.
	if r := e.do("PUT", "/v1/keys", valid("")); r.Header().Get("Allow") != "POST, GET, HEAD" {
		t.Errorf("405 Allow = %q", r.Header().Get("Allow"))
	}
	if len(e.eventsCopy()) != 1 {
		t.Errorf("bad input published events: %v", e.eventsCopy())
	}
}

// TestNothingEchoedUnescaped sends markup in every place a problem could
// repeat it and checks that it never comes back as markup.
func TestNothingEchoedUnescaped(t *testing.T) {
	e := newEnv(t)
	for _, r := range []resp{
		e.do("POST", "/v1/keys", `{"<img src=x onerror=alert(1)>":1}`),
		e.do("GET", "/v1/keys?ownerId=acme&%3Cscript%3E=1", ""),
		e.do("GET", "/v1/keys?ownerId=%3Cscript%3Ealert(1)%3C/script%3E", ""),
		e.do("GET", "/v1/keys/%3Cscript%3Ealert(1)%3C%2Fscript%3E", ""),
		e.do("POST", "/v1/keys", `{"name":"<script>","ownerId":"acme","environment":"live","scopes":["<b>"]}`),
	} {
		if r.Code < 400 || strings.ContainsAny(r.Body.String(), "<>") {
			t.Errorf("markup echoed or accepted: %d %s", r.Code, r.Body)
		}
		if r.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("no nosniff on %s", r.Body)
		}
	}
}
