// Command usage is the Lambda function that keeps usage history: the
// table's DynamoDB stream invokes it (an event source mapping that passes
// only the keys' hot items) with batches of changes, and it records what
// each did to its key's and its owner's usage of the day (internal/usage).
// Its composition is internal/compose/usage, which the local stack runs
// too.
package main

import (
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/usage"
	"github.com/keygate/keygate/internal/gateway"
)

func main() { compose.Main(gateway.FnUsage, usage.Compose) }
