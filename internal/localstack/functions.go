package localstack

import (
	"context"
	"io"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/authorizer"
	"github.com/keygate/keygate/internal/compose/issuer"
	"github.com/keygate/keygate/internal/compose/rotator"
	"github.com/keygate/keygate/internal/compose/tokens"
	"github.com/keygate/keygate/internal/compose/usage"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/localgw"
)

// Functions maps each function's name (as the route table and the stack
// name them) to its composition: the same one its Lambda entry point
// (functions/<name>/main.go) runs. The local stack is the one program that
// runs every function, so this is the one place that links them all.
var Functions = map[string]compose.Func{
	gateway.FnAuthorizer: authorizer.Compose,
	gateway.FnIssuer:     issuer.Compose,
	gateway.FnRotator:    rotator.Compose,
	gateway.FnTokens:     tokens.Compose,
	gateway.FnUsage:      usage.Compose,
}

// Factories returns a localgw.Factory per function, each building one
// environment of the function on demand with its composition, from the
// function's environment (envOf(name), as os.Getenv) and with its logs and
// metric lines tagged and written to stdout. Every function the route
// table reaches, and the authorizer, must be in Functions;
// TestEveryRoutedFunctionRunsLocally holds that.
func Factories(envOf func(fn string) func(string) string, stdout io.Writer) map[string]localgw.Factory {
	out := make(map[string]localgw.Factory, len(Functions))
	for name, c := range Functions {
		e := compose.Env{Getenv: envOf(name), Stdout: stdout, Name: name}
		out[name] = func() (lambda.Handler, error) { return c(context.Background(), e) }
	}
	return out
}
