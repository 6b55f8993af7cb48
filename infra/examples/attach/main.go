// Command attach is a CDK app of the kind a team already has: one stack
// with a REST API (Orders) and an HTTP API (Catalog) of its own. It adds
// keygate to that stack with keygatecdk.NewKeygate and puts keygate's
// authorizer in front of routes of both APIs.
//
// It is a module of its own that requires github.com/keygate/keygate, as a
// team's app does after `go get github.com/keygate/keygate`; its go.mod
// points that requirement at this checkout with a replace directive, so
// the example always builds against the code beside it. Being another
// module, it can use keygatecdk only, never keygate's internal packages.
// `make test` synthesizes it with the pinned CDK CLI
// (TestExampleAppSynthesizes in infra/keygatecdk); by hand:
//
//	cd infra/examples/attach && npx cdk synth
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/infra/keygatecdk"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("Shop"), nil)

	// keygate itself: table, functions (built from source during synth),
	// admin API, alarms. Unset props take the app's keygate:* context
	// (cdk.json), then keygate's defaults.
	kg := keygatecdk.NewKeygate(stack, "Keygate", &keygatecdk.KeygateProps{
		KeyPrefix:    jsii.String("shop"),
		LogRetention: awslogs.RetentionDays_THREE_MONTHS,
		// The scopes each route of the team's APIs needs.
		Routes: &[]*keygatecdk.Route{
			{Method: jsii.String("GET"), Path: jsii.String("/orders"), Scopes: jsii.Strings("orders:read")},
			{Method: jsii.String("POST"), Path: jsii.String("/orders"), Scopes: jsii.Strings("orders:write")},
			{Method: jsii.String("GET"), Path: jsii.String("/items"), Scopes: jsii.Strings("catalog:read")},
		},
	})

	// The team's REST API: keygate's REQUEST authorizer on its methods, and
	// keygate's gateway responses, so a denial says why.
	orders := awsapigateway.NewRestApi(stack, jsii.String("Orders"), &awsapigateway.RestApiProps{
		Description: jsii.String("the team's orders API"),
		// keygate's API sets the account's API Gateway logging role; a
		// second AWS::ApiGateway::Account in the stack would fight it.
		CloudWatchRole: jsii.Bool(false),
	})
	guarded := &awsapigateway.MethodOptions{
		AuthorizationType: awsapigateway.AuthorizationType_CUSTOM,
		Authorizer:        kg.Authorizer.ForRestApi(orders),
	}
	upstream := awsapigateway.NewHttpIntegration(jsii.String("https://orders.internal.example.com/orders"), &awsapigateway.HttpIntegrationProps{
		HttpMethod: jsii.String("ANY"),
	})
	res := orders.Root().AddResource(jsii.String("orders"), nil)
	res.AddMethod(jsii.String("GET"), upstream, guarded)
	res.AddMethod(jsii.String("POST"), upstream, guarded)
	keygatecdk.AddGatewayResponses(orders)

	// The team's HTTP API: keygate's Lambda authorizer with simple
	// responses on its route.
	catalog := awsapigatewayv2.NewHttpApi(stack, jsii.String("Catalog"), nil)
	catalog.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
		Path:        jsii.String("/items"),
		Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_GET},
		Integration: awsapigatewayv2integrations.NewHttpUrlIntegration(jsii.String("Items"), jsii.String("https://catalog.internal.example.com/items"), nil),
		Authorizer:  kg.Authorizer.ForHttpApi(catalog),
	})

	// The admin API's URL, for the keygate CLI:
	// keygate --stack Shop --stack-output KeygateApiUrl keys create ...
	awscdk.NewCfnOutput(stack, jsii.String("KeygateApiUrl"), &awscdk.CfnOutputProps{Value: kg.ApiUrl()})
	awscdk.NewCfnOutput(stack, jsii.String("OrdersUrl"), &awscdk.CfnOutputProps{Value: orders.Url()})
	awscdk.NewCfnOutput(stack, jsii.String("CatalogUrl"), &awscdk.CfnOutputProps{Value: catalog.Url()})

	app.Synth(nil)
}
