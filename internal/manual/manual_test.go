package manual

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/keygate/keygate/internal/cli"
)

// root is the repository root, seen from this package's folder.
const root = "../.."

// TestMarkdownLinksAndCommands checks every Markdown file at the root and in
// docs/.
func TestMarkdownLinksAndCommands(t *testing.T) {
	files := markdownFiles(t, root)
	if !slices.Contains(files, filepath.Join(root, "README.md")) || !slices.ContainsFunc(files, func(f string) bool {
		return strings.HasPrefix(f, filepath.Join(root, "docs")+string(filepath.Separator))
	}) {
		t.Fatalf("want README.md and docs/*.md, found %v", files)
	}
	c := newChecker(t, root)
	var links, makes, commands int
	for _, f := range files {
		for _, p := range c.check(f) {
			t.Error(p)
		}
		d := c.doc(f)
		links += len(d.links)
		makes += len(makeCommands(d.code))
		commands += len(keygateCommands(d.code))
	}
	// The counts keep the test honest: if parsing broke and found
	// nothing, every check above would pass vacuously.
	if links < 50 || makes < 10 || commands < 10 {
		t.Errorf("found only %d links, %d make commands and %d keygate commands: is the parser broken?", links, makes, commands)
	}
}

// TestCheckerFindsEveryKindOfMistake runs the checker on a small made-up
// repository with one mistake of each kind, next to correct uses of each,
// and wants exactly the mistakes reported.
func TestCheckerFindsEveryKindOfMistake(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Makefile", "test: deps\n\tgo test ./...\n\ndeps:\n\tnpm ci\nFOO := x\n.PHONY: test deps\n")
	write("docs/topic.md", "# Topic\n\n## Caches, and how long a change takes to bite\n\n## Repeated\n\n## Repeated\n\n## `make dev`: the local stack\n")
	write("README.md", strings.Join([]string{
		"# Title",
		"",
		"[ok](docs/topic.md) [ok](docs/topic.md#caches-and-how-long-a-change-takes-to-bite)",
		"[ok](docs/topic.md#repeated-1) [ok](docs/topic.md#make-dev-the-local-stack) [ok](#title) [ok](https://example.com/x#y)",
		"[bad file](docs/missing.md) [bad anchor](docs/topic.md#caches) [bad local anchor](#nope)",
		"[bad dup](docs/topic.md#repeated-2) [outside](../elsewhere.md)",
		"",
		"[ref]: docs/gone.md",
		"",
		"Run `make test`, then `make tset` and `keygate keys create --name x`, `keygate keys creat`.",
		"",
		"```sh",
		"make deps && make FOO",
		"go run ./cmd/keygate keys get key_123",
		"keygate tokens create --ttl 15m",
		"keygate frobnicate",
		"keygate help",
		"```",
		"",
		"Links in code are not links: `[x](nowhere.md)`, not even in a span `that",
		"goes on [x](nowhere.md)` on the next line.",
		"",
	}, "\n"))
	c := newChecker(t, dir)
	got := c.check(filepath.Join(dir, "README.md"))
	want := []string{
		"docs/missing.md",
		"docs/topic.md#caches",
		"#nope",
		"docs/topic.md#repeated-2",
		"../elsewhere.md",
		"docs/gone.md",
		"make tset",
		"make FOO",
		"keygate keys creat",
		"keygate frobnicate",
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, "\""+w+"\"") }) {
			t.Errorf("the checker missed %q; it reported:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("the checker reported %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

func TestSlugsFollowGitHub(t *testing.T) {
	for heading, want := range map[string]string{
		"Caches, and how long a change takes to bite": "caches-and-how-long-a-change-takes-to-bite",
		"`make dev`: the local stack":                 "make-dev-the-local-stack",
		"What a client sees":                          "what-a-client-sees",
		"If-Match":                                    "if-match",
		"Access tokens (JWT) & JWKS":                  "access-tokens-jwt--jwks",
		"snake_case stays":                            "snake_case-stays",
		"[Linked](x.md) heading":                      "linked-heading",
		"Grüße 2026":                                  "grüße-2026",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func markdownFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.md", "docs/*.md"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// checker checks Markdown files of the repository at root.
type checker struct {
	t       *testing.T
	root    string
	targets map[string]bool // the Makefile's targets
	docs    map[string]*doc // parsed files by path
	known   map[string]bool // keygate commands already asked about
}

func newChecker(t *testing.T, root string) *checker {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	return &checker{t: t, root: root, targets: makeTargets(string(mk)), docs: map[string]*doc{}, known: map[string]bool{}}
}

// check returns one line per problem of the Markdown file at path.
func (c *checker) check(path string) []string {
	d := c.doc(path)
	rel, _ := filepath.Rel(c.root, path)
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, rel+": "+fmt.Sprintf(format, args...))
	}
	for _, link := range d.links {
		if why := c.resolve(path, link); why != "" {
			report("link %q: %s", link, why)
		}
	}
	for _, target := range makeCommands(d.code) {
		if !c.targets[target] {
			report("%q: the Makefile has no target %s", "make "+target, target)
		}
	}
	for _, cmd := range keygateCommands(d.code) {
		if !c.commandExists(cmd) {
			report("%q: the CLI has no such command (keygate %s -h fails)", "keygate "+cmd, cmd)
		}
	}
	return problems
}

func (c *checker) doc(path string) *doc {
	if d, ok := c.docs[path]; ok {
		return d
	}
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	d := parse(string(b))
	c.docs[path] = d
	return d
}

// resolve returns why a link from the file at from does not resolve, or "".
func (c *checker) resolve(from, link string) string {
	if u, err := url.Parse(link); err == nil && u.Scheme != "" {
		return "" // an absolute URL: not ours to check offline
	}
	target, anchor, _ := strings.Cut(link, "#")
	target, err := url.PathUnescape(target)
	if err != nil {
		return "not a valid URL path"
	}
	path := from
	if target != "" {
		path = filepath.Join(filepath.Dir(from), filepath.FromSlash(target))
		rel, err := filepath.Rel(c.root, path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "points outside the repository"
		}
		if _, err := os.Stat(path); err != nil {
			return "no such file"
		}
	}
	if anchor == "" {
		return ""
	}
	if !strings.HasSuffix(path, ".md") {
		return "an anchor into a file that is not Markdown"
	}
	if !c.doc(path).anchors[anchor] {
		return "no heading with this anchor in " + filepath.Base(path)
	}
	return ""
}

// commandExists asks the CLI for the help of cmd ("keys create", "help",
// "completion bash"): a command that exists answers -h with exit 0, and a
// subcommand's help names it (a command's help names the command and its
// arguments, such as "completion bash|zsh|fish").
func (c *checker) commandExists(cmd string) bool {
	if ok, seen := c.known[cmd]; seen {
		return ok
	}
	var stdout, stderr bytes.Buffer
	args := append(strings.Fields(cmd), "-h")
	code := cli.Run(context.Background(), args, &stdout, &stderr, func(string) string { return "" })
	ok := code == cli.ExitOK
	if first, arg, two := strings.Cut(cmd, " "); ok && two {
		line, _, _ := strings.Cut(strings.TrimPrefix(stdout.String(), "Usage: keygate "+first+" "), "\n")
		args := strings.Fields(line)
		ok = strings.HasPrefix(stdout.String(), "Usage: keygate "+cmd) ||
			(strings.HasPrefix(stdout.String(), "Usage: keygate "+first+" ") && len(args) > 0 && slices.Contains(strings.Split(args[0], "|"), arg))
	}
	c.known[cmd] = ok
	return ok
}

// doc is what the checks need of one Markdown file.
type doc struct {
	links   []string        // link targets outside code
	code    []string        // code blocks and inline code spans
	anchors map[string]bool // the anchors of its headings
}

var (
	fenceRe   = regexp.MustCompile("^ {0,3}(```+|~~~+)")
	headingRe = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$`)
	linkRe    = regexp.MustCompile(`!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDefRe  = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	codeRunRe = regexp.MustCompile("`+")
)

// parse reads a Markdown file: fenced code blocks, inline code, links and
// headings. It knows as much CommonMark as keygate's files use.
func parse(text string) *doc {
	d := &doc{anchors: map[string]bool{}}
	seen := map[string]int{}
	var block, para []string
	fence := ""
	// A paragraph is read as a whole, because an inline code span may
	// continue on the next line.
	flush := func() {
		prose, spans := splitCode(strings.Join(para, "\n"))
		para = nil
		d.code = append(d.code, spans...)
		for _, m := range linkRe.FindAllStringSubmatch(prose, -1) {
			d.links = append(d.links, m[2])
		}
		for _, line := range strings.Split(prose, "\n") {
			if m := refDefRe.FindStringSubmatch(line); m != nil {
				d.links = append(d.links, m[1])
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if fence != "" {
			if m := fenceRe.FindStringSubmatch(line); m != nil && m[1][0] == fence[0] && len(m[1]) >= len(fence) && strings.TrimSpace(line[len(m[0]):]) == "" {
				d.code = append(d.code, strings.Join(block, "\n"))
				fence, block = "", nil
				continue
			}
			block = append(block, line)
			continue
		}
		if m := fenceRe.FindStringSubmatch(line); m != nil {
			flush()
			fence = m[1]
			continue
		}
		if m := headingRe.FindStringSubmatch(line); m != nil {
			flush()
			s := slug(m[1])
			if n := seen[s]; n > 0 {
				d.anchors[fmt.Sprintf("%s-%d", s, n)] = true
			} else {
				d.anchors[s] = true
			}
			seen[s]++
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		para = append(para, line)
	}
	flush()
	if fence != "" {
		d.code = append(d.code, strings.Join(block, "\n"))
	}
	return d
}

// splitCode returns text with its inline code spans blanked out, and the
// spans' contents. A span opens with a run of backticks and closes with a
// run of the same length.
func splitCode(text string) (string, []string) {
	var prose strings.Builder
	var spans []string
	rest := text
	for {
		open := codeRunRe.FindStringIndex(rest)
		if open == nil {
			prose.WriteString(rest)
			break
		}
		n := open[1] - open[0]
		after := rest[open[1]:]
		end := -1
		for _, r := range codeRunRe.FindAllStringIndex(after, -1) {
			if r[1]-r[0] == n {
				end = r[0]
				break
			}
		}
		if end < 0 {
			prose.WriteString(rest)
			break
		}
		prose.WriteString(rest[:open[0]])
		prose.WriteString(" code ")
		spans = append(spans, strings.TrimSpace(after[:end]))
		rest = after[end+n:]
	}
	return prose.String(), spans
}

// slug is the anchor GitHub gives a heading: the rendered text (link text
// for links, code without its backticks) in lower case, without the
// characters that are neither letters, digits, marks, '-', '_' nor spaces,
// and with each space replaced by '-'.
func slug(heading string) string {
	text := linkRe.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

var (
	makeRe    = regexp.MustCompile(`\bmake[ \t]+([A-Za-z0-9_][A-Za-z0-9_.-]*)`)
	keygateRe = regexp.MustCompile(`keygate[ \t]`)
	wordRe    = regexp.MustCompile(`^[a-z][a-z-]*$`)
)

// makeCommands returns the targets of every `make <target>` in code.
func makeCommands(code []string) []string {
	var targets []string
	for _, c := range code {
		for _, m := range makeRe.FindAllStringSubmatch(c, -1) {
			targets = append(targets, m[1])
		}
	}
	return targets
}

// keygateCommands returns every `keygate <command> [<subcommand>]` in code,
// as "command" or "command subcommand": the words after keygate that look
// like commands (lowercase letters), at most two; flags and arguments end
// it.
func keygateCommands(code []string) []string {
	var cmds []string
	for _, c := range code {
		for _, m := range keygateRe.FindAllStringIndex(c, -1) {
			// keygate the command, not part of a name such as
			// keygatecdk, keygate-dev or keygate:rotator.
			if m[0] > 0 && strings.ContainsAny(c[m[0]-1:m[0]], "_-.:@abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
				continue
			}
			line, _, _ := strings.Cut(c[m[0]+len("keygate"):], "\n")
			var words []string
			for _, w := range strings.Fields(line) {
				if len(words) == 2 || !wordRe.MatchString(w) {
					break
				}
				words = append(words, w)
			}
			if len(words) > 0 {
				cmds = append(cmds, strings.Join(words, " "))
			}
		}
	}
	return cmds
}

// makeTargets returns the targets a Makefile defines (rules, not variable
// assignments or special targets such as .PHONY).
func makeTargets(makefile string) map[string]bool {
	rule := regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9_. -]*?)[ \t]*::?(?:[^=]|$)`)
	targets := map[string]bool{}
	for _, line := range strings.Split(makefile, "\n") {
		if m := rule.FindStringSubmatch(line); m != nil {
			for _, name := range strings.Fields(m[1]) {
				targets[name] = true
			}
		}
	}
	return targets
}
