package localstack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/cli"
	"github.com/keygate/keygate/internal/dynamolocal"
	"github.com/keygate/keygate/internal/logtest"
)

// devRun is one `make dev` run in process: Run with its own ports and data
// folder, stopped by cancelling its context as Ctrl-C does.
type devRun struct {
	local
	stdout *logtest.Buffer
	stop   context.CancelFunc
	done   chan struct{} // closed when Run has returned
	code   int
}

func startRun(t *testing.T, dataDir string, port, ddbPort int) *devRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &devRun{stdout: &logtest.Buffer{}, stop: cancel, done: make(chan struct{})}
	r.url = "http://127.0.0.1:" + strconv.Itoa(port)
	env := envOf(map[string]string{"PORT": strconv.Itoa(port), "DYNAMODB_PORT": strconv.Itoa(ddbPort), "CONSOLE_PORT": "0"})
	stderr := &logtest.Buffer{}
	go func() {
		r.code = Run(ctx, []string{"-data", dataDir}, r.stdout, stderr, env)
		close(r.done)
	}()
	// A test that fails half way still stops what it started.
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(r.url + "/v1/openapi.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r
			}
		}
		select {
		case <-r.done:
			t.Fatalf("make dev exited %d before serving:\n%s%s", r.code, r.stdout.String(), stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("make dev did not serve on %s:\n%s%s", r.url, r.stdout.String(), stderr.String())
		}
	}
}

// shutdown stops the run as Ctrl-C does and waits for Run to return.
func (r *devRun) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case <-r.done:
		if r.code != 0 {
			t.Errorf("make dev exited %d after Ctrl-C", r.code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("make dev did not stop within 60 s of Ctrl-C")
	}
}

func TestMakeDevKeepsKeysAcrossRunsAndStopsWhatItStarted(t *testing.T) {
	data := t.TempDir()
	port, err := dynamolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ddbPort, err := dynamolocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	first := startRun(t, data, port, ddbPort)
	wants := []string{
		"export KEYGATE_API_URL=" + first.url,
		"go run ./cmd/keygate keys create",
		"curl -s -w '\\n' " + first.url + "/api/hello -H \"x-api-key: $KEY\"",
	}
	// The gateway answers before make dev prints the banner: wait for it.
	waitFor(t, first.stdout, regexp.MustCompile("("+regexp.QuoteMeta(wants[len(wants)-1])+")"))
	banner := first.stdout.String()
	for _, want := range wants {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	// The console runs against the gateway: make dev prints its sign-in link.
	link := waitFor(t, first.stdout, consoleLink)
	jar, _ := cookiejar.New(nil)
	if resp, err := (&http.Client{Jar: jar}).Get(link); err != nil || resp.StatusCode != 200 {
		t.Errorf("the console's sign-in link %s: %v", link, err)
	} else {
		resp.Body.Close()
	}
	code, out, errOut := first.keygate(t, "keys", "create", "--name", "kept", "--owner", "dev")
	if code != cli.ExitOK {
		t.Fatalf("keys create: exit %d %s", code, errOut)
	}
	k := decodeJSON[issued](t, out)
	if status, _, body := first.call(t, "GET", "/api", "", "x-api-key", k.Key); status != 200 {
		t.Fatalf("first run, /api: %d %s", status, body)
	}
	if n := javaOn(ddbPort); n != 1 {
		t.Fatalf("%d DynamoDB Local processes on port %d while make dev runs, want 1", n, ddbPort)
	}
	first.shutdown(t)
	if !dynamolocal.PortFree(ddbPort) || !dynamolocal.PortFree(port) {
		t.Errorf("after Ctrl-C something still listens: DynamoDB Local port free %v, gateway port free %v", dynamolocal.PortFree(ddbPort), dynamolocal.PortFree(port))
	}
	if n := javaOn(ddbPort); n != 0 {
		t.Errorf("%d java processes for DynamoDB Local on port %d survived make dev", n, ddbPort)
	}
	if u, _ := url.Parse(link); !dynamolocal.PortFree(atoi(u.Port())) {
		t.Errorf("after Ctrl-C the console still listens on %s", u.Host)
	}

	// A second run over the same folder: the key is still there, and still
	// verifies (same pepper).
	second := startRun(t, data, port, ddbPort)
	code, out, errOut = second.keygate(t, "keys", "get", k.ID)
	if code != cli.ExitOK || decodeJSON[issued](t, out).Status != "active" {
		t.Fatalf("second run, keys get: exit %d %s %s", code, out, errOut)
	}
	if status, _, body := second.call(t, "GET", "/api", "", "x-api-key", k.Key); status != 200 {
		t.Errorf("second run, /api with the first run's key: %d %s", status, body)
	}
	if _, err := os.Stat(filepath.Join(data, "dynamodb", "shared-local-instance.db")); err != nil {
		t.Errorf("no database file under the data folder: %v", err)
	}
}

var consoleLink = regexp.MustCompile(`keygate console: admin API http://127\.0\.0\.1:[0-9]+ .*\n  open (http://127\.0\.0\.1:[0-9]+/login\?token=[A-Za-z0-9_-]+)`)

// waitFor waits up to 20 s for out to match re and returns its first group.
func waitFor(t *testing.T, out *logtest.Buffer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("make dev did not print %s:\n%s", re, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// javaOn counts live java processes whose command line names the port.
func javaOn(port int) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "DynamoDBLocal.jar") && strings.Contains(cmd, fmt.Sprintf(" -port %d ", port)) {
			n++
		}
	}
	return n
}

func TestMakeDevSaysWhenDynamoDBPortIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = dynamolocal.Start(context.Background(), dynamolocal.Options{Port: port, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "DYNAMODB_PORT") {
		t.Errorf("got %v, want an error that says to set DYNAMODB_PORT", err)
	}
}

// The make dev binary itself: SIGTERM stops it cleanly (exit 0, DynamoDB
// Local gone), and even SIGKILL, which no handler sees, leaves no java
// behind (the parent-death signal).
func TestMakeDevBinaryLeavesNoJavaBehind(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "keygate-dev")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/keygate-dev").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/keygate-dev: %v\n%s", err, out)
	}
	data := t.TempDir()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		port, _ := dynamolocal.FreePort()
		ddbPort, _ := dynamolocal.FreePort()
		cmd := exec.Command(bin, "-data", data, "-port", strconv.Itoa(port), "-dynamodb-port", strconv.Itoa(ddbPort), "-console-port", "0")
		out := &logtest.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		url := "http://127.0.0.1:" + strconv.Itoa(port) + "/v1/openapi.json"
		if err := dynamolocal.WaitReady(url, 90*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if n := javaOn(ddbPort); n != 1 {
			t.Fatalf("%d DynamoDB Local processes while make dev runs, want 1", n)
		}
		_ = cmd.Process.Signal(sig)
		err := <-done
		if sig == syscall.SIGTERM && err != nil {
			t.Errorf("after SIGTERM make dev exited with %v\n%s", err, out.String())
		}
		deadline := time.Now().Add(30 * time.Second)
		for javaOn(ddbPort) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("after %v to make dev, DynamoDB Local on port %d is still running", sig, ddbPort)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
