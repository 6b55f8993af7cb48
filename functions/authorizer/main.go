// Command authorizer is the Lambda authorizer. Its composition (the
// settings, the DynamoDB client, the store, the verifier and the handler,
// built once per cold start with no network call) is
// internal/compose/authorizer, which the local stack runs too.
package main

import (
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/authorizer"
	"github.com/keygate/keygate/internal/gateway"
)

func main() { compose.Main(gateway.FnAuthorizer, authorizer.Compose) }
