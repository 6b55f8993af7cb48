package adminapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/admintest"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/wire"
)

// rotator returns the rotate route over e's table and clock.
func (e *env) rotator() *adminapi.Rotator {
	e.t.Helper()
	idem := adminapi.NewIdempotency(e.store, e.Sealer)
	return adminapi.NewRotator(adminapi.Options{Store: e.store, Format: format, Hasher: e.hasher, Idempotency: idem,
		Logger: discard(), Now: e.clock}, 0)
}

// rotate sends a request to the rotator and holds the response against the
// OpenAPI document.
func (e *env) rotate(h http.Handler, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.rotateAs(alice, h, method, path, body, headers...)
}

// rotateAs is rotate as another IAM principal.
func (e *env) rotateAs(who string, h http.Handler, method, path, body string, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := admintest.Serve(h, who, method, path, body, headers...)
	checkDocumented(e.t, method, strings.SplitN(path, "?", 2)[0], rec)
	return rec
}

func TestRotateRouteMatchesTheDocument(t *testing.T) {
	e := newEnv(t)
	rot := e.rotator()
	documented := map[string]bool{}
	for path, item := range openapiDoc(t)["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, r := range adminapi.RotatorRoutes {
		if !documented[r] {
			t.Errorf("rotator route %s is not documented", r)
		}
	}
	if got, want := strings.Join(jsonFields(reflect.TypeOf(wire.RotateRequest{})), ","), strings.Join(schemaProps(t, "RotateRequest"), ","); got != want {
		t.Errorf("RotateRequest: wire fields %s, documented %s", got, want)
	}

	id := e.issue(`{"name":"a","ownerId":"acme","environment":"live"}`).str("id")
	ok := e.rotate(rot, "POST", "/v1/keys/"+id+"/rotate", `{"gracePeriodSeconds": 60}`, "Idempotency-Key", "k1")
	if ok.Code != http.StatusCreated {
		t.Fatalf("rotate: %d %s", ok.Code, ok.Body)
	}
	if again := e.rotate(rot, "POST", "/v1/keys/"+id+"/rotate", `{"gracePeriodSeconds": 60}`, "Idempotency-Key", "k1"); again.Body.String() != ok.Body.String() {
		t.Fatalf("replay differs:\n%s\n%s", ok.Body, again.Body)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/keys/" + id + "/rotate", `{"gracePeriodSeconds": 60}`, http.StatusConflict},
		{"POST", "/v1/keys/" + id + "/rotate", `{"gracePeriodSeconds": -5}`, http.StatusBadRequest},
		{"POST", "/v1/keys/key_00000000000000000000000000/rotate", `{}`, http.StatusNotFound},
		{"DELETE", "/v1/keys/" + id + "/rotate", ``, http.StatusMethodNotAllowed},
		{"POST", "/v1/keys/" + id + "/rotate", `{"gracePeriodSeconds": 1}`, http.StatusUnprocessableEntity},
	} {
		hdr := []string{}
		if c.status == http.StatusUnprocessableEntity {
			hdr = []string{"Idempotency-Key", "k1"}
		}
		if rec := e.rotate(rot, c.method, c.path, c.body, hdr...); rec.Code != c.status {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, rec.Code, rec.Body, c.status)
		}
	}
	// The audit trail, with the scheduled run's actions, matches the document.
	for _, action := range []string{"key.expire", "key.disable"} {
		if err := e.store.PutAudit(context.Background(), store.AuditRecord{KeyID: id, At: e.clock(), Actor: "keygate:rotator",
			Action: action, Version: 10 + int64(len(action)), Changes: map[string]any{"reason": "idle"}}); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.do("GET", "/v1/keys/"+id+"/audit", ""); r.Code != http.StatusOK {
		t.Fatalf("audit: %d %s", r.Code, r.Body)
	}
}
