// Package actor carries who is making an admin request (the IAM principal
// API Gateway verified, or "local" in the local stack) in the request's
// context, from the edge that knows it (the Lambda adapter, the local
// gateway) to the handler that records it in the audit trail. It is its own
// package so that the adapter, the gateway and every admin handler share one
// definition without depending on each other.
package actor

import "context"

// Local is the actor of requests made through the local gateway.
const Local = "local"

// Unknown is the actor recorded when no edge said who is calling (a
// misconfigured route without IAM auth); it is recorded rather than refused
// so that the change is still audited.
const Unknown = "unknown"

type ctxKey struct{}

// With returns a context that carries the actor, typically an IAM ARN.
func With(ctx context.Context, arn string) context.Context {
	return context.WithValue(ctx, ctxKey{}, arn)
}

// From returns the actor in ctx, or Unknown.
func From(ctx context.Context) string {
	if a, ok := ctx.Value(ctxKey{}).(string); ok && a != "" {
		return a
	}
	return Unknown
}
