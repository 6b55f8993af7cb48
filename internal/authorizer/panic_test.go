package authorizer_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/authorizer"
	"github.com/keygate/keygate/internal/lambdatest"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/verify"
)

// panickingStore is a key store whose every call panics: a bug, or a
// dependency that breaks in a way nobody planned for.
type panickingStore struct{}

func (panickingStore) Verify(context.Context, store.VerifyInput) (store.VerifyResult, error) {
	panic("the store broke")
}

func (panickingStore) Refund(context.Context, store.VerifyInput, *store.Record) error {
	panic("the store broke")
}

func (panickingStore) Report(context.Context, store.ReportInput) (store.ReportResult, error) {
	panic("the store broke")
}

// A panic denies, in each dialect the way its API type can show a client:
// REST APIs get the error their gateway response maps to 503; an HTTP API,
// which answers any authorizer error with 500, gets a refusal (403) that
// says unavailable in its context.
func TestAPanicRefusesInEachDialect(t *testing.T) {
	h := authorizer.New(verify.New(panickingStore{}, verify.Options{}), authorizer.Options{Logger: slog.New(slog.DiscardHandler)})
	evs := lambdatest.Events(t, "authorizer")
	for name, want := range map[string]string{
		"rest-request/allow": `error: unavailable`,
		"http-api/allow":     `{"context":{"code":"unavailable","message":"the key could not be verified; try again","retryAfterField":",\"retryAfterSeconds\":1","retryAfterSeconds":1},"isAuthorized":false}`,
	} {
		resp, err := lambda.NewHandler(h).Invoke(context.Background(), evs[name])
		var got string
		if err != nil {
			got = "error: " + err.Error()
		} else {
			var v any // keys in order, for comparison
			_ = json.Unmarshal(resp, &v)
			b, _ := json.Marshal(v)
			got = string(b)
		}
		if got != want {
			t.Errorf("%s: got %s\nwant %s", name, got, want)
		}
	}
}
