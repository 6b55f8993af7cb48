package dynamotest

import (
	"context"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// Watched returns a client of db's DynamoDB Local whose every call is first
// passed to see, with its operation as DynamoDB's API names it (GetItem,
// UpdateItem, ...): see may count it, and a non-nil error fails the call
// without sending it, as an outage or throttling would. Stores over the
// client behave as over db otherwise.
func Watched(db *dynamodb.Client, see func(op string) error) *dynamodb.Client {
	watch := middleware.InitializeMiddlewareFunc("dynamotest.Watched",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if err := see(awsmiddleware.GetOperationName(ctx)); err != nil {
				return middleware.InitializeOutput{}, middleware.Metadata{}, err
			}
			return next.HandleInitialize(ctx, in)
		})
	return dynamodb.New(db.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error { return s.Initialize.Add(watch, middleware.Before) })
	})
}

// Calls counts DynamoDB calls by operation; it is safe for concurrent use.
// Its See is a Watched see that counts and fails nothing:
//
//	calls := &dynamotest.Calls{}
//	db := dynamotest.Watched(db, calls.See)
type Calls struct {
	mu  sync.Mutex
	ops map[string]int
}

// See counts one call of op.
func (c *Calls) See(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]int{}
	}
	c.ops[op]++
	return nil
}

// Total is the number of calls so far.
func (c *Calls) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.ops {
		n += k
	}
	return int64(n)
}

// Ops returns the calls so far by operation.
func (c *Calls) Ops() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.ops))
	for op, n := range c.ops {
		out[op] = n
	}
	return out
}
