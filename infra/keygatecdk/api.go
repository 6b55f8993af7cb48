package keygatecdk

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/gateway"
)

// AddGatewayResponses declares internal/gateway's response mapping on a REST
// API, so a denial prints the authorizer's reason (403), a missing or
// unknown key gets the generic 401 and an authorizer that could not decide
// gives 503 unavailable. Teams attaching the authorizer to their own REST
// API call it too. The responses are created inside api.
func AddGatewayResponses(api awsapigateway.RestApiBase) { addGatewayResponses(api, gateway.CORS{}) }

// addGatewayResponses is AddGatewayResponses with the proxy's CORS policy,
// whose Access-Control-Allow-Origin every response carries so that a
// browser can read the denial.
func addGatewayResponses(api awsapigateway.RestApiBase, cors gateway.CORS) {
	for _, r := range gateway.Responses {
		headers := corsResponseHeaders(cors)
		if headers == nil {
			headers = map[string]*string{}
		}
		for k, v := range r.Headers() {
			headers[k] = str("'" + v + "'") // a static value is quoted
		}
		awsapigateway.NewGatewayResponse(api, str("Response"+string(r.Type)), &awsapigateway.GatewayResponseProps{
			RestApi:         api,
			Type:            awsapigateway.ResponseType_Of(str(string(r.Type))),
			StatusCode:      str(strconv.Itoa(r.Status)),
			Templates:       &map[string]*string{"application/json": str(r.Body)},
			ResponseHeaders: &headers,
		})
	}
}

// ApiProps configure NewApi.
type ApiProps struct {
	Settings  Settings
	Functions map[string]awslambda.Function
	// Authorizer guards the routes whose Auth is gateway.AuthKeygate.
	Authorizer *Authorizer
}

// NewApi creates the REST API from internal/gateway's route table: one
// method per route (IAM for the admin API, the keygate authorizer for
// /v1/tokens and the protected proxy, none for the JWKS), the proxy's CORS
// preflights when CORS is on, the gateway responses, stage throttling (the
// proxy's) with the admin and token routes throttled apart, JSON access
// logs and execution error logs.
func NewApi(scope constructs.Construct, id string, props ApiProps) awsapigateway.RestApi {
	s := props.Settings
	access := s.newLogGroup(scope, id+"AccessLogs")
	routes := gateway.Routes
	if s.UpstreamURL != "" {
		routes = append(append([]gateway.Route{}, routes...), gateway.Proxy(s.ProxyBasePath)...)
	}
	api := awsapigateway.NewRestApi(scope, str(id), &awsapigateway.RestApiProps{
		Description: str("keygate: admin API (IAM), token exchange and the protected proxy"),
		// API Gateway writes logs through one role per account and region;
		// CDK creates it and sets it on the account. Retained, because other
		// APIs in the account rely on it once set.
		CloudWatchRole:              jsii.Bool(true),
		CloudWatchRoleRemovalPolicy: awscdk.RemovalPolicy_RETAIN,
		DeployOptions: &awsapigateway.StageOptions{
			StageName:            str(s.StageName),
			ThrottlingRateLimit:  jsii.Number(s.ThrottleRateLimit),
			ThrottlingBurstLimit: jsii.Number(s.ThrottleBurstLimit),
			MethodOptions:        methodThrottles(s, routes),
			AccessLogDestination: awsapigateway.NewLogGroupLogDestination(access),
			AccessLogFormat:      awsapigateway.AccessLogFormat_Custom(str(AccessLogFormat())),
			LoggingLevel:         awsapigateway.MethodLoggingLevel_ERROR,
			MetricsEnabled:       jsii.Bool(true),
			// Data traces would log request headers, keys included.
			DataTraceEnabled: jsii.Bool(false),
		},
	})
	cors := s.CORS()
	addGatewayResponses(api, cors)

	integrations := map[string]awsapigateway.Integration{}
	for _, r := range routes {
		res := api.Root().ResourceForPath(str(r.Path))
		opts := &awsapigateway.MethodOptions{}
		switch r.Auth {
		case gateway.AuthIAM:
			opts.AuthorizationType = awsapigateway.AuthorizationType_IAM
		case gateway.AuthKeygate:
			opts.AuthorizationType = awsapigateway.AuthorizationType_CUSTOM
			opts.Authorizer = props.Authorizer.ForRestApi(api)
		case gateway.AuthNone:
			opts.AuthorizationType = awsapigateway.AuthorizationType_NONE
		}
		var integ awsapigateway.Integration
		if r.Function == gateway.Upstream {
			integ, opts.RequestParameters = proxyIntegration(s.UpstreamURL, r.Path, s.keyQueryParam())
			if cors.Enabled() {
				addCORS(res, cors)
			}
		} else {
			integ = integrations[r.Function]
			if integ == nil {
				fn, ok := props.Functions[r.Function]
				if !ok {
					panic("keygatecdk: route " + r.Method + " " + r.Path + " needs function " + r.Function + ", which is not in the function table")
				}
				integ = awsapigateway.NewLambdaIntegration(fn, &awsapigateway.LambdaIntegrationOptions{
					// One permission for the whole API instead of one per
					// method and one more per method for console tests.
					AllowTestInvoke: jsii.Bool(false),
					Proxy:           jsii.Bool(true),
				})
				integrations[r.Function] = integ
			}
		}
		res.AddMethod(str(r.Method), integ, opts)
	}
	return api
}

