package rotator

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/fault"
	"github.com/keygate/keygate/internal/lambdahttp"
)

// deadlineMargin is kept free before the Lambda deadline, so a run stops
// with time left to return its report; at most a fifth of the time left.
const deadlineMargin = 5 * time.Second

// Handler returns the rotator function's Lambda handler. It tells the two
// kinds of event it receives apart by their shape: an EventBridge (or
// CloudWatch Events) scheduled event, with "source" and "detail-type", runs
// the sweep within a budget of the time to the deadline minus a margin,
// capped at maxRun; an API Gateway proxy event (REST v1 or HTTP v2) is served
// by admin, the rotate route. Anything else is refused.
func Handler(sw *Sweeper, admin http.Handler, maxRun time.Duration) func(context.Context, json.RawMessage) (any, error) {
	serve := lambdahttp.Handler(admin)
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		var probe struct {
			Source     string `json:"source"`
			DetailType string `json:"detail-type"`
			Version    string `json:"version"`
			HTTPMethod string `json:"httpMethod"`
			RouteKey   string `json:"routeKey"`
		}
		if err := json.Unmarshal(payload, &probe); err != nil {
			return nil, fault.Wrap(fault.Invalid, err, "event is not a JSON object")
		}
		switch {
		case probe.Source != "" && probe.DetailType != "":
			var ev events.EventBridgeEvent
			if err := json.Unmarshal(payload, &ev); err != nil {
				return nil, fault.Wrap(fault.Invalid, err, "decode scheduled event")
			}
			rep, err := sw.Run(ctx, Budget(ctx, time.Now(), maxRun))
			sw.logger().InfoContext(ctx, "scheduled run", "eventId", ev.ID, "due", rep.Due, "applied", rep.Applied,
				"skipped", rep.Skipped, "failed", rep.Failed, "eventsFailed", rep.EventsFailed, "complete", rep.Complete)
			return rep, err
		case probe.HTTPMethod != "" || probe.RouteKey != "" || probe.Version == "2.0":
			return serve(ctx, payload)
		}
		return nil, fault.Errorf(fault.Invalid, "event is neither a scheduled event nor an API Gateway proxy event")
	}
}

// Budget is the time a run may take: until ctx's deadline less a margin (a
// fifth of the time left, at most 5 s), and never more than maxRun.
func Budget(ctx context.Context, now time.Time, maxRun time.Duration) time.Duration {
	b := maxRun
	if dl, ok := ctx.Deadline(); ok {
		left := dl.Sub(now)
		b = min(b, left-min(deadlineMargin, left/5))
	}
	return max(b, 0)
}
