package keygatecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/metrics"
)

// The functions' embedded metrics (CloudWatch Embedded Metric Format in
// their log lines, so no metrics API call is made), under the names
// internal/metrics writes: the dashboard and the alarms read exactly
// those.
const (
	MetricNamespace = metrics.Namespace
	// MetricVerifications counts verifications (Count), with the dimension
	// MetricOutcome: "allow" or the denial's reason code.
	MetricVerifications = metrics.Verifications
	MetricOutcome       = metrics.OutcomeDimension
	// MetricLatency is one verification's time in milliseconds, no
	// dimensions.
	MetricLatency = metrics.Latency
)

// MonitoringProps configure NewMonitoring.
type MonitoringProps struct {
	Api       awsapigateway.RestApi
	Table     awsdynamodb.Table
	Functions map[string]awslambda.Function
	// Usage is the usage function's stream mapping, nil without one.
	Usage *UsagePipeline
	// AlarmEmail, when set, is subscribed to the alarm topic.
	AlarmEmail string
	// DashboardName names the dashboard (default: the stack's name).
	DashboardName string
}

// Monitoring is the dashboard, the alarms and the topic they notify.
type Monitoring struct {
	Topic     awssns.Topic
	Dashboard awscloudwatch.Dashboard
	Alarms    []awscloudwatch.Alarm
}

// NewMonitoring creates the dashboard (verifications by outcome, authorizer
// latency p50/p99, DynamoDB throttles, errors, the usage consumer) and
// alarms on authorizer errors, throttles, the API's 5xx rate, authorizer
// latency, and the usage consumer's lag, discarded batches and skipped
// records, each notifying one SNS topic.
func NewMonitoring(scope constructs.Construct, id string, props MonitoringProps) Monitoring {
	c := constructs.NewConstruct(scope, str(id))
	five := awscdk.Duration_Minutes(jsii.Number(5))
	topic := awssns.NewTopic(c, str("AlarmTopic"), &awssns.TopicProps{
		DisplayName: str("keygate alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	if props.AlarmEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(str(props.AlarmEmail), nil))
	}

	authorizer := props.Functions[gateway.FnAuthorizer]
	outcomes := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: str("SEARCH('{" + MetricNamespace + "," + MetricOutcome + "} MetricName=\"" + MetricVerifications + "\"', 'Sum', 300)"),
		Label:      str("verifications"),
		Period:     five,
	})
	latency := func(stat string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: str(MetricNamespace), MetricName: str(MetricLatency),
			Statistic: str(stat), Period: five, Label: str("verification " + stat),
		})
	}
	throttles := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: str("r + w + l"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"r": props.Table.Metric(str("ReadThrottleEvents"), &awscloudwatch.MetricOptions{Statistic: str("Sum"), Period: five}),
			"w": props.Table.Metric(str("WriteThrottleEvents"), &awscloudwatch.MetricOptions{Statistic: str("Sum"), Period: five}),
			"l": authorizer.MetricThrottles(&awscloudwatch.MetricOptions{Statistic: str("Sum"), Period: five}),
		},
		Label:  str("DynamoDB and authorizer throttles"),
		Period: five,
	})
	fnErrors := []awscloudwatch.IMetric{}
	for _, name := range sortedNames(props.Functions) {
		fnErrors = append(fnErrors, props.Functions[name].MetricErrors(&awscloudwatch.MetricOptions{Label: str(name + " errors"), Period: five}))
	}
	fiveXX := props.Api.MetricServerError(&awscloudwatch.MetricOptions{Statistic: str("Average"), Period: five, Label: str("5xx rate")})

	name := awscdk.Aws_STACK_NAME()
	if props.DashboardName != "" {
		name = str(props.DashboardName)
	}
	dash := awscloudwatch.NewDashboard(c, str("Dashboard"), &awscloudwatch.DashboardProps{DashboardName: name})
	graph := func(title string, left ...awscloudwatch.IMetric) awscloudwatch.GraphWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: str(title), Left: &left, Width: jsii.Number(12)})
	}
	dash.AddWidgets(
		graph("Verifications by outcome", outcomes),
		graph("Authorizer latency (ms)", latency("p50"), latency("p99")),
	)
	errors := graph("Errors", fnErrors...)
	errors.AddRightMetric(fiveXX) // a rate, on its own axis
	dash.AddWidgets(graph("Throttles", throttles), errors)

	action := awscloudwatchactions.NewSnsAction(topic)
	alarm := func(name, desc string, metric awscloudwatch.IMetric, threshold, periods float64) awscloudwatch.Alarm {
		a := awscloudwatch.NewAlarm(c, str(name), &awscloudwatch.AlarmProps{
			AlarmDescription:   str(desc),
			Metric:             metric,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(periods),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		return a
	}
	m := Monitoring{Topic: topic, Dashboard: dash}
	m.Alarms = append(m.Alarms,
		alarm("AuthorizerErrors", "The authorizer failed (errors, timeouts): clients got 503 unavailable.",
			authorizer.MetricErrors(&awscloudwatch.MetricOptions{Statistic: str("Sum"), Period: five}), 5, 1),
		alarm("Throttles", "DynamoDB or the authorizer throttled requests: verifications were denied.", throttles, 1, 1),
		alarm("ServerErrorRate", "More than 1% of API requests answered 5xx for 10 minutes.", fiveXX, 0.01, 2),
		alarm("AuthorizerLatency", "Authorizer p99 latency above 250 ms for 15 minutes: every protected request waits for it.", latency("p99"), 250, 3),
	)
	if u := props.Usage; u != nil {
		fn := props.Functions[gateway.FnUsage]
		age := fn.Metric(str("IteratorAge"), &awscloudwatch.MetricOptions{Statistic: str("Maximum"), Period: five, Label: str("iterator age (ms)")})
		emitted := func(name string) awscloudwatch.Metric {
			return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
				Namespace: str(MetricNamespace), MetricName: str(name), Statistic: str("Sum"), Period: five, Label: str(name),
			})
		}
		consumer := graph("Usage consumer", age)
		consumer.AddRightMetric(emitted(metrics.UsageChanges))
		consumer.AddRightMetric(emitted(metrics.UsageSkipped))
		dash.AddWidgets(consumer)
		m.Alarms = append(m.Alarms,
			alarm("UsageIteratorAge", "The usage consumer is more than 5 minutes behind the table's stream: owner usage trails the requests "+
				"(nothing is lost while it catches up; at 23 hours Lambda discards what it has not taken). See docs/usage.md#failure-modes.", age, 5*60*1000, 1),
			alarm("UsageFailedBatches", "Lambda discarded a batch of the table's stream: usage history misses its changes; the message in the queue names the shard and the time window. See docs/usage.md#failure-modes.",
				u.Failed.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Statistic: str("Maximum"), Period: five}), 1, 1),
			alarm("UsageSkippedRecords", "The usage consumer skipped a stream record it could not read (something other than keygate wrote a key's item); its log names the record. See docs/usage.md#failure-modes.",
				emitted(metrics.UsageSkipped), 1, 1),
		)
	}
	return m
}
