// Package artefact checks what keygate ships rather than its source: the
// functions built as `make build` builds them, their deployment zip size,
// and their cold start under AWS's Lambda Runtime Interface Emulator (RIE).
//
// The RIE is the Go module github.com/aws/aws-lambda-runtime-interface-emulator,
// pinned in go.mod as a tool; it runs a bootstrap binary exactly as Lambda's
// provided.al2023 runtime does and reports "Init Duration" for the first
// invoke, which is what a cold start costs before the handler runs.
package artefact

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BuildFlags are the flags `make build` uses for every function; Build uses
// the same so that what is measured is what ships.
var BuildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="}

// Build compiles the Go package pkg (for example ./functions/authorizer) into
// dir/bootstrap, statically, and returns the binary's path. With goarch set
// (arm64, as shipped) it uses exactly BuildFlags. With goarch "" it builds
// for this machine, to run under the RIE, and leaves out -trimpath: that
// flag only rewrites source paths in the binary, and without it the build
// reuses the packages `go vet` and the CDK tests compile, which keeps
// `make test` within its time budget on a fresh machine.
func Build(ctx context.Context, root, pkg, goarch, dir string) (string, error) {
	out := filepath.Join(dir, "bootstrap")
	args := []string{"build"}
	for _, f := range BuildFlags {
		if goarch == "" && f == "-trimpath" {
			continue
		}
		args = append(args, f)
	}
	args = append(args, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	// keygate's own go.mod and go.sum, whatever a workspace or GOFLAGS
	// say: a build inside the module cache (keygate as a dependency of a
	// team's CDK app) must not try to change them.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=-mod=readonly")
	if goarch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+goarch)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// ZipSize returns the size of the deployment zip Lambda would receive for a
// bootstrap binary (deflate, as the CDK's asset packaging does).
func ZipSize(bootstrap string) (int64, error) {
	f, err := os.Open(bootstrap)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate})
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(w, f); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return int64(buf.Len()), nil
}

// BuildRIE compiles the pinned Runtime Interface Emulator into dir.
func BuildRIE(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "aws-lambda-rie")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Runtime Interface Emulator: %v\n%s", err, b)
	}
	return out, nil
}

var initRe = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)

// Result is what one cold start measured.
type Result struct {
	// FirstInvoke is the wall time of the first invoke, from the request to
	// the RIE until its response: process start, Go runtime and package
	// init, main's set-up and the handler. This is the cold start a caller
	// waits for, and the number keygate compares.
	FirstInvoke time.Duration
	// ReportedInit is the "Init Duration" the RIE prints. The RIE starts the
	// runtime asynchronously, so this covers only its own Init call and is
	// kept for reference, not compared.
	ReportedInit time.Duration
	// Response is the function's response to the invoke.
	Response []byte
}

// ColdStart runs bootstrap under the RIE with env and invokes it once with
// payload.
func ColdStart(ctx context.Context, rie, bootstrap string, env []string, payload []byte) (Result, error) {
	api, err := freeAddr()
	if err != nil {
		return Result{}, err
	}
	rieAddr, err := freeAddr()
	if err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, rie, "--runtime-api-address", api, "--runtime-interface-emulator-address", rieAddr, bootstrap)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_FUNCTION_TIMEOUT=10"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start the RIE: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	initCh := make(chan time.Duration, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := initRe.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				initCh <- time.Duration(v * float64(time.Millisecond))
			}
		}
	}()

	// Wait until the RIE listens, so that what is timed is the invoke alone.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", rieAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return Result{}, fmt.Errorf("the RIE did not listen: %w", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	url := "http://" + rieAddr + "/2015-03-31/functions/function/invocations"
	start := time.Now()
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		return Result{}, fmt.Errorf("invoke through the RIE: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := Result{FirstInvoke: time.Since(start), Response: body}
	select {
	case r.ReportedInit = <-initCh:
	case <-time.After(5 * time.Second):
		return r, fmt.Errorf("the RIE reported no init duration (response %s)", strings.TrimSpace(string(body)))
	}
	return r, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
