package authorizer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/authorizer"
	settings "github.com/keygate/keygate/internal/compose/authorizer"
	"github.com/keygate/keygate/internal/dynamolocal"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/lambdatest"
	"github.com/keygate/keygate/internal/leaktest"
	"github.com/keygate/keygate/internal/logtest"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

var update = flag.Bool("update", false, "write the *.want.json of events that have none")

// t0 is the instant every fixture is replayed at.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// env is the configuration the fixtures are replayed under, read the way
// main reads it.
var env = map[string]string{
	"KEYGATE_PEPPER":          "fixture-pepper",
	"KEYGATE_ENVIRONMENTS":    "live",
	"KEYGATE_KEY_QUERY_PARAM": "api_key",
	// Long enough for a loaded machine: the fixtures hold decisions, not
	// latency, and a dead DynamoDB is refused at once.
	"KEYGATE_STORE_TIMEOUT": "5s",
	"KEYGATE_ROUTES":        `[{"method":"GET","path":"/users/{id}","scopes":["read:users"]},{"method":"POST","path":"/users","scopes":["write:users"]}]`,
}

// seed is a key the fixtures use: its plaintext (which appears in the
// event files, and nowhere else) and its settings.
type seed struct {
	plain string
	mod   func(*key.Key)
	// counters to preset on the item: attribute path -> value
	rl, q map[string]int64
}

var seeds = []seed{
	{plain: "kg_sk_live_A7ak1Qe425umLPntQcyExexWJHCyC34v8HUj8Q0ZOjE3YfOKv", mod: func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "second", Limit: 100, WindowSeconds: 1}, {Name: "day", Limit: 10000, WindowSeconds: 86400}}
		k.Quota = &key.Quota{Limit: 1000, Period: key.Month}
	}},
	{plain: "kg_sk_live_TFpICQev30HWUSeyC907oWIO4fLkwYT6sO40O8MR9wO0EEjBJ", mod: func(k *key.Key) { k.Enabled = false }},
	{plain: "kg_sk_live_Pn4T53LU6W8UMzmuDw2wx98Ol9wCR0HQsIKkEpD4nyU1jVHwi", mod: func(k *key.Key) { k.RevokedAt = t0.Add(-time.Hour) }},
	{plain: "kg_sk_live_GCupThAlPmYn0ELaNeY4GZAEw5SeCvbDnMgJIAKl0kC1bSJCa", mod: func(k *key.Key) { k.ExpiresAt = t0.Add(-time.Minute) }},
	{plain: "kg_sk_live_1wVvnZyjp6gGmdBpRUZG6x80YHIinCYakPGyHVs2Xo82OhCCD", mod: func(k *key.Key) { k.NotBefore = t0.Add(time.Hour) }},
	{plain: "kg_sk_test_UgkdgGU1ymxxVFHGG1f3wp9Us6Fi4Uzuzp0ftDefbc32Zn2n0", mod: func(k *key.Key) { k.Environment = key.Test }},
	{plain: "kg_pk_live_0px1feOOjmtx3zUeAPTYnxIZSiqArkF87K7bTkUFITw2lNUIR", mod: func(k *key.Key) {
		k.Type = key.Publishable
		k.Scopes = []string{"read:users"}
		k.AllowedOrigins = []string{"https://*.example.com"}
	}},
	{plain: "kg_sk_live_fXtWZXpKjmg1O0PJzBCUauG5qwa1SMuHAanwtHh0fkT2TuEzn", mod: func(k *key.Key) {
		k.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	}},
	{plain: "kg_sk_live_50B1vu7CXef191K2gy5PI0ZfuvQiuVu3cORPNCfYCod1XuzJw", mod: func(k *key.Key) {
		k.RateLimits = []key.RateLimit{{Name: "minute", Limit: 1, WindowSeconds: 60}}
	}, rl: map[string]int64{fmt.Sprintf("minute@%d", t0.Unix()): 1}},
	{plain: "kg_sk_live_299Ex0QdmPkQjYDCfep1Zfxo2Yx0pk0rLmgNOGCNXkA2GnK9o", mod: func(k *key.Key) {
		k.Quota = &key.Quota{Limit: 5, Period: key.Day}
	}, q: map[string]int64{"d2026-11-26": 5}},
	{plain: "kg_sk_live_EsA0xw1dZKb2vVNox6aPx6nkyQS0qcSITo9FoSc2Ztm2F8sYB", mod: func(k *key.Key) { k.Scopes = []string{"read:users"} }},
	{plain: "kg_sk_live_MVtaBTeiZwtCrBl2UeUzAPEOx8kpn9cBV21vxpx25X018If94", mod: func(k *key.Key) { k.Stages = []string{"v2"} }},
	{plain: "kg_sk_live_o5RFFq1mJAxd7zKWFKSFos6gNpX086FQ7FfGs4KcnG12uw1sL", mod: func(k *key.Key) { k.Scopes = []string{"write:users"} }},
}

