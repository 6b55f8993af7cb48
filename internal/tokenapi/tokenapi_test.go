package tokenapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/httpedge"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lambdahttp"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/token"
	"github.com/keygate/keygate/internal/tokenapi"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

var t0 = time.Now().UTC().Truncate(time.Second)

type env struct {
	h     http.Handler
	st    *store.Store
	table string
	logs  *bytes.Buffer
}

// newEnv serves the handler over a fresh table, its options changed by mods.
func newEnv(t *testing.T, mods ...func(*tokenapi.Options)) *env {
	t.Helper()
	db, table := dynamotest.Table(t)
	st := store.New(db, table, store.Options{})
	s := token.DefaultSettings()
	ring := token.NewKeyring(st, &token.LocalBackend{}, 0)
	logs := &bytes.Buffer{}
	o := tokenapi.Options{Keys: st, Issuer: token.NewIssuer(ring, s), Ring: ring, Exchanges: st,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: func() time.Time { return t0 }}
	for _, m := range mods {
		m(&o)
	}
	h := tokenapi.New(o)
	return &env{h: h, st: st, table: table, logs: logs}
}

func (e *env) key(t *testing.T, mod func(*key.Key)) *key.Key {
	t.Helper()
	k := &key.Key{ID: key.NewID(), Name: "k", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Scopes: []string{"orders:read"}, Enabled: true, CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0.Add(-time.Hour)}
	k.Hash[0], k.Hash[1] = byte(len(k.ID)), k.ID[10]
	copy(k.Hash[2:], k.ID)
	if mod != nil {
		mod(k)
	}
	if err := e.st.Create(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k
}

// call serves one request with the authorizer context auth (nil: none).
func (e *env) call(t *testing.T, method, path, body string, auth map[string]any) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if auth != nil {
		r = r.WithContext(lambdahttp.WithAuthorizer(r.Context(), auth))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	checkDocumented(t, method, path, w)
	return w
}

func authOf(k *key.Key) map[string]any {
	return map[string]any{gateway.CtxKeyID: k.ID, gateway.CtxOwnerID: k.OwnerID, gateway.CtxScopes: strings.Join(k.Scopes, " ")}
}

func code(w *httptest.ResponseRecorder) string {
	var p struct{ Code string }
	_ = json.Unmarshal(w.Body.Bytes(), &p)
	return p.Code
}

func TestKeyStatesAndUnknownKeysGetNoToken(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		mod    func(*key.Key)
		status int
		code   gateway.Reason
	}{
		{"revoked", func(k *key.Key) { k.RevokedAt = t0.Add(-time.Minute) }, 403, gateway.Revoked},
		{"disabled", func(k *key.Key) { k.Enabled = false }, 403, gateway.Disabled},
		{"expired", func(k *key.Key) { k.ExpiresAt = t0.Add(-time.Second) }, 403, gateway.Expired},
		{"not yet valid", func(k *key.Key) { k.NotBefore = t0.Add(time.Hour) }, 403, gateway.NotYetValid},
	}
	for _, tc := range cases {
		k := e.key(t, tc.mod)
		if w := e.call(t, "POST", "/v1/tokens", "", authOf(k)); w.Code != tc.status || code(w) != string(tc.code) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body)
		}
	}
	unknown := &key.Key{ID: key.NewID()}
	if w := e.call(t, "POST", "/v1/tokens", "", authOf(unknown)); w.Code != 401 || code(w) != "unknown_key" {
		t.Errorf("key gone since the authorizer saw it: %d %s", w.Code, w.Body)
	}
	if w := e.call(t, "POST", "/v1/tokens", "", map[string]any{gateway.CtxKeyID: "not-an-id"}); w.Code != 401 || code(w) != "missing_key" {
		t.Errorf("garbage key id in the context: %d %s", w.Code, w.Body)
	}
	// Nothing was signed or published for any of them.
	if ring, _ := e.st.SigningKeys(context.Background()); len(ring.Keys) != 0 {
		t.Errorf("refusals published signing keys: %+v", ring.Keys)
	}
}

