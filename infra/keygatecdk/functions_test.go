package keygatecdk

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
)

func TestEveryFunctionRunsPrebuiltBootstrapOnArm64(t *testing.T) {
	tpl := defaults(t)
	tpl.ResourceCountIs(str("AWS::Lambda::Function"), jsii.Number(len(Functions)))
	for _, f := range Functions {
		tpl.HasResourceProperties(str("AWS::Lambda::Function"), obj{
			"Description":   f.Description,
			"Runtime":       "provided.al2023",
			"Architectures": arr{"arm64"},
			"Handler":       "bootstrap",
			"MemorySize":    f.MemoryMB,
			"Timeout":       f.TimeoutSeconds,
			"LoggingConfig": assertions.Match_ObjectLike(&obj{"LogFormat": "JSON"}),
		})
	}
}

func TestLogGroupsKeepTheConfiguredRetention(t *testing.T) {
	for name, c := range map[string]struct {
		tpl  assertions.Template
		days float64
	}{"default": {defaults(t), 30}, "keygate:logRetention=7d": {variant(t), 7}} {
		groups := resources(t, c.tpl, "AWS::Logs::LogGroup")
		if len(groups) != len(Functions)+1 { // one per function, plus access logs
			t.Errorf("%s: %d log groups, want %d", name, len(groups), len(Functions)+1)
		}
		for id, g := range groups {
			if g.Properties["RetentionInDays"] != c.days {
				t.Errorf("%s: log group %s keeps logs %v days, want %v", name, id, g.Properties["RetentionInDays"], c.days)
			}
		}
	}
}

func TestAuthorizerMayOnlyUpdateKeyItems(t *testing.T) {
	tpl := defaults(t)
	role := logicalID(defaultStack.Stack, defaultStack.Functions[gateway.FnAuthorizer].Role())
	var actions []string
	for _, s := range statements(t, tpl, role) {
		a := strs(s["Action"])
		actions = append(actions, a...)
		if strings.HasPrefix(a[0], "dynamodb:") {
			want := obj{"ForAllValues:StringLike": obj{"dynamodb:LeadingKeys": arr{"KEY#*"}}}
			if a[0] == "dynamodb:Query" { // the published token signing keys
				want = obj{"ForAllValues:StringEquals": obj{"dynamodb:LeadingKeys": arr{"SIGNKEY"}}}
			}
			if jsonOf(s["Condition"]) != jsonOf(want) {
				t.Errorf("authorizer's DynamoDB access is not limited to key items and signing keys: %v under %s", a, jsonOf(s["Condition"]))
			}
		}
	}
	sort.Strings(actions)
	// kms:Decrypt is its environment's (TestFunctionEnvironmentsAreEncryptedWithACustomerManagedKey).
	want := []string{"dynamodb:Query", "dynamodb:UpdateItem", "kms:Decrypt", "logs:CreateLogStream", "logs:PutLogEvents"}
	if !reflect.DeepEqual(actions, want) {
		t.Errorf("authorizer may %v, want exactly %v", actions, want)
	}
}

func TestNoPolicyGrantsAWildcardAction(t *testing.T) {
	tpl := defaults(t)
	for id, p := range resources(t, tpl, "AWS::IAM::Policy") {
		for _, s := range p.Properties["PolicyDocument"].(map[string]interface{})["Statement"].([]interface{}) {
			for _, a := range strs(s.(map[string]interface{})["Action"]) {
				if strings.Contains(a, "*") {
					t.Errorf("policy %s grants wildcard action %s", id, a)
				}
			}
		}
	}
}

// The pepper reaches the functions that hash keys, and only them, as a
// dynamic reference.
func TestPepperReachesFunctionsOnlyAsDynamicReference(t *testing.T) {
	tpl := defaults(t)
	fns := resources(t, tpl, "AWS::Lambda::Function")
	name := config.Pepper.Setting().Env
	for _, spec := range Functions {
		f := fns[logicalID(defaultStack.Stack, defaultStack.Functions[spec.Name])]
		env := f.Properties["Environment"].(map[string]interface{})["Variables"].(map[string]interface{})
		pepper, ok := env[name]
		if !config.Pepper.Setting().ReadBy(spec.Name) {
			if ok {
				t.Errorf("%s does not hash keys but gets %s", spec.Name, name)
			}
			continue
		}
		if p := jsonOf(pepper); !strings.Contains(p, "{{resolve:secretsmanager:") || !strings.Contains(p, ":SecretString:") {
			t.Errorf("%s: %s is %s, want a CloudFormation dynamic reference to the secret", spec.Name, name, p)
		}
	}
	// Resolved by CloudFormation at deploy time, so no function may read
	// the secret itself.
	if s := jsonOf(tpl.ToJSON()); strings.Contains(s, "secretsmanager:GetSecretValue") {
		t.Error("a policy grants secretsmanager:GetSecretValue; the functions need no runtime access to the pepper")
	}
}