// unknownKey is well formed and in the fixtures, but never stored.
const unknownKey = "kg_sk_live_vDZ3mI2eS5rruDkp2qLYGeqpcH5A4x0Tt7IJ1xo27Ls4SOoE5"

func seedTable(t *testing.T, db *dynamodb.Client, table string, hasher *apikey.Hasher) {
	t.Helper()
	ctx := context.Background()
	st := store.New(db, table, store.Options{Now: func() time.Time { return t0 }})
	for i, s := range seeds {
		k := &key.Key{ID: fmt.Sprintf("key_%026d", i+1), Name: "fixture", OwnerID: "acme", Type: key.Secret,
			Environment: key.Live, Scopes: []string{"read:users", "write:users"}, Enabled: true,
			CreatedAt: t0.Add(-24 * time.Hour), UpdatedAt: t0.Add(-24 * time.Hour), Metadata: map[string]any{"plan": "pro"}}
		s.mod(k)
		k.Hash = hasher.Sum(s.plain)
		k.Hint = s.plain[:15]
		if err := st.Create(ctx, k); err != nil {
			t.Fatal(err)
		}
		for attr, counters := range map[string]map[string]int64{"rl": s.rl, "q": s.q} {
			for c, n := range counters {
				_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
					TableName: aws.String(table), Key: store.ItemKey(store.KeyPK(k.Hash), "KEY"),
					UpdateExpression:          aws.String("SET #m.#c = :n"),
					ExpressionAttributeNames:  map[string]string{"#m": attr, "#c": c},
					ExpressionAttributeValues: map[string]ddb.AttributeValue{":n": &ddb.AttributeValueMemberN{Value: fmt.Sprint(n)}},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// newHandler builds the handler as main does, over the given DynamoDB
// client, with the clock at t0 and logs and metrics into w.
func newHandler(t *testing.T, db *dynamodb.Client, table string, w *logtest.Buffer) (*authorizer.Handler, *apikey.Hasher) {
	t.Helper()
	s, err := settings.LoadSettings(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	s.Verify.Now = func() time.Time { return t0 }
	v := verify.New(store.New(db, table, store.Options{}), s.Verify)
	return authorizer.New(v, authorizer.Options{
		QueryParam: s.QueryParam,
		Logger:     slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics:    metrics.New(w),
	}), s.Verify.Hasher
}

// outcome is what a *.want.json holds: the response, or the error.
type outcome struct {
	Response json.RawMessage `json:"response,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// TestReplayEveryEvent replays every event under events/authorizer through
// lambda.NewHandler(...).Invoke, each against a fresh table seeded with the
// fixture keys (the events under unavailable/ against a DynamoDB that is
// not there), and compares the result with the event's *.want.json. An
// event without one fails. Logs and metrics of all of them must not hold
// any plaintext key.
func TestReplayEveryEvent(t *testing.T) {
	evs := lambdatest.Events(t, "authorizer")
	if len(evs) < 30 {
		t.Fatalf("found %d events under events/authorizer", len(evs))
	}
	logs := &logtest.Buffer{}
	port, _ := dynamolocal.FreePort()
	dead := store.LocalClient(fmt.Sprintf("http://127.0.0.1:%d", port))
	for name, event := range evs {
		file := lambdatest.EventFile(t, "authorizer", name)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db, table := dynamotest.Table(t)
			client := db
			if strings.Contains(file, "/unavailable/") {
				client = dead
			}
			h, hasher := newHandler(t, client, table, logs)
			seedTable(t, db, table, hasher)
			resp, err := lambda.NewHandler(h).Invoke(context.Background(), event)
			got := outcome{Response: resp}
			if err != nil {
				got = outcome{Error: err.Error()}
			}
			wantFile := strings.TrimSuffix(file, ".json") + ".want.json"
			raw, err := os.ReadFile(wantFile)
			if os.IsNotExist(err) && *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				var pretty bytes.Buffer
				_ = json.Indent(&pretty, b, "", "  ")
				if err := os.WriteFile(wantFile, append(pretty.Bytes(), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s has no expectation %s: write it (go test ./internal/authorizer -run TestReplayEveryEvent -args -update writes missing ones, for review): %v", file, wantFile, err)
			}
			var want outcome
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatalf("%s: %v", wantFile, err)
			}
			if want.Error != got.Error || !sameJSON(t, want.Response, got.Response) {
				t.Fatalf("%s:\n got  error=%q response=%s\n want error=%q response=%s", file, got.Error, got.Response, want.Error, want.Response)
			}
		})
	}
	t.Cleanup(func() {
		out := logs.String()
		if !strings.Contains(out, `"outcome":"allow"`) || !strings.Contains(out, `"Verifications":1`) {
			t.Errorf("no verification was logged or measured: the leak check below proves nothing")
		}
		leaktest.Check(t, map[string]string{"logs and metrics": out}, append([]string{unknownKey}, plains()...)...)
	})
}

func plains() []string {
	var out []string
	for _, s := range seeds {
		out = append(out, s.plain)
	}
	return out
}

func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
