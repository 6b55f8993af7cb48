// Package lambdatest is the test harness every function's tests share:
// compose a function as Lambda does (its composition, over a fresh table in
// DynamoDB Local, its logs captured), seed the key its sample events name,
// replay every sample event of events/ through lambda.NewHandler(h).Invoke
// with an expectation for each, and read API Gateway proxy responses of
// either payload version.
package lambdatest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/logtest"
	"github.com/keygate/keygate/internal/store"
)

// Pepper is the pepper every composed function hashes keys with, so that
// keys seeded with Key verify.
const Pepper = "fixture-pepper"

// Function is a function composed over a fresh DynamoDB Local table.
type Function struct {
	// Handler is the composed handler, as Lambda runs it.
	Handler lambda.Handler
	// Store is a store over the function's table, to seed it and to read
	// back what the function wrote.
	Store *store.Store
	// Logs holds the function's log and metric lines.
	Logs *logtest.Buffer
	// Env is the function's environment.
	Env map[string]string
}

// Compose composes c as its Lambda entry point does, over a fresh table of
// DynamoDB Local with the pepper Pepper and no event bus, and with env laid
// over those variables.
func Compose(t testing.TB, c compose.Func, env map[string]string) *Function {
	t.Helper()
	db, table := dynamotest.Table(t)
	f := &Function{Logs: &logtest.Buffer{}, Store: store.New(db, table, store.Options{}), Env: map[string]string{
		"KEYGATE_TABLE": table, "KEYGATE_DYNAMODB_ENDPOINT": dynamotest.Endpoint(t), "KEYGATE_PEPPER": Pepper,
	}}
	for k, v := range env {
		f.Env[k] = v
	}
	h, err := c(context.Background(), compose.Env{Getenv: func(k string) string { return f.Env[k] }, Stdout: f.Logs})
	if err != nil {
		t.Fatalf("compose: %v", err)
	}
	f.Handler = lambda.NewHandler(h)
	return f
}

// Invoke invokes the function with event as Lambda does and returns its
// answer; an error of the handler fails the test.
func (f *Function) Invoke(t testing.TB, event []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := f.Handler.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return out
}

// Key stores a live secret key with id (name fixture, owner acme, created
// now), changed by mod, hashed with Pepper, with its creation's audit
// record, and returns its plaintext.
func (f *Function) Key(t testing.TB, id string, mod func(*key.Key)) string {
	t.Helper()
	format, _ := apikey.NewFormat("")
	p, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	k := &key.Key{ID: id, Name: "fixture", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Hash: apikey.NewHasher([]byte(Pepper)).Sum(p.Plaintext), Hint: apikey.Hint(p), Enabled: true,
		CreatedAt: now, UpdatedAt: now}
	if mod != nil {
		mod(k)
	}
	rec := store.AuditRecord{KeyID: k.ID, At: now, Actor: "seed", Action: "key.create"}
	if err := f.Store.CreateAudited(context.Background(), k, rec, nil); err != nil {
		t.Fatal(err)
	}
	return p.Plaintext
}

// Response is an API Gateway proxy response of either payload version (a
// REST API's 1.0 or an HTTP API's 2.0).
type Response struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              string              `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`

	// httpAPI: the event was payload 2.0, whose responses HTTP APIs read
	// only headers and cookies of.
	httpAPI bool
}

// DecodeResponse reads the proxy response out to event; anything else
// fails the test, as does a payload 2.0 response with multiValueHeaders
// (an HTTP API ignores them: its headers would be lost).
func DecodeResponse(t testing.TB, event, out []byte) Response {
	t.Helper()
	var r Response
	if err := json.Unmarshal(out, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("the answer is not a proxy response: %v\n%s", err, out)
	}
	var probe struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(event, &probe)
	if r.httpAPI = probe.Version == "2.0"; r.httpAPI && len(r.MultiValueHeaders) > 0 {
		t.Fatalf("a payload 2.0 response sets multiValueHeaders, which an HTTP API ignores: %s", out)
	}
	return r
}

// Header returns the values of header k (any case), comma-joined, as the
// API type that sent the event reads them: multiValueHeaders then headers
// for a REST API, headers alone for an HTTP API.
func (r Response) Header(k string) string {
	for name, vs := range r.MultiValueHeaders {
		if strings.EqualFold(name, k) && !r.httpAPI {
			return strings.Join(vs, ",")
		}
	}
	for name, v := range r.Headers {
		if strings.EqualFold(name, k) {
			return v
		}
	}
	return ""
}

// JSON returns the body decoded as a JSON object (nil when it is not one).
func (r Response) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal([]byte(r.Body), &m)
	return m
}

// Events returns the sample events under events/<dir> (recursively), by
// their path below it without .json ("v1/issue"), leaving out the
// *.want.json files that hold expectations. No events fails the test.
func Events(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	root := filepath.Join(RepoRoot(t), "events", dir)
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".want.json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(strings.TrimSuffix(rel, ".json"))] = b
		return nil
	})
	if err != nil || len(out) == 0 {
		t.Fatalf("no events under %s: %v", root, err)
	}
	return out
}

// EventFile is the path of the event events/<dir>/<name>.json, for the
// files that sit next to it (its *.want.json).
func EventFile(t testing.TB, dir, name string) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), "events", dir, filepath.FromSlash(name)+".json")
}

// Replay runs run on every event under events/<dir>, each in a subtest
// named by its path, with the expectation want holds for its file name
// (without folder and .json, so one expectation serves both payload
// versions). An event without an expectation, or an expectation without an
// event, fails the test: no file goes unreplayed.
func Replay[W any](t *testing.T, dir string, want map[string]W, run func(t *testing.T, name string, event []byte, w W)) {
	t.Helper()
	evs := Events(t, dir)
	names := make([]string, 0, len(evs))
	for n := range evs {
		names = append(names, n)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for _, n := range names {
		base := filepath.Base(n)
		w, ok := want[base]
		if !ok {
			t.Errorf("events/%s/%s.json has no expectation in this test", dir, n)
			continue
		}
		seen[base] = true
		t.Run(n, func(t *testing.T) { run(t, n, evs[n], w) })
	}
	for base := range want {
		if !seen[base] {
			t.Errorf("expectation %q has no event under events/%s", base, dir)
		}
	}
}

// RepoRoot is the repository's root: the folder holding go.mod, at or above
// the test's folder.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}
