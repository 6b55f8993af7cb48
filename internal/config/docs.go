package config

import (
	"strings"
)

// Markdown renders the registry as the configuration table of the docs:
// one row per setting, in registry order, with its names, the functions
// that read it, who sets it in a deployed stack ("context": cdk.json or
// -c), its default, the values it takes and what it does.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| setting | read by | deployed, set by | default | values | what it does |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, s := range registry {
		cells := []string{names(s), readers(s), origin(s), def(s), s.syntax, s.Doc}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	return b.String()
}

func names(s *Setting) string {
	var n []string
	if s.Env != "" {
		n = append(n, "`"+s.Env+"`")
	}
	if s.Context != "" {
		n = append(n, "`"+ContextPrefix+s.Context+"`")
	}
	return strings.Join(n, "<br>")
}

func readers(s *Setting) string {
	switch {
	case s.Env == "":
		return "the stack"
	case s.Gateway:
		return "the stack, the local gateway"
	}
	return strings.Join(s.Functions, ", ")
}

func origin(s *Setting) string {
	switch {
	case s.Env == "" || s.Origin == ByContext:
		return "context"
	case s.Origin == ByStack:
		return "the stack"
	case s.Origin == ByLambda:
		return "Lambda"
	case s.Origin == LocalOnly:
		return "never (local stack, tests)"
	}
	return "`" + ContextPrefix + FunctionEnv.s.Context + "`"
}

func def(s *Setting) string {
	switch {
	case s.def != "":
		return "`" + s.def + "`"
	case s.unset != "":
		return s.unset
	}
	return "none"
}
