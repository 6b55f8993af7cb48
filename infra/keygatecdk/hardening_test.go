package keygatecdk

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/seal"
)

// browserOrigins are the CORS origins of the browser stack.
var browserOrigins = []string{"https://app.example.com", "https://admin.example.com"}

var (
	browserOnce     sync.Once
	browserStack    *KeygateStack
	browserTemplate assertions.Template
)

// browser is the template of a stack with an upstream, CORS for two
// origins and no web ACL (keygate:wafRateLimit=0).
func browser(t *testing.T) assertions.Template {
	t.Helper()
	browserOnce.Do(func() {
		browserStack, browserTemplate = synth(t, KeygateProps{UpstreamUrl: str(upstream),
			CorsAllowOrigins: jsii.Strings(browserOrigins...), WafRateLimit: num(0)})
	})
	if browserStack == nil {
		t.Fatal("the browser stack did not synthesize (see the first test's failure)")
	}
	return browserTemplate
}

// keyPolicy returns the statements of the key policy of the KMS key with
// logical id id.
func keyPolicy(t *testing.T, tpl assertions.Template, id string) []map[string]interface{} {
	t.Helper()
	k, ok := resources(t, tpl, "AWS::KMS::Key")[id]
	if !ok {
		t.Fatalf("no KMS key %s", id)
	}
	var out []map[string]interface{}
	for _, s := range k.Properties["KeyPolicy"].(map[string]interface{})["Statement"].([]interface{}) {
		out = append(out, s.(map[string]interface{}))
	}
	return out
}

// Every function's environment is encrypted with the stack's customer
// managed key, which its role may decrypt (and rotates): with Lambda's
// default key, GetFunctionConfiguration (in AWS's ReadOnlyAccess) shows
// the variables, the pepper among them, in the clear.
func TestFunctionEnvironmentsAreEncryptedWithACustomerManagedKey(t *testing.T) {
	tpl := defaults(t)
	key := logicalID(defaultStack.Stack, defaultStack.EnvironmentKey)
	arn := jsonOf(obj{"Fn::GetAtt": arr{key, "Arn"}})
	fns := resources(t, tpl, "AWS::Lambda::Function")
	for _, spec := range Functions {
		fn := defaultStack.Functions[spec.Name]
		if got := jsonOf(fns[logicalID(defaultStack.Stack, fn)].Properties["KmsKeyArn"]); got != arn {
			t.Errorf("%s: KmsKeyArn %s, want the environment key %s", spec.Name, got, arn)
		}
		decrypts := false
		for _, s := range statements(t, tpl, logicalID(defaultStack.Stack, fn.Role())) {
			if slices.Contains(strs(s["Action"]), "kms:Decrypt") && jsonOf(s["Resource"]) == arn {
				decrypts = true
			}
		}
		if !decrypts {
			t.Errorf("%s's role may not decrypt its environment", spec.Name)
		}
	}
	if r := resources(t, tpl, "AWS::KMS::Key")[key]; r.Properties["EnableKeyRotation"] != true {
		t.Errorf("environment key rotation: %v", r.Properties["EnableKeyRotation"])
	}
}

