package keygatecdk

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awswafv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/gateway"
)

// This file holds what bounds unauthenticated traffic before it reaches a
// function: the web ACL on the stage, and the throttles that keep the
// admin and token routes apart from the proxy. Anyone can mint well-formed
// keys (the format and its checksum are public), so without them every
// request would cost an authorizer invocation.

// WebACLProps configure NewWebACL.
type WebACLProps struct {
	// Stage is the REST API stage the web ACL protects.
	Stage awsapigateway.Stage
	// RateLimit is the most requests one source IP may send in the
	// rule's window (WebACLWindowSeconds) before it is blocked.
	RateLimit int
}

// WebACLWindowSeconds is the rate-based rule's evaluation window.
const WebACLWindowSeconds = 300

// WebACLRetryAfterSeconds is the Retry-After of a blocked request: WAF
// reassesses a source IP's rate continuously, and stops blocking once it
// falls under the limit.
const WebACLRetryAfterSeconds = 60

// ipRateLimitedBody is the body of a request the web ACL blocks, in the
// shape of keygate's denials (see docs/clients.md).
var ipRateLimitedBody = `{"code":"ip_rate_limited","message":"too many requests from this address; retry later","retryAfterSeconds":` +
	strconv.Itoa(WebACLRetryAfterSeconds) + "}"

// NewWebACL creates a regional WAF web ACL with one rate-based rule per
// source IP (the address API Gateway sees, never X-Forwarded-For, which a
// client can set) and associates it with the stage: past the limit, WAF
// answers 429 ip_rate_limited itself, so neither the authorizer nor
// DynamoDB sees the request. Requests under the limit are allowed.
func NewWebACL(scope constructs.Construct, id string, props WebACLProps) awswafv2.CfnWebACL {
	c := constructs.NewConstruct(scope, str(id))
	visibility := func(name string) *awswafv2.CfnWebACL_VisibilityConfigProperty {
		return &awswafv2.CfnWebACL_VisibilityConfigProperty{
			CloudWatchMetricsEnabled: jsii.Bool(true), SampledRequestsEnabled: jsii.Bool(true), MetricName: str(name),
		}
	}
	acl := awswafv2.NewCfnWebACL(c, str("WebACL"), &awswafv2.CfnWebACLProps{
		Description:      str("keygate: limits each source IP before the authorizer runs"),
		Scope:            str("REGIONAL"),
		DefaultAction:    &awswafv2.CfnWebACL_DefaultActionProperty{Allow: &awswafv2.CfnWebACL_AllowActionProperty{}},
		VisibilityConfig: visibility("keygate"),
		CustomResponseBodies: &map[string]*awswafv2.CfnWebACL_CustomResponseBodyProperty{
			"ipRateLimited": {ContentType: str("APPLICATION_JSON"), Content: str(ipRateLimitedBody)},
		},
		Rules: &[]*awswafv2.CfnWebACL_RuleProperty{{
			Name:     str("RatePerSourceIP"),
			Priority: jsii.Number(0),
			Statement: &awswafv2.CfnWebACL_StatementProperty{
				RateBasedStatement: &awswafv2.CfnWebACL_RateBasedStatementProperty{
					AggregateKeyType:    str("IP"),
					Limit:               jsii.Number(float64(props.RateLimit)),
					EvaluationWindowSec: jsii.Number(WebACLWindowSeconds),
				},
			},
			Action: &awswafv2.CfnWebACL_RuleActionProperty{Block: &awswafv2.CfnWebACL_BlockActionProperty{
				CustomResponse: &awswafv2.CfnWebACL_CustomResponseProperty{
					ResponseCode:          jsii.Number(429),
					CustomResponseBodyKey: str("ipRateLimited"),
					ResponseHeaders: &[]*awswafv2.CfnWebACL_CustomHTTPHeaderProperty{
						{Name: str("Retry-After"), Value: str(strconv.Itoa(WebACLRetryAfterSeconds))},
						{Name: str("Cache-Control"), Value: str("no-store")},
					},
				},
			}},
			VisibilityConfig: visibility("keygate-rate-per-ip"),
		}},
	})
	awswafv2.NewCfnWebACLAssociation(c, str("Association"), &awswafv2.CfnWebACLAssociationProps{
		ResourceArn: props.Stage.StageArn(),
		WebAclArn:   acl.AttrArn(),
	})
	return acl
}

// methodThrottles are the stage's per-method throttles: each admin route
// (IAM) gets the admin throttle and each token route (the exchange and the
// JWKS) the token throttle, so that a flood of one kind cannot use up the
// stage's throttle, which the proxy's methods keep for themselves.
func methodThrottles(s Settings, routes []gateway.Route) *map[string]*awsapigateway.MethodDeploymentOptions {
	out := map[string]*awsapigateway.MethodDeploymentOptions{}
	for _, r := range routes {
		var rate, burst float64
		switch {
		case r.Auth == gateway.AuthIAM:
			rate, burst = s.AdminThrottleRateLimit, s.AdminThrottleBurstLimit
		case r.Function == gateway.FnTokens:
			rate, burst = s.TokenThrottleRateLimit, s.TokenThrottleBurstLimit
		default:
			continue
		}
		// A method's settings replace the stage's for it: the logging
		// and metrics settings are the stage's again.
		out[r.Path+"/"+r.Method] = &awsapigateway.MethodDeploymentOptions{
			ThrottlingRateLimit: jsii.Number(rate), ThrottlingBurstLimit: jsii.Number(burst),
			LoggingLevel: awsapigateway.MethodLoggingLevel_ERROR, MetricsEnabled: jsii.Bool(true), DataTraceEnabled: jsii.Bool(false),
		}
	}
	return &out
}

// addCORS declares the protected proxy's CORS policy on its resources: a
// preflight OPTIONS method answered by API Gateway itself (a mock
// integration, no authorizer: a preflight carries no key), as
// internal/gateway defines it for the local gateway too.
func addCORS(res awsapigateway.IResource, cors gateway.CORS) {
	origins := jsii.Strings(cors.AllowOrigins...)
	res.AddCorsPreflight(&awsapigateway.CorsOptions{
		AllowOrigins: origins,
		AllowMethods: jsii.Strings(cors.Methods()...),
		AllowHeaders: jsii.Strings(cors.Headers()...),
		MaxAge:       awscdk.Duration_Seconds(jsii.Number(cors.Age())),
		StatusCode:   jsii.Number(gateway.PreflightStatus),
	})
}

// corsResponseHeaders are the CORS headers of every gateway response, in
// API Gateway's terms (a quoted static value, or a request header copied),
// as gateway.CORS.ResponseOrigin says; none when CORS is off.
func corsResponseHeaders(cors gateway.CORS) map[string]*string {
	if !cors.Enabled() {
		return nil
	}
	v, static := cors.ResponseOrigin()
	out := map[string]*string{"Access-Control-Allow-Origin": str("method.request.header." + v)}
	if static {
		out["Access-Control-Allow-Origin"] = str("'" + v + "'")
	}
	if !static || v != "*" {
		out["Vary"] = str("'Origin'")
	}
	return out
}
