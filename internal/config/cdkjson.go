package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ContextValues turns the keygate:* entries of a CDK app's context (as the
// CDK gives them, or as cdk.json holds them) into values by context key
// without ContextPrefix: strings as they are, JSON values (numbers, lists,
// objects) as their JSON text, which the settings read back. Entries
// without the prefix are not keygate's and are left out; an unknown
// keygate:* key is an error (see CheckContextKeys).
func ContextValues(all map[string]any) (map[string]string, error) {
	raw := map[string]string{}
	for k, v := range all {
		name, ok := strings.CutPrefix(k, ContextPrefix)
		if !ok || v == nil {
			continue
		}
		if s, ok := v.(string); ok {
			raw[name] = s
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		raw[name] = string(b)
	}
	return raw, CheckContextKeys(raw)
}

// CheckContextKeys refuses a context key (without ContextPrefix) that no
// setting has, so that a typo cannot silently fall back to a default, and
// names the setting that replaced a key an earlier version read.
func CheckContextKeys(raw map[string]string) error {
	known := ContextKeys()
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		if n, ok := Renamed(k); ok {
			return fmt.Errorf("%s%s: no longer read; set %s instead (durations are written like 90s, 15m, 12h or 30d)", ContextPrefix, k, n)
		}
		return fmt.Errorf("%s%s: unknown setting (known: %s%s)", ContextPrefix, k, ContextPrefix, strings.Join(known, ", "+ContextPrefix))
	}
	return nil
}

// ContextKeys are the context keys of the registry, without ContextPrefix,
// in declaration order.
func ContextKeys() []string {
	var keys []string
	for _, s := range registry {
		if s.Context != "" {
			keys = append(keys, s.Context)
		}
	}
	return keys
}

// ReadCDKJSON reads the keygate:* context of a cdk.json file, as the CDK
// app gets it from there (see ContextValues): what the local stack reads
// so that it runs with the deployment's settings. A missing file is no
// context at all.
func ReadCDKJSON(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %v", path, err)
	}
	raw, err := ContextValues(doc.Context)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return raw, nil
}

// FunctionVariables returns the variables function fn gets in a deployed
// stack from the context values raw (by context key without ContextPrefix):
// those the stack takes from their own context key (Origin ByContext, with
// their canonical text) and those keygate:functionEnv gives fn. Each is
// checked by its setting's parser; the first bad value is the error. The
// variables set from the stack's resources (ByStack) are not among them.
func FunctionVariables(raw map[string]string, fn string) (map[string]string, error) {
	r := FromContext(raw)
	env := map[string]string{}
	for _, s := range registry {
		if s.Origin == ByContext && s.ReadBy(fn) {
			if v := r.Text(s); v != "" {
				env[s.Env] = v
			}
		}
	}
	for k, v := range FunctionEnv.From(r)[fn] {
		env[k] = v
	}
	return env, r.Err()
}