// The seal key's policy lets the account administer the key but not use
// it, and only the issuer's and the rotator's roles seal and open with
// it, for idempotent responses only; they alone get KEYGATE_SEAL_KEY and
// a KMS grant on it.
func TestOnlyTheIssuerAndTheRotatorMaySealAndOpen(t *testing.T) {
	tpl := defaults(t)
	key := logicalID(defaultStack.Stack, defaultStack.SealKey)
	crypto := []string{"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
		"kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant", "kms:*"}
	use := slices.Sorted(slices.Values(SealUseActions))
	var users []string
	for _, s := range keyPolicy(t, tpl, key) {
		acts := strs(s["Action"])
		p := jsonOf(s["Principal"])
		if strings.Contains(p, ":root") {
			for _, a := range acts {
				if slices.Contains(crypto, a) || strings.HasSuffix(a, "*") {
					t.Errorf("the account may %s with the seal key, so any IAM policy could grant it", a)
				}
			}
			continue
		}
		if !slices.Equal(acts, use) ||
			jsonOf(s["Condition"]) != jsonOf(obj{"StringEquals": obj{"kms:EncryptionContext:" + seal.ContextUse: seal.Use}}) {
			t.Errorf("seal key statement %s: %v under %s", p, acts, jsonOf(s["Condition"]))
		}
		users = append(users, p)
	}
	if len(users) != 1 {
		t.Fatalf("seal key users %v, want one statement for the issuer and the rotator", users)
	}
	for _, spec := range Functions {
		role := logicalID(defaultStack.Stack, defaultStack.Functions[spec.Name].Role())
		if strings.Contains(users[0], `"`+role+`"`) != config.SealKey.Setting().ReadBy(spec.Name) {
			t.Errorf("seal key users %s: %s's role listed %v", users[0], spec.Name, strings.Contains(users[0], role))
		}
	}
	arn := jsonOf(obj{"Fn::GetAtt": arr{key, "Arn"}})
	fns := resources(t, tpl, "AWS::Lambda::Function")
	for _, spec := range Functions {
		fn := defaultStack.Functions[spec.Name]
		env := fns[logicalID(defaultStack.Stack, fn)].Properties["Environment"].(map[string]interface{})["Variables"].(map[string]interface{})
		reads := config.SealKey.Setting().ReadBy(spec.Name)
		if got := jsonOf(env[config.SealKey.Setting().Env]); (got == arn) != reads {
			t.Errorf("%s: KEYGATE_SEAL_KEY %s; it seals: %v", spec.Name, got, reads)
		}
		granted := false
		for _, s := range statements(t, tpl, logicalID(defaultStack.Stack, fn.Role())) {
			if jsonOf(s["Resource"]) == arn {
				granted = true
			}
		}
		if granted != reads {
			t.Errorf("%s: a grant on the seal key: %v; it seals: %v", spec.Name, granted, reads)
		}
	}
}

