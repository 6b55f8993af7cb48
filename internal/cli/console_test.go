package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/logtest"
)

var consoleLink = regexp.MustCompile(`open (http://127\.0\.0\.1:[0-9]+/login\?token=[A-Za-z0-9_-]+)`)

// startConsole runs `keygate console` (on a free port, without opening a
// browser unless args say otherwise) until the test ends and returns its
// sign-in link and output.
func startConsole(t *testing.T, o runOpts, args ...string) (string, *logtest.Buffer) {
	t.Helper()
	out := &logtest.Buffer{}
	d := defaultDeps()
	d.transport = o.transport
	d.now = func() time.Time { return testNow }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		if len(args) == 0 {
			args = []string{"--no-browser"}
		}
		done <- run(ctx, append([]string{"console", "--port", "0"}, args...), out, out, func(k string) string { return o.env[k] }, d)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("the console exited %d when stopped:\n%s", code, out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := consoleLink.FindStringSubmatch(out.String()); m != nil {
			return m[1], out
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("the console exited %d:\n%s", code, out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console printed no sign-in link:\n%s", out.String())
		}
	}
}

func TestConsoleSignsItsAPICallsAsEveryCommandDoes(t *testing.T) {
	api, tr := newDeployedAPI(t, func(n int, r seen) reply {
		return reply{status: 200, body: `{"keys":[` + keyBody(t, testID, "", nil) + `]}`}
	})
	link, out := startConsole(t, runOpts{transport: tr, env: awsEnv(t, map[string]string{"KEYGATE_API_URL": deployedURL})})
	if !strings.Contains(out.String(), deployedURL+" (KEYGATE_API_URL, SigV4 for eu-west-1)") {
		t.Errorf("the console does not say which API it manages and how it signs:\n%s", out.String())
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(link)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %v %v", resp, err)
	}
	resp.Body.Close()
	base := link[:strings.Index(link, "/login")]
	resp, err = browser.Get(base + "/owners?owner=acme")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), testID) {
		t.Fatalf("the owners page: %d\n%s", resp.StatusCode, page)
	}
	reqs := api.requests()
	if len(reqs) == 0 {
		t.Fatal("the console made no API call")
	}
	for _, r := range reqs {
		if r.Host != "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com" || !strings.HasPrefix(r.Path, "/prod/v1/keys") {
			t.Errorf("the console called %s%s", r.Host, r.Path)
		}
		verifySigV4(t, r, "eu-west-1")
		if r.Header.Get("Cookie") != "" {
			t.Error("the browser's cookie reached the admin API")
		}
	}
}

func TestConsoleUsageErrorsAreCaughtBeforeListening(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"console", "--port", "70000"}, "--port: from 0 to 65535"},
		{[]string{"console", "owners"}, "console takes no arguments"},
		{[]string{"console", "--api-url", "http://api.example.com"}, "plain http is only for the local stack"},
	} {
		if res := runCLI(t, runOpts{}, c.args...); res.code != ExitUsage || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%v: %v, want exit 2 saying %q", c.args, res, c.want)
		}
	}
	res := runCLI(t, runOpts{}, "console", "-h")
	if res.code != ExitOK || !strings.Contains(res.stdout, "--no-browser") || !strings.Contains(res.stdout, "--port") {
		t.Errorf("console -h: %v", res)
	}
	if res := runCLI(t, runOpts{}, "help"); !strings.Contains(res.stdout, "console [--port 4000] [--no-browser]") {
		t.Errorf("help does not list the console:\n%s", res.stdout)
	}
}

func TestConsoleSaysWhenItsPortIsTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	res := runCLI(t, runOpts{}, "console", "--port", port, "--no-browser")
	if res.code != ExitUnavailable || !strings.Contains(res.stderr, "cannot listen on 127.0.0.1:"+port) || !strings.Contains(res.stderr, "--port") {
		t.Errorf("a taken port: %v", res)
	}
}

// On a Linux desktop the console opens its link with xdg-open; without a
// display it does not try (a terminal browser would take the terminal), and
// without xdg-open it carries on.
func TestConsoleOpensTheLinkWhenThereIsADesktop(t *testing.T) {
	dir := t.TempDir()
	opened := filepath.Join(dir, "opened")
	script := "#!/bin/sh\necho \"$1\" >> " + opened + "\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	link, _ := startConsole(t, runOpts{env: map[string]string{"DISPLAY": ":0"}}, "--api-url", DefaultAPIURL)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(opened)
		if strings.TrimSpace(string(b)) == link {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("xdg-open got %q, want the sign-in link %s", b, link)
		}
		time.Sleep(10 * time.Millisecond)
	}
	startConsole(t, runOpts{env: map[string]string{}}, "--api-url", DefaultAPIURL)
	t.Setenv("PATH", t.TempDir()) // no xdg-open at all
	startConsole(t, runOpts{env: map[string]string{"DISPLAY": ":0"}}, "--api-url", DefaultAPIURL)
	time.Sleep(100 * time.Millisecond)
	if b, _ := os.ReadFile(opened); strings.Count(string(b), "\n") != 1 {
		t.Errorf("xdg-open ran %d times, want once (only with a display):\n%s", strings.Count(string(b), "\n"), b)
	}
}
