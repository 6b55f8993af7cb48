package keygatecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/schema"
)

// TableProps configure NewTable.
type TableProps struct {
	// Retain keeps the table when the stack is deleted and turns on
	// deletion protection; false is for throwaway stacks.
	Retain bool
}

// NewTable declares keygate's one table from internal/schema, the
// definition the store and the local stack use too: on-demand billing (no
// capacity to plan; the authorizer's load follows the API's), point-in-time
// recovery (keys are hard to re-issue), TTL on the schema's attribute, the
// stream the usage function reads, and every index the store needs.
func NewTable(scope constructs.Construct, id string, props TableProps) awsdynamodb.Table {
	def := schema.Keygate
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Retain {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	t := awsdynamodb.NewTable(scope, str(id), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: str(def.PartitionKey), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: str(def.SortKey), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: str(def.TTLAttribute),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection: jsii.Bool(props.Retain),
		RemovalPolicy:      removal,
		// The usage function reads every change of a key's hot item, old
		// and new image, to keep usage history (see NewUsagePipeline).
		Stream: awsdynamodb.StreamViewType(def.Stream),
	})
	for _, ix := range def.Indexes {
		props := &awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:      str(ix.Name),
			PartitionKey:   &awsdynamodb.Attribute{Name: str(ix.PartitionKey), Type: awsdynamodb.AttributeType_STRING},
			SortKey:        &awsdynamodb.Attribute{Name: str(ix.SortKey), Type: awsdynamodb.AttributeType_STRING},
			ProjectionType: awsdynamodb.ProjectionType_KEYS_ONLY,
		}
		if len(ix.Include) > 0 {
			props.ProjectionType = awsdynamodb.ProjectionType_INCLUDE
			props.NonKeyAttributes = jsii.Strings(ix.Include...)
		}
		t.AddGlobalSecondaryIndex(props)
	}
	return t
}

// str is jsii.String, shorter: the constructs take *string everywhere.
func str(s string) *string { return &s }

// indexNames lists the table's index names from the schema.
func indexNames() []string {
	var out []string
	for _, ix := range schema.Keygate.Indexes {
		out = append(out, ix.Name)
	}
	return out
}
