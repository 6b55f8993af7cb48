// Command infra is keygate's CDK app: `npx cdk synth` and `npx cdk deploy`
// run it (see cdk.json). It checks the keygate:* context and creates the
// one Keygate stack, which reads that context itself; everything else is in
// package keygatecdk.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/infra/keygatecdk"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	// A bad setting is a clear error here rather than the construct's panic.
	if _, err := keygatecdk.SettingsFromContext(app.Node()); err != nil {
		fmt.Fprintln(os.Stderr, "keygate:", err)
		os.Exit(1)
	}
	props := &keygatecdk.KeygateStackProps{}
	// The account and region of the credentials cdk runs with; without
	// credentials (an offline synth) the stack is environment-agnostic.
	if account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION"); account != "" && region != "" {
		props.Env = &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
	}
	keygatecdk.NewKeygateStack(app, "Keygate", props)
	app.Synth(nil)
}
