package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for the keygate binary: with
// keygateAsCLI set it runs the command line, as cmd/keygate does. The
// completion scripts call `keygate`, and the shells run them for real.
func TestMain(m *testing.M) {
	if os.Getenv(keygateAsCLI) == "1" {
		os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
	}
	os.Exit(m.Run())
}

const keygateAsCLI = "KEYGATE_TEST_RUN_AS_CLI"

// keygateOnPath puts a `keygate` that is this test binary first on PATH.
func keygateOnPath(t *testing.T) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\n" + keygateAsCLI + "=1 exec '" + self + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "keygate"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir())
}

// shell runs script in one of the shells, with keygate on PATH; a shell
// that is not installed fails the test with how to install it.
func shell(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to test its completion script and is not installed: run `make deps` (apt-get install %s)", name, name)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// completionCases are lines typed so far, what must be offered for the
// last word, and what must not.
var completionCases = []struct {
	line      string
	want, not []string
}{
	{"keygate ", []string{"keys", "tokens", "console", "smoke", "completion"}, []string{"__complete"}},
	{"keygate keys ", []string{"create", "revoke", "audit", "usage"}, []string{"keys"}},
	{"keygate keys re", []string{"revoke"}, []string{"rotate", "create"}},
	{"keygate keys create --env", []string{"--environment"}, []string{"--name"}},
	{"keygate keys create --type ", []string{"secret", "publishable"}, nil},
	{"keygate --output json keys revoke key_x --y", []string{"--yes"}, nil},
	{"keygate completion ", []string{"bash", "fish", "zsh"}, nil},
	{"keygate tokens create --key-file ", nil, []string{"create"}},
}

// The candidates for every case, from the command the scripts call.
func TestCompleteOffersCommandsFlagsAndValues(t *testing.T) {
	for _, c := range completionCases {
		words := strings.Split(c.line, " ")[1:]
		res := runCLI(t, runOpts{}, append([]string{completeCommand}, words...)...)
		if res.code != ExitOK || res.stderr != "" {
			t.Fatalf("%q: %v", c.line, res)
		}
		checkOffers(t, "__complete", c.line, strings.Fields(res.stdout), c.want, c.not)
	}
}

func checkOffers(t *testing.T, sh, line string, got []string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: %q offers %v, want %s", sh, line, got, w)
		}
	}
	for _, n := range not {
		if slices.Contains(got, n) {
			t.Errorf("%s: %q offers %s", sh, line, n)
		}
	}
}

// Each shell's script, loaded as its header says, passes the words typed
// to keygate and offers what it answers: a subcommand, and a flag's value.
func TestCompletionScriptsCompleteInEachShell(t *testing.T) {
	env := keygateOnPath(t)
	cases := []int{2, 4} // of completionCases: "keygate keys re", "keygate keys create --type "
	check := func(sh, line string, got []string, want, not []string) {
		t.Helper()
		checkOffers(t, sh, line, got, want, not)
	}
	fields := func(out string) []string { return strings.Fields(out) }

	t.Run("bash", func(t *testing.T) {
		for _, i := range cases {
			c := completionCases[i]
			words := strings.Split(c.line, " ")
			script := `source <(keygate completion bash)
COMP_WORDS=(` + quoteAll(words) + `); COMP_CWORD=` + strconv.Itoa(len(words)-1) + `
_keygate; printf '%s\n' "${COMPREPLY[@]}"`
			check("bash", c.line, fields(shell(t, env, "bash", "-c", script)), c.want, c.not)
		}
		if out := shell(t, env, "bash", "-c", `source <(keygate completion bash); complete -p keygate`); !strings.Contains(out, "-F _keygate") {
			t.Errorf("bash: keygate has no completion function: %s", out)
		}
	})
	t.Run("zsh", func(t *testing.T) {
		for _, i := range cases {
			c := completionCases[i]
			words := strings.Split(c.line, " ")
			// compadd works only inside a completion widget: stand in for it
			// (and for compdef, which compinit would define) to see what the
			// function offers.
			script := `compdef() { :; }; compadd() { shift; print -l -- "$@"; }; _files() { :; }
source <(keygate completion zsh)
words=(` + quoteAll(words) + `); CURRENT=` + strconv.Itoa(len(words)) + `
_keygate`
			check("zsh", c.line, fields(shell(t, env, "zsh", "-f", "-c", script)), c.want, c.not)
		}
	})
	t.Run("fish", func(t *testing.T) {
		for _, i := range cases {
			c := completionCases[i]
			out := shell(t, env, "fish", "--no-config", "-c", `keygate completion fish | source; complete -C '`+c.line+`'`)
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				got = append(got, strings.SplitN(l, "\t", 2)[0])
			}
			check("fish", c.line, got, c.want, c.not)
		}
	})
}

func TestCompletionNamesTheShells(t *testing.T) {
	res := runCLI(t, runOpts{}, "completion", "powershell")
	if res.code != ExitUsage {
		t.Fatalf("want exit 2, got %v", res)
	}
	mustContain(t, "stderr", res.stderr, "bash, fish or zsh")
	for _, sh := range shells() {
		if res := runCLI(t, runOpts{}, "completion", sh); res.code != ExitOK || !strings.Contains(res.stdout, "keygate __complete") {
			t.Errorf("completion %s: %v", sh, res)
		}
	}
}

func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + w + "'"
	}
	return strings.Join(q, " ")
}
