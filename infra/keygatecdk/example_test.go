package keygatecdk

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
)

// exampleApp is the example of a team's own CDK app using the construct.
const exampleApp = "infra/examples/attach"

// cdkOffline is the environment of an offline synth, as the Makefile's
// synth target runs it: no version check, no telemetry, no EC2 metadata
// probe for credentials.
var cdkOffline = []string{"CDK_DISABLE_VERSION_CHECK=1", "CDK_DISABLE_CLI_TELEMETRY=true", "AWS_EC2_METADATA_DISABLED=true"}

// synthExample synthesizes the example app with the pinned CDK CLI, as a
// team would (`npx cdk synth` in its app's directory), into a temporary
// cloud assembly, and returns that directory.
func synthExample(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", ".bin", "cdk")); err != nil {
		t.Fatal("the pinned CDK CLI is not installed: run `make deps` (npm ci installs it into node_modules)")
	}
	if _, err := exec.LookPath("npx"); err != nil {
		t.Fatal("npx is missing: install Node.js 20 or later")
	}
	out := t.TempDir()
	cmd := exec.Command("npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices", "--no-version-reporting", "--no-lookups", "-o", out)
	cmd.Dir = filepath.Join(root, exampleApp)
	cmd.Env = append(os.Environ(), cdkOffline...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cdk synth of %s: %v\n%s", exampleApp, err, b)
	}
	return out
}

// The example app, a module of its own that requires keygate, adds the
// construct to its stack and synthesizes with the CDK CLI: keygate's
// functions are built during synth (one asset per folder under functions/,
// each a bootstrap for Lambda on arm64), and the team's REST API and HTTP
// API are guarded by keygate's authorizer.
func TestExampleAppSynthesizes(t *testing.T) {
	out := synthExample(t)
	b, err := os.ReadFile(filepath.Join(out, "Shop.template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	tpl := assertions.Template_FromJSON(&doc, nil)

	fns := map[string]string{} // function folder -> logical id
	for id, f := range resources(t, tpl, "AWS::Lambda::Function") {
		path, _ := f.Metadata["aws:cdk:path"].(string)
		asset, _ := f.Metadata["aws:asset:path"].(string)
		name := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(path, "Shop/Keygate/Functions/"), "/Resource"))
		fns[name] = id
		lambdaBinary(t, filepath.Join(out, asset, "bootstrap"))
	}
	for _, name := range functionFolders(t) {
		if fns[name] == "" {
			t.Errorf("functions/%s was not built into the example's stack (functions: %v)", name, fns)
		}
	}
	invokesAuthorizer := func(a resource) bool {
		return strings.Contains(jsonOf(a.Properties["AuthorizerUri"]), `"`+fns["authorizer"]+`"`)
	}

	guarded := map[string]string{} // REST API logical id -> its keygate authorizer
	for id, a := range resources(t, tpl, "AWS::ApiGateway::Authorizer") {
		if invokesAuthorizer(a) {
			guarded[a.Properties["RestApiId"].(map[string]interface{})["Ref"].(string)] = id
		}
	}
	orders := ""
	for id, api := range resources(t, tpl, "AWS::ApiGateway::RestApi") {
		if api.Properties["Description"] == "the team's orders API" {
			orders = id
		}
	}
	methods := 0
	for _, m := range resources(t, tpl, "AWS::ApiGateway::Method") {
		if jsonOf(m.Properties["RestApiId"]) == jsonOf(obj{"Ref": orders}) {
			methods++
			if m.Properties["AuthorizationType"] != "CUSTOM" || jsonOf(m.Properties["AuthorizerId"]) != jsonOf(obj{"Ref": guarded[orders]}) {
				t.Errorf("the Orders API's %s method is not guarded by keygate: %s", m.Properties["HttpMethod"], jsonOf(m.Properties))
			}
		}
	}
	if orders == "" || methods != 2 {
		t.Errorf("found the Orders REST API %q with %d methods, want GET and POST", orders, methods)
	}
	tpl.HasResourceProperties(str("AWS::ApiGateway::GatewayResponse"), obj{
		"RestApiId": obj{"Ref": orders}, "ResponseType": "ACCESS_DENIED", "StatusCode": "403",
	})

	httpAuth := ""
	for id, a := range resources(t, tpl, "AWS::ApiGatewayV2::Authorizer") {
		if invokesAuthorizer(a) && a.Properties["EnableSimpleResponses"] == true {
			httpAuth = id
		}
	}
	tpl.HasResourceProperties(str("AWS::ApiGatewayV2::Route"), obj{
		"RouteKey": "GET /items", "AuthorizationType": "CUSTOM", "AuthorizerId": obj{"Ref": httpAuth},
	})
}
