package rotator_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lambdatest"
	"github.com/keygate/keygate/internal/rotator"
)

// fixtureKey creates the key a fixture names, with a fixed id.
func (e *env) fixtureKey(id string) {
	e.t.Helper()
	format, _ := apikey.NewFormat("")
	pk, err := format.Generate(apikey.Secret, apikey.Live)
	if err != nil {
		e.t.Fatal(err)
	}
	k := &key.Key{ID: id, Name: "fixture", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Hash: e.hasher.Sum(pk.Plaintext), Hint: apikey.Hint(pk), Enabled: true, CreatedAt: e.clock(), UpdatedAt: e.clock()}
	if err := e.store.Create(context.Background(), k); err != nil {
		e.t.Fatal(err)
	}
}

// Every file in events/rotator is replayed through the Lambda handler as
// Lambda would invoke it, and each has an expected outcome here.
func TestLambdaReplaysEveryFixture(t *testing.T) {
	e := newEnv(t, policy())
	e.fixtureKey("key_0000000000000000000000rest")
	e.fixtureKey("key_0000000000000000000000http")
	due := e.issue(`{"name":"soon","ownerId":"acme","environment":"live","ttlSeconds":60}`)
	e.set(t0.Add(time.Hour))
	h := lambda.NewHandler(e.handler)

	type want struct {
		status int    // proxy responses
		code   string // problem code, or "" for success
	}
	wants := map[string]want{
		"rest-rotate":             {status: 201},
		"http-rotate":             {status: 201},
		"rest-rotate-unknown-key": {status: 404, code: "not_found"},
		"rest-rotate-bad-grace":   {status: 400, code: "invalid_request"},
		"scheduled-eventbridge":   {},
		"scheduled-scheduler":     {},
	}
	published := "" // token signing keys the scheduled runs published
	lambdatest.Replay(t, "rotator", wants, func(t *testing.T, name string, event []byte, w want) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := h.Invoke(ctx, event)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "scheduled-") {
			var rep rotator.Report
			if err := json.Unmarshal(out, &rep); err != nil || !rep.Complete || rep.SigningKeyFailed {
				t.Fatalf("report %s (%v)", out, err)
			}
			published += rep.SigningKeyPublished
			return
		}
		resp := lambdatest.DecodeResponse(t, event, out)
		body := resp.JSON()
		if resp.StatusCode != w.status || (w.code != "" && body["code"] != w.code) {
			t.Errorf("%d %s, want %d %s", resp.StatusCode, resp.Body, w.status, w.code)
		}
		if w.status == 201 {
			if k, _ := body["key"].(string); k != "" {
				e.plains = append(e.plains, k)
			}
			if k, _ := body["key"].(string); !strings.HasPrefix(k, "kg_sk_live_") || body["previousKeyId"] == nil {
				t.Errorf("rotate response %s", resp.Body)
			}
		}
	})
	// The first scheduled run published the first token signing key; the
	// next found nothing due.
	ring, err := e.store.SigningKeys(context.Background())
	if err != nil || len(ring.Keys) != 1 || ring.Keys[0].KID != published {
		t.Fatalf("signing keys after the scheduled runs: %+v (%v), reported %q", ring.Keys, err, published)
	}
	// The scheduled runs marked the session key expired, once.
	if c := e.counts()[due]["key.expired"]; c != 1 {
		t.Fatalf("the replayed schedules sent %d key.expired for the expired key, want 1", c)
	}
	// The actors came from the events.
	for _, id := range []string{"key_0000000000000000000000rest", "key_0000000000000000000000http"} {
		p, err := e.store.ListAudit(context.Background(), id, 10, "")
		if err != nil || len(p.Records) == 0 || p.Records[0].Action != "key.rotate" ||
			!strings.HasPrefix(p.Records[0].Actor, "arn:aws:iam::123456789012:") {
			t.Fatalf("audit of %s: %+v %v", id, p.Records, err)
		}
	}
	if _, err := h.Invoke(context.Background(), []byte(`{"hello":"world"}`)); err == nil {
		t.Fatal("an unknown event was accepted")
	}
	e.checkNoPlaintext()
}