func TestBodyRules(t *testing.T) {
	e := newEnv(t)
	k := e.key(t, func(k *key.Key) { k.Scopes = []string{"a", "b"} })
	for body, want := range map[string]string{
		`{"ttlSeconds": 0}`:              "ttlSeconds",
		`{"ttlSeconds": -5}`:             "ttlSeconds",
		`{"ttlSeconds": 3601}`:           "ttlSeconds",
		`{"ttlSeconds": "60"}`:           "ttlSeconds",
		`{"scopes": "a"}`:                "scopes",
		`{"scope": ["a"]}`:               "", // unknown: never echoed
		`{"ttlSeconds": 60} {}`:          "",
		`[]`:                             "",
		`{"ttlSeconds": 99999999999999}`: "ttlSeconds",
	} {
		w := e.call(t, "POST", "/v1/tokens", body, authOf(k))
		var p httpedge.Problem
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != 400 || p.Code != "invalid_request" || p.Field != want {
			t.Errorf("%s: %d %s, want 400 naming %q", body, w.Code, w.Body, want)
		}
	}
	r := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "text/plain")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r.WithContext(lambdahttp.WithAuthorizer(r.Context(), authOf(k))))
	if w.Code != 415 {
		t.Errorf("text/plain body: %d", w.Code)
	}
	// scopes [] grants none; a duplicate is granted once.
	for body, want := range map[string][]string{`{"scopes": []}`: {}, `{"scopes": ["b", "b"]}`: {"b"}, `{}`: {"a", "b"}} {
		w := e.call(t, "POST", "/v1/tokens", body, authOf(k))
		var resp tokenapi.Response
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
		c := token.NewVerifier(e.st, "keygate", "keygate", nil).Verify(context.Background(), resp.Token).Claims
		if c == nil || !slices.Equal(c.Scopes, want) {
			t.Errorf("%s: scopes %v, want %v", body, c, want)
		}
	}
}

func TestStoreDownIsUnavailable(t *testing.T) {
	e := newEnv(t)
	k := e.key(t, nil)
	if _, err := e.st.Client().DeleteTable(context.Background(), deleteInput(e.table)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path string }{{"POST", "/v1/tokens"}, {"GET", "/.well-known/jwks.json"}} {
		w := e.call(t, r.method, r.path, "", authOf(k))
		if w.Code != 503 || code(w) != "unavailable" || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s with the table gone: %d %s", r.method, r.path, w.Code, w.Body)
		}
	}
}

func TestRoutesAndMethods(t *testing.T) {
	e := newEnv(t)
	if w := e.call(t, "PUT", "/v1/tokens", "", nil); w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("PUT /v1/tokens: %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
	if w := e.call(t, "POST", "/.well-known/jwks.json", "", nil); w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST jwks: %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
	if w := e.call(t, "GET", "/v1/keys", "", nil); w.Code != 404 {
		t.Errorf("a route of another function: %d", w.Code)
	}
	w := e.call(t, "GET", "/.well-known/jwks.json", "", nil)
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=300" || strings.TrimSpace(w.Body.String()) != `{"keys":[]}` {
		t.Errorf("JWKS of a fresh deployment: %d %q %s", w.Code, w.Header().Get("Cache-Control"), w.Body)
	}
}

// TestOpenAPIDescribesTheTokenRoutes holds the routes, bodies and problem
// codes against the admin API's OpenAPI document.
func TestOpenAPIDescribesTheTokenRoutes(t *testing.T) {
	d := doc(t)
	for _, r := range tokenapi.Routes {
		method, path, _ := strings.Cut(r, " ")
		if op(d, method, path) == nil {
			t.Errorf("%s is not documented", r)
		}
	}
	schemas := d["components"].(map[string]any)["schemas"].(map[string]any)
	for name, typ := range map[string]reflect.Type{"TokenRequest": reflect.TypeOf(tokenapi.Request{}), "Token": reflect.TypeOf(tokenapi.Response{})} {
		var want, got []string
		for p := range schemas[name].(map[string]any)["properties"].(map[string]any) {
			want = append(want, p)
		}
		for i := range typ.NumField() {
			n, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			got = append(got, n)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: wire fields %v, documented %v", name, got, want)
		}
	}
	enum := schemas["Problem"].(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)["enum"].([]any)
	for _, c := range tokenapi.Codes {
		if !slices.Contains(enum, any(c)) {
			t.Errorf("problem code %s is not documented", c)
		}
	}
}

var (
	docMap   map[string]any
	compiler *jsonschema.Compiler
)

func doc(t *testing.T) map[string]any {
	t.Helper()
	if docMap == nil {
		if err := json.Unmarshal(adminapi.OpenAPI, &docMap); err != nil {
			t.Fatal(err)
		}
		raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(adminapi.OpenAPI))
		if err != nil {
			t.Fatal(err)
		}
		compiler = jsonschema.NewCompiler()
		compiler.DefaultDraft(jsonschema.Draft2020)
		if err := compiler.AddResource("mem:///openapi.json", raw); err != nil {
			t.Fatal(err)
		}
	}
	return docMap
}

