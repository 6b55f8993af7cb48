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
// It runs DynamoDB Local through internal/dynamolocal, as the local stack
// does. When java or the jar is missing, the test fails with the command
// that installs it; it never skips.
package dynamotest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keygate/keygate/internal/dynamolocal"
	"github.com/keygate/keygate/internal/store"
)

var (
	once     sync.Once
	endpoint string
	startErr error
	proc     *dynamolocal.Process
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
	if proc != nil {
		_ = proc.Stop(0)
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

func start() (string, error) {
	var log io.Writer
	if testing.Verbose() {
		log = os.Stderr
	}
	p, err := dynamolocal.Start(context.Background(), dynamolocal.Options{Log: log})
	if err != nil {
		return "", err
	}
	proc = p
	return p.URL, nil
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