// proxyIntegration is the protected proxy's HTTP proxy integration: the
// upstream URL plus the rest of the path, the authorizer's context as the
// gateway.Forward headers (overriding any a client sent), and the credential
// headers blanked, so the upstream never sees a key; so is the query
// parameter that may carry a key (queryParam, when the authorizer has one).
func proxyIntegration(upstream, path, queryParam string) (awsapigateway.Integration, *map[string]*bool) {
	params := map[string]*string{}
	for _, f := range gateway.Forward {
		params["integration.request.header."+f.Header] = str("context.authorizer." + f.Context)
	}
	for _, h := range gateway.CredentialHeaders {
		params["integration.request.header."+h] = str("''")
	}
	if queryParam != "" {
		params["integration.request.querystring."+queryParam] = str("''")
	}
	target := upstream
	var method map[string]*bool
	if strings.HasSuffix(path, "+}") {
		target += "/{" + gateway.ProxyParam + "}"
		params["integration.request.path."+gateway.ProxyParam] = str("method.request.path." + gateway.ProxyParam)
		method = map[string]*bool{"method.request.path." + gateway.ProxyParam: jsii.Bool(true)}
	}
	integ := awsapigateway.NewHttpIntegration(str(target), &awsapigateway.HttpIntegrationProps{
		HttpMethod: str("ANY"),
		Proxy:      jsii.Bool(true),
		Options: &awsapigateway.IntegrationOptions{
			RequestParameters: &params,
		},
	})
	if method == nil {
		return integ, nil
	}
	return integ, &method
}

// AccessLogFormat is the stage's JSON access log line: who called what, the
// outcome, and the authorizer's decision (key id or denial code, latency).
// It never includes a credential header.
func AccessLogFormat() string {
	fields := map[string]string{
		"requestId":          "$context.requestId",
		"time":               "$context.requestTimeEpoch",
		"ip":                 "$context.identity.sourceIp",
		"method":             "$context.httpMethod",
		"resource":           "$context.resourcePath",
		"path":               "$context.path",
		"status":             "$context.status",
		"responseLength":     "$context.responseLength",
		"latencyMs":          "$context.responseLatency",
		"integrationLatency": "$context.integration.latency",
		"errorType":          "$context.error.responseType",
		"iamPrincipal":       "$context.identity.userArn",
		"keyId":              "$context.authorizer." + gateway.CtxKeyID,
		"denial":             "$context.authorizer." + gateway.CtxCode,
		"authorizerStatus":   "$context.authorizer.status",
		"authorizerLatency":  "$context.authorizer.latency",
	}
	b, _ := json.Marshal(fields) // map keys sort: a stable line
	return string(b)
}
