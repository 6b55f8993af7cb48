// Package config is keygate's settings registry: every setting a function
// or the CDK stack reads is declared once, in settings.go, with its name
// (an environment variable, a cdk.json context key, or both), the
// functions that read it, its default, its parser and its documentation.
//
// The functions' compositions (internal/compose/...) read their settings
// through it, the CDK stack reads its context and builds each function's
// environment through it, and the configuration table of the docs is
// rendered from it (Markdown; a test fails when the two differ). So adding
// a setting is one declaration in settings.go, and a setting cannot be
// read under another name, with another default or another syntax in some
// other place.
//
// Durations have one syntax everywhere, in the environment and in cdk.json
// alike: a Go duration (90s, 15m, 12h) or a whole number of days (30d), and
// 0 where a setting can be turned off.
package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keygate/keygate/internal/fault"
)

// ContextPrefix starts every keygate context key in cdk.json and on the
// cdk command line (-c keygate:<name>=<value>).
const ContextPrefix = "keygate:"

// Origin says who sets a function's variable in the deployed stack.
type Origin int

// The origins.
const (
	// ByFunctionEnv: nobody unless the deployment sets it, through the
	// keygate:functionEnv context key.
	ByFunctionEnv Origin = iota
	// ByContext: the stack, from the setting's own context key or its
	// default.
	ByContext
	// ByStack: the stack, from its own resources (the table, the pepper's
	// secret, the event bus, the signing key).
	ByStack
	// ByLambda: Lambda itself (AWS_LAMBDA_LOG_LEVEL, from the function's
	// logging configuration).
	ByLambda
	// LocalOnly: the local stack and tests only; a deployed stack never
	// sets it, and functionEnv refuses it.
	LocalOnly
)

// Setting is one entry of the registry.
type Setting struct {
	// Env is the environment variable the functions in Functions read;
	// empty for a setting of the stack alone.
	Env string
	// Context is the cdk.json context key, without ContextPrefix; empty
	// when the stack does not take the setting from its context.
	Context string
	// Functions are the functions that read Env (internal/gateway's Fn*
	// names), in that order.
	Functions []string
	// Gateway marks a setting of the API itself rather than of a function
	// (the proxy's CORS policy): the stack declares it on API Gateway from
	// Context, and the local gateway reads Env to behave the same.
	Gateway bool
	// Origin says who sets Env in the deployed stack; a setting with both
	// Env and Context is ByContext.
	Origin Origin
	// Doc says what the setting does and why one would change it, for the
	// configuration table.
	Doc string

	read   func(*Reader) any   // reads the typed value, as its Var's From does
	def    string              // the default, in the setting's syntax ("" for none)
	unset  string              // what leaving it unset means, when there is no default
	syntax string              // the values it takes, for the table and for errors
	check  func(string) error  // parses text, for settings read generically
	noEcho bool                // a secret or a document: errors do not quote it
	format func(string) string // the canonical text of a valid value
}

// Default is the setting's default in its own syntax, "" when it has none.
func (s *Setting) Default() string { return s.def }

// ReadBy reports whether function fn reads the setting.
func (s *Setting) ReadBy(fn string) bool { return s.Env != "" && slices.Contains(s.Functions, fn) }

// Check reports whether text is a valid value of the setting ("" is: it
// means the default). The error names the setting's variable or context
// key and says what it takes.
func (s *Setting) Check(text string) error {
	if text == "" {
		return nil
	}
	if err := s.check(text); err != nil {
		return s.invalid(s.name(), text, err)
	}
	return nil
}

// Canonical returns the text a valid value is passed on as (for example a
// proxy path without its slashes); the value itself otherwise.
func (s *Setting) Canonical(text string) string {
	if s.format == nil || text == "" {
		return text
	}
	return s.format(text)
}

func (s *Setting) name() string {
	if s.Env != "" {
		return s.Env
	}
	return ContextPrefix + s.Context
}

func (s *Setting) invalid(name, text string, err error) error {
	msg := err.Error()
	var fe *fault.Error
	if errors.As(err, &fe) {
		msg = fe.Message
	}
	if s.noEcho || strings.ContainsAny(text, "\n{[") {
		return fault.Fieldf(name, "%s", msg)
	}
	return fault.Fieldf(name, "%q %s", fault.Clip(text, 80), msg)
}

