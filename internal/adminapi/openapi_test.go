package adminapi_test

import (
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/wire"
)

// elsewhere lists the documented routes that other functions serve: the
// rotator (rotate) and the token function (tokens, JWKS).
var elsewhere = map[string]bool{
	"POST /v1/keys/{id}/rotate":  true,
	"POST /v1/tokens":            true,
	"GET /.well-known/jwks.json": true,
}

// TestOpenAPIDocumentsEveryRouteAndNoOther holds the handler's routes
// against the document, both ways, and checks the handler answers each one.
func TestOpenAPIDocumentsEveryRouteAndNoOther(t *testing.T) {
	d := openapiDoc(t)
	if d["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v, want 3.1.0", d["openapi"])
	}
	documented := map[string]bool{}
	for path, item := range d["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range adminapi.Routes {
		served[r] = true
		if !documented[r] {
			t.Errorf("route %s is served but not documented", r)
		}
	}
	for r := range documented {
		if !served[r] && !elsewhere[r] {
			t.Errorf("route %s is documented but nobody serves it", r)
		}
	}
	// Every served route is routed (not the 404 fallback).
	e := newEnv(t)
	for r := range served {
		method, path, _ := strings.Cut(r, " ")
		path = strings.ReplaceAll(path, "{id}", "key_00000000000000000000000000")
		rec := serve(e.api, method, path, "{}", "If-Match", `"1"`)
		if rec.Code == http.StatusNotFound && strings.Contains(rec.Body.String(), "no such route") {
			t.Errorf("%s is not routed", r)
		}
	}
	// The served document is the committed one.
	if rec := serve(e.api, http.MethodGet, "/v1/openapi.json", ""); rec.Code != 200 || rec.Body.String() != string(adminapi.OpenAPI) {
		t.Fatalf("GET /v1/openapi.json: %d", rec.Code)
	}
}

// jsonFields returns the JSON names of a struct's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func schemaProps(t *testing.T, name string) []string {
	t.Helper()
	s := openapiDoc(t)["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
	var out []string
	for p := range s["properties"].(map[string]any) {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIBodiesMatchTheWireTypes holds every request and response field
// against the documented schema, both ways.
func TestOpenAPIBodiesMatchTheWireTypes(t *testing.T) {
	for schema, typ := range map[string]reflect.Type{
		"IssueRequest":  reflect.TypeOf(wire.IssueRequest{}),
		"UpdateRequest": reflect.TypeOf(wire.UpdateRequest{}),
		"Key":           reflect.TypeOf(wire.Key{}),
		"KeyList":       reflect.TypeOf(wire.KeyList{}),
		"Usage":         reflect.TypeOf(wire.Usage{}),
		"UsageDay":      reflect.TypeOf(wire.UsageDay{}),
		"OwnerUsage":    reflect.TypeOf(wire.OwnerUsage{}),
		"KeyUsageDay":   reflect.TypeOf(wire.KeyUsageDay{}),
		"AuditList":     reflect.TypeOf(wire.AuditList{}),
		"Problem":       reflect.TypeOf(httpedge.Problem{}),
	} {
		got, want := jsonFields(typ), schemaProps(t, schema)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: wire fields %v, documented %v", schema, got, want)
		}
	}
	// The design's wire names are all there.
	key := strings.Join(schemaProps(t, "Key"), ",")
	for _, f := range []string{"id", "name", "ownerId", "type", "environment", "status", "hint", "scopes", "createdAt",
		"expiresAt", "rateLimits", "quota", "metadata", "allowedOrigins", "allowedCidrs", "key"} {
		if !strings.Contains(","+key+",", ","+f+",") {
			t.Errorf("Key lacks the design's field %s", f)
		}
	}
	// Every problem code the handler can answer with is in the enum.
	enum := openapiDoc(t)["components"].(map[string]any)["schemas"].(map[string]any)["Problem"].(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any)
	codes := map[string]bool{}
	for _, c := range enum {
		codes[c.(string)] = true
	}
	for _, c := range []string{httpedge.CodeInvalidRequest, httpedge.CodeNotFound, httpedge.CodeMethodNotAllowed, httpedge.CodeConflict,
		adminapi.CodeIdempotencyInProgress, adminapi.CodeIdempotencyKeyReused, adminapi.CodeIdempotencyUnreadable,
		httpedge.CodePreconditionFailed, httpedge.CodeBodyTooLarge,
		httpedge.CodeUnsupportedMediaType, httpedge.CodeThrottled, httpedge.CodeUnavailable, httpedge.CodeInternal} {
		if !codes[c] {
			t.Errorf("problem code %s is not documented", c)
		}
	}
}
