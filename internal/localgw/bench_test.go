package localgw_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// BenchmarkProtectedRequest is one /demo request through the gateway: the
// REQUEST event, an in-process authorizer that allows, policy evaluation,
// and the proxy to the echo upstream, over loopback HTTP. It prices the
// local gateway itself (the real authorizer's DynamoDB call excluded).
func BenchmarkProtectedRequest(b *testing.B) {
	h := newHarness(b)
	h.setAuthorizer(func(ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (any, error) {
		return allow(ev, map[string]any{"keyId": "key_a", "scopes": "read"}), nil
	})
	benchGet(b, h.url+"/demo/hello", "x-api-key", "kg_sk_test_x")
}

// BenchmarkAdminRequest is one /v1 request: the proxy event, an in-process
// function that answers at once, and the proxy response.
func BenchmarkAdminRequest(b *testing.B) {
	h := newHarness(b)
	h.setIssuer(func(context.Context, events.APIGatewayProxyRequest) (any, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: `{"ok":true}`}, nil
	})
	benchGet(b, h.url+"/v1/keys/key_abc")
}

func benchGet(b *testing.B, u string, hdr ...string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