func op(d map[string]any, method, path string) map[string]any {
	item, _ := d["paths"].(map[string]any)[path].(map[string]any)
	o, _ := item[strings.ToLower(method)].(map[string]any)
	return o
}

// checkDocumented holds a response to the document: its status is listed
// for the route, and its body matches the schema given for that status.
func checkDocumented(t *testing.T, method, path string, w *httptest.ResponseRecorder) {
	t.Helper()
	d := doc(t)
	o := op(d, method, path)
	if o == nil || !slices.Contains(tokenapi.Routes, method+" "+path) {
		return // the 404/405 fallbacks, and other functions' routes
	}
	resp, ok := o["responses"].(map[string]any)[strconv.Itoa(w.Code)].(map[string]any)
	if !ok {
		t.Errorf("%s %s answered %d, which the document does not list", method, path, w.Code)
		return
	}
	ptr := ""
	if ref, ok := resp["$ref"].(string); ok {
		ptr = strings.TrimPrefix(ref, "#") + "/content/" + strings.ReplaceAll(w.Header().Get("Content-Type"), "/", "~1") + "/schema"
	} else {
		ptr = "/paths/" + strings.ReplaceAll(strings.ReplaceAll(path, "~", "~0"), "/", "~1") + "/" + strings.ToLower(method) +
			"/responses/" + strconv.Itoa(w.Code) + "/content/" + strings.ReplaceAll(w.Header().Get("Content-Type"), "/", "~1") + "/schema"
	}
	s, err := compiler.Compile("mem:///openapi.json#" + ptr)
	if err != nil {
		t.Errorf("%s %s %d: no schema for %s: %v", method, path, w.Code, w.Header().Get("Content-Type"), err)
		return
	}
	body, err := jsonschema.UnmarshalJSON(bytes.NewReader(w.Body.Bytes()))
	if err == nil {
		err = s.Validate(body)
	}
	if err != nil {
		t.Errorf("%s %s %d: body does not match the document: %v\n%s", method, path, w.Code, err, w.Body)
	}
}

func deleteInput(name string) *dynamodb.DeleteTableInput {
	return &dynamodb.DeleteTableInput{TableName: &name}
}

// TestTokenExchangesPerKeyAreBounded: one key gets at most
// ExchangesPerMinute tokens in a minute, exactly, however many requests
// race (each token is a KMS Sign call); past it, 429 rate_limited with
// Retry-After until the minute ends, and nothing is signed. Other keys are
// not affected, and the next minute starts afresh.
func TestTokenExchangesPerKeyAreBounded(t *testing.T) {
	var now atomic.Int64
	now.Store(t0.Truncate(time.Minute).Add(20 * time.Second).UnixNano())
	e := newEnv(t, func(o *tokenapi.Options) {
		o.ExchangesPerMinute = 5
		o.Now = func() time.Time { return time.Unix(0, now.Load()).UTC() }
	})
	k, other := e.key(t, nil), e.key(t, nil)
	var wg sync.WaitGroup
	var issued, limited atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("POST", "/v1/tokens", nil)
			r = r.WithContext(lambdahttp.WithAuthorizer(r.Context(), authOf(k)))
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			switch {
			case w.Code == 200:
				issued.Add(1)
			case w.Code == 429 && code(w) == "rate_limited" && w.Header().Get("Retry-After") == "40":
				limited.Add(1)
			default:
				t.Errorf("%d %v %s", w.Code, w.Header(), w.Body)
			}
		}()
	}
	wg.Wait()
	if issued.Load() != 5 || limited.Load() != 15 {
		t.Fatalf("%d issued, %d limited; want 5 and 15", issued.Load(), limited.Load())
	}
	if w := e.call(t, "POST", "/v1/tokens", "", authOf(k)); w.Code != 429 { // and the 429 is documented
		t.Errorf("over the bound: %d %s", w.Code, w.Body)
	}
	if w := e.call(t, "POST", "/v1/tokens", "", authOf(other)); w.Code != 200 {
		t.Errorf("another key: %d %s", w.Code, w.Body)
	}
	now.Add(int64(40 * time.Second))
	if w := e.call(t, "POST", "/v1/tokens", "", authOf(k)); w.Code != 200 {
		t.Errorf("the next minute: %d %s", w.Code, w.Body)
	}
}
