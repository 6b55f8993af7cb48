package cli

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/apicall"
	"github.com/keygate/keygate/internal/apikey"
	"github.com/keygate/keygate/internal/gateway"
	"github.com/keygate/keygate/internal/key"
	"github.com/keygate/keygate/internal/smoke"
)

// ProxyPathOutput is the stack output that says where the protected proxy
// is mounted (the keygate:proxyBasePath setting), which smoke reads when
// it is given --stack.
const ProxyPathOutput = "ProxyPath"

// smoke runs the smoke test (internal/smoke) against the deployment the
// common flags point at: the admin API through this client, as every
// command calls it (signed for a stack), and the protected proxy and
// token route unsigned, each request sent once.
func (a *app) smoke(ctx context.Context, args []string) error {
	c := a.command("smoke", "smoke [--proxy-path /api] [--scope S] [--environment test] [--wait 1m]")
	fs := c.fs
	proxyPath := fs.String("proxy-path", "", "where the protected proxy is mounted (default: the stack's "+ProxyPathOutput+" output, else /"+gateway.DefaultProxyBase+")")
	envir := newEnum(string(key.Test), string(key.Live), string(key.Test))
	fs.Var(envir, "environment", "the environment of the keys it issues: test, or live for a deployment that takes only live keys")
	var scopes listFlag
	fs.Var(&scopes, "scope", "a scope the proxy's route needs (keygate:routes); repeat or comma-separate")
	owner := fs.String("owner", smoke.DefaultOwner, "the owner of the keys it issues (all revoked when it ends)")
	wait := fs.Duration("wait", smoke.DefaultWait, "how long a revocation may take to bite (the authorizer's key cache TTL, plus API Gateway's cache if on)")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if err := key.ValidateScopes(scopes); err != nil {
		return invalid(err)
	}
	if err := key.ValidateOwner(*owner); err != nil {
		return invalid(err)
	}
	if *wait <= 0 || *wait > time.Hour {
		return usagef("--wait: from 1s to 1h")
	}
	if p := strings.Trim(*proxyPath, "/"); isSet(fs, "proxy-path") && (p == "" || strings.ContainsAny(p, "?#") || url.PathEscape(p) != strings.ReplaceAll(url.PathEscape(p), "%2F", "/")) {
		return usagef("--proxy-path: a path such as /api")
	}
	cl, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	edge := *cl
	edge.signer = nil // behind the keygate authorizer: the key is the credential
	path := *proxyPath
	if path == "" {
		path = firstOf(cl.outputs[ProxyPathOutput], gateway.DefaultProxyBase)
	}
	target := cl.base.String() + " (" + cl.source + ")"
	fmt.Fprintf(a.stdout, "keygate smoke test of %s, proxy /%s\n", target, strings.Trim(path, "/"))
	res := smoke.Run(ctx, smoke.Options{
		Admin:       apicall.ClientFunc(cl.call(false)),
		Edge:        apicall.ClientFunc(edge.call(true)),
		ProxyPath:   path,
		Environment: key.Environment(envir.value),
		Scopes:      scopes,
		Owner:       *owner,
		Wait:        *wait,
		Out:         redactWriter{a.stdout},
		Sleep:       a.deps.sleep,
		Now:         a.deps.now,
	})
	if !res.OK() {
		return &exitError{code: ExitAPI, msg: fmt.Sprintf("the smoke test failed: %d of %d checks", res.Failed, res.Passed+res.Failed)}
	}
	return nil
}

// redactWriter removes anything shaped like a keygate key from what it
// writes: the smoke test never prints a key, and this holds even if an
// answer it quotes echoed one.
type redactWriter struct{ w io.Writer }

func (r redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, apikey.Redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
