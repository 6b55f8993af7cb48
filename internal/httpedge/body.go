package httpedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
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
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
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

// Decode reads one JSON object into v, refusing unknown fields, wrong types
// and trailing data, each as a problem naming the field where it can.
func Decode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return decodeProblem(err)
	}
	if _, err := d.Token(); err != io.EOF {
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body must hold exactly one JSON object")
	}
	return nil
}

func decodeProblem(err error) *Problem {
	var (
		te  *json.UnmarshalTypeError
		se  *json.SyntaxError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &te):
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, te.Field, "must be "+jsonType(te.Type))
	case errors.As(err, &se):
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body is not valid JSON")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body is empty or cut short; send a JSON object")
	case errors.As(err, &mbe):
		return NewProblem(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "the body is larger than 65536 bytes")
	}
	const unknown = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, unknown) {
		name := strings.Trim(strings.TrimPrefix(msg, unknown), `"`)
		return NewProblem(http.StatusBadRequest, CodeInvalidRequest, name, "is not a known field")
	}
	return NewProblem(http.StatusBadRequest, CodeInvalidRequest, "", "the body is not a valid request")
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
