// Command rotator is the Lambda function that rotates keys
// (POST /v1/keys/{id}/rotate) and runs the scheduled lifecycle work (an
// EventBridge schedule, hourly by default). Its composition is
// internal/compose/rotator, which the local stack runs too;
// internal/rotator tells the two kinds of event apart.
package main

import (
	"github.com/keygate/keygate/internal/compose"
	"github.com/keygate/keygate/internal/compose/rotator"
	"github.com/keygate/keygate/internal/gateway"
)

func main() { compose.Main(gateway.FnRotator, rotator.Compose) }