// registry holds every setting in declaration order (settings.go).
var registry []*Setting

// All returns every setting, in the order settings.go declares them.
func All() []*Setting { return slices.Clone(registry) }

// Var is a setting read as a value of type T.
type Var[T any] struct {
	s     *Setting
	def   T
	parse func(string) (T, error)
}

// Setting returns the registry entry.
func (v Var[T]) Setting() *Setting { return v.s }

// Default returns the default value.
func (v Var[T]) Default() T { return v.def }

// Parse parses text; "" is the default. A bad value is a fault.Invalid
// naming the setting's variable (or its context key, for a stack setting).
func (v Var[T]) Parse(text string) (T, error) {
	if text == "" {
		return v.def, nil
	}
	x, err := v.parse(text)
	if err != nil {
		return v.def, v.s.invalid(v.s.name(), text, err)
	}
	return x, nil
}

// From reads the setting from r: its default when r does not hold it. A
// bad value is recorded in r (see Reader.Err) and the default returned.
func (v Var[T]) From(r *Reader) T {
	text, name := r.lookup(v.s)
	if text == "" {
		return v.def
	}
	x, err := v.parse(text)
	if err != nil {
		if r.err == nil {
			r.err = v.s.invalid(name, text, err)
		}
		return v.def
	}
	return x
}

// Reader reads settings from one source, the environment of a function or
// the context of the CDK app, keeping the first error.
type Reader struct {
	lookup func(*Setting) (text, name string)
	extra  func() error
	err    error
}

// FromEnv reads settings from a function's environment (os.Getenv in
// Lambda, a map in tests).
func FromEnv(getenv func(string) string) *Reader {
	return &Reader{
		lookup: func(s *Setting) (string, string) { return getenv(s.Env), s.Env },
		extra:  func() error { return checkRenamed(getenv) },
	}
}

// FromContext reads settings from the CDK app's context: values by context
// key, without ContextPrefix.
func FromContext(values map[string]string) *Reader {
	return &Reader{lookup: func(s *Setting) (string, string) {
		if s.Context == "" {
			return "", ""
		}
		return values[s.Context], ContextPrefix + s.Context
	}}
}

// Text reads setting s as text, checked by its parser and in its canonical
// form: "" when r does not hold it. A bad value is recorded in r. It is
// for code that passes values on rather than using them (the stack, which
// sets each function's variables from its context).
func (r *Reader) Text(s *Setting) string {
	text, name := r.lookup(s)
	if text == "" {
		return ""
	}
	if err := s.check(text); err != nil {
		if r.err == nil {
			r.err = s.invalid(name, text, err)
		}
		return ""
	}
	return s.Canonical(text)
}

// Err returns the first bad value read, or a variable set under a name
// keygate no longer reads (renamed settings say their new name).
func (r *Reader) Err() error {
	if r.err == nil && r.extra != nil {
		r.err = r.extra()
	}
	return r.err
}

// Check parses every setting function fn reads from getenv, and reports the
// first bad value: what `cdk synth` runs on each function's environment, so
// that a bad value fails the synth rather than the function's cold start.
func Check(fn string, getenv func(string) string) error {
	for _, s := range registry {
		if s.ReadBy(fn) {
			if err := s.Check(getenv(s.Env)); err != nil {
				return err
			}
		}
	}
	return checkRenamed(getenv)
}

// renamed maps the names earlier versions read (variables, and context keys
// without ContextPrefix) to the settings that replace them, so that a
// deployment still setting an old name is told, not silently given the
// default.
var renamed = map[string]string{}

func rename(old string, v *Setting) {
	if strings.HasPrefix(old, "KEYGATE_") {
		renamed[old] = v.Env
	} else {
		renamed[old] = ContextPrefix + v.Context
	}
}

// Renamed returns the setting that replaced name (a variable, or a context
// key without ContextPrefix), if an earlier version read it.
func Renamed(name string) (string, bool) {
	n, ok := renamed[name]
	return n, ok
}

func checkRenamed(getenv func(string) string) error {
	olds := make([]string, 0, len(renamed))
	for old := range renamed {
		if strings.HasPrefix(old, "KEYGATE_") {
			olds = append(olds, old)
		}
	}
	slices.Sort(olds)
	for _, old := range olds {
		if getenv(old) != "" {
			return fault.Fieldf(old, "is no longer read: set %s instead (durations are written like 90s, 15m, 12h or 30d)", renamed[old])
		}
	}
	return nil
}

