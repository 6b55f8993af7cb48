package keygatecdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"

	"github.com/keygate/keygate/internal/artefact"
)

// GoCode is the code of keygate's functions, built from their Go source
// during synth with the Go toolchain of the machine that runs cdk, so a
// team's app needs neither this repository's Makefile nor prebuilt
// binaries. Each function is a CDK asset bundled locally (a
// BundlingOptions.Local step): `go build` of functions/<name> in keygate's
// own module, with keygate's go.mod and go.sum (the versions keygate was
// tested with, whatever the team's module selects), exactly as `make build`
// builds it (artefact.Build: linux/arm64, static, lambda.norpc, -trimpath,
// no build id). The build is reproducible, and the asset's hash is that of
// the binary (AssetHashType OUTPUT), so a synth that changes nothing in a
// function changes nothing in the template, and a change anywhere in what
// it links changes its hash. Go's build cache makes a synth after the
// first one quick.
type GoCode struct {
	// Module is the directory of keygate's Go module (its go.mod).
	Module string
}

// modulePath is keygate's module path, from this package's import path.
var modulePath = strings.TrimSuffix(reflect.TypeOf(GoCode{}).PkgPath(), "/infra/keygatecdk")

// NewGoCode returns the code built from the keygate module in dir, or,
// with dir "", from the copy of keygate the app's module uses (see
// moduleDir).
func NewGoCode(dir string) (*GoCode, error) {
	if dir == "" {
		var err error
		if dir, err = moduleDir(); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
		return nil, fmt.Errorf("keygate's source: %s holds no go.mod", abs)
	}
	return &GoCode{Module: abs}, nil
}

// For is the code of the function name, from functions/<name>. The folder
// is the asset's nominal source: the bundling step builds the package, and
// nothing is copied from it.
func (g *GoCode) For(name string) awslambda.Code {
	dir := filepath.Join(g.Module, "functions", name)
	if _, err := os.Stat(dir); err != nil {
		panic(fmt.Sprintf("keygatecdk: function %s: keygate's module at %s has no functions/%s", name, g.Module, name))
	}
	return awslambda.Code_FromAsset(str(dir), &awss3assets.AssetOptions{
		AssetHashType: awscdk.AssetHashType_OUTPUT,
		Bundling: &awscdk.BundlingOptions{
			Local: &goBuild{module: g.Module, pkg: "./functions/" + name},
			// CDK requires an image for the Docker bundling it falls back
			// to when the local step declines; goBuild never declines (it
			// builds or fails the synth saying what is missing), so this
			// image is never pulled.
			Image: awscdk.DockerImage_FromRegistry(str("public.ecr.aws/docker/library/golang:1.26")),
		},
	})
}

// goBuild is the local bundling step of one function.
type goBuild struct{ module, pkg string }

// TryBundle builds the function into outputDir/bootstrap. A failure
// panics, which fails the synth with the message (the jsii runtime hands
// it to CDK as an error).
func (b *goBuild) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	if _, err := goTool(); err != nil {
		panic("keygatecdk: " + err.Error())
	}
	if _, err := artefact.Build(context.Background(), b.module, b.pkg, "arm64", *outputDir); err != nil {
		panic(fmt.Errorf("keygatecdk: building the function %s for Lambda: %v", b.pkg, err))
	}
	return jsii.Bool(true)
}

// goTool finds the go command, or says how to install it.
func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("keygate builds its Lambda functions from source with the Go toolchain during synth, " +
			"and go is not on PATH: install Go (https://go.dev/dl/; keygate's go.mod names the version)")
	}
	return p, nil
}

// moduleDir is where the app's module finds keygate: `go list -m` run in
// the directory cdk runs the app in (the app's module) gives the module
// cache's copy after `go get`, the directory of a replace directive, or
// this checkout when keygate is the main module. Asked once per process.
var moduleDir = sync.OnceValues(func() (string, error) {
	gobin, err := goTool()
	if err != nil {
		return "", err
	}
	run := func(args ...string) ([]byte, error) {
		var stderr bytes.Buffer
		cmd := exec.Command(gobin, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("finding keygate's source (go %s): %v: %s\n"+
				"Run cdk in a Go module that requires %s (go get %s), or set KeygateProps.Source to keygate's module directory",
				strings.Join(args, " "), err, strings.TrimSpace(stderr.String()), modulePath, modulePath)
		}
		return out, nil
	}
	out, err := run("list", "-m", "-json", modulePath)
	if err != nil {
		return "", err
	}
	var m struct {
		Version, Dir string
		Replace      *struct{ Dir string }
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go list -m %s: %v", modulePath, err)
	}
	if m.Replace != nil && m.Replace.Dir != "" {
		return m.Replace.Dir, nil
	}
	if m.Dir != "" {
		return m.Dir, nil
	}
	// Listed but not in the module cache (a vendored build, say): fetch it.
	if out, err = run("mod", "download", "-json", modulePath+"@"+m.Version); err != nil {
		return "", err
	}
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s gave no directory", modulePath, m.Version)
	}
	return m.Dir, nil
})
