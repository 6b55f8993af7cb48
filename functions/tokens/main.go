// Command tokens is the Lambda function behind POST /v1/tokens (exchange an
// API key for a short-lived access token, behind the keygate authorizer)
// and GET /.well-known/jwks.json (the public keys that verify tokens). Its
// composition (the settings, the DynamoDB client, the signing backend: KMS
// when KEYGATE_SIGNING_KEY is set, else local keys under
// KEYGATE_SIGNING_DIR) is internal/compose/tokens, which the local stack
// runs too.
package main

import (
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/tokens"
	"github.com/keygate/keygate/internal/gateway"
)

func main() { compose.Main(gateway.FnTokens, tokens.Compose) }
