package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// checkOptions checks the common options without any network call.
func (a *app) checkOptions() error {
	o := &a.opts
	switch o.output {
	case "", "json", "table", "csv":
	default:
		return usagef("--output: must be json or table, or csv for the usage commands")
	}
	if o.timeout <= 0 {
		return usagef("--timeout: must be positive, for example 30s")
	}
	if o.apiURL != "" && o.stack != "" {
		return usagef("give --api-url or --stack, not both")
	}
	if o.stackOutput == "" {
		return usagef("--stack-output: must not be empty")
	}
	if src, raw := a.urlSource(); raw != "" {
		if _, err := parseAPIURL(raw); err != nil {
			return usagef("%s: %v", src, err)
		}
	}
	return nil
}

// urlSource returns where the API URL comes from and, unless it comes from a
// stack, the URL itself. The order puts flags before environment variables:
// --api-url, --stack, $KEYGATE_API_URL, $KEYGATE_STACK, then DefaultAPIURL.
func (a *app) urlSource() (source, rawURL string) {
	switch {
	case a.opts.apiURL != "":
		return "--api-url", a.opts.apiURL
	case a.opts.stack != "":
		return "--stack", ""
	case a.env("KEYGATE_API_URL") != "":
		return "KEYGATE_API_URL", a.env("KEYGATE_API_URL")
	case a.env("KEYGATE_STACK") != "":
		return "KEYGATE_STACK", ""
	}
	return "default", DefaultAPIURL
}

func (a *app) stackName() string {
	if a.opts.stack != "" {
		return a.opts.stack
	}
	return a.env("KEYGATE_STACK")
}

// parseAPIURL checks an admin API base URL: http or https, a host, no query,
// fragment or credentials. Loopback hosts may use plain http (the local
// stack); any other must be https, because keys travel in responses.
func parseAPIURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("want an http(s) URL such as %s or https://ID.execute-api.REGION.amazonaws.com/prod", DefaultAPIURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the URL must not carry credentials, a query or a fragment")
	}
	if u.Scheme == "http" && !isLoopback(u) {
		return nil, fmt.Errorf("plain http is only for the local stack on loopback; use https for %s", u.Hostname())
	}
	return u, nil
}

