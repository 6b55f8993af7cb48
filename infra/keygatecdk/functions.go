package keygatecdk

import (
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/config"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/store"
)

// TableAccess is what a function may do to the table. Each level lists its
// actions by name: no function gets a wildcard action.
type TableAccess int

// The table access levels.
const (
	// KeyItems: UpdateItem on the keys' hot items only (partition keys
	// KEY#..., enforced with dynamodb:LeadingKeys). The authorizer reads a
	// key and updates its counters in the same conditional UpdateItem; it
	// can neither create, delete, read apart from that update nor list
	// keys, nor read audit records.
	KeyItems TableAccess = iota + 1
	// KeyReads: GetItem on the items a key is read by id through (the id
	// item and the key item: store.GetPrefixes), and UpdateItem on token
	// exchange counters (store.ExchangePrefix). The token function reads
	// the key it exchanges and counts the exchange; it reads no audit
	// record, idempotency record or index.
	KeyReads
	// ReadWrite: everything the issuer needs, except Scan (the indexes
	// answer every listing) and table management.
	ReadWrite
	// UsageItems: UpdateItem on usage items only (partition keys USAGE#...,
	// enforced with dynamodb:LeadingKeys). The usage function reads the
	// table's stream (its event source grants that) and writes usage
	// history; it can read no key and write nothing else.
	UsageItems
	// ReadWriteBatch: ReadWrite, BatchGetItem, with which the rotator's
	// scheduled run reads the due keys, and ConditionCheckItem, the
	// permission of a transaction's condition check (a step that must not
	// apply once the key was used checks the hot item it does not change;
	// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
	ReadWriteBatch
)

var tableActions = map[TableAccess][]string{
	KeyItems:   {"dynamodb:UpdateItem"},
	KeyReads:   {"dynamodb:GetItem"},
	UsageItems: {"dynamodb:UpdateItem"},
	ReadWrite: {
		"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
	},
	ReadWriteBatch: {
		"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
		"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem",
	},
}

// RingAccess is what a function may do with the token signing keys
// published in the table (the SIGNKEY partition, see internal/token).
type RingAccess int

// The signing key ring access levels.
const (
	// RingRead: Query the SIGNKEY partition only. The authorizer verifies
	// access tokens against the published public keys.
	RingRead RingAccess = iota + 1
	// RingPublish: Query, PutItem and UpdateItem on the SIGNKEY partition
	// only. The token function publishes the first key of a new deployment
	// itself (a transaction of a put and a conditional head update).
	RingPublish
	// RingRotate: the rotator publishes each next key (its table access
	// covers the items); it gets the signing key's id and
	// kms:GetPublicKey, to publish the public half, never kms:Sign.
	RingRotate
)

// Function is one entry of the function table: the construct creates one
// Lambda function per entry, built from functions/<Name> (GoCode). Every
// folder under functions/ has its entry (TestEveryFunctionFolderIsInTheTable).
type Function struct {
	Name        string
	Description string
	// MemoryMB buys CPU as well as memory: Lambda gives CPU in proportion.
	MemoryMB float64
	// TimeoutSeconds bounds one invocation.
	TimeoutSeconds float64
	Table          TableAccess
	// Events lets the function put lifecycle events on the bus.
	Events bool
	// Signs lets the function sign with (and read the public key of) the
	// token signing key.
	Signs bool
	// Ring is the function's access to the published signing keys.
	Ring RingAccess
}

