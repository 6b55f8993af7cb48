package main

import (
	"context"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/compose/issuer"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/lambdatest"
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

// expectation is what a fixture must produce.
type expectation struct {
	status int
	code   string // the problem code, for errors
	audit  string // the audit action the request must write, if any
}

// expect is what each fixture must produce, for both API versions.
var expect = map[string]expectation{
	"issue":                     {201, "", "key.create"},
	"issue-base64":              {201, "", "key.create"},
	"issue-named-stage":         {201, "", "key.create"},
	"get":                       {200, "", ""},
	"list":                      {200, "", ""},
	"update":                    {200, "", "key.update"},
	"update-without-if-match":   {200, "", "key.update"},
	"revoke":                    {200, "", "key.revoke"},
	"usage":                     {200, "", ""},
	"audit":                     {200, "", ""},
	"openapi":                   {200, "", ""},
	"error-get-unknown":         {404, "not_found", ""},
	"error-issue-invalid":       {400, "invalid_request", ""},
	"error-issue-unknown-field": {400, "invalid_request", ""},
	"error-issue-media-type":    {415, "unsupported_media_type", ""},
	"error-update-stale":        {412, "precondition_failed", ""},
	"error-method":              {405, "method_not_allowed", ""},
	"error-usage-range":         {400, "invalid_request", ""},
}

// TestReplayEveryFixture replays every file under events/issuer through the
// Lambda handler built by the composition root, against DynamoDB Local,
// each on a fresh table with the fixture key seeded.
func TestReplayEveryFixture(t *testing.T) {
	lambdatest.Replay(t, "issuer", expect, func(t *testing.T, name string, event []byte, want expectation) {
		version, _, _ := strings.Cut(name, "/")
		if actors[version] == "" {
			t.Fatalf("unknown payload version folder %q", version)
		}
		f := lambdatest.Compose(t, issuer.Compose, nil)
		plain := f.Key(t, fixtureID, nil)
		out := f.Invoke(t, event)
		resp := lambdatest.DecodeResponse(t, event, out)
		body := resp.JSON()
		if resp.StatusCode != want.status || (want.code != "" && body["code"] != want.code) {
			t.Fatalf("got %d %s, want %d %s", resp.StatusCode, resp.Body, want.status, want.code)
		}
		ct := resp.Header("Content-Type")
		if (want.code != "" && ct != "application/problem+json") || (want.code == "" && ct != "application/json") {
			t.Fatalf("Content-Type %q", ct)
		}
		if strings.Contains(string(out), plain) || strings.Contains(f.Logs.String(), plain) {
			t.Fatal("the seeded key's plaintext leaked")
		}
		if want.audit == "" {
			return
		}
		id := fixtureID
		if want.status == 201 {
			id, _ = body["id"].(string)
			// The Location is below the stage the request came through:
			// the REST fixtures come through the execute-api URL's /prod,
			// HTTP API ones through $default (no prefix) or a named stage.
			prefix := "/prod"
			if version == "v2" && !strings.Contains(name, "named-stage") {
				prefix = ""
			}
			if loc := resp.Header("Location"); loc != prefix+"/v1/keys/"+id {
				t.Fatalf("Location %q, want %s/v1/keys/%s", loc, prefix, id)
			}
			if k, _ := body["key"].(string); !strings.HasPrefix(k, "kg_") || strings.Contains(f.Logs.String(), k) {
				t.Fatalf("issued key missing from the response or present in the logs")
			}
		}
		p, err := f.Store.ListAudit(context.Background(), id, 0, "")
		if err != nil || len(p.Records) == 0 {
			t.Fatalf("no audit record: %v", err)
		}
		last := p.Records[len(p.Records)-1]
		if last.Action != want.audit || last.Actor != actors[version] {
			t.Fatalf("audit record %+v, want action %s by %s", last, want.audit, actors[version])
		}
	})
}
