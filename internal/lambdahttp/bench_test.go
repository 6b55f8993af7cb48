package lambdahttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keygate/keygate/internal/lambdahttp"
)

var okBody = []byte(`{"id":"key_00000000000000000000000001","status":"active"}`)

var small = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(okBody)
})

func fixture(b *testing.B, name string) []byte {
	p, err := os.ReadFile("../../events/issuer/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkAdapter runs a REST API event through the adapter to a handler
// that writes a small JSON body.
func BenchmarkAdapter(b *testing.B) {
	h := lambdahttp.Handler(small)
	p := fixture(b, "v1/get.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(context.Background(), p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEncode is the floor the adapter is compared with: decoding
// the same event and encoding the same response, nothing else.
func BenchmarkDecodeEncode(b *testing.B) {
	p := fixture(b, "v1/get.json")
	b.ReportAllocs()
	for b.Loop() {
		var ev events.APIGatewayProxyRequest
		if err := json.Unmarshal(p, &ev); err != nil {
			b.Fatal(err)
		}
		out := events.APIGatewayProxyResponse{StatusCode: 200, MultiValueHeaders: map[string][]string{"Content-Type": {"application/json"}}, Body: string(okBody)}
		if _, err := json.Marshal(out); err != nil {
			b.Fatal(err)
		}
	}
}
