package lambdahttp_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/lambdahttp"
)

// TestAuthorizerContextReachesTheHandler: a Lambda authorizer's context
// (v1 requestContext.authorizer, v2 requestContext.authorizer.lambda) is
// what the handler reads with Authorizer; absent, every key is "".
func TestAuthorizerContextReachesTheHandler(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"keyId":     lambdahttp.Authorizer(r.Context(), "keyId"),
			"remaining": lambdahttp.Authorizer(r.Context(), "remaining"),
			"missing":   lambdahttp.Authorizer(r.Context(), "missing"),
		})
	})
	ctxMap := map[string]any{"keyId": "key_1", "remaining": 9}
	v1 := events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/tokens",
		RequestContext: events.APIGatewayProxyRequestContext{Authorizer: ctxMap}}
	v2 := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/v1/tokens",
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: ctxMap}}}
	for name, ev := range map[string]any{"v1": v1, "v2": v2} {
		var got map[string]string
		if err := json.Unmarshal([]byte(invoke(t, h, ev)["body"].(string)), &got); err != nil {
			t.Fatal(err)
		}
		if got["keyId"] != "key_1" || got["remaining"] != "9" || got["missing"] != "" {
			t.Errorf("%s: handler saw %v", name, got)
		}
	}
	var got map[string]string
	_ = json.Unmarshal([]byte(invoke(t, h, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/"})["body"].(string)), &got)
	if got["keyId"] != "" {
		t.Errorf("no authorizer, yet keyId %q", got["keyId"])
	}
}
