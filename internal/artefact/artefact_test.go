package artefact

import (
	"context"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// maxZip is the design's limit on a function's deployment artefact.
const maxZip = 5 << 20

var (
	root string // the repository root
	tmp  string
	rie  string
	// native holds each function built for this machine (to run under the
	// RIE); shipped holds them built for arm64, as `make build` does.
	native  = map[string]string{}
	shipped = map[string]string{}
)

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		root, err = filepath.Abs("../..")
		must(err)
		tmp, err = os.MkdirTemp("", "keygate-artefact-")
		must(err)
		defer os.RemoveAll(tmp)
		ctx := context.Background()
		rie, err = BuildRIE(ctx, root, tmp)
		must(err)
		fns, _ := filepath.Glob(filepath.Join(root, "functions", "*"))
		pkgs := map[string]string{"hello": "./internal/artefact/testdata/hello"}
		for _, f := range fns {
			pkgs[filepath.Base(f)] = "./functions/" + filepath.Base(f)
		}
		for name, pkg := range pkgs {
			// Only the two functions compared under the RIE are built for
			// this machine; every function is built for arm64, as shipped
			// (and `make build` then finds those builds in the cache).
			if name == "hello" || name == "authorizer" {
				native[name], err = Build(ctx, root, pkg, "", filepath.Join(tmp, "native", name))
				must(err)
			}
			if name != "hello" {
				shipped[name], err = Build(ctx, root, pkg, "arm64", filepath.Join(tmp, "arm64", name))
				must(err)
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// Every function's deployment zip must stay within 5 MB.
func TestDeploymentZipsAreSmall(t *testing.T) {
	if len(shipped) == 0 {
		t.Fatal("no functions found under functions/: nothing was checked")
	}
	for name, bin := range shipped {
		size, err := ZipSize(bin)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.2f MB zipped", name, float64(size)/(1<<20))
		if size > maxZip {
			t.Errorf("%s: deployment zip is %d bytes, over the 5 MB limit", name, size)
		}
	}
}

// malformedKeyEvent is a REST API REQUEST authorizer event whose key fails
// the checksum: the authorizer must deny it without any network call.
const malformedKeyEvent = `{"type":"REQUEST","methodArn":"arn:aws:execute-api:us-east-1:123456789012:abc123/prod/GET/demo",
"resource":"/demo","path":"/demo","httpMethod":"GET","headers":{"x-api-key":"kg_sk_live_0000000000000000000000000000000000000000000000000"},
"requestContext":{"accountId":"123456789012","apiId":"abc123","stage":"prod","httpMethod":"GET","path":"/prod/demo",
"identity":{"sourceIp":"203.0.113.9"},"requestId":"r-1"}}`

// awsEnv is what Lambda sets for a function, with every AWS endpoint pointed
// at addr so that any network call the function makes is seen.
func awsEnv(addr string) []string {
	return []string{
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=token",
		"AWS_ENDPOINT_URL=http://" + addr, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_FUNCTION_NAME=keygate-authorizer", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"KEYGATE_TABLE=keygate", "KEYGATE_PEPPER=pepper",
	}
}

// The authorizer makes no network call during init, nor for a malformed
// key: every AWS endpoint points at a listener that counts connections.
func TestAuthorizerInitMakesNoNetworkCall(t *testing.T) {
	bin, ok := native["authorizer"]
	if !ok {
		t.Fatal("functions/authorizer is missing")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := ColdStart(ctx, rie, bin, awsEnv(l.Addr().String()), []byte(malformedKeyEvent))
	if err != nil {
		t.Fatal(err)
	}
	body := r.Response
	if !strings.Contains(string(body), "Unauthorized") {
		t.Fatalf("a malformed key was not refused as Unauthorized: %s", body)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the authorizer opened %d network connections during init and a malformed-key request", n)
	}
}

// compare names more bootstrap binaries for BenchmarkColdStart, built as
// Build builds them for this machine (for example the authorizer of an
// earlier commit): -compare before=/tmp/before/bootstrap,other=...
var compare = flag.String("compare", "", "name=path,...: more bootstrap binaries for BenchmarkColdStart to run side by side")

// BenchmarkColdStart reports the cold start of the authorizer and of a
// hello-world aws-lambda-go function built the same way, side by side in one
// run (and of the binaries -compare names): cold-ms is the first invoke's
// wall time under the RIE (see Result), rie-init-ms what the RIE prints.
// Compare with benchstat.
func BenchmarkColdStart(b *testing.B) {
	bins := map[string]string{"hello": native["hello"], "authorizer": native["authorizer"]}
	names := []string{"hello", "authorizer"}
	for _, c := range strings.Split(*compare, ",") {
		if name, path, ok := strings.Cut(c, "="); ok {
			bins[name] = path
			names = append(names, name)
		}
	}
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			bin, ok := bins[name]
			if !ok || bin == "" {
				b.Fatalf("%s was not built", name)
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var first, reported time.Duration
			for b.Loop() {
				r, err := ColdStart(context.Background(), rie, bin, awsEnv(l.Addr().String()), []byte(malformedKeyEvent))
				if err != nil {
					b.Fatal(err)
				}
				first += r.FirstInvoke
				reported += r.ReportedInit
			}
			b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "cold-ms")
			b.ReportMetric(float64(reported.Microseconds())/1000/float64(b.N), "rie-init-ms")
		})
	}
}

// Each function links only what it runs: the authorizer, which every
// request waits for, links neither the admin API, the rotator, the token
// routes, EventBridge nor KMS (whose package initialisation would run on
// each of its cold starts); the issuer links KMS to seal idempotent
// responses, but not the token signer; the usage consumer links no stream
// client (Lambda reads the stream for it); and no binary links a test
// package.
func TestBinariesLinkOnlyWhatTheyRun(t *testing.T) {
	deps := func(pkg string) []string {
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	forbidden := map[string][]string{
		"./functions/authorizer": {
			"github.com/keygate/keygate/internal/adminapi", "github.com/keygate/keygate/internal/rotator",
			"github.com/keygate/keygate/internal/tokenapi", "github.com/keygate/keygate/internal/lifecycle",
			"github.com/aws/aws-sdk-go-v2/service/eventbridge", "github.com/aws/aws-sdk-go-v2/service/kms",
			"github.com/aws/aws-sdk-go-v2/config", "github.com/aws/aws-sdk-go-v2/service/sts",
		},
		"./functions/tokens":  {"github.com/keygate/keygate/internal/adminapi", "github.com/aws/aws-sdk-go-v2/service/eventbridge"},
		"./functions/issuer":  {"github.com/keygate/keygate/internal/tokenapi", "github.com/keygate/keygate/internal/token/kmssign"},
		"./cmd/keygate-dev":   {},
		"./functions/rotator": {"github.com/keygate/keygate/internal/tokenapi"},
		// The usage consumer reads the stream through Lambda, never itself.
		"./functions/usage": {
			"github.com/keygate/keygate/internal/adminapi", "github.com/keygate/keygate/internal/tokenapi",
			"github.com/keygate/keygate/internal/localstream", "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams",
			"github.com/aws/aws-sdk-go-v2/service/eventbridge", "github.com/aws/aws-sdk-go-v2/service/kms",
		},
	}
	for pkg, not := range forbidden {
		got := deps(pkg)
		for _, p := range append(not, "testing") {
			if slices.Contains(got, p) {
				t.Errorf("%s links %s", pkg, p)
			}
		}
	}
}
