package keygatecdk

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// assets writes placeholder bin/<function>/bootstrap files to a temporary
// folder: template tests assert the template, not the binaries, which
// `make build` makes.
func assets(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range Functions {
		if err := os.MkdirAll(filepath.Join(dir, f.Name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name, "bootstrap"), []byte("placeholder"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// synth builds the stack with settings s (zero fields default) in a fresh
// app and returns its template.
func synth(t *testing.T, s Settings) (*KeygateStack, assertions.Template) {
	t.Helper()
	s.AssetRoot = assets(t)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := NewKeygateStack(app, "Keygate", &KeygateStackProps{Settings: s})
	return stack, assertions.Template_FromStack(stack.Stack, nil)
}

var (
	defaultOnce     sync.Once
	defaultTemplate assertions.Template
)

// defaults is the template of the stack with an upstream and every other
// setting at its default, synthesized once for all tests that only read it.
func defaults(t *testing.T) assertions.Template {
	t.Helper()
	defaultOnce.Do(func() {
		_, defaultTemplate = synth(t, Settings{UpstreamURL: "https://upstream.example.com/base"})
	})
	return defaultTemplate
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

func TestTableIsRetainedAndProtectedByDefault(t *testing.T) {
	tpl := defaults(t)
	tpl.HasResource(str("AWS::DynamoDB::Table"), obj{
		"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
		"Properties": assertions.Match_ObjectLike(&obj{"DeletionProtectionEnabled": true}),
	})
	tpl.HasResource(str("AWS::SecretsManager::Secret"), obj{"DeletionPolicy": "Retain"})
}

func TestThrowawayStackDestroysTable(t *testing.T) {
	_, tpl := synth(t, Settings{RemovalPolicy: "destroy"})
	tpl.HasResource(str("AWS::DynamoDB::Table"), obj{
		"DeletionPolicy": "Delete",
		"Properties":     assertions.Match_ObjectLike(&obj{"DeletionProtectionEnabled": false}),
	})
	tpl.HasResource(str("AWS::SecretsManager::Secret"), obj{"DeletionPolicy": "Delete"})
}
