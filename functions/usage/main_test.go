package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/usage"
	"github.com/keygate/keygate/internal/dynamotest"
	"github.com/keygate/keygate/internal/lambdatest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// The composition root wires the usage consumer; every sample event of
// events/usage (as Lambda delivers DynamoDB stream records) is replayed
// through it, twice, with the history they describe and nothing counted
// twice.
func TestReplayEveryEvent(t *testing.T) {
	f := lambdatest.Compose(t, usage.Compose, nil)
	const id = "key_0000000000000000000000str3"
	f.Key(t, id, nil)
	events := lambdatest.Events(t, "usage")
	if len(events) != 4 {
		t.Fatalf("%d events under events/usage, want the 4 this test knows", len(events))
	}
	for round := range 2 {
		for _, name := range []string{"verification", "new-day", "no-usage", "unreadable"} {
			if out := f.Invoke(t, events[name]); string(out) != "null" {
				t.Fatalf("round %d, %s: %s", round, name, out)
			}
		}
		from := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
		days, err := f.Store.Usage(context.Background(), id, from, from.AddDate(0, 0, 1))
		if err != nil {
			t.Fatal(err)
		}
		// 2026-11-26: one request at cost 3 (the earlier four are not in
		// these events); 2026-11-27: one at cost 1.
		if d := days[0]; d.Count != 1 || d.Credits != 3 {
			t.Fatalf("round %d: %+v", round, days)
		}
		if d := days[1]; d.Count != 1 || d.Credits != 1 {
			t.Fatalf("round %d: %+v", round, days)
		}
		owner, err := f.Store.OwnerUsage(context.Background(), "acme", from, from.AddDate(0, 0, 1))
		if err != nil || owner[0].Count != 1 || owner[1].Count != 1 {
			t.Fatalf("round %d: owner %+v %v", round, owner, err)
		}
	}
	logs := f.Logs.String()
	if strings.Count(logs, "a stream record that cannot be read was skipped") != 2 || !strings.Contains(logs, `"UsageSkipped":1`) {
		t.Fatalf("the unreadable record was not logged and counted each time:\n%s", logs)
	}
}

func TestSetupRefusesBadSettings(t *testing.T) {
	env := map[string]string{"KEYGATE_DYNAMODB_ENDPOINT": "http://127.0.0.1:1", "KEYGATE_USAGE_RETENTION": "1d"}
	_, err := usage.Compose(context.Background(), compose.Env{Getenv: func(k string) string { return env[k] }, Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "KEYGATE_USAGE_RETENTION") {
		t.Fatalf("a retention under a month: %v", err)
	}
}
