package httpedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// MaxBodyBytes is the largest request body a keygate handler reads.
const MaxBodyBytes = 64 << 10

// DecodeBody reads a JSON request body into v under ReadBody's and
// Decode's rules: application/json, at most MaxBodyBytes, one object, no
// unknown fields. Each failure is a *Problem naming the field where it can.
func DecodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := ReadBody(w, r)
	if err != nil {
		return err
	}
	return Decode(b, v)
}

// ReadBody enforces the media type (application/json or +json) and the
// size limit, and returns the body; each failure is a *Problem.
func ReadBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if !IsJSON(r.Header.Get("Content-Type")) {
		return nil, NewProblem(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type", "send the body as application/json")
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, NewProblem(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "the body is larger than 65536 bytes")
		}
		return nil, NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body could not be read")
	}
	return b, nil
}

// IsJSON reports whether a Content-Type is JSON: application/json or a
// +json type, with any parameters.
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// Decode reads one JSON object into v, refusing unknown fields, wrong types
// and trailing data, each as a problem naming the field where it can.
func Decode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return decodeProblem(err, b, reflect.TypeOf(v))
	}
	if _, err := d.Token(); err != io.EOF {
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body must hold exactly one JSON object")
	}
	return nil
}

// decodeProblem is the problem of a body that did not decode into a value
// of type t. It names only fields t has: a client's own field names (an
// unknown field, a map key) are never echoed, so a problem body cannot carry
// text an attacker chose into a log viewer or a console page.
func decodeProblem(err error, b []byte, t reflect.Type) *Problem {
	var (
		te  *json.UnmarshalTypeError
		se  *json.SyntaxError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &te):
		field := te.Field
		if !knownPath(t, field) {
			field = ""
		}
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, field, "must be "+jsonType(te.Type))
	case errors.As(err, &se):
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body is not valid JSON")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body is empty or cut short; send a JSON object")
	case errors.As(err, &mbe):
		return NewProblem(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "the body is larger than 65536 bytes")
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		parent, takes := unknownAt(b, t)
		detail := "the body has a field this request does not take; it takes " + strings.Join(takes, ", ")
		if parent != "" {
			detail = parent + " has a field it does not take; it takes " + strings.Join(takes, ", ")
		}
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, parent, detail)
	}
	return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body is not a valid request")
}

// fieldsOf returns the JSON fields of struct type t (through pointers) by
// wire name, or nil when t is not a struct.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	out := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// elem steps through pointers, slices and arrays to the type their JSON
// elements decode into.
func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t
}

// lookupField finds a struct field by its wire name as encoding/json does:
// exactly, or else ignoring case. It returns the field's canonical name.
func lookupField(fields map[string]reflect.Type, name string) (string, reflect.Type, bool) {
	if ft, ok := fields[name]; ok {
		return name, ft, true
	}
	for n, ft := range fields {
		if strings.EqualFold(n, name) {
			return n, ft, true
		}
	}
	return "", nil, false
}

// knownPath reports whether a dotted field path (as UnmarshalTypeError
// gives it: "quota.limit") names fields of t only, no map keys.
func knownPath(t reflect.Type, path string) bool {
	if path == "" {
		return false
	}
	for _, name := range strings.Split(path, ".") {
		fields := fieldsOf(elem(t))
		n, ft, ok := lookupField(fields, name)
		if !ok || n != name {
			return false
		}
		t = ft
	}
	return true
}

// unknownAt finds, in body b, the object holding a field its type t does
// not have: the known path of that object ("" for the body itself) and the
// fields it takes, in order.
func unknownAt(b []byte, t reflect.Type) (string, []string) {
	var v any
	_ = json.Unmarshal(b, &v)
	if path, ft, ok := findUnknown(v, t, ""); ok {
		return path, names(fieldsOf(elem(ft)))
	}
	return "", names(fieldsOf(elem(t)))
}

func findUnknown(v any, t reflect.Type, path string) (string, reflect.Type, bool) {
	t = elem(t)
	switch x := v.(type) {
	case map[string]any:
		fields := fieldsOf(t)
		if fields == nil {
			return "", nil, false // a map or an any: every key is fine
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			n, ft, ok := lookupField(fields, k)
			if !ok {
				return path, t, true
			}
			child := n
			if path != "" {
				child = path + "." + n
			}
			if p, pt, found := findUnknown(x[k], ft, child); found {
				return p, pt, true
			}
		}
	case []any:
		for _, e := range x {
			if p, pt, found := findUnknown(e, t, path); found {
				return p, pt, true
			}
		}
	}
	return "", nil, false
}

func names(fields map[string]reflect.Type) []string {
	out := make([]string, 0, len(fields))
	for n := range fields {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Typed is a field type that names what it takes in a body (for example
// "an RFC 3339 time"), for the problem of a body that sends something else.
type Typed interface{ JSONType() string }

var typedType = reflect.TypeFor[Typed]()

// jsonType names the JSON type a Go type is decoded from.
func jsonType(t reflect.Type) string {
	if t.Kind() != reflect.Pointer {
		t = reflect.PointerTo(t)
	}
	if t.Implements(typedType) {
		return reflect.New(t.Elem()).Interface().(Typed).JSONType()
	}
	t = t.Elem()
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	}
	return "of another type"
}
