// Package usage composes the usage function: the consumer of the table's
// DynamoDB stream that keeps usage history (internal/usage), with its
// retention, the store, and its metric lines. functions/usage runs it in
// Lambda behind the stream's event source mapping, and the local stack
// runs it too, fed by internal/localstream.
package usage

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/metrics"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/usage"
)

// Compose builds the usage function's handler.
func Compose(_ context.Context, e compose.Env) (lambda.Handler, error) {
	r := config.FromEnv(e.Getenv)
	retention := config.UsageRetention.From(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	st, err := e.Store(store.Options{})
	if err != nil {
		return nil, err
	}
	h := usage.New(st, usage.Options{Retention: retention, Logger: e.Logger(nil), Metrics: metrics.New(e.Stdout)})
	return lambda.NewHandler(h.Handle), nil
}
