package keygatecdk

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/keygate/keygate/internal/gateway"
)

func TestRotatorRunsOnItsSchedule(t *testing.T) {
	for name, c := range map[string]struct {
		tpl      assertions.Template
		stack    **KeygateStack
		schedule string
	}{"default": {defaults(t), &defaultStack, "rate(1 hour)"}, "configured": {variant(t), &variantStack, "rate(15 minutes)"}} {
		rotator := logicalID((*c.stack).Stack, (*c.stack).Functions[gateway.FnRotator])
		rules := resources(t, c.tpl, "AWS::Events::Rule")
		if len(rules) != 1 {
			t.Fatalf("%s: %d rules, want the rotator's schedule only", name, len(rules))
		}
		for _, r := range rules {
			if r.Properties["ScheduleExpression"] != c.schedule || !strings.Contains(jsonOf(r.Properties["Targets"]), `"`+rotator+`"`) {
				t.Errorf("%s: rule %s, want %s invoking the rotator", name, jsonOf(r.Properties), c.schedule)
			}
		}
	}
}

func TestOutputsNameWhatOperatorsNeed(t *testing.T) {
	tpl := defaults(t)
	s := defaultStack
	for id, want := range map[string]interface{}{
		"ApiUrl":                nil,
		"AuthorizerFunctionArn": obj{"Fn::GetAtt": arr{logicalID(s.Stack, s.Functions[gateway.FnAuthorizer]), "Arn"}},
		"TableName":             obj{"Ref": logicalID(s.Stack, s.Table)},
		"EventBusName":          obj{"Ref": logicalID(s.Stack, s.Bus)},
		"ProxyPath":             "/api",
	} {
		props := obj{}
		if want != nil {
			props["Value"] = want
		}
		tpl.HasOutput(str(id), props)
	}
	// Without an upstream there is no proxy to point at.
	if outs := *variant(t).FindOutputs(str("ProxyPath"), nil); len(outs) != 0 {
		t.Errorf("a stack without a proxy has a ProxyPath output: %v", outs)
	}
}

func TestAlarmsNotifyTheTopic(t *testing.T) {
	tpl := defaults(t)
	topic := obj{"Ref": logicalID(defaultStack.Stack, defaultStack.Monitoring.Topic)}
	alarms := resources(t, tpl, "AWS::CloudWatch::Alarm")
	if len(alarms) != 7 {
		t.Errorf("%d alarms, want 7 (authorizer errors, throttles, 5xx rate, latency; the usage consumer's lag, discarded batches, skipped records)", len(alarms))
	}
	for id, a := range alarms {
		if jsonOf(a.Properties["AlarmActions"]) != jsonOf(arr{topic}) {
			t.Errorf("alarm %s notifies %s, want the alarm topic", id, jsonOf(a.Properties["AlarmActions"]))
		}
	}
	tpl.ResourceCountIs(str("AWS::SNS::Subscription"), num(0))
}

func TestAlarmEmailIsSubscribed(t *testing.T) {
	variant(t).HasResourceProperties(str("AWS::SNS::Subscription"), obj{"Protocol": "email", "Endpoint": "ops@example.com"})
}

func TestDashboardShowsVerificationsLatencyThrottlesAndErrors(t *testing.T) {
	dashboards := resources(t, defaults(t), "AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Fatalf("%d dashboards, want 1", len(dashboards))
	}
	for _, d := range dashboards {
		body := jsonOf(d.Properties["DashboardBody"])
		for _, want := range []string{
			`{` + MetricNamespace + `,` + MetricOutcome + `} MetricName=\\\"` + MetricVerifications, // by outcome
			`\"` + MetricNamespace + `\",\"` + MetricLatency + `\"`, `p50`, `p99`,
			`ReadThrottleEvents`, `WriteThrottleEvents`, `\"Throttles\"`,
			`\"Errors\"`, `5XXError`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("dashboard lacks %s", want)
			}
		}
	}
}
