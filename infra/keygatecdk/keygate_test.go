package keygatecdk

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/config"
)

// Every setting a deployment may set in context is a prop too (by its
// context tag), and every tag names one: a setting added to the registry
// cannot be missing from the construct.
func TestEveryContextSettingIsAProp(t *testing.T) {
	tags := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(KeygateProps{})) {
		if key := f.Tag.Get("context"); key != "" {
			if config.ByContextKey(key) == nil {
				t.Errorf("KeygateProps.%s: %q is not a context key of the registry", f.Name, key)
			}
			tags[key] = true
		}
	}
	for _, key := range config.ContextKeys() {
		if !tags[key] {
			t.Errorf("%s%s has no field in KeygateProps", ContextPrefix, key)
		}
	}
}

// A prop wins over the context value of its key, which wins over the
// default.
func TestPropsWinOverContextAndContextOverDefaults(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]interface{}{
		"keygate:stageName": "from-context", "keygate:keyPrefix": "ctx", "keygate:logRetention": "7d",
	}})
	s, err := (&KeygateProps{
		StageName: str("from-props"), GatewayCacheTtl: awscdk.Duration_Minutes(num(2)),
		LogRetention: awslogs.RetentionDays_ONE_YEAR, Environments: jsii.Strings("test"),
	}).settings(app.Node())
	if err != nil {
		t.Fatal(err)
	}
	if s.StageName != "from-props" || s.GatewayCacheTTL != 2*time.Minute || s.LogRetention != 365*24*time.Hour {
		t.Errorf("props did not win over context and defaults: %+v", s)
	}
	if s.Variables["KEYGATE_KEY_PREFIX"] != "ctx" || s.Variables["KEYGATE_ENVIRONMENTS"] != "test" {
		t.Errorf("variables %v, want the context's prefix and the props' environments", s.Variables)
	}
	if s.ThrottleRateLimit != 1000 || s.RotatorSchedule != "rate(1 hour)" {
		t.Errorf("unset settings are not at their defaults: %+v", s)
	}
}

// A prop the functions or CloudFormation would refuse fails the synth,
// naming the prop and its setting.
func TestBadPropsFailNamingThem(t *testing.T) {
	app := awscdk.NewApp(nil)
	for name, c := range map[string]struct {
		props KeygateProps
		want  string
	}{
		"snapshot":       {KeygateProps{RemovalPolicy: awscdk.RemovalPolicy_SNAPSHOT}, "KeygateProps.RemovalPolicy (keygate:removalPolicy)"},
		"infinite logs":  {KeygateProps{LogRetention: awslogs.RetentionDays_INFINITE}, "KeygateProps.LogRetention"},
		"relative route": {KeygateProps{Routes: &[]*Route{{Path: str("orders")}}}, "must start with /"},
		"upstream":       {KeygateProps{UpstreamUrl: str("ftp://example.com")}, "keygate:upstreamUrl"},
		"cache":          {KeygateProps{KeyCacheTtl: awscdk.Duration_Hours(num(2))}, "keygate:keyCacheTtl"},
	} {
		if _, err := c.props.settings(app.Node()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.want)
		}
	}
}

// NewKeygateStack keeps the logical ids the stack had before the
// construct (no "Default" in them), so an upgrade replaces nothing.
func TestStackKeepsItsLogicalIds(t *testing.T) {
	defaults(t)
	for id, want := range map[string]string{
		logicalID(defaultStack.Stack, defaultStack.Table):                "Table",
		logicalID(defaultStack.Stack, defaultStack.AuthorizerFunction()): "FunctionsAuthorizer",
		logicalID(defaultStack.Stack, defaultStack.Monitoring.Topic):     "MonitoringAlarmTopic",
		logicalID(defaultStack.Stack, defaultStack.Pepper):               "Pepper",
	} {
		if !strings.HasPrefix(id, want) || len(id) != len(want)+8 {
			t.Errorf("logical id %s, want %s and a hash", id, want)
		}
	}
}

// keygate's own stack names its dashboard after itself alone (Keygate).
func TestStackDashboardIsNamedAfterTheStack(t *testing.T) {
	defaults(t).HasResourceProperties(str("AWS::CloudWatch::Dashboard"), obj{"DashboardName": obj{"Ref": "AWS::StackName"}})
}