// isLoopback reports whether u points at this machine, where the local
// gateway serves the admin API without signatures.
func isLoopback(u *url.URL) bool {
	h := u.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

var executeAPIHost = regexp.MustCompile(`^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

// regionOfURL returns the region in an API Gateway default endpoint
// (https://ID.execute-api.REGION.amazonaws.com/stage), or "" for any other
// host (a custom domain).
func regionOfURL(u *url.URL) string {
	if m := executeAPIHost.FindStringSubmatch(strings.ToLower(u.Hostname())); m != nil {
		return m[1]
	}
	return ""
}

// loadAWSConfig loads the AWS default configuration (environment, shared
// files, SSO, container and instance roles). Settings read through env win,
// so that the environment handed to Run is the one that counts.
//
// Credentials resolve in the AWS SDK's and CLI's order: a profile named on
// the command line (--profile) first, then keys in the environment
// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN),
// then a web identity token file, then the profile AWS_PROFILE names (or
// the default profile), and the container and instance roles last. So
// exported keys win over an AWS_PROFILE left in the shell, as they do for
// `aws`, and an explicit --profile wins over both.
func loadAWSConfig(ctx context.Context, env func(string) string, region, profile string) (aws.Config, error) {
	// The SDK's own log lines (IMDS fallbacks, retries) would only add noise
	// to the CLI's stderr; failures come back as errors and are explained.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if region == "" {
		region = firstOf(env("AWS_REGION"), env("AWS_DEFAULT_REGION"))
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	id, secret := env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
	switch {
	case profile != "": // --profile: named on the command line
		opts = append(opts, config.WithSharedConfigProfile(profile))
	case id != "" && secret != "":
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(id, secret, env("AWS_SESSION_TOKEN"))))
		// The profile still gives the region and other settings.
		if p := env("AWS_PROFILE"); p != "" {
			opts = append(opts, config.WithSharedConfigProfile(p))
		}
	case env("AWS_WEB_IDENTITY_TOKEN_FILE") != "":
		// The SDK reads the token file and role from the environment, and
		// prefers them to AWS_PROFILE's credentials, as its chain says.
	case env("AWS_PROFILE") != "":
		opts = append(opts, config.WithSharedConfigProfile(env("AWS_PROFILE")))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

const credentialsHint = "check your AWS credentials (aws sts get-caller-identity; AWS_PROFILE, --profile, aws sso login) and region (--region, AWS_REGION)"

// connect resolves the API URL (reading the stack's outputs if asked) and,
// for a non-loopback URL, loads AWS credentials to sign with. It is the
// first step of a command that may touch the network.
func (a *app) connect(ctx context.Context, signed bool) (*client, error) {
	src, raw := a.urlSource()
	var stackOutputs map[string]string
	var cfg *aws.Config
	loadCfg := func(region string) (*aws.Config, error) {
		if cfg != nil {
			return cfg, nil
		}
		c, err := a.deps.awsConfig(ctx, a.env, region, a.opts.profile)
		if err != nil {
			return nil, &exitError{code: ExitUnavailable, msg: "cannot load the AWS configuration: " + err.Error(), hint: credentialsHint}
		}
		cfg = &c
		return cfg, nil
	}
	if raw == "" { // from a stack
		c, err := loadCfg(a.opts.region)
		if err != nil {
			return nil, err
		}
		var outputs map[string]string
		if raw, outputs, err = a.stackURL(ctx, *c); err != nil {
			return nil, err
		}
		src, stackOutputs = "stack "+a.stackName(), outputs
	}
	u, err := parseAPIURL(raw)
	if err != nil {
		return nil, &exitError{code: ExitUnavailable, msg: fmt.Sprintf("%s: %v", src, err)}
	}
	cl := &client{base: u, app: a, source: src, outputs: stackOutputs}
	if !signed || isLoopback(u) {
		return cl, nil
	}
	region := firstOf(a.opts.region, regionOfURL(u))
	c, err := loadCfg(region)
	if err != nil {
		return nil, err
	}
	if region == "" {
		region = c.Region
	}
	if region == "" {
		return nil, usagef("no AWS region to sign requests for %s: pass --region or set AWS_REGION", u.Host)
	}
	if c.Credentials == nil {
		return nil, &exitError{code: ExitUnavailable, msg: "no AWS credentials found", hint: credentialsHint}
	}
	if _, err := c.Credentials.Retrieve(ctx); err != nil {
		return nil, &exitError{code: ExitUnavailable, msg: "no usable AWS credentials: " + err.Error(), hint: credentialsHint}
	}
	cl.signer = &sigv4{creds: c.Credentials, region: region, now: a.deps.now}
	return cl, nil
}

// stackURL reads the API URL from the CloudFormation stack's outputs, and
// returns every output by key too.
func (a *app) stackURL(ctx context.Context, cfg aws.Config) (string, map[string]string, error) {
	name := a.stackName()
	if cfg.Region == "" {
		return "", nil, usagef("no AWS region to find stack %q in: pass --region or set AWS_REGION", name)
	}
	cf := cloudformation.NewFromConfig(cfg, func(o *cloudformation.Options) {
		if ep := firstOf(a.env("AWS_ENDPOINT_URL_CLOUDFORMATION"), a.env("AWS_ENDPOINT_URL")); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
	out, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" {
			return "", nil, &exitError{code: ExitAPI,
				msg:  fmt.Sprintf("stack %q: %s", name, ae.ErrorMessage()),
				hint: fmt.Sprintf("check --stack and the region (%s): stacks are regional", cfg.Region)}
		}
		return "", nil, &exitError{code: ExitUnavailable, msg: fmt.Sprintf("cannot read stack %q: %v", name, err), hint: credentialsHint}
	}
	if len(out.Stacks) == 0 {
		return "", nil, &exitError{code: ExitAPI, msg: fmt.Sprintf("stack %q not found in %s", name, cfg.Region)}
	}
	var keys []string
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		k := aws.ToString(o.OutputKey)
		outputs[k] = aws.ToString(o.OutputValue)
		keys = append(keys, k)
	}
	if v, ok := outputs[a.opts.stackOutput]; ok {
		return v, outputs, nil
	}
	sort.Strings(keys)
	return "", nil, &exitError{code: ExitAPI,
		msg:  fmt.Sprintf("stack %q has no output %q (it has: %s)", name, a.opts.stackOutput, strings.Join(keys, ", ")),
		hint: "pass --stack-output with the output that holds the admin API URL, or --api-url"}
}
