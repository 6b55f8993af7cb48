package localstack

import (
	"context"
	"io"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/localgw"
)

// Factories returns a localgw.Factory per function, each building one
// environment of the function on demand with the composition its Lambda
// entry point runs (internal/compose), from the local stack's environment
// (getenv) and with its logs and metric lines tagged and written to stdout.
// Every function the route table reaches, and the authorizer, must be in
// compose.Functions; TestEveryRoutedFunctionRunsLocally holds that.
func Factories(getenv func(string) string, stdout io.Writer) map[string]localgw.Factory {
	out := make(map[string]localgw.Factory, len(compose.Functions))
	for name, c := range compose.Functions {
		e := compose.Env{Getenv: getenv, Stdout: stdout, Name: name}
		out[name] = func() (lambda.Handler, error) { return c(context.Background(), e) }
	}
	return out
}