// Each function gets exactly the variables the registry says it reads
// and the stack sets (from its resources, its context keys or
// keygate:functionEnv), with the configured values.
func TestFunctionsGetTheirSettingsFromTheEnvironment(t *testing.T) {
	tpl := variant(t)
	fns := resources(t, tpl, "AWS::Lambda::Function")
	env := func(name string) map[string]interface{} {
		f := fns[logicalID(variantStack.Stack, variantStack.Functions[name])]
		return f.Properties["Environment"].(map[string]interface{})["Variables"].(map[string]interface{})
	}
	table := jsonOf(obj{"Ref": logicalID(variantStack.Stack, variantStack.Table)})
	bus := jsonOf(obj{"Ref": logicalID(variantStack.Stack, variantStack.Bus)})
	for _, f := range Functions {
		e := env(f.Name)
		for name := range e {
			s := settingOf(name)
			if s == nil || !s.ReadBy(f.Name) {
				t.Errorf("%s gets %s, which it does not read", f.Name, name)
			}
		}
		if jsonOf(e["KEYGATE_TABLE"]) != table {
			t.Errorf("%s: KEYGATE_TABLE = %s, want the table", f.Name, jsonOf(e["KEYGATE_TABLE"]))
		}
		if got := jsonOf(e["KEYGATE_EVENT_BUS"]); f.Events != (got == bus) {
			t.Errorf("%s: KEYGATE_EVENT_BUS = %s; events enabled: %v", f.Name, got, f.Events)
		}
		if config.KeyPrefix.Setting().ReadBy(f.Name) && (e["KEYGATE_KEY_PREFIX"] != "acme" || e["KEYGATE_ENVIRONMENTS"] != "live") {
			t.Errorf("%s: environment %s lacks the configured prefix or environments", f.Name, jsonOf(e))
		}
	}
	for fn, want := range map[string]map[string]string{
		gateway.FnAuthorizer: {
			"KEYGATE_ROUTES":    `[{"method":"GET","path":"/users/{id}","scopes":["read:users"]}]`,
			"KEYGATE_CACHE_TTL": "2s",
		},
		gateway.FnRotator: {"KEYGATE_IDLE_AFTER": "30d"}, // keygate:functionEnv
	} {
		for k, v := range want {
			if got := env(fn)[k]; got != v {
				t.Errorf("%s %s = %v, want the configured %s", fn, k, got, v)
			}
		}
	}
}

func settingOf(env string) *config.Setting {
	for _, s := range config.All() {
		if s.Env == env {
			return s
		}
	}
	return nil
}

// TestSigningKeyAccess: the token function may write only signing key
// items (to publish a new deployment's first key) and sign; the rotator
// reads the KMS public key to publish the next key, and may not sign.
func TestSigningKeyAccess(t *testing.T) {
	tpl := defaults(t)
	actions := func(fn string) map[string]string {
		role := logicalID(defaultStack.Stack, defaultStack.Functions[fn].Role())
		out := map[string]string{}
		for _, s := range statements(t, tpl, role) {
			for _, a := range strs(s["Action"]) {
				out[a] += jsonOf(s["Condition"])
			}
		}
		return out
	}
	ring := jsonOf(obj{"ForAllValues:StringEquals": obj{"dynamodb:LeadingKeys": arr{"SIGNKEY"}}})
	tokens := actions(gateway.FnTokens)
	if c, ok := tokens["dynamodb:PutItem"]; !ok || c != ring {
		t.Errorf("tokens: PutItem granted %v under %s, want only on SIGNKEY items", ok, c)
	}
	if c := tokens["dynamodb:UpdateItem"]; !strings.Contains(c, ring) { // and exchange counters: TestTokensRoleReachesOnlyThePartitionsItReads
		t.Errorf("tokens: UpdateItem under %s, want SIGNKEY items among them", c)
	}
	if _, ok := tokens["kms:Sign"]; !ok {
		t.Error("tokens cannot sign")
	}
	rotator := actions(gateway.FnRotator)
	if _, ok := rotator["kms:GetPublicKey"]; !ok {
		t.Error("rotator cannot read the signing key's public half")
	}
	if _, ok := rotator["kms:Sign"]; ok {
		t.Error("rotator may sign tokens")
	}
	// The key signs EdDSA tokens: an Ed25519 signing key, which is what
	// the token function's Sign call (ED25519_SHA_512) needs.
	keys := resources(t, tpl, "AWS::KMS::Key")
	if len(keys) != 3 {
		t.Fatalf("%d KMS keys, want the signing key, the environment key and the seal key", len(keys))
	}
	for id, k := range keys {
		if id != logicalID(defaultStack.Stack, defaultStack.SigningKey) {
			continue
		}
		if k.Properties["KeySpec"] != "ECC_NIST_EDWARDS25519" || k.Properties["KeyUsage"] != "SIGN_VERIFY" {
			t.Errorf("KMS key %s: spec %v, usage %v; want ECC_NIST_EDWARDS25519, SIGN_VERIFY", id, k.Properties["KeySpec"], k.Properties["KeyUsage"])
		}
	}
}
