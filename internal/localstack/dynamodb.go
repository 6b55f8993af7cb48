package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/keygate/keygate/internal/dynamotest"
)

// DynamoDB is a DynamoDB Local process that persists to a folder.
type DynamoDB struct {
	// URL is its endpoint, http://127.0.0.1:PORT.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartDynamoDB starts DynamoDB Local on port with its files under dir,
// the same way the tests run it (dynamotest.Command: the pinned jar,
// telemetry off, and the parent-death signal, so it cannot outlive this
// process), plus: CORS limited to the gateway's origin (a web page cannot
// call it), and a process group of its own, so that Ctrl-C in
// the terminal reaches only make dev, which stops the gateway first and
// then DynamoDB Local. It returns when DynamoDB Local answers.
func StartDynamoDB(ctx context.Context, port int, dir string, gatewayPort int, log io.Writer) (*DynamoDB, error) {
	if !portFree(port) {
		return nil, fmt.Errorf("port %d is in use (another make dev or DynamoDB Local?): stop it or set DYNAMODB_PORT to a free port", port)
	}
	cmd, err := dynamotest.Command(port, dir)
	if err != nil {
		return nil, err
	}
	cmd.Args = append(cmd.Args, "-cors", "http://127.0.0.1:"+strconv.Itoa(gatewayPort))
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DynamoDB Local (java): %w", err)
	}
	d := &DynamoDB{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	ready := make(chan error, 1)
	go func() { ready <- dynamotest.WaitReady(d.URL, 60*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			_ = d.Stop(5 * time.Second)
			return nil, err
		}
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("DynamoDB Local exited at startup (%v); see its log", d.err)
	case <-ctx.Done():
		_ = d.Stop(5 * time.Second)
		return nil, ctx.Err()
	}
}

// Stop asks DynamoDB Local to shut down (SIGTERM: the JVM closes its
// database files) and waits up to grace for it, then kills it.
func (d *DynamoDB) Stop(grace time.Duration) error {
	select {
	case <-d.done:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.done
		return errors.New("DynamoDB Local did not stop within " + grace.String() + " and was killed")
	}
}

// Exited is closed when the process has ended.
func (d *DynamoDB) Exited() <-chan struct{} { return d.done }
