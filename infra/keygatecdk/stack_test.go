package keygatecdk

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/keygate/keygate/internal/schema"
)

// tmp holds the cloud assemblies of every test stack; the shared stacks
// outlive the test that synthesized them, so it is removed after all
// tests, not by t.TempDir.
var tmp string

func TestMain(m *testing.M) {
	var err error
	if tmp, err = os.MkdirTemp("", "keygatecdk"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// newApp is an app for template tests. They assert the template, not the
// binaries: the app skips asset bundling (CDK's aws:cdk:bundling-stacks
// context, which cdk sets to the stacks a command needs), so no function is
// built. TestExampleAppSynthesizes and TestGoCodeBuildsBootstrapForLambda
// build them.
func newApp(t *testing.T) awscdk.App {
	t.Helper()
	out, err := os.MkdirTemp(tmp, "cdk.out")
	if err != nil {
		t.Fatal(err)
	}
	return awscdk.NewApp(&awscdk.AppProps{
		Outdir:  jsii.String(out),
		Context: &map[string]interface{}{"aws:cdk:bundling-stacks": []string{}},
	})
}

// synth builds the stack with props p (zero fields default) in a fresh
// app and returns its template.
func synth(t *testing.T, p KeygateProps) (*KeygateStack, assertions.Template) {
	t.Helper()
	app := newApp(t)
	stack := NewKeygateStack(app, "Keygate", &KeygateStackProps{KeygateProps: p})
	// cdk-nag's AwsSolutions pack runs as an aspect during synthesis and
	// records its findings as annotations, which TestNagAwsSolutionsClean
	// reads.
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true), Reports: jsii.Bool(false)}), nil)
	return stack, assertions.Template_FromStack(stack.Stack, nil)
}

// Synthesis takes seconds (the CDK runs in a Node.js child process), so the
// tests share two stacks: the defaults with an upstream, and a variant
// with every setting changed. Each test still asserts one concern.
var (
	defaultOnce, variantOnce        sync.Once
	defaultStack, variantStack      *KeygateStack
	defaultTemplate, variantTemplat assertions.Template
)

// upstream is the upstream URL of the default test stack.
const upstream = "https://upstream.example.com/base"

// defaults is the template of the stack with an upstream and every other
// setting at its default.
func defaults(t *testing.T) assertions.Template {
	t.Helper()
	defaultOnce.Do(func() {
		defaultStack, defaultTemplate = synth(t, KeygateProps{UpstreamUrl: str(upstream)})
	})
	if defaultStack == nil {
		t.Fatal("the default stack did not synthesize (see the first test's failure)")
	}
	return defaultTemplate
}

// variant is the template of a throwaway stack without an upstream and with
// every other setting away from its default, each set by its prop.
func variant(t *testing.T) assertions.Template {
	t.Helper()
	variantOnce.Do(func() {
		variantStack, variantTemplat = synth(t, KeygateProps{
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY, GatewayCacheTtl: awscdk.Duration_Minutes(num(5)),
			LogRetention: awslogs.RetentionDays_ONE_WEEK, AlarmEmail: str("ops@example.com"), StageName: str("v"),
			ThrottleRateLimit: num(50), ThrottleBurstLimit: num(80),
			RotatorSchedule: awsevents.Schedule_Rate(awscdk.Duration_Minutes(num(15))),
			KeyPrefix:       str("acme"), Environments: jsii.Strings("live"), KeyCacheTtl: awscdk.Duration_Seconds(num(2)),
			Routes:      &[]*Route{{Method: str("GET"), Path: str("/users/{id}"), Scopes: jsii.Strings("read:users")}},
			FunctionEnv: map[string]map[string]string{"rotator": {"KEYGATE_IDLE_AFTER": "30d"}},
		})
	})
	if variantStack == nil {
		t.Fatal("the variant stack did not synthesize (see the first test's failure)")
	}
	return variantTemplat
}

// obj and arr shorten the nested property maps the assertions take.
type obj = map[string]interface{}
type arr = []interface{}

