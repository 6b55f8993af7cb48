package store

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// A throttled request can end in an error that does not say so: the SDK
// retries a throttled attempt after a backoff, and when the caller's
// deadline ends during that backoff (or during the retry), the request
// fails with a context error, and the throttling is forgotten. For the
// authorizer that difference matters: serve-stale may admit while DynamoDB
// is unavailable, never while it throttles (a client could otherwise drive
// a key into throttling and then be admitted uncounted). So each attempt's
// error is looked at as it happens, inside the SDK's retry loop, and a
// throttled attempt is remembered on the request's context.

type throttleKey struct{}

// watchThrottling returns a context on which throttleSeen records a
// throttled attempt, and the flag it sets.
func watchThrottling(ctx context.Context) (context.Context, *atomic.Bool) {
	seen := new(atomic.Bool)
	return context.WithValue(ctx, throttleKey{}, seen), seen
}

// throttleSeen adds, to one request, a middleware that runs once per
// attempt (after the SDK's retry middleware) and sets the context's flag
// when the attempt was throttled.
func throttleSeen(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("keygateThrottleSeen",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && isThrottle(err) {
					if seen, ok := ctx.Value(throttleKey{}).(*atomic.Bool); ok {
						seen.Store(true)
					}
				}
				return out, md, err
			}), "Retry", middleware.After)
	})
}

// isThrottle reports whether err is DynamoDB refusing for throughput:
// ProvisionedThroughputExceeded (a partition, or an on-demand table, over
// its throughput), RequestLimitExceeded (an account quota), or
// ThrottlingException (the control plane, and the code a throttling
// response carries when it is not modelled).
func isThrottle(err error) bool {
	var (
		pte *ddb.ProvisionedThroughputExceededException
		rle *ddb.RequestLimitExceeded
		ae  smithy.APIError
	)
	return errors.As(err, &pte) || errors.As(err, &rle) ||
		errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException"
}
