package localstack

import (
	"os"
	"slices"
	"testing"

	"github.com/keygate/keygate/internal/gateway"
)

// A function in the repository that the route table reaches (or the
// authorizer) must run in the local stack too, or `make dev` would answer
// its routes with 502.
func TestEveryRoutedFunctionRunsLocally(t *testing.T) {
	entries, err := os.ReadDir("../../functions")
	if err != nil {
		t.Fatal(err)
	}
	routed := append(gateway.Functions(Routes(gateway.DefaultProxyBase)), gateway.FnAuthorizer)
	n := 0
	for _, e := range entries {
		if !e.IsDir() || !slices.Contains(routed, e.Name()) {
			continue
		}
		n++
		if Functions[e.Name()] == nil {
			t.Errorf("functions/%s is routed but has no composition in Functions", e.Name())
		}
	}
	if n == 0 {
		t.Fatal("no routed function found under functions/")
	}
}
