// Command keygate-dev is `make dev`: the whole keygate system on this
// machine (DynamoDB Local, the functions, the local gateway on
// 127.0.0.1:$PORT). Ctrl-C or SIGTERM stops everything it started. See
// docs/local-stack.md, or run 'keygate-dev -h'.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/internal/localstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once
		// (DynamoDB Local follows through the parent-death signal).
		<-ctx.Done()
		stop()
	}()
	os.Exit(localstack.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