// Functions is the function table. Memory and timeouts:
//
//   - authorizer, 512 MB / 5 s: it sits in front of every request, so its
//     latency is the API's; 512 MB gives about a third of a vCPU, which
//     halves cold-start init and HMAC time against 128 MB for a fraction of
//     a cent per million calls. A verification is one DynamoDB call, so a
//     5 s timeout only fires when the store stalls, and then API Gateway
//     answers 503 unavailable (fail closed) well before its own 10 s limit.
//   - issuer, 256 MB / 10 s: admin calls are rare and small; 10 s leaves
//     room for SDK retries inside API Gateway's 29 s integration limit.
//   - rotator, 256 MB / 300 s: the scheduled run pages through due keys
//     within a time budget taken from the invocation deadline, and picks up
//     where it stopped on the next run.
//   - tokens, 256 MB / 10 s: one KMS Sign call per token.
//   - usage, 256 MB / 60 s: a batch of up to 1,000 stream records is
//     a write per key and day it touches (8 at a time), then one per owner
//     and day; 60 s leaves room for DynamoDB's retries of a large batch.
var Functions = []Function{
	{Name: gateway.FnAuthorizer, Description: "keygate: verifies API keys and tokens for API Gateway", MemoryMB: 512, TimeoutSeconds: 5, Table: KeyItems, Ring: RingRead},
	{Name: gateway.FnIssuer, Description: "keygate: admin API for keys (issue, list, update, revoke, usage, audit)", MemoryMB: 256, TimeoutSeconds: 10, Table: ReadWrite, Events: true},
	{Name: gateway.FnRotator, Description: "keygate: key rotation and scheduled lifecycle work", MemoryMB: 256, TimeoutSeconds: 300, Table: ReadWriteBatch, Events: true, Ring: RingRotate},
	{Name: gateway.FnTokens, Description: "keygate: exchanges a key for a short-lived signed token; publishes the JWKS", MemoryMB: 256, TimeoutSeconds: 10, Table: KeyReads, Signs: true, Ring: RingPublish},
	{Name: gateway.FnUsage, Description: "keygate: keeps usage history (per key and per owner, per day) from the table's stream", MemoryMB: 256, TimeoutSeconds: 60, Table: UsageItems},
}

// FunctionsProps configure NewFunctions.
type FunctionsProps struct {
	Specs []Function
	// Code builds each function from its source.
	Code  *GoCode
	Table awsdynamodb.ITable
	// Bus receives lifecycle events from functions with Events set.
	Bus awsevents.IEventBus
	// SigningKey signs tokens for functions with Signs set.
	SigningKey awskms.IKey
	// EnvironmentKey encrypts every function's environment variables.
	EnvironmentKey awskms.IKey
	// SealKey seals the stored idempotent responses of the functions that
	// read KEYGATE_SEAL_KEY (the issuer and the rotator).
	SealKey awskms.IKey
	// Pepper is the value of KEYGATE_PEPPER: a CloudFormation dynamic
	// reference, so the plaintext is never in the template.
	Pepper string
	// Settings supply the functions' variables and the log retention.
	Settings Settings
}

// NewFunctions creates one function per spec, each with its own role, log
// group and only the permissions its spec names, and returns them by name.
func NewFunctions(scope constructs.Construct, id string, props FunctionsProps) map[string]awslambda.Function {
	c := constructs.NewConstruct(scope, str(id))
	out := map[string]awslambda.Function{}
	for _, spec := range props.Specs {
		out[spec.Name] = newFunction(c, spec, props)
	}
	return out
}

func newFunction(scope constructs.Construct, spec Function, props FunctionsProps) awslambda.Function {
	s := props.Settings
	cid := exportName(spec.Name)
	logs := s.newLogGroup(scope, cid+"Logs")
	// An explicit role instead of the default one: the default attaches the
	// managed AWSLambdaBasicExecutionRole, which may write to any log group.
	role := awsiam.NewRole(scope, str(cid+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(str("lambda.amazonaws.com"), nil),
		Description: str("keygate " + spec.Name + ": its log group and what its function table entry allows"),
	})
	logs.GrantWrite(role)

	// The variables the stack sets from its own resources, each on the
	// functions the registry says read it (so the pepper reaches only the
	// functions that hash keys); then those it takes from its settings.
	resources := map[string]*string{
		config.Table.Setting().Env:      props.Table.TableName(),
		config.Pepper.Setting().Env:     str(props.Pepper),
		config.EventBus.Setting().Env:   props.Bus.EventBusName(),
		config.SigningKey.Setting().Env: props.SigningKey.KeyArn(),
		config.SealKey.Setting().Env:    props.SealKey.KeyArn(),
	}
	env := map[string]*string{}
	for _, st := range config.All() {
		if st.Origin == config.ByStack && st.ReadBy(spec.Name) {
			v, ok := resources[st.Env]
			if !ok {
				panic("keygatecdk: the stack has no value for " + st.Env + ", which " + spec.Name + " reads")
			}
			env[st.Env] = v
		}
	}
	for k, v := range s.functionEnv(spec.Name) {
		env[k] = str(v)
	}
	if spec.Events {
		props.Bus.GrantPutEventsTo(role, nil)
	}
	props.EnvironmentKey.GrantDecrypt(role)
	if config.SealKey.Setting().ReadBy(spec.Name) {
		role.AddToPolicy(sealUse(nil, *props.SealKey.KeyArn()))
	}
	if spec.Signs {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:Sign", "kms:GetPublicKey"),
			Resources: jsii.Strings(*props.SigningKey.KeyArn()),
		}))
	}
	for _, stmt := range tableStatements(spec.Table, props.Table) {
		role.AddToPolicy(stmt)
	}
	if stmt := ringStatement(spec.Ring, props.Table); stmt != nil {
		role.AddToPolicy(stmt)
	}
	if spec.Ring == RingRotate {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings("kms:GetPublicKey"),
			Resources: jsii.Strings(*props.SigningKey.KeyArn()),
		}))
	}

	return awslambda.NewFunction(scope, str(cid), &awslambda.FunctionProps{
		Description:   str(spec.Description),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  awslambda.Architecture_ARM_64(),
		Handler:       str("bootstrap"),
		Code:          props.Code.For(spec.Name),
		MemorySize:    jsii.Number(spec.MemoryMB),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(spec.TimeoutSeconds)),
		Role:          role,
		LogGroup:      logs,
		LoggingFormat: awslambda.LoggingFormat_JSON,
		Environment:   &env,
		// A customer managed key, so that reading the function's
		// configuration does not show its variables (see
		// NewEnvironmentKey).
		EnvironmentEncryption: props.EnvironmentKey,
	})
}

