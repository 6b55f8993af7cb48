// Command hello is the baseline for the authorizer's cold start: the smallest
// aws-lambda-go function, built exactly as keygate's functions are.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(ctx context.Context, in map[string]any) (string, error) { return "hello", nil })
}