// shopStack is a team's stack holding keygate and two REST APIs and an
// HTTP API of its own, each guarded by keygate's authorizer.
func shopStack(t *testing.T) (*Keygate, assertions.Template) {
	t.Helper()
	stack := awscdk.NewStack(newApp(t), str("Shop"), nil)
	kg := NewKeygate(stack, "Keygate", nil)
	integ := awsapigateway.NewMockIntegration(nil)
	for _, name := range []string{"Orders", "Billing"} {
		api := awsapigateway.NewRestApi(stack, str(name), &awsapigateway.RestApiProps{CloudWatchRole: jsii.Bool(false)})
		for _, m := range []string{"GET", "POST"} { // one authorizer per API, however many methods
			api.Root().AddMethod(str(m), integ, &awsapigateway.MethodOptions{
				AuthorizationType: awsapigateway.AuthorizationType_CUSTOM, Authorizer: kg.Authorizer.ForRestApi(api),
			})
		}
		AddGatewayResponses(api)
	}
	catalog := awsapigatewayv2.NewHttpApi(stack, str("Catalog"), nil)
	for _, p := range []string{"/items", "/prices"} {
		catalog.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path: str(p), Methods: &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_GET},
			Integration: awsapigatewayv2integrations.NewHttpUrlIntegration(str("Upstream"+p[1:]), str("https://catalog.example.com"+p), nil),
			Authorizer:  kg.Authorizer.ForHttpApi(catalog),
		})
	}
	return kg, assertions.Template_FromStack(stack, nil)
}

var (
	shopOnce     sync.Once
	shopKeygate  *Keygate
	shopTemplate assertions.Template
)

func shop(t *testing.T) assertions.Template {
	t.Helper()
	shopOnce.Do(func() { shopKeygate, shopTemplate = shopStack(t) })
	if shopKeygate == nil {
		t.Fatal("the shop stack did not synthesize (see the first test's failure)")
	}
	return shopTemplate
}

// In a team's stack every API gets its own authorizer, all invoking the
// construct's authorizer function, which API Gateway may invoke for each;
// keygate's dashboard is named after the construct as well as the stack.
func TestTeamApisEachGetAnAuthorizerOfTheConstructsFunction(t *testing.T) {
	tpl := shop(t)
	stack := awscdk.Stack_Of(shopKeygate)
	fn := logicalID(stack, shopKeygate.AuthorizerFunction())
	rest := resources(t, tpl, "AWS::ApiGateway::Authorizer")
	if len(rest) != 3 { // keygate's own API, Orders, Billing
		t.Errorf("%d REST authorizers, want one per REST API (3)", len(rest))
	}
	httpAuth := resources(t, tpl, "AWS::ApiGatewayV2::Authorizer")
	if len(httpAuth) != 1 {
		t.Errorf("%d HTTP API authorizers, want 1 for Catalog's two routes", len(httpAuth))
	}
	for id, a := range rest {
		if !strings.Contains(jsonOf(a.Properties["AuthorizerUri"]), `"`+fn+`"`) {
			t.Errorf("authorizer %s does not invoke keygate's authorizer function", id)
		}
	}
	for id, a := range httpAuth {
		if !strings.Contains(jsonOf(a.Properties["AuthorizerUri"]), `"`+fn+`"`) || a.Properties["EnableSimpleResponses"] != true {
			t.Errorf("HTTP authorizer %s: %s", id, jsonOf(a.Properties))
		}
	}
	dashboards := resources(t, tpl, "AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Errorf("%d dashboards, want keygate's", len(dashboards))
	}
	for id, d := range dashboards {
		want := jsonOf(obj{"Fn::Join": arr{"", arr{obj{"Ref": "AWS::StackName"}, "-Keygate"}}})
		if jsonOf(d.Properties["DashboardName"]) != want {
			t.Errorf("dashboard %s is named %s, want the stack's name and the construct's id", id, jsonOf(d.Properties["DashboardName"]))
		}
	}
	invoke := 0
	for _, p := range resources(t, tpl, "AWS::Lambda::Permission") {
		if jsonOf(p.Properties["FunctionName"]) == jsonOf(obj{"Fn::GetAtt": arr{fn, "Arn"}}) {
			invoke++
		}
	}
	if invoke != 4 {
		t.Errorf("API Gateway may invoke the authorizer through %d permissions, want one per API (4)", invoke)
	}
}
