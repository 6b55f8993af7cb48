package main

import (
	"bytes"
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
	"github.com/keygate/keygate/internal/compose/issuer"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// fixtureID is the key every fixture that names a key refers to; the test
// seeds it before each replay.
const fixtureID = "key_00000000000000000000000001"

// The actors the fixtures carry: REST API (v1) identity.userArn, HTTP API
// (v2) authorizer.iam.userArn.
var actors = map[string]string{
	"v1": "arn:aws:iam::123456789012:user/alice",
	"v2": "arn:aws:iam::123456789012:role/keygate-admin",
}

// expect is what each fixture must produce, for both API versions. A
// fixture without an entry fails the test, so no file goes unreplayed.
var expect = map[string]struct {
	status int
	code   string // the problem code, for errors
	audit  string // the audit action the request must write, if any
}{
	"issue":                     {201, "", "key.create"},
	"issue-base64":              {201, "", "key.create"},
	"get":                       {200, "", ""},
	"list":                      {200, "", ""},
	"update":                    {200, "", "key.update"},
	"revoke":                    {200, "", "key.revoke"},
	"usage":                     {200, "", ""},
	"audit":                     {200, "", ""},
	"openapi":                   {200, "", ""},
	"error-get-unknown":         {404, "not_found", ""},
	"error-issue-invalid":       {400, "invalid_request", ""},
	"error-issue-unknown-field": {400, "invalid_request", ""},
	"error-issue-media-type":    {415, "unsupported_media_type", ""},
	"error-update-no-if-match":  {428, "precondition_required", ""},
	"error-update-stale":        {412, "precondition_failed", ""},
	"error-method":              {405, "method_not_allowed", ""},
	"error-usage-range":         {400, "invalid_request", ""},
}

// TestReplayEveryFixture replays every file under events/issuer through the
// Lambda handler built by setup (the composition root), against DynamoDB
// Local, each on a fresh table with the fixture key seeded.
func TestReplayEveryFixture(t *testing.T) {
	files, err := filepath.Glob("../../events/issuer/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures under events/issuer: %v", err)
	}
	sort.Strings(files)
	seen := map[string]int{}
	for _, f := range files {
		version := filepath.Base(filepath.Dir(f))
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		want, ok := expect[name]
		if !ok {
			t.Errorf("%s has no expectation in this test", f)
			continue
		}
		if actors[version] == "" {
			t.Errorf("%s: unknown payload version folder %q", f, version)
			continue
		}
		seen[name]++
		t.Run(version+"/"+name, func(t *testing.T) {
			payload, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			endpoint := dynamotest.Endpoint(t)
			db, table := dynamotest.Table(t)
			env := map[string]string{
				"KEYGATE_TABLE": table, "KEYGATE_DYNAMODB_ENDPOINT": endpoint,
				"KEYGATE_PEPPER": "fixture-pepper", "KEYGATE_EVENT_BUS": "",
			}
			var logs bytes.Buffer
			h, err := issuer.Compose(context.Background(), compose.Env{Getenv: func(k string) string { return env[k] }, Stdout: &logs})
			if err != nil {
				t.Fatal(err)
			}
			s := store.New(db, table, store.Options{})
			plain := seed(t, s)

			out, err := lambda.NewHandler(h).Invoke(context.Background(), payload)
			if err != nil {
				t.Fatalf("invoke: %v", err)
			}
			var resp struct {
				StatusCode        int                 `json:"statusCode"`
				MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
				Body              string              `json:"body"`
				IsBase64Encoded   bool                `json:"isBase64Encoded"`
			}
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatalf("response is not a proxy response: %v\n%s", err, out)
			}
			var body map[string]any
			_ = json.Unmarshal([]byte(resp.Body), &body)
			if resp.StatusCode != want.status || (want.code != "" && body["code"] != want.code) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, resp.Body, want.status, want.code)
			}
			ct := resp.MultiValueHeaders["Content-Type"]
			if len(ct) != 1 || (want.code != "" && ct[0] != "application/problem+json") || (want.code == "" && ct[0] != "application/json") {
				t.Fatalf("Content-Type %v", ct)
			}
			if strings.Contains(string(out), plain) || strings.Contains(logs.String(), plain) {
				t.Fatal("the seeded key's plaintext leaked")
			}
			if want.audit != "" {
				id := fixtureID
				if want.status == 201 {
					id, _ = body["id"].(string)
					if k, _ := body["key"].(string); !strings.HasPrefix(k, "kg_") || strings.Contains(logs.String(), k) {
						t.Fatalf("issued key missing from the response or present in the logs")
					}
				}
				p, err := s.ListAudit(context.Background(), id, 0, "")
				if err != nil || len(p.Records) == 0 {
					t.Fatalf("no audit record: %v", err)
				}
				last := p.Records[len(p.Records)-1]
				if last.Action != want.audit || last.Actor != actors[version] {
					t.Fatalf("audit record %+v, want action %s by %s", last, want.audit, actors[version])
				}
			}
		})
	}
	for name := range expect {
		if seen[name] == 0 {
			t.Errorf("expectation %q has no fixture", name)
		}
	}
}

// seed stores the fixture key (version 1, owner acme, live) with an audit
// record, and returns its plaintext.
func seed(t *testing.T, s *store.Store) string {
	t.Helper()
	f, _ := apikey.NewFormat("")
	p, err := f.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	k := &key.Key{ID: fixtureID, Name: "fixture", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Hash: apikey.NewHasher([]byte("fixture-pepper")).Sum(p.Plaintext), Hint: apikey.Hint(p), Enabled: true,
		CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAudited(context.Background(), k, store.AuditRecord{KeyID: k.ID, At: now, Actor: "seed", Action: "key.create"}, nil); err != nil {
		t.Fatal(err)
	}
	return p.Plaintext
}
