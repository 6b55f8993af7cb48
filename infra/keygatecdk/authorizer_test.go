package keygatecdk

import (
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// teamStack is a team's own stack with a REST API and an HTTP API, both
// protected by the keygate authorizer imported by ARN, as docs/deploy.md shows.
func teamStack(t *testing.T) assertions.Template {
	t.Helper()
	app := newApp(t)
	stack := awscdk.NewStack(app, str("Team"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: str("123456789012"), Region: str("eu-west-1")},
	})
	fn := awslambda.Function_FromFunctionAttributes(stack, str("KeygateAuthorizerFn"), &awslambda.FunctionAttributes{
		FunctionArn:     str("arn:aws:lambda:eu-west-1:123456789012:function:Keygate-Authorizer"),
		SameEnvironment: jsii.Bool(true),
	})
	kg := NewAuthorizer("Keygate", AuthorizerProps{Function: fn})

	rest := awsapigateway.NewRestApi(stack, str("Orders"), nil)
	rest.Root().AddResource(str("orders"), nil).AddMethod(str("GET"), awsapigateway.NewMockIntegration(nil), &awsapigateway.MethodOptions{
		AuthorizationType: awsapigateway.AuthorizationType_CUSTOM,
		Authorizer:        kg.ForRestApi(rest),
	})
	AddGatewayResponses(rest)

	httpAPI := awsapigatewayv2.NewHttpApi(stack, str("Catalog"), nil)
	httpAPI.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
		Path:        str("/items"),
		Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_GET},
		Integration: awsapigatewayv2integrations.NewHttpUrlIntegration(str("Upstream"), str("https://catalog.example.com/items"), nil),
		Authorizer:  kg.ForHttpApi(httpAPI),
	})
	return assertions.Template_FromStack(stack, nil)
}

var (
	teamOnce     sync.Once
	teamTemplate assertions.Template
)

func team(t *testing.T) assertions.Template {
	t.Helper()
	teamOnce.Do(func() { teamTemplate = teamStack(t) })
	return teamTemplate
}

func TestAttachToRestApiIsUncachedRequestAuthorizerWithResponses(t *testing.T) {
	tpl := team(t)
	tpl.HasResourceProperties(str("AWS::ApiGateway::Authorizer"), obj{
		"Type": "REQUEST", "AuthorizerResultTtlInSeconds": 0, "IdentitySource": assertions.Match_Absent(),
	})
	tpl.HasResourceProperties(str("AWS::ApiGateway::Method"), obj{"HttpMethod": "GET", "AuthorizationType": "CUSTOM"})
	tpl.HasResourceProperties(str("AWS::ApiGateway::GatewayResponse"), obj{"ResponseType": "ACCESS_DENIED", "StatusCode": "403"})
}

func TestAttachToHttpApiUsesPayload2SimpleResponses(t *testing.T) {
	tpl := team(t)
	tpl.HasResourceProperties(str("AWS::ApiGatewayV2::Authorizer"), obj{
		"AuthorizerType":                 "REQUEST",
		"AuthorizerPayloadFormatVersion": "2.0",
		"EnableSimpleResponses":          true,
		"AuthorizerResultTtlInSeconds":   0,
		// No identity source: a request without Authorization still
		// reaches the authorizer, which also reads x-api-key.
		"IdentitySource": arr{},
	})
	tpl.HasResourceProperties(str("AWS::ApiGatewayV2::Route"), obj{"RouteKey": "GET /items", "AuthorizationType": "CUSTOM"})
}

func TestAttachGrantsApiGatewayInvokeOnTheAuthorizer(t *testing.T) {
	tpl := team(t)
	perms := resources(t, tpl, "AWS::Lambda::Permission")
	if len(perms) < 2 {
		t.Errorf("%d invoke permissions, want one per API for the imported authorizer", len(perms))
	}
	for id, p := range perms {
		if p.Properties["Principal"] != "apigateway.amazonaws.com" || p.Properties["FunctionName"] != "arn:aws:lambda:eu-west-1:123456789012:function:Keygate-Authorizer" {
			t.Errorf("permission %s: %s", id, jsonOf(p.Properties))
		}
	}
}
