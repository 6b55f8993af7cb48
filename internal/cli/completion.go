package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Shell completion: `keygate completion bash|zsh|fish` prints a script
// that asks the CLI itself for candidates (`keygate __complete WORDS...`,
// hidden), so the commands, flags and flag values it offers are always the
// ones this build takes, and the completion logic is written (and tested)
// once, in Go. __complete never touches the network or the AWS
// configuration: it only reads the command table and each command's flags.

// completeCommand is the hidden command the scripts call.
const completeCommand = "__complete"

var completionScripts = map[string]string{
	"bash": `# bash completion for keygate. Load it with
#   source <(keygate completion bash)
# or save it as ~/.local/share/bash-completion/completions/keygate.
_keygate() {
    local IFS=$'\n'
    COMPREPLY=($(keygate __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _keygate keygate
`,
	"zsh": `#compdef keygate
# zsh completion for keygate. Load it with
#   source <(keygate completion zsh)
# or save it as _keygate in a folder of your $fpath.
_keygate() {
    local -a candidates
    candidates=("${(@f)$(keygate __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if (( ${#candidates} )) && [[ -n ${candidates[1]} ]]; then
        compadd -- "${candidates[@]}"
    else
        _files
    fi
}
if (( ! $+functions[compdef] )); then
    autoload -Uz compinit && compinit
fi
compdef _keygate keygate
`,
	"fish": `# fish completion for keygate. Load it with
#   keygate completion fish | source
# or save it as ~/.config/fish/completions/keygate.fish.
complete -c keygate -f -a '(keygate __complete (commandline -opc)[2..] (commandline -ct))'
`,
}

// shells are the shells `keygate completion` writes a script for.
func shells() []string {
	out := make([]string, 0, len(completionScripts))
	for s := range completionScripts {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (a *app) completion(ctx context.Context, args []string) error {
	c := a.command("completion", "completion bash|zsh|fish")
	pos, err := c.parse(args, "SHELL")
	if err != nil {
		return err
	}
	script, ok := completionScripts[pos[0]]
	if !ok {
		return usagef("completion: no script for %q; want %s", pos[0], orList(shells()))
	}
	_, err = io.WriteString(a.stdout, script)
	return err
}

// describe returns the flag set of a command without running it: the
// command defines its flags and stops at parse (see command.parse).
func (a *app) describe(run func(a *app, ctx context.Context, args []string) error) *flag.FlagSet {
	d := &app{stdout: io.Discard, stderr: io.Discard, env: a.env, deps: a.deps, opts: a.opts, describing: true}
	if err := run(d, context.Background(), nil); !errors.Is(err, errDescribed) {
		panic("cli: a command did not stop at parse when described")
	}
	return d.described.fs
}

// errDescribed ends a command that was only asked for its flags.
var errDescribed = errors.New("described")

// complete prints the candidates for the last of words (the word being
// typed, possibly empty), given the words before it, one per line.
func (a *app) complete(words []string) {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, done := words[len(words)-1], words[:len(words)-1]
	var grp *group
	var sub *subcommand
	fs := a.describe(func(a *app, _ context.Context, _ []string) error { return a.commonOnly() })
	var positional []string
	for i := 0; i < len(done); i++ {
		w := done[i]
		if strings.HasPrefix(w, "-") {
			if !strings.Contains(w, "=") && takesValue(fs, w) {
				i++ // its value
			}
			continue
		}
		switch {
		case grp == nil:
			for gi := range groups {
				if groups[gi].name == w {
					grp = &groups[gi]
				}
			}
			if grp == nil {
				return // not a command: nothing to offer
			}
			if grp.run != nil {
				fs = a.describe(grp.run)
			}
		case grp.run == nil && sub == nil:
			for si := range grp.commands {
				if grp.commands[si].name == w {
					sub = &grp.commands[si]
				}
			}
			if sub == nil {
				return
			}
			fs = a.describe(sub.run)
		default:
			positional = append(positional, w)
		}
	}
	var cands []string
	if len(done) > 0 {
		if prev := done[len(done)-1]; strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") && takesValue(fs, prev) {
			if e, ok := fs.Lookup(strings.TrimLeft(prev, "-")).Value.(*enumFlag); ok {
				cands = e.allowed
			}
			if strings.TrimLeft(prev, "-") == "output" {
				cands = []string{"json", "table"}
			}
			a.printCandidates(cands, cur)
			return
		}
	}
	switch {
	case strings.HasPrefix(cur, "-"):
		fs.VisitAll(func(f *flag.Flag) { cands = append(cands, "--"+f.Name) })
	case grp == nil:
		for _, g := range groups {
			cands = append(cands, g.name)
		}
		cands = append(cands, "help")
	case grp.run == nil && sub == nil:
		for _, c := range grp.commands {
			cands = append(cands, c.name)
		}
	case grp.name == "completion" && len(positional) == 0:
		cands = shells()
	}
	a.printCandidates(cands, cur)
}

func (a *app) printCandidates(cands []string, prefix string) {
	for _, c := range cands {
		if strings.HasPrefix(c, prefix) {
			fmt.Fprintln(a.stdout, c)
		}
	}
}

// commonOnly is a command with the common flags alone: what comes before
// a command name.
func (a *app) commonOnly() error {
	_, err := a.command("", "").parse(nil)
	return err
}

// takesValue reports whether the flag named by word (--name or -name) is
// defined in fs and takes a value (is not a boolean).
func takesValue(fs *flag.FlagSet, word string) bool {
	f := fs.Lookup(strings.TrimLeft(word, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}
