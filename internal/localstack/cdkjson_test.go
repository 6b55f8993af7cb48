package localstack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/config"
)

// The repository's own cdk.json is what make dev runs with by default:
// the proxy where the stack mounts it and the stack's stage.
func TestMakeDevReadsTheRepositorysCDKJSON(t *testing.T) {
	ctx, err := config.ReadCDKJSON("../../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := deployment(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.proxyBase != "api" || d.stage != "prod" {
		t.Errorf("proxy /%s, stage %s; want /api and prod, as deployed", d.proxyBase, d.stage)
	}
}

// A deployment's cdk.json settings take effect locally as they do in the
// stack: the proxy's path, the stage, the route table and a function's
// keygate:functionEnv variable; a variable in the environment wins.
func TestTheLocalStackRunsWithCDKJSONsSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdk.json")
	if err := os.WriteFile(path, []byte(`{"app": "go run ./infra", "context": {
		"keygate:proxyBasePath": "shop", "keygate:stageName": "v9",
		"keygate:routes": [{"method": "GET", "path": "/shop/orders", "scopes": ["orders:read"]}],
		"keygate:functionEnv": {"authorizer": {"KEYGATE_KEY_QUERY_PARAM": "api_key"}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, err := config.ReadCDKJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	l := startLocalOpts(t, nil, func(o *Options) { o.Context = ctx })
	if l.stack.ProxyPath != "/shop" || l.stack.Stage != "v9" {
		t.Fatalf("proxy %s, stage %s", l.stack.ProxyPath, l.stack.Stage)
	}
	issue := func(body string) issued {
		t.Helper()
		status, _, b := l.call(t, "POST", "/v1/keys", body)
		if status != 201 {
			t.Fatalf("issue: %d %s", status, b)
		}
		return decodeJSON[issued](t, b)
	}
	reader := issue(`{"name":"r","ownerId":"o","environment":"test","scopes":["orders:read"],"stages":["v9"]}`)
	other := issue(`{"name":"n","ownerId":"o","environment":"test"}`)
	elsewhere := issue(`{"name":"p","ownerId":"o","environment":"test","scopes":["orders:read"],"stages":["prod"]}`)
	for _, c := range []struct {
		name, path, key string
		status          int
		code            string
	}{
		{"a key with the route's scope, on its stage", "/shop/orders", reader.Key, 200, ""},
		{"the key in the functionEnv query parameter", "/shop/orders?api_key=" + reader.Key, "", 200, ""},
		{"a key without the scope", "/shop/orders", other.Key, 403, "insufficient_scope"},
		{"a key for another stage", "/shop/orders", elsewhere.Key, 403, "wrong_environment"},
		{"the default proxy path is not served", "/api/orders", reader.Key, 403, ""},
	} {
		var hdr []string
		if c.key != "" {
			hdr = []string{"x-api-key", c.key}
		}
		status, _, body := l.call(t, "GET", c.path, "", hdr...)
		if status != c.status || (c.code != "" && decodeJSON[denial](t, body).Code != c.code) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.code)
		}
	}

	// A variable in the environment wins over cdk.json's value.
	open := startLocalOpts(t, map[string]string{"KEYGATE_ROUTES": `[{"method":"GET","path":"/shop/orders"}]`},
		func(o *Options) { o.Context = ctx })
	status, _, b := open.call(t, "POST", "/v1/keys", `{"name":"n","ownerId":"o","environment":"test"}`)
	if status != 201 {
		t.Fatalf("issue: %d %s", status, b)
	}
	if status, _, body := open.call(t, "GET", "/shop/orders", "", "x-api-key", decodeJSON[issued](t, b).Key); status != 200 {
		t.Errorf("with KEYGATE_ROUTES in the environment: %d %s, want 200", status, body)
	}
}

// A cdk.json the stack would refuse stops make dev with the key at fault.
func TestABadCDKJSONIsRefusedNamingTheKey(t *testing.T) {
	for body, want := range map[string]string{
		`{"context": {"keygate:proxyBasePath": "v1"}}`: "keygate:proxyBasePath",
		`{"context": {"keygate:proxyBase": "x"}}`:      "keygate:proxyBase: unknown setting",
		`{"context": {"keygate:keyCacheTtl": "5"}}`:    "keygate:keyCacheTtl",
		`{"context": `: "not valid JSON",
	} {
		path := filepath.Join(t.TempDir(), "cdk.json")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, err := config.ReadCDKJSON(path)
		if err == nil {
			_, err = deployment(ctx)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", body, err, want)
		}
	}
}