// tableStatements are the DynamoDB statements of an access level: named
// actions on the table, limited to the partitions the level reaches
// (dynamodb:LeadingKeys) where it reaches only some, and on its named
// indexes (no index/* wildcard) where it queries them.
func tableStatements(access TableAccess, table awsdynamodb.ITable) []awsiam.PolicyStatement {
	actions, ok := tableActions[access]
	if !ok {
		return nil
	}
	leading := func(actions []string, prefixes ...string) awsiam.PolicyStatement {
		var like []string
		for _, p := range prefixes {
			like = append(like, p+"*")
		}
		cond := map[string]interface{}{"ForAllValues:StringLike": map[string]interface{}{"dynamodb:LeadingKeys": like}}
		return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions: jsii.Strings(actions...), Resources: jsii.Strings(*table.TableArn()), Conditions: &cond,
		})
	}
	switch access {
	case KeyItems:
		return []awsiam.PolicyStatement{leading(actions, KeyItemPrefix())}
	case UsageItems:
		return []awsiam.PolicyStatement{leading(actions, UsageItemPrefix())}
	case KeyReads:
		return []awsiam.PolicyStatement{
			leading(actions, store.GetPrefixes()...),
			leading([]string{"dynamodb:UpdateItem"}, store.ExchangePrefix),
		}
	}
	resources := []string{*table.TableArn()}
	for _, ix := range indexNames() {
		resources = append(resources, *table.TableArn()+"/index/"+ix)
	}
	return []awsiam.PolicyStatement{awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: jsii.Strings(resources...),
	})}
}

// ringActions are the DynamoDB actions of each signing key ring level.
var ringActions = map[RingAccess][]string{
	RingRead:    {"dynamodb:Query"},
	RingPublish: {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"},
}

// ringStatement limits a ring level's actions to the SIGNKEY partition
// (dynamodb:LeadingKeys), so neither the authorizer nor the token function
// can read or write any other item through it.
func ringStatement(access RingAccess, table awsdynamodb.ITable) awsiam.PolicyStatement {
	actions, ok := ringActions[access]
	if !ok {
		return nil
	}
	conditions := map[string]interface{}{
		"ForAllValues:StringEquals": map[string]interface{}{"dynamodb:LeadingKeys": []string{store.SigningKeyPK}},
	}
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:    jsii.Strings(actions...),
		Resources:  jsii.Strings(*table.TableArn()),
		Conditions: &conditions,
	})
}

// KeyItemPrefix is the partition key prefix of the keys' hot items, taken from the
// store (the only package that knows the item layout).
func KeyItemPrefix() string {
	var h apikey.Hash
	return strings.TrimSuffix(store.KeyPK(h), h.String())
}

// UsageItemPrefix is the partition key prefix of usage items, taken from
// the store.
func UsageItemPrefix() string { return strings.TrimSuffix(store.UsagePK("x"), "x") }

// exportName turns a function name into a construct id: "authorizer" ->
// "Authorizer".
func exportName(name string) string {
	if name == "" {
		return name
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

// sortedNames returns the function names in a stable order, so the
// synthesized template does not change from run to run.
func sortedNames(fns map[string]awslambda.Function) []string {
	names := make([]string, 0, len(fns))
	for n := range fns {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
