package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAccessKey = "AKIDEXAMPLE"
	testSecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testToken     = "session-token-example"
)

// awsEnv returns an environment with static test credentials, and keeps the
// machine's own AWS files out of the test.
func awsEnv(t *testing.T, extra map[string]string) map[string]string {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	env := map[string]string{"AWS_ACCESS_KEY_ID": testAccessKey, "AWS_SECRET_ACCESS_KEY": testSecretKey, "AWS_SESSION_TOKEN": testToken}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// verifySigV4 recomputes the request's signature from what the server
// received, as API Gateway does, and fails the test unless it matches.
func verifySigV4(t *testing.T, r seen, region string) {
	t.Helper()
	auth := r.Header.Get("Authorization")
	wantPrefix := fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s/%s/execute-api/aws4_request, SignedHeaders=",
		testAccessKey, testNow.Format("20060102"), region)
	if !strings.HasPrefix(auth, wantPrefix) {
		t.Fatalf("Authorization %q does not start with %q", auth, wantPrefix)
	}
	if r.Header.Get("X-Amz-Security-Token") != testToken {
		t.Error("the session token must be sent as X-Amz-Security-Token")
	}
	signedAt, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	signed := strings.SplitN(strings.TrimPrefix(auth, wantPrefix), ",", 2)[0]
	u := "https://" + r.Host + r.Path
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	req, err := http.NewRequest(r.Method, u, bytes.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range strings.Split(signed, ";") {
		if h != "host" && h != "content-length" {
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(r.Body)
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, SessionToken: testToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", region, signedAt); err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Authorization"); got != auth {
		t.Errorf("signature does not verify:\n got  %s\n want %s", auth, got)
	}
}

func TestDeployedStackRequestsAreSignedForTheURLsRegion(t *testing.T) {
	plaintext := newPlaintext(t)
	api, tr := newDeployedAPI(t, func(n int, r seen) reply {
		if r.Method == http.MethodGet {
			return reply{status: 200, body: keyBody(t, testID, "", nil), header: map[string]string{"ETag": `"2"`}}
		}
		if r.Method == http.MethodPatch {
			return reply{status: 200, body: keyBody(t, testID, "", nil)}
		}
		return reply{status: 201, body: keyBody(t, testID, plaintext, nil)}
	})
	o := runOpts{transport: tr, env: awsEnv(t, map[string]string{"KEYGATE_API_URL": deployedURL})}
	for _, args := range [][]string{
		{"keys", "create", "--name", "n", "--owner", "acme", "--scope", "read"},
		{"keys", "list", "--owner", "acme", "--status", "active"},
		{"keys", "update", testID, "--name", "m"},
	} {
		if res := runCLI(t, o, args...); res.code != 0 {
			t.Fatalf("%v: %v", args, res)
		}
	}
	reqs := api.requests()
	if len(reqs) != 3 {
		t.Fatalf("want 3 requests, got %d", len(reqs))
	}
	for _, r := range reqs {
		if r.Host != "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com" || !strings.HasPrefix(r.Path, "/prod/v1/keys") {
			t.Errorf("request went to %s%s", r.Host, r.Path)
		}
		verifySigV4(t, r, "eu-west-1")
	}
	if reqs[2].Method != http.MethodPatch {
		t.Errorf("the update sent %s, want PATCH", reqs[2].Method)
	}
}

func TestRegionFlagOverridesTheURL(t *testing.T) {
	api, tr := newDeployedAPI(t, func(int, seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
	o := runOpts{transport: tr, env: awsEnv(t, map[string]string{"KEYGATE_API_URL": "https://keys.example.com/admin"})}
	if res := runCLI(t, o, "--region", "us-east-2", "keys", "get", testID); res.code != 0 {
		t.Fatalf("get: %v", res)
	}
	r := api.requests()[0]
	if r.Path != "/admin/v1/keys/"+testID {
		t.Errorf("path %s", r.Path)
	}
	verifySigV4(t, r, "us-east-2")
}

func TestCustomDomainWithoutARegionIsAUsageError(t *testing.T) {
	api, tr := newDeployedAPI(t, func(int, seen) reply { return reply{status: 200} })
	o := runOpts{transport: tr, env: awsEnv(t, map[string]string{"KEYGATE_API_URL": "https://keys.example.com"})}
	res := runCLI(t, o, "keys", "get", testID)
	if res.code != ExitUsage {
		t.Fatalf("want exit 2, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "--region")
	if len(api.requests()) != 0 {
		t.Error("nothing may be sent without a region to sign for")
	}
}

func TestIAMDenialExitsThreeAndPointsAtCredentials(t *testing.T) {
	_, tr := newDeployedAPI(t, func(int, seen) reply {
		return reply{status: 403, body: `{"message":"The security token included in the request is invalid."}`}
	})
	o := runOpts{transport: tr, env: awsEnv(t, map[string]string{"KEYGATE_API_URL": deployedURL})}
	res := runCLI(t, o, "keys", "get", testID)
	if res.code != ExitUnavailable {
		t.Fatalf("want exit 3, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "security token", "AWS credentials", "eu-west-1", "execute-api:Invoke")
}

// fakeCloudFormation answers DescribeStacks as CloudFormation's query API
// does.
type fakeCloudFormation struct {
	mu    sync.Mutex
	forms []url.Values
	auth  []string
}

func (f *fakeCloudFormation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(b))
	f.mu.Lock()
	f.forms = append(f.forms, form)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if form.Get("StackName") != "keygate" {
		w.WriteHeader(400)
		fmt.Fprintf(w, `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>
<Code>ValidationError</Code><Message>Stack with id %s does not exist</Message></Error><RequestId>r1</RequestId></ErrorResponse>`, form.Get("StackName"))
		return
	}
	fmt.Fprintf(w, `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
<DescribeStacksResult><Stacks><member>
<StackName>keygate</StackName><StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/keygate/1</StackId>
<StackStatus>CREATE_COMPLETE</StackStatus><CreationTime>2026-11-01T00:00:00Z</CreationTime>
<Outputs>
<member><OutputKey>TableName</OutputKey><OutputValue>keygate</OutputValue></member>
<member><OutputKey>ApiUrl</OutputKey><OutputValue>%s</OutputValue></member>
<member><OutputKey>ProxyPath</OutputKey><OutputValue>/shop</OutputValue></member>
</Outputs></member></Stacks></DescribeStacksResult>
<ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata></DescribeStacksResponse>`, deployedURL)
}

func TestStackOutputsGiveTheURL(t *testing.T) {
	cfn := &fakeCloudFormation{}
	cfnSrv := httptest.NewServer(cfn)
	t.Cleanup(cfnSrv.Close)
	api, tr := newDeployedAPI(t, func(int, seen) reply { return reply{status: 200, body: keyBody(t, testID, "", nil)} })
	env := awsEnv(t, map[string]string{"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_CLOUDFORMATION": cfnSrv.URL,
		"KEYGATE_API_URL": "http://127.0.0.1:1"}) // --stack wins over the environment
	res := runCLI(t, runOpts{transport: tr, env: env}, "keys", "get", testID, "--stack", "keygate")
	if res.code != 0 {
		t.Fatalf("get via stack: %v", res)
	}
	if len(cfn.forms) != 1 || cfn.forms[0].Get("Action") != "DescribeStacks" || cfn.forms[0].Get("StackName") != "keygate" {
		t.Errorf("want one DescribeStacks of keygate, got %v", cfn.forms)
	}
	if !strings.Contains(cfn.auth[0], "/eu-west-1/cloudformation/aws4_request") {
		t.Errorf("DescribeStacks not signed for eu-west-1: %q", cfn.auth[0])
	}
	reqs := api.requests()
	if len(reqs) != 1 || reqs[0].Path != "/prod/v1/keys/"+testID {
		t.Fatalf("want the GET at the stack's URL, got %+v", reqs)
	}
	verifySigV4(t, reqs[0], "eu-west-1")

	res = runCLI(t, runOpts{transport: tr, env: env}, "keys", "get", testID, "--stack", "keygate", "--stack-output", "AdminUrl")
	if res.code != ExitAPI {
		t.Fatalf("missing output: want exit 1, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, `no output "AdminUrl"`, "ApiUrl, ProxyPath, TableName", "--stack-output")

	res = runCLI(t, runOpts{transport: tr, env: env}, "keys", "get", testID, "--stack", "other")
	if res.code != ExitAPI {
		t.Fatalf("missing stack: want exit 1, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "does not exist", "--stack")
	if len(api.requests()) != 1 {
		t.Error("no admin request may be sent without a URL")
	}
}
