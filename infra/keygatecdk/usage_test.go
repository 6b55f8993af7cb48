package keygatecdk

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/metrics"
)

// The table streams both images of every change, which the usage function
// reads through one event source mapping: only the keys' hot items, from
// the oldest record, in batches a window bounds, bisected and retried until
// just before the stream would drop them, then described in the on-failure
// queue.
func TestUsageFunctionReadsTheTablesStream(t *testing.T) {
	tpl := defaults(t)
	s := defaultStack
	tpl.HasResourceProperties(str("AWS::DynamoDB::Table"), obj{"StreamSpecification": obj{"StreamViewType": "NEW_AND_OLD_IMAGES"}})
	mappings := resources(t, tpl, "AWS::Lambda::EventSourceMapping")
	if len(mappings) != 1 {
		t.Fatalf("%d event source mappings, want 1", len(mappings))
	}
	pattern, _ := json.Marshal(obj{"dynamodb": obj{"Keys": obj{"sk": obj{"S": arr{"KEY"}}}}})
	for _, m := range mappings {
		p := m.Properties
		for k, want := range map[string]interface{}{
			"FunctionName":                   obj{"Ref": logicalID(s.Stack, s.Functions[gateway.FnUsage])},
			"EventSourceArn":                 obj{"Fn::GetAtt": arr{logicalID(s.Stack, s.Table), "StreamArn"}},
			"StartingPosition":               "TRIM_HORIZON",
			"BatchSize":                      float64(UsageBatchSize),
			"MaximumBatchingWindowInSeconds": float64(UsageBatchWindow),
			"BisectBatchOnFunctionError":     true,
			"MaximumRetryAttempts":           float64(-1),
			"MaximumRecordAgeInSeconds":      float64(UsageMaxRecordAge),
			"DestinationConfig":              obj{"OnFailure": obj{"Destination": obj{"Fn::GetAtt": arr{logicalID(s.Stack, s.Usage.Failed), "Arn"}}}},
			"FilterCriteria":                 obj{"Filters": arr{obj{"Pattern": string(pattern)}}},
		} {
			if jsonOf(p[k]) != jsonOf(want) {
				t.Errorf("event source mapping %s = %s, want %s", k, jsonOf(p[k]), jsonOf(want))
			}
		}
	}
	if UsageMaxRecordAge >= 24*3600 || UsageBatchWindow >= 60 {
		t.Error("batches must be discarded (into the queue) before the stream drops them, and reach the owner's usage within a minute")
	}
	tpl.HasResourceProperties(str("AWS::SQS::Queue"), obj{"SqsManagedSseEnabled": true})
}

// The usage function may update usage items only, and read the stream.
func TestUsageFunctionMayOnlyUpdateUsageItems(t *testing.T) {
	tpl := defaults(t)
	role := logicalID(defaultStack.Stack, defaultStack.Functions[gateway.FnUsage].Role())
	var actions []string
	for _, s := range statements(t, tpl, role) {
		a := strs(s["Action"])
		actions = append(actions, a...)
		if a[0] == "dynamodb:UpdateItem" {
			want := obj{"ForAllValues:StringLike": obj{"dynamodb:LeadingKeys": arr{"USAGE#*"}}}
			if jsonOf(s["Condition"]) != jsonOf(want) {
				t.Errorf("the usage function may update items beyond usage items: %s", jsonOf(s["Condition"]))
			}
		}
		if strings.HasPrefix(a[0], "dynamodb:") && a[0] != "dynamodb:UpdateItem" && a[0] != "dynamodb:ListStreams" &&
			!strings.Contains(jsonOf(s["Resource"]), "StreamArn") {
			t.Errorf("the usage function may %v on %s, not the stream", a, jsonOf(s["Resource"]))
		}
	}
	sort.Strings(actions)
	// kms:Decrypt is its environment's (TestFunctionEnvironmentsAreEncryptedWithACustomerManagedKey).
	want := []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
		"dynamodb:UpdateItem", "kms:Decrypt", "logs:CreateLogStream", "logs:PutLogEvents",
		"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"}
	if !reflect.DeepEqual(actions, want) {
		t.Errorf("the usage function may %v, want exactly %v", actions, want)
	}
}

// The usage consumer is on the dashboard, and its lag, discarded batches
// and skipped records raise alarms, on the metrics it writes.
func TestUsageConsumerIsWatched(t *testing.T) {
	tpl := defaults(t)
	for _, d := range resources(t, tpl, "AWS::CloudWatch::Dashboard") {
		body := jsonOf(d.Properties["DashboardBody"])
		for _, want := range []string{`Usage consumer`, `IteratorAge`, metrics.UsageChanges, metrics.UsageSkipped} {
			if !strings.Contains(body, want) {
				t.Errorf("dashboard lacks %s", want)
			}
		}
	}
	found := map[string]bool{}
	for _, a := range resources(t, tpl, "AWS::CloudWatch::Alarm") {
		props := jsonOf(a.Properties)
		for _, m := range []string{`"IteratorAge"`, `"ApproximateNumberOfMessagesVisible"`, `"` + metrics.UsageSkipped + `"`} {
			if strings.Contains(props, m) {
				found[m] = true
			}
		}
	}
	if len(found) != 3 {
		t.Errorf("alarms on the usage consumer: %v, want its iterator age, its on-failure queue and its skipped records", found)
	}
}
