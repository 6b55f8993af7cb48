package adminapi_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/keygate/keygate/internal/adminapi"
	"github.com/keygate/keygate/internal/admintest"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lifecycle"
	"github.com/keygate/keygate/internal/logtest"
	"github.com/keygate/keygate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

const alice = "arn:aws:iam::123456789012:user/alice"

var format, _ = apikey.NewFormat("")

// env is an admin API over a fresh DynamoDB Local table, with a settable
// clock, captured logs and captured events (admintest.Env).
type env struct {
	*admintest.Env
	t      *testing.T
	db     *dynamodb.Client
	table  string
	store  *store.Store
	api    *adminapi.API
	hasher *apikey.Hasher
	logs   *logtest.Buffer

	mu        sync.Mutex
	responses []string // every response body except issuing ones
}

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith uses pub as the publisher; nil records events (eventsCopy).
func newEnvWith(t *testing.T, pub adminapi.Publisher) *env {
	t.Helper()
	a := admintest.New(t, realNow(), "test-pepper")
	e := &env{Env: a, t: t, db: a.DB, table: a.Table, store: a.Store, hasher: a.Hasher, logs: a.Logs}
	o := a.Options
	o.Environments = []key.Environment{key.Live, key.Test}
	if pub != nil {
		o.Publisher = pub
	}
	e.api = adminapi.New(o)
	return e
}

func (e *env) advance(d time.Duration)       { e.Advance(d) }
func (e *env) clock() time.Time              { return e.Clock() }
func (e *env) eventsCopy() []lifecycle.Event { return e.Events() }

// resp is a response with its body decoded.
type resp struct {
	*httptest.ResponseRecorder
	json map[string]any
}

func (r resp) str(k string) string { s, _ := r.json[k].(string); return s }

// do sends a request as alice with a JSON body (unless a Content-Type
// header is given) and checks the response against the OpenAPI document.
func (e *env) do(method, path, body string, headers ...string) resp {
	e.t.Helper()
	return e.doAs(alice, method, path, body, headers...)
}

// doAs is do as another IAM principal.
func (e *env) doAs(who, method, path, body string, headers ...string) resp {
	e.t.Helper()
	rec := admintest.Serve(e.api, who, method, path, body, headers...)
	r := resp{ResponseRecorder: rec}
	_ = json.Unmarshal(rec.Body.Bytes(), &r.json)
	checkDocumented(e.t, method, strings.SplitN(path, "?", 2)[0], rec)
	if !(method == http.MethodPost && path == "/v1/keys" && rec.Code == http.StatusCreated) {
		e.mu.Lock()
		e.responses = append(e.responses, rec.Body.String())
		e.mu.Unlock()
	}
	return r
}

// issue issues a key and returns the response (which holds the plaintext).
func (e *env) issue(body string, headers ...string) resp {
	e.t.Helper()
	r := e.do(http.MethodPost, "/v1/keys", body, headers...)
	if r.Code != http.StatusCreated {
		e.t.Fatalf("issue: %d %s", r.Code, r.Body)
	}
	return r
}

func (e *env) dump() string { e.t.Helper(); return dynamotest.Dump(e.t, e.db, e.table) }

// countItems counts the table's items whose pk starts with prefix.
func (e *env) countItems(prefix string) int {
	n := 0
	for _, line := range strings.Split(e.dump(), "\n") {
		if strings.Contains(line, `"pk":"`+prefix) {
			n++
		}
	}
	return n
}

// ---- the OpenAPI document as a test oracle ----

var (
	docOnce  sync.Once
	doc      map[string]any
	compiler *jsonschema.Compiler
	compiled sync.Map // pointer -> *jsonschema.Schema
	// compileMu serialises the compiler, which is not safe for concurrent
	// use (tests that fire concurrent requests check every response).
	compileMu sync.Mutex
)

func openapiDoc(t testing.TB) map[string]any {
	t.Helper()
	docOnce.Do(func() {
		if err := json.Unmarshal(adminapi.OpenAPI, &doc); err != nil {
			t.Fatalf("openapi.json is not JSON: %v", err)
		}
		raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(adminapi.OpenAPI))
		if err != nil {
			t.Fatal(err)
		}
		compiler = jsonschema.NewCompiler()
		compiler.DefaultDraft(jsonschema.Draft2020)
		compiler.AssertFormat()
		if err := compiler.AddResource("mem:///openapi.json", raw); err != nil {
			t.Fatal(err)
		}
	})
	return doc
}

func escapePtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// schemaAt compiles the schema at a JSON pointer of the document.
func schemaAt(t testing.TB, ptr string) *jsonschema.Schema {
	t.Helper()
	if s, ok := compiled.Load(ptr); ok {
		return s.(*jsonschema.Schema)
	}
	compileMu.Lock()
	s, err := compiler.Compile("mem:///openapi.json#" + ptr)
	compileMu.Unlock()
	if err != nil {
		t.Fatalf("compile %s: %v", ptr, err)
	}
	compiled.Store(ptr, s)
	return s
}

// docPath finds the document's path template for a request path.
func docPath(d map[string]any, path string) string {
	segs := strings.Split(path, "/")
	for tmpl := range d["paths"].(map[string]any) {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		ok := true
		for i := range ts {
			if !(strings.HasPrefix(ts[i], "{") || ts[i] == segs[i]) {
				ok = false
			}
		}
		if ok {
			return tmpl
		}
	}
	return ""
}

// checkDocumented holds a response against the document: its status must be
// documented for the operation and its body must validate against the
// documented schema of its media type. Unknown routes and methods get the
// problem schema.
func checkDocumented(t *testing.T, method, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	d := openapiDoc(t)
	ct := rec.Header().Get("Content-Type")
	var ptr string
	tmpl := docPath(d, path)
	op, _ := d["paths"].(map[string]any)[tmpl].(map[string]any)
	operation, _ := op[strings.ToLower(method)].(map[string]any)
	if tmpl == "" || operation == nil {
		if ct != "application/problem+json" {
			t.Fatalf("%s %s: undocumented route answered %d with %q", method, path, rec.Code, ct)
		}
		ptr = "/components/schemas/Problem"
	} else {
		status := strconv.Itoa(rec.Code)
		respObj, ok := operation["responses"].(map[string]any)[status].(map[string]any)
		if !ok {
			t.Fatalf("%s %s: status %d is not documented for %s %s (body %s)", method, path, rec.Code, method, tmpl, rec.Body)
		}
		rp := "/paths/" + escapePtr(tmpl) + "/" + strings.ToLower(method) + "/responses/" + status
		if ref, ok := respObj["$ref"].(string); ok {
			rp = strings.TrimPrefix(ref, "#")
			respObj = d["components"].(map[string]any)["responses"].(map[string]any)[strings.TrimPrefix(rp, "/components/responses/")].(map[string]any)
		}
		content := respObj["content"].(map[string]any)
		if mt, _, _ := mime.ParseMediaType(ct); mt == "text/csv" {
			checkCSV(t, method, path, content[mt], rec.Body.Bytes())
			return
		}
		if _, ok := content[ct]; !ok {
			t.Fatalf("%s %s: Content-Type %q is not documented for status %d", method, path, ct, rec.Code)
		}
		ptr = rp + "/content/" + escapePtr(ct) + "/schema"
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("%s %s: body is not JSON: %v", method, path, err)
	}
	if err := schemaAt(t, ptr).Validate(inst); err != nil {
		t.Fatalf("%s %s -> %d: body does not match the documented schema %s: %v\nbody: %s", method, path, rec.Code, ptr, err, rec.Body)
	}
}

// checkCSV holds a text/csv answer against its documented media type: it
// must be documented, parse as RFC 4180, and have a header row that is one
// of the documented column lists (x-columns, x-columns-by-key), which every
// row matches in length.
func checkCSV(t *testing.T, method, path string, media any, body []byte) {
	t.Helper()
	m, ok := media.(map[string]any)
	if !ok {
		t.Fatalf("%s %s: text/csv is not documented", method, path)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("%s %s: not RFC 4180 CSV with a header row: %v\n%s", method, path, err, body)
	}
	for _, ext := range []string{"x-columns", "x-columns-by-key"} {
		cols, _ := m[ext].([]any)
		var want []string
		for _, c := range cols {
			want = append(want, c.(string))
		}
		if len(want) > 0 && strings.Join(rows[0], ",") == strings.Join(want, ",") {
			return
		}
	}
	t.Fatalf("%s %s: CSV header %v is not a documented column list", method, path, rows[0])
}

// realNow is where the harness clock starts: the real time (to the
// millisecond, as the store keeps it), because DynamoDB Local deletes items
// whose ttl has passed in real time; a fixed date would turn idempotency
// records and revoked keys into items that vanish on some later day.
func realNow() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