// add registers s with its default and parser and returns its Var.
func add[T any](s Setting, def T, defText, syntax string, parse func(string) (T, error)) Var[T] {
	if s.Env != "" && s.Context != "" {
		s.Origin = ByContext
	}
	s.def, s.syntax = defText, syntax
	s.check = func(text string) error { _, err := parse(text); return err }
	p := &s
	v := Var[T]{s: p, def: def, parse: parse}
	p.read = func(r *Reader) any { return v.From(r) }
	registry = append(registry, p)
	return v
}

// Value reads the setting from r as its Var's From does, for code that
// reads settings by name (the stack's, by their context keys).
func (s *Setting) Value(r *Reader) any { return s.read(r) }

// ByContextKey returns the setting with context key name, nil for none.
func ByContextKey(name string) *Setting {
	for _, s := range registry {
		if s.Context != "" && s.Context == name {
			return s
		}
	}
	return nil
}

// text is a string setting; check, when set, validates it.
func text(s Setting, def, syntax string, check func(string) error) Var[string] {
	return add(s, def, def, syntax, func(v string) (string, error) {
		if check != nil {
			if err := check(v); err != nil {
				return "", err
			}
		}
		return v, nil
	})
}

// oneOf is a string setting that takes one of values.
func oneOf(s Setting, def string, values ...string) Var[string] {
	return text(s, def, orList(values), func(v string) error {
		if !slices.Contains(values, v) {
			return errors.New("must be " + orList(values))
		}
		return nil
	})
}

func orList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = "`" + v + "`"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// integer is a whole number from min to max.
func integer(s Setting, def, min, max int) Var[int] {
	syntax := fmt.Sprintf("whole number, %d to %d", min, max)
	return add(s, def, strconv.Itoa(def), syntax, func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < min || n > max {
			return 0, errors.New("must be a " + syntax)
		}
		return n, nil
	})
}

// number is a number above 0.
func number(s Setting, def float64) Var[float64] {
	const syntax = "number above 0"
	return add(s, def, strconv.FormatFloat(def, 'f', -1, 64), syntax, func(v string) (float64, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 {
			return 0, errors.New("must be a " + syntax)
		}
		return f, nil
	})
}

// span bounds a duration setting.
type span struct {
	min, max time.Duration
	// step, when set, is the granularity a value must be a multiple of
	// (API Gateway takes whole seconds).
	step time.Duration
	// off allows 0 too, which turns the setting off.
	off bool
}

// duration is a duration within sp.
func duration(s Setting, def time.Duration, sp span) Var[time.Duration] {
	syntax := "duration, " + FormatDuration(sp.min) + " to " + FormatDuration(sp.max)
	if sp.step == time.Second {
		syntax += ", whole seconds"
	}
	if sp.off {
		syntax += "; `0` is off"
	}
	defText := FormatDuration(def)
	if sp.off && def == 0 {
		defText, s.unset = "", "off"
	}
	return add(s, def, defText, syntax, func(v string) (time.Duration, error) {
		d, err := ParseDuration(v)
		if err != nil || (d == 0 && !sp.off) || (d != 0 && (d < sp.min || d > sp.max)) || (sp.step > 0 && d%sp.step != 0) {
			return 0, errors.New("must be a " + syntax + " (written like 90s, 15m, 12h or 30d)")
		}
		return d, nil
	})
}

// parsed is a setting with a parser of its own.
func parsed[T any](s Setting, def T, defText, syntax string, parse func(string) (T, error)) Var[T] {
	return add(s, def, defText, syntax, parse)
}

// ParseDuration reads keygate's duration syntax: a Go duration (90s, 15m,
// 12h, 1h30m), a whole number of days (30d), or 0. A bare number other
// than 0 is refused: it would be ambiguous.
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "0" {
		return 0, nil
	}
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*366 {
			return 0, fmt.Errorf("%q is not a whole number of days", v)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 90s, 15m, 12h or 30d", v)
	}
	return d, nil
}

// FormatDuration writes d in keygate's duration syntax, in its largest
// whole unit: 30d, 12h, 15m, 90s, 0 (and as Go writes it otherwise).
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "0"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0 && d < time.Hour:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
