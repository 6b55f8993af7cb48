package keygatecdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/keygate/keygate/internal/gateway"
)

// methods returns the template's API methods by "METHOD /path", with each
// path rebuilt from the resources' PathPart and ParentId.
func methods(t *testing.T, tpl assertions.Template) map[string]resource {
	t.Helper()
	res := resources(t, tpl, "AWS::ApiGateway::Resource")
	var path func(ref interface{}) string
	path = func(ref interface{}) string {
		m, ok := ref.(map[string]interface{})
		if !ok || m["Ref"] == nil {
			return "" // the root: Fn::GetAtt RootResourceId
		}
		r := res[m["Ref"].(string)]
		return path(r.Properties["ParentId"]) + "/" + r.Properties["PathPart"].(string)
	}
	out := map[string]resource{}
	for _, m := range resources(t, tpl, "AWS::ApiGateway::Method") {
		out[m.Properties["HttpMethod"].(string)+" "+path(m.Properties["ResourceId"])] = m
	}
	return out
}

func TestEveryRouteIsAMethodWithItsAuthorization(t *testing.T) {
	got := map[string]string{}
	for id, m := range methods(t, defaults(t)) {
		got[id] = m.Properties["AuthorizationType"].(string)
	}
	want := map[string]string{}
	kind := map[gateway.Auth]string{gateway.AuthIAM: "AWS_IAM", gateway.AuthKeygate: "CUSTOM", gateway.AuthNone: "NONE"}
	for _, r := range append(gateway.Routes, gateway.Proxy(gateway.DefaultProxyBase)...) {
		want[r.Method+" "+r.Path] = kind[r.Auth]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("methods and their authorization:\n got %v\nwant %v", got, want)
	}
}

func TestRoutesReachTheirFunctions(t *testing.T) {
	ms := methods(t, defaults(t))
	for _, r := range gateway.Routes {
		m := ms[r.Method+" "+r.Path]
		fn := logicalID(defaultStack.Stack, defaultStack.Functions[r.Function])
		integ := m.Properties["Integration"].(map[string]interface{})
		if integ["Type"] != "AWS_PROXY" || !strings.Contains(jsonOf(integ["Uri"]), `"`+fn+`"`) {
			t.Errorf("%s %s: integration %s does not invoke %s", r.Method, r.Path, jsonOf(integ), r.Function)
		}
	}
}

func TestKeygateAuthorizerRunsOnEveryRequestByDefault(t *testing.T) {
	tpl := defaults(t)
	tpl.ResourceCountIs(str("AWS::ApiGateway::Authorizer"), num(1))
	tpl.HasResourceProperties(str("AWS::ApiGateway::Authorizer"), obj{
		"Type":                         "REQUEST",
		"AuthorizerResultTtlInSeconds": 0,
		// No identity source: API Gateway would otherwise answer requests
		// lacking it without calling the authorizer.
		"IdentitySource": assertions.Match_Absent(),
	})
}

func TestGatewayCacheIsKeyedByKeyAndRoute(t *testing.T) {
	variant(t).HasResourceProperties(str("AWS::ApiGateway::Authorizer"), obj{
		"AuthorizerResultTtlInSeconds": 300,
		"IdentitySource":               "method.request.header.x-api-key,context.httpMethod,context.resourcePath",
	})
}

func TestProxyForwardsContextAndWithholdsTheKey(t *testing.T) {
	ms := methods(t, defaults(t))
	for path, uri := range map[string]string{"/api": upstream, "/api/{proxy+}": upstream + "/{proxy}"} {
		integ := ms["ANY "+path].Properties["Integration"].(map[string]interface{})
		params, _ := integ["RequestParameters"].(map[string]interface{})
		if integ["Type"] != "HTTP_PROXY" || integ["Uri"] != uri {
			t.Errorf("ANY %s: integration %s, want HTTP_PROXY to %s", path, jsonOf(integ), uri)
		}
		for _, f := range gateway.Forward {
			if got := params["integration.request.header."+f.Header]; got != "context.authorizer."+f.Context {
				t.Errorf("ANY %s: header %s = %v, want the authorizer's %s", path, f.Header, got, f.Context)
			}
		}
		for _, h := range gateway.CredentialHeaders {
			if got := params["integration.request.header."+h]; got != "''" {
				t.Errorf("ANY %s: credential header %s = %v reaches the upstream, want ''", path, h, got)
			}
		}
	}
}

func TestNoUpstreamMeansNoProxy(t *testing.T) {
	for id, m := range methods(t, variant(t)) {
		if integ := m.Properties["Integration"].(map[string]interface{}); integ["Type"] == "HTTP_PROXY" {
			t.Errorf("%s proxies to %v without a configured upstream", id, integ["Uri"])
		}
	}
}

func TestGatewayResponsesFollowTheMapping(t *testing.T) {
	tpl := defaults(t)
	tpl.ResourceCountIs(str("AWS::ApiGateway::GatewayResponse"), num(len(gateway.Responses)))
	for _, r := range gateway.Responses {
		params := obj{}
		for k, v := range r.Headers() {
			params["gatewayresponse.header."+k] = "'" + v + "'"
		}
		tpl.HasResourceProperties(str("AWS::ApiGateway::GatewayResponse"), obj{
			"ResponseType":       string(r.Type),
			"StatusCode":         itoa(r.Status),
			"ResponseTemplates":  obj{"application/json": r.Body},
			"ResponseParameters": params,
		})
	}
	// The 503s that say "retry shortly" carry Retry-After.
	tpl.HasResourceProperties(str("AWS::ApiGateway::GatewayResponse"), obj{
		"ResponseType":       "AUTHORIZER_FAILURE",
		"ResponseParameters": assertions.Match_ObjectLike(&map[string]interface{}{"gatewayresponse.header.Retry-After": "'1'"}),
	})
}

func TestStageIsThrottledAndWritesJSONAccessLogs(t *testing.T) {
	for name, c := range map[string]struct {
		tpl         assertions.Template
		stage       string
		rate, burst float64
	}{"default": {defaults(t), "prod", 1000, 2000}, "configured": {variant(t), "v", 50, 80}} {
		stages := resources(t, c.tpl, "AWS::ApiGateway::Stage")
		if len(stages) != 1 {
			t.Fatalf("%s: %d stages", name, len(stages))
		}
		for _, s := range stages {
			p := s.Properties
			ms := p["MethodSettings"].([]interface{})[0].(map[string]interface{})
			if p["StageName"] != c.stage || ms["ThrottlingRateLimit"] != c.rate || ms["ThrottlingBurstLimit"] != c.burst || ms["DataTraceEnabled"] != false {
				t.Errorf("%s: stage %s, want %s throttled at %v/%v without data traces", name, jsonOf(p), c.stage, c.rate, c.burst)
			}
			format, _ := p["AccessLogSetting"].(map[string]interface{})["Format"].(string)
			var line map[string]string
			if err := json.Unmarshal([]byte(format), &line); err != nil || line["keyId"] == "" || line["status"] == "" {
				t.Errorf("%s: access log format is not a JSON line with key id and status: %q (%v)", name, format, err)
			}
		}
	}
}
