package keygatecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// AuthorizerProps configure NewAuthorizer.
type AuthorizerProps struct {
	// Function is the keygate authorizer function. Give it directly inside
	// the keygate stack, or import it elsewhere with
	// awslambda.Function_FromFunctionAttributes(scope, id,
	// &awslambda.FunctionAttributes{FunctionArn: arn, SameEnvironment:
	// jsii.Bool(true)}) using the stack's AuthorizerFunctionArn output.
	Function awslambda.IFunction
	// CacheTTLSeconds is API Gateway's authorizer result cache. Keep 0 (the
	// default) when any key has rate limits or quotas: a cached allow skips
	// the Lambda, so those requests are neither limited nor counted, and a
	// revoked key keeps working until its entry expires. With a TTL above 0
	// the cache is keyed by the x-api-key header plus the method and
	// resource path, so a cached decision never crosses routes (scopes), but
	// clients must send the key in x-api-key: a request without that
	// header is refused with 401 before the authorizer runs.
	CacheTTLSeconds float64
}

// Authorizer puts the keygate authorizer in front of a REST API or an HTTP
// API: a team keeps its API and its stack and adds one authorizer. Create it
// once, then take ForRestApi or ForHttpApi and set it on the methods or
// routes to protect.
type Authorizer struct {
	scope constructs.Construct
	id    string
	props AuthorizerProps
}

// NewAuthorizer returns an Authorizer; nothing is created until ForRestApi
// or ForHttpApi is called.
func NewAuthorizer(scope constructs.Construct, id string, props AuthorizerProps) *Authorizer {
	return &Authorizer{scope: scope, id: id, props: props}
}

// ForRestApi creates a REQUEST authorizer for one REST API (API Gateway
// binds an authorizer to one API: call it once per API). The authorizer
// answers with an IAM policy and the context; pair it with AddGatewayResponses
// so denials print the reason. Use it as
// MethodOptions{Authorizer: a.ForRestApi(), AuthorizationType: awsapigateway.AuthorizationType_CUSTOM}.
func (a *Authorizer) ForRestApi() awsapigateway.RequestAuthorizer {
	p := &awsapigateway.RequestAuthorizerProps{
		Handler:         a.props.Function,
		ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(a.props.CacheTTLSeconds)),
		// Without caching no identity source: API Gateway would answer 401
		// itself when a listed source is missing, and keygate accepts a key
		// in x-api-key, Authorization or a query parameter.
		IdentitySources: &[]*string{},
	}
	if a.props.CacheTTLSeconds > 0 {
		p.IdentitySources = &[]*string{
			awsapigateway.IdentitySource_Header(str("x-api-key")),
			awsapigateway.IdentitySource_Context(str("httpMethod")),
			awsapigateway.IdentitySource_Context(str("resourcePath")),
		}
	}
	auth := awsapigateway.NewRequestAuthorizer(a.scope, str(a.id), p)
	if a.props.CacheTTLSeconds == 0 {
		// CDK writes an empty IdentitySource; leave the property out, as
		// API Gateway documents it for authorizers without caching.
		auth.Node().DefaultChild().(awscdk.CfnResource).AddPropertyDeletionOverride(str("IdentitySource"))
	}
	return auth
}

// ForHttpApi returns a Lambda authorizer for an HTTP API with payload
// format 2.0 and simple responses ({"isAuthorized": ..., "context": ...}).
// An HTTP API cannot print the authorizer's context in a denial: clients get
// 401 or 403 with API Gateway's own body (see docs/clients.md).
func (a *Authorizer) ForHttpApi() awsapigatewayv2.IHttpRouteAuthorizer {
	p := &awsapigatewayv2authorizers.HttpLambdaAuthorizerProps{
		ResponseTypes:   &[]awsapigatewayv2authorizers.HttpLambdaResponseType{awsapigatewayv2authorizers.HttpLambdaResponseType_SIMPLE},
		ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(a.props.CacheTTLSeconds)),
		IdentitySource:  &[]*string{},
	}
	if a.props.CacheTTLSeconds > 0 {
		p.IdentitySource = jsii.Strings("$request.header.x-api-key", "$context.routeKey")
	}
	return awsapigatewayv2authorizers.NewHttpLambdaAuthorizer(str(a.id), a.props.Function, p)
}
