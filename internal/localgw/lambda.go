package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Factory builds one Lambda environment of a function: the handler, with
// its clients and caches, as the function's main.go builds it at cold
// start.
type Factory func() (lambda.Handler, error)

// maxEnvironments bounds the environments of one function; a request that
// finds them all busy waits for one, as a function at its reserved
// concurrency would throttle.
const maxEnvironments = 16

// function runs one function's handlers the way Lambda does: each
// environment serves one invocation at a time and keeps its state (the
// authorizer's cache) between invocations; a busy function gets another
// environment, built by the factory (a cold start). The most recently used
// environment is reused first, so a lone client keeps hitting a warm one.
type function struct {
	name    string
	factory Factory
	slots   chan struct{} // one token per environment that may exist

	mu   sync.Mutex
	idle []lambda.Handler
}

func newFunction(name string, f Factory) *function {
	return &function{name: name, factory: f, slots: make(chan struct{}, maxEnvironments)}
}

// shutdown runs Shutdown on every idle environment that has one (the
// authorizer's: it reports usage admitted from reservations), as Lambda's
// SIGTERM does before it ends an environment, each within ctx; it waits up
// to ctx's deadline for busy ones to come back. The environments are
// gone afterwards.
func (f *function) shutdown(ctx context.Context) {
	type shutdowner interface{ Shutdown(context.Context) }
	for {
		f.mu.Lock()
		idle := f.idle
		f.idle = nil
		f.mu.Unlock()
		for _, h := range idle {
			if s, ok := h.(shutdowner); ok {
				s.Shutdown(ctx)
			}
			<-f.slots
		}
		if len(f.slots) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// errFunction is a function error: the handler returned an error or
// panicked. Its message is the errorMessage Lambda would report.
type errFunction struct{ msg string }

func (e *errFunction) Error() string { return e.msg }

// errTimeout is an invocation that ran past its deadline.
var errTimeout = errors.New("invocation timed out")

// invoke runs one invocation with the Lambda context (request id, deadline)
// and returns the handler's JSON response. A handler error or panic is an
// *errFunction; a deadline passed is errTimeout; a cold start that fails is
// an error of its own.
func (f *function) invoke(ctx context.Context, requestID string, timeout time.Duration, payload []byte) ([]byte, error) {
	h, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       requestID,
		InvokedFunctionArn: "arn:aws:lambda:" + region + ":" + account + ":function:keygate-" + f.name,
	})
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: &errFunction{msg: fmt.Sprint(p)}}
			}
		}()
		out, err := h.Invoke(ctx, payload)
		if err != nil {
			err = &errFunction{msg: err.Error()}
		}
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		f.release(h)
		return r.out, r.err
	case <-ctx.Done():
		// Lambda would end the environment; the handler's goroutine is left
		// to finish against its cancelled context, and the environment is
		// not reused.
		go func() { <-done; <-f.slots }()
		return nil, errTimeout
	}
}

// acquire returns an idle environment, or builds a new one if fewer than
// maxEnvironments exist, or waits for one to become idle.
func (f *function) acquire(ctx context.Context) (lambda.Handler, error) {
	for {
		f.mu.Lock()
		if n := len(f.idle); n > 0 {
			h := f.idle[n-1]
			f.idle = f.idle[:n-1]
			f.mu.Unlock()
			return h, nil
		}
		f.mu.Unlock()
		select {
		case f.slots <- struct{}{}:
			h, err := f.factory()
			if err != nil {
				<-f.slots
				return nil, fmt.Errorf("function %s cannot start: %w", f.name, err)
			}
			return h, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
			// Poll for an environment released meanwhile.
		}
	}
}

func (f *function) release(h lambda.Handler) {
	f.mu.Lock()
	f.idle = append(f.idle, h)
	f.mu.Unlock()
}

// warm builds one environment (a cold start) and keeps it idle, so that a
// composition error shows at startup rather than on the first request.
func (f *function) warm(ctx context.Context) error {
	h, err := f.acquire(ctx)
	if err != nil {
		return err
	}
	f.release(h)
	return nil
}

// StreamTimeout is how long an invocation with a batch of stream records
// may run (the usage function's timeout in the stack).
const StreamTimeout = time.Minute

// InvokeStream invokes the named function with a batch of DynamoDB stream
// records, as an event source mapping on the table's stream does. An error
// (the function's, or none that answered) means the batch must be
// delivered again.
func (g *Gateway) InvokeStream(ctx context.Context, name string, ev events.DynamoDBEvent) error {
	fn := g.functions[name]
	if fn == nil {
		return fmt.Errorf("no function %s in the local stack", name)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = fn.invoke(ctx, newRequestID(), StreamTimeout, payload)
	return err
}

// ScheduleTimeout is how long a scheduled invocation may run (the rotator's
// timeout in the stack).
const ScheduleTimeout = 5 * time.Minute

// InvokeScheduled invokes the named function with the EventBridge
// scheduled event an EventBridge rule sends (source aws.events,
// detail-type "Scheduled Event"), as the stack's schedule does. It returns
// the function's answer.
func (g *Gateway) InvokeScheduled(ctx context.Context, name string) ([]byte, error) {
	fn := g.functions[name]
	if fn == nil {
		return nil, fmt.Errorf("no function %s in the local stack", name)
	}
	id := newRequestID()
	payload, err := json.Marshal(events.EventBridgeEvent{
		Version:    "0",
		ID:         id,
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  account,
		Time:       g.now().UTC().Truncate(time.Second),
		Region:     region,
		Resources:  []string{"arn:aws:events:" + region + ":" + account + ":rule/keygate-" + name + "-schedule"},
		Detail:     json.RawMessage(`{}`),
	})
	if err != nil {
		return nil, err
	}
	return fn.invoke(ctx, id, ScheduleTimeout, payload)
}
