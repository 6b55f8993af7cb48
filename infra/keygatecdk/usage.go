package keygatecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/schema"
	"github.com/keygate/keygate/internal/store"
)

// usageFilter passes the stream records of the keys' hot items only (the
// records internal/usage's Wanted keeps in the local stack).
var usageFilter = map[string]interface{}{
	"dynamodb": map[string]interface{}{"Keys": map[string]interface{}{schema.SK: map[string]interface{}{"S": []string{store.HotSK}}}},
}

// How the table's stream feeds the usage function (see docs/usage.md):
//
//   - only the keys' hot items reach it (a filter on the sort key, so no
//     other change invokes it, its own writes included);
//   - batches of up to UsageBatchSize records, or what UsageBatchWindow
//     gathered: the window bounds how far an owner's usage trails the
//     requests (well under a minute), and the larger the batch, the more
//     changes of one key one write takes;
//   - a failed batch is bisected and retried, in order, until it succeeds
//     or its records are UsageMaxRecordAge old, an hour before the stream
//     (24 hours) would drop them: only then is it discarded, and the batch's
//     description (shard, sequence numbers, times) goes to the on-failure
//     queue, so nothing is dropped silently.
const (
	UsageBatchSize    = 1000
	UsageBatchWindow  = 10 // seconds
	UsageMaxRecordAge = 23 * 3600
)

// UsagePipelineProps configure NewUsagePipeline.
type UsagePipelineProps struct {
	Table    awsdynamodb.ITable
	Function awslambda.Function
	// Removal is the on-failure queue's removal policy.
	Removal awscdk.RemovalPolicy
}

// UsagePipeline is the usage function's event source mapping on the
// table's stream and its on-failure queue.
type UsagePipeline struct {
	Source awslambdaeventsources.DynamoEventSource
	// Failed receives the description of every batch Lambda discards.
	Failed awssqs.Queue
}

// NewUsagePipeline connects the usage function to the table's stream, from
// the oldest record the stream holds (so nothing written before the
// mapping took effect is missed).
func NewUsagePipeline(scope constructs.Construct, id string, props UsagePipelineProps) UsagePipeline {
	c := constructs.NewConstruct(scope, str(id))
	failed := awssqs.NewQueue(c, str("Failed"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		RemovalPolicy:   props.Removal,
	})
	src := awslambdaeventsources.NewDynamoEventSource(props.Table, &awslambdaeventsources.DynamoEventSourceProps{
		StartingPosition:   awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:          jsii.Number(UsageBatchSize),
		MaxBatchingWindow:  awscdk.Duration_Seconds(jsii.Number(UsageBatchWindow)),
		BisectBatchOnError: jsii.Bool(true),
		RetryAttempts:      jsii.Number(-1),
		MaxRecordAge:       awscdk.Duration_Seconds(jsii.Number(UsageMaxRecordAge)),
		OnFailure:          awslambdaeventsources.NewSqsDlq(failed),
		Filters:            &[]*map[string]interface{}{awslambda.FilterCriteria_Filter(&usageFilter)},
	})
	props.Function.AddEventSource(src)
	return UsagePipeline{Source: src, Failed: failed}
}