// The token function reads keys by id and counts exchanges, and nothing
// else of the table: no index, no audit or idempotency record, no Query
// beyond the signing keys.
func TestTokensRoleReachesOnlyThePartitionsItReads(t *testing.T) {
	tpl := defaults(t)
	role := logicalID(defaultStack.Stack, defaultStack.Functions[gateway.FnTokens].Role())
	got := map[string][]string{}
	for _, s := range statements(t, tpl, role) {
		for _, a := range strs(s["Action"]) {
			if strings.HasPrefix(a, "dynamodb:") {
				got[a] = append(got[a], jsonOf(s["Condition"]))
				if strings.Contains(jsonOf(s["Resource"]), "/index/") {
					t.Errorf("tokens may %s on an index", a)
				}
			}
		}
	}
	like := func(p ...string) string {
		return jsonOf(obj{"ForAllValues:StringLike": obj{"dynamodb:LeadingKeys": p}})
	}
	ring := jsonOf(obj{"ForAllValues:StringEquals": obj{"dynamodb:LeadingKeys": arr{"SIGNKEY"}}})
	want := map[string][]string{
		"dynamodb:GetItem":    {like("ID#*", "KEY#*")},
		"dynamodb:UpdateItem": {like("TOKENX#*"), ring},
		"dynamodb:PutItem":    {ring},
		"dynamodb:Query":      {ring},
	}
	for a, conds := range got {
		slices.Sort(conds)
		w := want[a]
		slices.Sort(w)
		if !slices.Equal(conds, w) {
			t.Errorf("tokens: %s under %v, want %v", a, conds, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("tokens may %v, want exactly %v", got, want)
	}
}

// No function gets a DynamoDB action its code never calls: no
// BatchWriteItem anywhere, BatchGetItem and ConditionCheckItem for the
// rotator's scheduled run alone.
func TestNoUnusedTableGrants(t *testing.T) {
	tpl := defaults(t)
	for _, spec := range Functions {
		role := logicalID(defaultStack.Stack, defaultStack.Functions[spec.Name].Role())
		for _, s := range statements(t, tpl, role) {
			for _, a := range strs(s["Action"]) {
				if a == "dynamodb:BatchWriteItem" || ((a == "dynamodb:BatchGetItem" || a == "dynamodb:ConditionCheckItem") && spec.Name != gateway.FnRotator) {
					t.Errorf("%s may %s, which it never calls", spec.Name, a)
				}
			}
		}
	}
}

// A WAF web ACL with a per-IP rate-based rule guards the stage by default;
// keygate:wafRateLimit=0 removes it (and the cdk-nag finding is then
// suppressed with its reason).
func TestWebACLLimitsEachSourceIP(t *testing.T) {
	tpl := defaults(t)
	acls := resources(t, tpl, "AWS::WAFv2::WebACL")
	if len(acls) != 1 {
		t.Fatalf("%d web ACLs, want 1", len(acls))
	}
	for id, acl := range acls {
		p := acl.Properties
		if p["Scope"] != "REGIONAL" || jsonOf(p["DefaultAction"]) != `{"Allow":{}}` {
			t.Errorf("web ACL %s: scope %v, default %v", id, p["Scope"], jsonOf(p["DefaultAction"]))
		}
		rules := p["Rules"].([]interface{})
		rule := rules[0].(map[string]interface{})
		rate := rule["Statement"].(map[string]interface{})["RateBasedStatement"].(map[string]interface{})
		block := jsonOf(rule["Action"])
		if len(rules) != 1 || rate["AggregateKeyType"] != "IP" || rate["Limit"] != float64(3000) ||
			rate["EvaluationWindowSec"] != float64(WebACLWindowSeconds) || !strings.Contains(block, `"ResponseCode":429`) {
			t.Errorf("web ACL rules %s", jsonOf(rules))
		}
		var body struct{ Code string }
		bodies := p["CustomResponseBodies"].(map[string]interface{})
		if err := json.Unmarshal([]byte(bodies["ipRateLimited"].(map[string]interface{})["Content"].(string)), &body); err != nil || body.Code != "ip_rate_limited" {
			t.Errorf("blocked requests' body %v (%v)", bodies, err)
		}
		assoc := resources(t, tpl, "AWS::WAFv2::WebACLAssociation")
		stage := logicalID(defaultStack.Stack, defaultStack.Api.DeploymentStage())
		for _, a := range assoc {
			if !strings.Contains(jsonOf(a.Properties["ResourceArn"]), stage) || jsonOf(a.Properties["WebACLArn"]) != jsonOf(obj{"Fn::GetAtt": arr{id, "Arn"}}) {
				t.Errorf("web ACL association %s", jsonOf(a.Properties))
			}
		}
		if len(assoc) != 1 {
			t.Errorf("%d web ACL associations, want 1", len(assoc))
		}
	}
	if n := len(resources(t, browser(t), "AWS::WAFv2::WebACL")); n != 0 {
		t.Errorf("keygate:wafRateLimit=0: %d web ACLs", n)
	}
}

// The admin routes and the token routes have throttles of their own, so a
// flood of one kind cannot take the stage's throttle (the proxy's).
func TestAdminAndTokenRoutesAreThrottledApartFromTheProxy(t *testing.T) {
	tpl := defaults(t)
	var settings []interface{}
	for _, st := range resources(t, tpl, "AWS::ApiGateway::Stage") {
		settings = st.Properties["MethodSettings"].([]interface{})
	}
	got := map[string]string{}
	for _, m := range settings {
		s := m.(map[string]interface{})
		got[s["HttpMethod"].(string)+" "+s["ResourcePath"].(string)] = jsonOf(arr{s["ThrottlingRateLimit"], s["ThrottlingBurstLimit"]})
	}
	admin, tokens := jsonOf(arr{50, 100}), jsonOf(arr{100, 200})
	for _, r := range append(gateway.Routes, gateway.Proxy(gateway.DefaultProxyBase)...) {
		want := ""
		switch {
		case r.Auth == gateway.AuthIAM:
			want = admin
		case r.Function == gateway.FnTokens:
			want = tokens
		}
		if k := r.Method + " /" + strings.ReplaceAll(r.Path, "/", "~1"); got[k] != want {
			t.Errorf("%s %s throttled %q, want %q", r.Method, r.Path, got[k], want)
		}
	}
}

// With CORS origins, the proxy's preflights are answered by API Gateway
// with no authorizer, the origins, methods and headers configured (the
// credential headers always among them), and every gateway response
// carries Access-Control-Allow-Origin: copied from the request, as several
// origins are allowed. Without, there is no OPTIONS method and no CORS
// header.
func TestProxyCORSPreflightsNeedNoAuthorizer(t *testing.T) {
	tpl := browser(t)
	ms := methods(t, tpl)
	for _, r := range gateway.Proxy(gateway.DefaultProxyBase) {
		m, ok := ms["OPTIONS "+r.Path]
		if !ok {
			t.Fatalf("no preflight method on %s", r.Path)
		}
		integ := jsonOf(m.Properties["Integration"])
		if m.Properties["AuthorizationType"] != "NONE" || m.Properties["AuthorizerId"] != nil || !strings.Contains(integ, `"Type":"MOCK"`) {
			t.Errorf("preflight on %s: %s, authorizer %v", r.Path, m.Properties["AuthorizationType"], m.Properties["AuthorizerId"])
		}
		for _, want := range append(browserOrigins, "x-api-key", "Authorization", "'204'", "Access-Control-Max-Age") {
			if want == "'204'" {
				want = `"StatusCode":"204"`
			}
			if !strings.Contains(integ, want) {
				t.Errorf("preflight on %s lacks %s: %s", r.Path, want, integ)
			}
		}
	}
	for _, gr := range resources(t, tpl, "AWS::ApiGateway::GatewayResponse") {
		p := jsonOf(gr.Properties["ResponseParameters"])
		if !strings.Contains(p, `"gatewayresponse.header.Access-Control-Allow-Origin":"method.request.header.Origin"`) ||
			!strings.Contains(p, `"gatewayresponse.header.Vary":"'Origin'"`) {
			t.Errorf("gateway response %v: %s", gr.Properties["ResponseType"], p)
		}
	}
	for id := range methods(t, defaults(t)) {
		if strings.HasPrefix(id, "OPTIONS ") {
			t.Errorf("CORS off, but %s exists", id)
		}
	}
	for _, gr := range resources(t, defaults(t), "AWS::ApiGateway::GatewayResponse") {
		if strings.Contains(jsonOf(gr.Properties), "Access-Control") {
			t.Errorf("CORS off, but gateway response %v has CORS headers", gr.Properties["ResponseType"])
		}
	}
}

// The browser stack, whose settings add findings (no web ACL, preflights
// without authorization), is clean too: each is suppressed with its reason.
func TestNagCleanWithSettingsThatAddFindings(t *testing.T) {
	browser(t)
	ann := assertions.Annotations_FromStack(browserStack.Stack)
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, found := range []interface{}{ann.FindError(jsii.String("*"), nag), ann.FindWarning(jsii.String("*"), nag)} {
		if s := jsonOf(found); s != "[]" && s != "null" {
			t.Errorf("unsuppressed cdk-nag findings: %s", s)
		}
	}
	for _, x := range settingSuppressions(browserStack.Keygate) {
		if len(x.Reason) < 40 {
			t.Errorf("%s: reason %q does not explain the decision", x.ID, x.Reason)
		}
	}
}
