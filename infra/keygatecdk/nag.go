package keygatecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// nagSuppressions are the AwsSolutions findings keygate accepts, each with
// the reason. They are added to the stack (not to single resources) only
// where the finding concerns a design decision made once for all resources.
var nagSuppressions = []struct{ ID, Reason string }{
	{"AwsSolutions-APIG2", "Every function validates its input and answers an RFC 9457 problem with a stable code; API Gateway's request validator would answer in a shape clients do not expect. The protected proxy passes requests through to the upstream, which validates its own."},
	{"AwsSolutions-APIG3", "WAF is a per-organisation choice with its own cost; associate a web ACL with the stage if required. Throttling is set on the stage, and the authorizer rate limits per key."},
	{"AwsSolutions-APIG4", "The admin API uses IAM, /v1/tokens and the proxy use the keygate authorizer; only GET /.well-known/jwks.json is public, by design: it publishes the public keys that verify tokens."},
	{"AwsSolutions-COG4", "keygate authorizes with API keys (its own authorizer) and IAM, not Cognito user pools."},
	{"AwsSolutions-IAM4", "Only the account-level API Gateway CloudWatch role uses a managed policy (AmazonAPIGatewayPushToCloudWatchLogs), the policy AWS documents for it. Every function role is keygate's own, with named actions on named resources."},
	{"AwsSolutions-SMG4", "The pepper keys every stored key hash; rotating it would make every issued key unknown. It is never returned by an API and is not readable by the functions' roles."},
	{"AwsSolutions-SNS2", "Alarm notifications carry no secrets, and CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key; a customer managed key would cost more than what it protects."},
}

// AddNagSuppressions records keygate's accepted cdk-nag findings on stack,
// with their reasons, so `cdk synth` with the AwsSolutions pack applied is
// clean.
func AddNagSuppressions(stack awscdk.Stack) {
	var s []*cdknag.NagPackSuppression
	for _, x := range nagSuppressions {
		s = append(s, &cdknag.NagPackSuppression{Id: str(x.ID), Reason: str(x.Reason)})
	}
	cdknag.NagSuppressions_AddStackSuppressions(stack, &s, nil)
}
