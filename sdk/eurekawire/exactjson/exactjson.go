// Package exactjson makes encoding/json match object field names exactly, as Jackson does.
//
// encoding/json assigns a member to a struct field whose name matches case-insensitively (and
// under Unicode folding: "hoſtName" is hostName), so {"HOSTNAME":"x"} overrides "hostName" there,
// while Eureka's Jackson deserializers compare names exactly and skip such a member as unknown.
// Exact walks a document along a Schema and renames every member whose name folds to a field of
// its object without being equal to it, so that encoding/json ignores it too. A document without
// such members (every document a real client sends) is returned as it is, without copying.
//
// It belongs to the SDK's module (package eurekawire decodes peer batches with it) and is not
// internal because herald's Eureka codec decodes client documents with it too.
package exactjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// Schema describes the objects of a document: the exact field names of an object, each mapped to
// the Schema of its value, or to nil when the value is not to be checked (a scalar, a map with
// free keys, raw JSON). A value that is an array is checked element by element against the same
// Schema, which covers fields that clients send as one object or as a list of them.
type Schema map[string]Schema

// hidePrefix is put at the front of a renamed member's name: no field name starts with a NUL, so
// no folding matches it, and the name stays a valid JSON string.
const hidePrefix = `\u0000`

// Exact returns data with every member whose name matches a field of s only case-insensitively
// renamed, so that encoding/json ignores it. Malformed input is returned unchanged: the decoder
// that follows reports it.
func Exact(data []byte, s Schema) []byte {
	w := walker{data: data}
	w.ws()
	if !w.value(s) {
		return data
	}
	if len(w.hide) == 0 {
		return data
	}
	out := make([]byte, 0, len(data)+len(w.hide)*len(hidePrefix))
	prev := 0
	for _, at := range w.hide {
		out = append(out, data[prev:at]...)
		out = append(out, hidePrefix...)
		prev = at
	}
	return append(out, data[prev:]...)
}

type walker struct {
	data []byte
	i    int
	// hide holds the offsets just after the opening quote of each member name to rename.
	hide []int
}

func (w *walker) ws() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\r', '\n':
			w.i++
		default:
			return
		}
	}
}

// value walks one value at w.i against s (nil: skip it). False on malformed input.
func (w *walker) value(s Schema) bool {
	if w.i >= len(w.data) {
		return false
	}
	if s == nil {
		return w.skip()
	}
	switch w.data[w.i] {
	case '{':
		return w.object(s)
	case '[':
		return w.array(s)
	default:
		return w.skip()
	}
}

func (w *walker) array(s Schema) bool {
	w.i++ // '['
	w.ws()
	if w.i < len(w.data) && w.data[w.i] == ']' {
		w.i++
		return true
	}
	for {
		w.ws()
		if w.i >= len(w.data) {
			return false
		}
		// An array inside an array decodes into no field of a schema; skipping it keeps the
		// recursion as deep as the schema, whatever the input.
		var ok bool
		if w.data[w.i] == '[' {
			ok = w.skip()
		} else {
			ok = w.value(s)
		}
		if !ok {
			return false
		}
		if more, ok := w.next(']'); !more {
			return ok
		}
	}
}

func (w *walker) object(s Schema) bool {
	w.i++ // '{'
	w.ws()
	if w.i < len(w.data) && w.data[w.i] == '}' {
		w.i++
		return true
	}
	for {
		w.ws()
		if w.i >= len(w.data) || w.data[w.i] != '"' {
			return false
		}
		start := w.i
		if !w.str() {
			return false
		}
		sub, exact, near, ok := lookup(w.data[start:w.i], s)
		if !ok {
			return false
		}
		if near {
			w.hide = append(w.hide, start+1)
		}
		w.ws()
		if w.i >= len(w.data) || w.data[w.i] != ':' {
			return false
		}
		w.i++
		w.ws()
		if !exact {
			sub = nil
		}
		if !w.value(sub) {
			return false
		}
		if more, ok := w.next('}'); !more {
			return ok
		}
	}
}

// next reads what follows an element of an array or object: a comma (more: true) or the closing
// bracket (more: false, ok: true); anything else is malformed (more and ok false).
func (w *walker) next(closing byte) (more, ok bool) {
	w.ws()
	if w.i >= len(w.data) {
		return false, false
	}
	switch w.data[w.i] {
	case ',':
		w.i++
		return true, true
	case closing:
		w.i++
		return false, true
	}
	return false, false
}

// lookup finds the member name tok (a JSON string token, quotes included) in s: exact when it
// names a field, near when it names none but folds to one under encoding/json's rules.
func lookup(tok []byte, s Schema) (sub Schema, exact, near, ok bool) {
	body := tok[1 : len(tok)-1]
	name := ""
	if bytes.IndexByte(body, '\\') < 0 {
		if sub, exact = s[string(body)]; exact { // no allocation for the lookup
			return sub, true, false, true
		}
		name = string(body)
	} else {
		if err := json.Unmarshal(tok, &name); err != nil {
			return nil, false, false, false
		}
		if sub, exact = s[name]; exact {
			return sub, true, false, true
		}
	}
	for f := range s {
		if strings.EqualFold(name, f) {
			return nil, false, true, true
		}
	}
	return nil, false, false, true
}

// str moves past the string at w.i (which is a '"').
func (w *walker) str() bool {
	for j := w.i + 1; j < len(w.data); j++ {
		switch w.data[j] {
		case '\\':
			j++
		case '"':
			w.i = j + 1
			return true
		}
	}
	return false
}

// skip moves past one value of any kind without recursion.
func (w *walker) skip() bool {
	depth := 0
	for w.i < len(w.data) {
		switch c := w.data[w.i]; c {
		case '"':
			if !w.str() {
				return false
			}
			if depth == 0 {
				return true
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return true // the end of the enclosing container: a scalar ended here
			}
			depth--
			if depth == 0 {
				w.i++
				return true
			}
		case ',', ' ', '\t', '\r', '\n', ':':
			if depth == 0 {
				return true
			}
		}
		w.i++
	}
	return depth == 0
}

// FieldsOf returns the Schema of a struct's JSON field names (its `json` tags, or its exported
// field names), each mapped to nil; set the nested objects' Schemas on the result. v is a struct
// or a pointer to one.
func FieldsOf(v any) Schema {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s := Schema{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		s[name] = nil
	}
	return s
}
