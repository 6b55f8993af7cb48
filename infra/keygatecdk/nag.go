package keygatecdk

import (
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/keygate/keygate/internal/gateway"
)

// nagSuppression is an AwsSolutions finding keygate accepts, with the
// reason, on the one construct it concerns (children included only where
// the decision covers them all).
type nagSuppression struct {
	ID, Reason string
	On         func(*Keygate) constructs.IConstruct
	Children   bool
	// AppliesTo narrows a granular rule's suppression to these findings
	// ("Resource::*"); empty means the rule's every finding.
	AppliesTo []string
}

func apiChild(path ...string) func(*Keygate) constructs.IConstruct {
	return func(k *Keygate) constructs.IConstruct {
		var c constructs.IConstruct = k.Api
		for _, p := range path {
			c = c.Node().FindChild(str(p))
		}
		return c
	}
}

var nagSuppressions = []nagSuppression{
	{ID: "AwsSolutions-APIG2", Children: false, On: apiChild(),
		Reason: "Every function validates its input and answers an RFC 9457 problem with a stable code; API Gateway's request validator would answer in a shape clients do not expect. The protected proxy passes requests through to the upstream, which validates its own."},
	{ID: "AwsSolutions-COG4", Children: true, On: apiChild(),
		Reason: "keygate authorizes with its own API-key authorizer (/v1/tokens, the proxy) and IAM (the admin API), not with Cognito user pools."},
	{ID: "AwsSolutions-APIG4", On: func(k *Keygate) constructs.IConstruct {
		return k.Api.Root().ResourceForPath(str("/.well-known/jwks.json")).Node().FindChild(str("GET"))
	}, Reason: "GET /.well-known/jwks.json is public by design: it publishes the public keys that verify keygate's tokens, as OIDC providers do."},
	{ID: "AwsSolutions-IAM4", On: apiChild("CloudWatchRole"),
		Reason: "The account-level role API Gateway writes logs with uses AmazonAPIGatewayPushToCloudWatchLogs, the managed policy AWS documents for it. Function roles use no managed policy."},
	{ID: "AwsSolutions-SMG4", On: func(k *Keygate) constructs.IConstruct { return k.Pepper },
		Reason: "The pepper keys every stored key hash; rotating it would make every issued key unknown. No function role can read it: CloudFormation resolves it into the functions' environment."},
	{ID: "AwsSolutions-SNS2", On: func(k *Keygate) constructs.IConstruct { return k.Monitoring.Topic },
		Reason: "Alarm notifications carry no secrets, and CloudWatch alarms cannot publish to a topic encrypted with the AWS managed SNS key; a customer managed key would cost more than what it protects."},
	{ID: "AwsSolutions-SQS3", On: usagePart(func(k *Keygate) constructs.IConstruct { return k.Usage.Failed }),
		Reason: "This queue is the on-failure destination of the usage function's stream mapping (Lambda's dead-letter destination, which SQS does not see as one): it keeps the description of each batch Lambda discarded for an operator to read (an alarm fires on it), and nothing consumes it, so it needs no queue of its own behind it."},
	{ID: "AwsSolutions-IAM5", AppliesTo: []string{"Resource::*"}, On: usagePart(func(k *Keygate) constructs.IConstruct {
		return k.Functions[gateway.FnUsage].Role().Node().FindChild(str("DefaultPolicy"))
	}), Reason: "The stream mapping's grant: dynamodb:ListStreams, which Lambda needs to find the table's stream, acts on no resource (its IAM resource is *); DescribeStream, GetShardIterator and GetRecords are granted on the stream's ARN only."},
}

// usagePart is a construct of the usage pipeline, nil when the stack's
// function table has no usage function (its suppressions then concern
// nothing).
func usagePart(part func(*Keygate) constructs.IConstruct) func(*Keygate) constructs.IConstruct {
	return func(k *Keygate) constructs.IConstruct {
		if k.Usage == nil {
			return nil
		}
		return part(k)
	}
}

// settingSuppressions are the findings a deployment's own settings cause,
// each with the setting that does.
func settingSuppressions(k *Keygate) []nagSuppression {
	var out []nagSuppression
	if k.WebACL == nil {
		out = append(out, nagSuppression{ID: "AwsSolutions-APIG3", On: func(k *Keygate) constructs.IConstruct { return k.Api.DeploymentStage() },
			Reason: "The deployment removed keygate's web ACL (keygate:wafRateLimit=0), for one of its own; the stage stays throttled and the authorizer rate limits per key."})
	}
	if k.Settings.CORS().Enabled() && k.Settings.UpstreamURL != "" {
		for _, r := range gateway.Proxy(k.Settings.ProxyBasePath) {
			path := r.Path
			out = append(out, nagSuppression{ID: "AwsSolutions-APIG4", On: func(k *Keygate) constructs.IConstruct {
				return k.Api.Root().ResourceForPath(str(path)).Node().FindChild(str("OPTIONS"))
			}, Reason: "A CORS preflight carries no credential by design (browsers send none), so API Gateway answers it itself, with a mock integration and no authorizer (keygate:corsAllowOrigins)."})
		}
	}
	return out
}

// AddNagSuppressions records keygate's accepted cdk-nag findings with their
// reasons, each on the construct it concerns, so the AwsSolutions pack finds
// nothing else.
func AddNagSuppressions(k *Keygate) {
	for _, x := range append(append([]nagSuppression{}, nagSuppressions...), settingSuppressions(k)...) {
		on := x.On(k)
		if on == nil {
			continue // not in this stack's function table
		}
		s := []*cdknag.NagPackSuppression{{Id: str(x.ID), Reason: str(x.Reason)}}
		if len(x.AppliesTo) > 0 {
			var applies []interface{}
			for _, a := range x.AppliesTo {
				applies = append(applies, a)
			}
			s[0].AppliesTo = &applies
		}
		cdknag.NagSuppressions_AddResourceSuppressions(on, &s, &x.Children)
	}
}
