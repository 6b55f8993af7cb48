// Command infra is keygate's CDK app: `npx cdk synth` and `npx cdk deploy`
// run it (see cdk.json). It reads the keygate:* context, checks it, and
// creates the one Keygate stack; everything else is in package keygatecdk.
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
	settings, err := keygatecdk.SettingsFromContext(app.Node())
	if err != nil {
		fmt.Fprintln(os.Stderr, "keygate:", err)
		os.Exit(1)
	}
	props := &keygatecdk.KeygateStackProps{Settings: settings}
	// The account and region of the credentials cdk runs with; without
	// credentials (an offline synth) the stack is environment-agnostic.
	if account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION"); account != "" && region != "" {
		props.Env = &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
	}
	keygatecdk.NewKeygateStack(app, "Keygate", props)
	app.Synth(nil)
}
