// Command keygate manages keygate API keys from a terminal or a script: it
// calls the admin API of the local stack ('make dev') or of a deployed stack
// (signed with your AWS credentials). See docs/cli.md, or run
// 'keygate help'.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