func TestTableIsOnDemandWithPITRTTLAndIndexes(t *testing.T) {
	defaults(t).HasResourceProperties(str("AWS::DynamoDB::Table"), obj{
		"BillingMode":                      "PAY_PER_REQUEST",
		"PointInTimeRecoverySpecification": obj{"PointInTimeRecoveryEnabled": true},
		"TimeToLiveSpecification":          obj{"AttributeName": "ttl", "Enabled": true},
		"KeySchema":                        arr{obj{"AttributeName": "pk", "KeyType": "HASH"}, obj{"AttributeName": "sk", "KeyType": "RANGE"}},
		"GlobalSecondaryIndexes": arr{
			assertions.Match_ObjectLike(&obj{"IndexName": "gsi1", "KeySchema": arr{obj{"AttributeName": "gsi1pk", "KeyType": "HASH"}, obj{"AttributeName": "gsi1sk", "KeyType": "RANGE"}}}),
			assertions.Match_ObjectLike(&obj{"IndexName": "gsi2", "KeySchema": arr{obj{"AttributeName": "gsi2pk", "KeyType": "HASH"}, obj{"AttributeName": "gsi2sk", "KeyType": "RANGE"}}}),
		},
	})
}

// Indexes never project the counters a verification rewrites, so a
// verification writes the table only, not its indexes.
func TestIndexesProjectNoCounters(t *testing.T) {
	include := make(arr, len(schema.ListedAttributes))
	for i, a := range schema.ListedAttributes {
		include[i] = a
	}
	defaults(t).HasResourceProperties(str("AWS::DynamoDB::Table"), obj{
		"GlobalSecondaryIndexes": arr{
			assertions.Match_ObjectLike(&obj{"IndexName": "gsi1", "Projection": obj{"ProjectionType": "INCLUDE", "NonKeyAttributes": include}}),
			assertions.Match_ObjectLike(&obj{"IndexName": "gsi2", "Projection": obj{"ProjectionType": "KEYS_ONLY"}}),
		},
	})
}

func TestTableIsRetainedAndProtectedByDefault(t *testing.T) {
	tpl := defaults(t)
	tpl.HasResource(str("AWS::DynamoDB::Table"), obj{
		"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
		"Properties": assertions.Match_ObjectLike(&obj{"DeletionProtectionEnabled": true}),
	})
	tpl.HasResource(str("AWS::SecretsManager::Secret"), obj{"DeletionPolicy": "Retain"})
}

func TestThrowawayStackDestroysTable(t *testing.T) {
	tpl := variant(t)
	tpl.HasResource(str("AWS::DynamoDB::Table"), obj{
		"DeletionPolicy": "Delete",
		"Properties":     assertions.Match_ObjectLike(&obj{"DeletionProtectionEnabled": false}),
	})
	tpl.HasResource(str("AWS::SecretsManager::Secret"), obj{"DeletionPolicy": "Delete"})
}

func TestNagAwsSolutionsClean(t *testing.T) {
	defaults(t)
	ann := assertions.Annotations_FromStack(defaultStack.Stack)
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for level, found := range map[string]interface{}{
		"error":   ann.FindError(jsii.String("*"), nag),
		"warning": ann.FindWarning(jsii.String("*"), nag),
	} {
		// Decoded from JSON rather than read through cxapi's deprecated
		// SynthesisMessage fields.
		var msgs []struct {
			ID    string `json:"id"`
			Entry struct {
				Data interface{} `json:"data"`
			} `json:"entry"`
		}
		if err := json.Unmarshal([]byte(jsonOf(found)), &msgs); err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			t.Errorf("unsuppressed cdk-nag %s at %s: %v", level, m.ID, m.Entry.Data)
		}
	}
}

func TestEveryNagSuppressionHasAReason(t *testing.T) {
	for _, s := range nagSuppressions {
		if len(s.Reason) < 40 {
			t.Errorf("%s: reason %q does not explain the decision", s.ID, s.Reason)
		}
	}
}
