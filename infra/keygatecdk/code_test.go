package keygatecdk

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keygate/keygate/internal/config"
)

// repoRoot is this checkout's root, from the package's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// functionFolders are the folders under functions/: one Lambda function
// each.
func functionFolders(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot(t), "functions"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no folders under functions/")
	}
	return names
}

// The function table, which the construct builds and deploys, is exactly
// the folders under functions/ (and the functions the settings registry
// knows): a new function cannot be left out of the stack.
func TestEveryFunctionFolderIsInTheTable(t *testing.T) {
	var table []string
	for _, f := range Functions {
		table = append(table, f.Name)
	}
	slices.Sort(table)
	registry := config.Functions()
	slices.Sort(registry)
	folders := functionFolders(t)
	if !slices.Equal(table, folders) || !slices.Equal(registry, folders) {
		t.Errorf("functions/ holds %v; the function table has %v and the settings registry %v", folders, table, registry)
	}
}

// lambdaBinary fails the test unless path is what Lambda's provided.al2023
// runtime on arm64 runs: an executable, static ELF binary for aarch64.
func lambdaBinary(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode()&0o111 == 0 {
		t.Errorf("%s is not executable (%v)", path, info.Mode())
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
		t.Errorf("%s: %v %v, want an aarch64 executable", path, f.Machine, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", path)
		}
	}
}

// Outside any test app, the construct finds keygate's module with go
// list -m (here the main module: this checkout) and its bundling step
// builds a function into bootstrap for Lambda.
func TestGoCodeBuildsBootstrapForLambda(t *testing.T) {
	code, err := NewGoCode("")
	if err != nil {
		t.Fatal(err)
	}
	if code.Module != repoRoot(t) {
		t.Errorf("keygate's module found at %s, want %s", code.Module, repoRoot(t))
	}
	out := t.TempDir()
	if ok := (&goBuild{module: code.Module, pkg: "./functions/authorizer"}).TryBundle(&out, nil); ok == nil || !*ok {
		t.Fatal("the local bundling step declined, which would fall back to Docker")
	}
	lambdaBinary(t, filepath.Join(out, "bootstrap"))
}

// Without a Go toolchain the synth fails saying how to install one.
func TestGoCodeWithoutGoSaysHowToInstallIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "install Go (https://go.dev/dl/") {
			t.Errorf("without go on PATH: %v, want a message saying how to install Go", r)
		}
	}()
	out := t.TempDir()
	(&goBuild{module: repoRoot(t), pkg: "./functions/authorizer"}).TryBundle(&out, nil)
}

// A source directory that is not a Go module is refused when the
// construct is created, not when cdk deploys.
func TestGoCodeRefusesADirectoryWithoutGoMod(t *testing.T) {
	if _, err := NewGoCode(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no go.mod") {
		t.Errorf("NewGoCode of an empty directory: %v", err)
	}
}
