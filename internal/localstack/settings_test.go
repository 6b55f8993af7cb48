package localstack

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSettingsComeFromFlagsThenEnvironmentThenDefaults(t *testing.T) {
	var stderr bytes.Buffer
	s, err := ParseSettings(nil, envOf(nil), &stderr)
	if err != nil || s.Port != 3000 || s.DynamoDBPort != 8000 || s.ConsolePort != 4000 || s.DataDir != ".local" || s.Stage != "" || s.CDKJSON != "cdk.json" || s.Upstream != nil || s.Schedule != time.Minute {
		t.Errorf("defaults: %+v %v", s, err)
	}
	s, err = ParseSettings(nil, envOf(map[string]string{"PORT": "4100", "DYNAMODB_PORT": "9000", "CONSOLE_PORT": "4200"}), &stderr)
	if err != nil || s.Port != 4100 || s.DynamoDBPort != 9000 || s.ConsolePort != 4200 {
		t.Errorf("environment: %+v %v", s, err)
	}
	s, err = ParseSettings([]string{"-port", "5000", "-dynamodb-port=9100", "-upstream", "http://127.0.0.1:8080/base", "-stage", "dev", "-data", "/tmp/x"},
		envOf(map[string]string{"PORT": "4000", "DYNAMODB_PORT": "9000"}), &stderr)
	if err != nil || s.Port != 5000 || s.DynamoDBPort != 9100 || s.Upstream.String() != "http://127.0.0.1:8080/base" || s.Stage != "dev" || s.DataDir != "/tmp/x" {
		t.Errorf("flags over environment: %+v %v", s, err)
	}
}

func TestBadSettingsSayWhatToFix(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"PORT": "http"}, `PORT="http"`},
		{nil, map[string]string{"DYNAMODB_PORT": "70000"}, "DYNAMODB_PORT"},
		{[]string{"-port", "0"}, nil, "-port"},
		{[]string{"-port", "8000"}, nil, "cannot share port 8000"},
		{[]string{"-console-port", "3000"}, nil, "console cannot share port 3000"},
		{nil, map[string]string{"CONSOLE_PORT": "x"}, `CONSOLE_PORT="x"`},
		{[]string{"-upstream", "ftp://x"}, nil, "-upstream"},
		{[]string{"-upstream", "127.0.0.1:8080"}, nil, "-upstream"},
		{[]string{"-stage", ""}, nil, "-stage"},
		{[]string{"-schedule", "500ms"}, nil, "-schedule"},
		{[]string{"-schedule", "-1m"}, nil, "-schedule"},
		{[]string{"serve"}, nil, `unexpected argument "serve"`},
		{[]string{"-nope"}, nil, "-nope"},
	} {
		var stderr bytes.Buffer
		code := Run(context.Background(), c.args, &bytes.Buffer{}, &stderr, envOf(c.env))
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want exit 2 naming %s", c.args, c.env, code, stderr.String(), c.want)
		}
	}
	var stderr bytes.Buffer
	if code := Run(context.Background(), []string{"-h"}, &bytes.Buffer{}, &stderr, envOf(nil)); code != 0 || !strings.Contains(stderr.String(), "-dynamodb-port") {
		t.Errorf("-h: exit %d, %q", code, stderr.String())
	}
}

func TestSecretsAreCreatedOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	a, err := loadSecrets(dir)
	if err != nil || len(a.Pepper) != 64 || len(a.Seal) != 64 || a.Seal == a.Pepper {
		t.Fatalf("first run: %+v %v", a, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "secrets.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets.json: %v, mode %v; want 0600", err, fi.Mode())
	}
	b, err := loadSecrets(dir)
	if err != nil || b != a {
		t.Errorf("second run read %+v, %v; want the first run's secrets", b, err)
	}
	other, _ := loadSecrets(t.TempDir())
	if other == a {
		t.Error("two data folders got the same pepper")
	}
	// A file of an earlier version, with a pepper only, keeps its pepper
	// and gains a seal key.
	old := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(old, []byte(`{"pepper":"`+a.Pepper+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if up, err := loadSecrets(filepath.Dir(old)); err != nil || up.Pepper != a.Pepper || len(up.Seal) != 64 {
		t.Errorf("an earlier version's file: %+v %v", up, err)
	}
	if again, _ := loadSecrets(filepath.Dir(old)); again.Seal == "" {
		t.Error("the added seal key was not kept")
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSecrets(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged file: %v", err)
	}
}

func TestOnlyLoopbackHostNamesReachTheGateway(t *testing.T) {
	h := loopbackOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for host, want := range map[string]int{
		"127.0.0.1:3000": 204, "localhost:3000": 204, "[::1]:3000": 204, "127.0.0.1": 204,
		"evil.example:3000": 403, "10.0.0.1:3000": 403, "": 403,
	} {
		r := httptest.NewRequest("GET", "/v1/keys", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
}

// The README's quickstart is exactly `make dev`, then the commands it
// prints for the default port.
func TestReadmeQuickstartIsWhatMakeDevPrints(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "## Quickstart")
	end := strings.Index(readme[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("the README has no Quickstart section")
	}
	qs := readme[start : start+1+end]
	want := "```sh\nmake dev\n```\n"
	if !strings.Contains(qs, want) {
		t.Errorf("the quickstart does not start with %q", want)
	}
	cmds := "```sh\n" + TryCommands("http://127.0.0.1:3000", "/api", "kg") + "```\n"
	if !strings.Contains(qs, cmds) {
		t.Errorf("the quickstart does not show what make dev prints:\n%s", cmds)
	}
}
