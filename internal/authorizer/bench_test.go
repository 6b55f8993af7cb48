package authorizer_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/authorizer"
	settings "github.com/keygate/keygate/internal/compose/authorizer"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

// benchOnlyFakeStore stands in for DynamoDB in BenchmarkHandler only, which
// measures the handler with the store excluded. Every test uses DynamoDB
// Local.
type benchOnlyFakeStore struct {
	verify func(context.Context, store.VerifyInput) (store.VerifyResult, error)
}

func (s benchOnlyFakeStore) Verify(ctx context.Context, in store.VerifyInput) (store.VerifyResult, error) {
	return s.verify(ctx, in)
}

func (benchOnlyFakeStore) Refund(context.Context, store.VerifyInput, *store.Record) error { return nil }

func (benchOnlyFakeStore) Report(context.Context, store.ReportInput) (store.ReportResult, error) {
	return store.ReportResult{}, nil
}

// BenchmarkHandler compares a whole warm invocation of the REST REQUEST
// authorizer (lambda.NewHandler(...).Invoke on the allow event: decode,
// verify with the key cached, render, encode, log and metrics, the store
// excluded) with its floor: decoding the same event into aws-lambda-go's
// type and encoding the same response, nothing else. Target: handler <=
// 1.5x floor.
func BenchmarkHandler(b *testing.B) {
	event, err := os.ReadFile(filepath.Join("..", "..", "events", "authorizer", "rest-request", "allow.json"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := settings.LoadSettings(func(k string) string { return env[k] })
	if err != nil {
		b.Fatal(err)
	}
	s.Verify.Now = func() time.Time { return t0 }
	k := &key.Key{ID: "key_00000000000000000000000001", OwnerID: "acme", Type: key.Secret, Environment: key.Live,
		Enabled: true, Scopes: []string{"read:users", "write:users"}, Metadata: map[string]any{"plan": "pro"},
		RateLimits: []key.RateLimit{{Name: "second", Limit: 100, WindowSeconds: 1}, {Name: "day", Limit: 10000, WindowSeconds: 86400}},
		Quota:      &key.Quota{Limit: 1000, Period: key.Month}}
	rec := &store.Record{Key: k,
		RL: map[string]int64{k.RateLimits[0].Counter(t0): 1, k.RateLimits[1].Counter(t0): 1},
		Q:  map[string]int64{k.Quota.PeriodKey(t0): 1}}
	fake := benchOnlyFakeStore{verify: func(context.Context, store.VerifyInput) (store.VerifyResult, error) {
		return store.VerifyResult{Admitted: true, Record: rec}, nil
	}}
	h := authorizer.New(verify.New(fake, s.Verify), authorizer.Options{
		QueryParam: s.QueryParam,
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:    metrics.New(io.Discard),
	})
	invoke := lambda.NewHandler(h)
	resp, err := invoke.Invoke(context.Background(), event)
	if err != nil {
		b.Fatal(err)
	}
	var response events.APIGatewayCustomAuthorizerResponse
	if err := json.Unmarshal(resp, &response); err != nil || response.PolicyDocument.Statement[0].Effect != "Allow" {
		b.Fatalf("warm-up: %s %v", resp, err)
	}
	b.Run("impl=floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
			if err := json.Unmarshal(event, &ev); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(response); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=handler", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if _, err := invoke.Invoke(ctx, event); err != nil {
				b.Fatal(err)
			}
		}
	})
}
