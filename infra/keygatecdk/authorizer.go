package keygatecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// AuthorizerProps configure NewAuthorizer.
type AuthorizerProps struct {
	// Function is the keygate authorizer function: Keygate.AuthorizerFunction
	// in the same stack, or, in another stack, imported with
	// awslambda.Function_FromFunctionAttributes(scope, id,
	// &awslambda.FunctionAttributes{FunctionArn: arn, SameEnvironment:
	// jsii.Bool(true)}) using the stack's AuthorizerFunctionArn output (a
	// direct reference across stacks would make the two stacks depend on
	// each other: the function's invoke permission names the API).
	Function awslambda.IFunction
	// CacheTtl is API Gateway's authorizer result cache (default off).
	// Keep it off when any key has rate limits or quotas: a cached allow
	// skips the Lambda, so those requests are neither limited nor counted,
	// and a revoked key keeps working until its entry expires. With a TTL
	// the cache is keyed by the x-api-key header plus the method and
	// resource path (the route key on an HTTP API), so a cached decision
	// never crosses routes (scopes), but clients must send the key in
	// x-api-key: a request without that header is refused with 401 before
	// the authorizer runs.
	CacheTtl awscdk.Duration
}

// Authorizer puts the keygate authorizer in front of REST APIs and HTTP
// APIs: a team keeps its APIs and its stack and adds one authorizer to
// each. API Gateway binds an authorizer to one API, so ForRestApi and
// ForHttpApi create one per API (inside it), on first use, and return the
// same one for every further method or route of that API.
type Authorizer struct {
	id    string
	props AuthorizerProps
	rest  map[string]awsapigateway.IAuthorizer
	http  map[string]awsapigatewayv2.IHttpRouteAuthorizer
}

// NewAuthorizer returns an Authorizer whose per-API authorizers are named
// id; nothing is created until ForRestApi or ForHttpApi is called.
func NewAuthorizer(id string, props AuthorizerProps) *Authorizer {
	return &Authorizer{id: id, props: props,
		rest: map[string]awsapigateway.IAuthorizer{}, http: map[string]awsapigatewayv2.IHttpRouteAuthorizer{}}
}

// cacheSeconds is the result cache TTL in seconds, 0 when off.
func (a *Authorizer) cacheSeconds() float64 {
	if a.props.CacheTtl == nil {
		return 0
	}
	return *a.props.CacheTtl.ToSeconds(nil)
}

// ForRestApi is the REQUEST authorizer of api. It answers with an IAM
// policy and the context; call AddGatewayResponses on the API too, so
// denials print the reason. Use it as
// MethodOptions{Authorizer: a.ForRestApi(api), AuthorizationType: awsapigateway.AuthorizationType_CUSTOM}.
func (a *Authorizer) ForRestApi(api awsapigateway.RestApiBase) awsapigateway.IAuthorizer {
	if auth, ok := a.rest[*api.Node().Path()]; ok {
		return auth
	}
	ttl := a.cacheSeconds()
	p := &awsapigateway.RequestAuthorizerProps{
		Handler:         a.props.Function,
		ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(ttl)),
		// Without caching no identity source: API Gateway would answer 401
		// itself when a listed source is missing, and keygate accepts a key
		// in x-api-key, Authorization or a query parameter.
		IdentitySources: &[]*string{},
	}
	if ttl > 0 {
		p.IdentitySources = &[]*string{
			awsapigateway.IdentitySource_Header(str("x-api-key")),
			awsapigateway.IdentitySource_Context(str("httpMethod")),
			awsapigateway.IdentitySource_Context(str("resourcePath")),
		}
	}
	auth := awsapigateway.NewRequestAuthorizer(api, str(a.id), p)
	if ttl == 0 {
		// CDK writes an empty IdentitySource; leave the property out, as
		// API Gateway documents it for authorizers without caching.
		auth.Node().DefaultChild().(awscdk.CfnResource).AddPropertyDeletionOverride(str("IdentitySource"))
	}
	a.rest[*api.Node().Path()] = auth
	return auth
}

// ForHttpApi is the Lambda authorizer of api, with payload format 2.0 and
// simple responses ({"isAuthorized": ..., "context": ...}). An HTTP API
// cannot print the authorizer's context in a denial: clients get 401 or
// 403 with API Gateway's own body (see docs/clients.md). Use it as
// AddRoutesOptions{Authorizer: a.ForHttpApi(api)}.
func (a *Authorizer) ForHttpApi(api awsapigatewayv2.IHttpApi) awsapigatewayv2.IHttpRouteAuthorizer {
	if auth, ok := a.http[*api.Node().Path()]; ok {
		return auth
	}
	ttl := a.cacheSeconds()
	p := &awsapigatewayv2authorizers.HttpLambdaAuthorizerProps{
		ResponseTypes:   &[]awsapigatewayv2authorizers.HttpLambdaResponseType{awsapigatewayv2authorizers.HttpLambdaResponseType_SIMPLE},
		ResultsCacheTtl: awscdk.Duration_Seconds(jsii.Number(ttl)),
		IdentitySource:  &[]*string{},
	}
	if ttl > 0 {
		p.IdentitySource = jsii.Strings("$request.header.x-api-key", "$context.routeKey")
	}
	auth := awsapigatewayv2authorizers.NewHttpLambdaAuthorizer(str(a.id), a.props.Function, p)
	a.http[*api.Node().Path()] = auth
	return auth
}
