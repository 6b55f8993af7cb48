package keygatecdk

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/seal"
)

// This file holds the KMS keys that keep a plaintext key unrecoverable
// from what a read-only principal can see (see docs/security.md): the key
// that encrypts the functions' environments (the pepper is there), and the
// key that seals stored idempotent responses (which hold new keys).

// NewEnvironmentKey creates the customer managed key that encrypts every
// function's environment variables. With Lambda's default (the AWS managed
// key aws/lambda) anyone allowed lambda:GetFunctionConfiguration (AWS's
// ReadOnlyAccess grants it) reads the variables in the clear; with a
// customer managed key "only users in your account with access to the KMS
// key can view or manage environment variables on the function"
// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html),
// and ReadOnlyAccess grants no kms:Decrypt. The key policy is CDK's
// default (the account administers the key, IAM policies grant its use),
// and each function's role is granted kms:Decrypt on it; rotation is on.
func NewEnvironmentKey(scope constructs.Construct, id string, removal awscdk.RemovalPolicy) awskms.Key {
	return awskms.NewKey(scope, str(id), &awskms.KeyProps{
		Description:       str("keygate: encrypts the functions' environment variables (the pepper among them)"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     removal,
	})
}

// sealKeyAdministration are the key policy's actions for the account: it
// manages the key (so CloudFormation can update and delete it, and an
// administrator can change the policy, which CloudTrail records), but no
// IAM policy can grant its use: no Encrypt, Decrypt, GenerateDataKey,
// ReEncrypt or CreateGrant.
var sealKeyAdministration = []string{
	"kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListGrants", "kms:ListKeyPolicies",
	"kms:ListResourceTags", "kms:PutKeyPolicy", "kms:EnableKey", "kms:DisableKey", "kms:EnableKeyRotation",
	"kms:DisableKeyRotation", "kms:RotateKeyOnDemand", "kms:UpdateKeyDescription", "kms:CreateAlias",
	"kms:UpdateAlias", "kms:DeleteAlias", "kms:TagResource", "kms:UntagResource", "kms:RevokeGrant",
	"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
}

// SealUseActions are what the functions that seal (the issuer and the
// rotator) may do with the seal key: make a data key for a response, and
// decrypt it to replay the response.
var SealUseActions = []string{"kms:GenerateDataKey", "kms:Decrypt"}

// NewSealKey creates the symmetric key that seals stored idempotent
// responses (internal/seal). Its key policy gives the account the key's
// administration only; AllowSealing names the principals that may use it,
// in the key policy itself, so no IAM policy (an administrator's
// kms:Decrypt on *, say) reaches it without a recorded policy change.
func NewSealKey(scope constructs.Construct, id string, removal awscdk.RemovalPolicy) awskms.Key {
	policy := awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
		Statements: &[]awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        str("AccountAdministersTheKeyButCannotUseIt"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewAccountRootPrincipal()},
			Actions:    jsii.Strings(sealKeyAdministration...),
			Resources:  jsii.Strings("*"),
		})},
	})
	return awskms.NewKey(scope, str(id), &awskms.KeyProps{
		Description:       str("keygate: seals stored idempotent responses, which hold new keys; only the issuer and the rotator may use it"),
		EnableKeyRotation: jsii.Bool(true),
		Policy:            policy,
		RemovalPolicy:     removal,
	})
}

// sealUse is the statement that lets principals seal and open idempotent
// responses with the seal key, and nothing else: the encryption context
// must name that use.
func sealUse(principals []awsiam.IPrincipal, resource string) awsiam.PolicyStatement {
	cond := map[string]interface{}{
		"StringEquals": map[string]interface{}{"kms:EncryptionContext:" + seal.ContextUse: seal.Use},
	}
	p := &awsiam.PolicyStatementProps{
		Actions:    jsii.Strings(SealUseActions...),
		Resources:  jsii.Strings(resource),
		Conditions: &cond,
	}
	if principals != nil {
		p.Sid, p.Principals = str("IssuerAndRotatorSealAndOpen"), &principals
	}
	return awsiam.NewPolicyStatement(p)
}

// AllowSealing lets roles (the issuer's and the rotator's) use the seal
// key, in its key policy.
func AllowSealing(key awskms.Key, roles []awsiam.IRole) {
	principals := make([]awsiam.IPrincipal, len(roles))
	for i, r := range roles {
		principals[i] = r
	}
	key.AddToResourcePolicy(sealUse(principals, "*"), jsii.Bool(false))
}
