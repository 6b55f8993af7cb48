// Command issuer is the Lambda function behind the admin API's /v1/keys
// routes, serving REST API (v1) and HTTP API (v2) proxy events. Its
// composition (the settings, the DynamoDB and EventBridge clients, the
// admin API handler, built once at cold start) is internal/compose/issuer,
// which the local stack runs too.
package main

import (
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/issuer"
	"github.com/keygate/keygate/internal/gateway"
)

func main() { compose.Main(gateway.FnIssuer, issuer.Compose) }
