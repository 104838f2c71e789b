package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// RawConfig is a plugin's config {} block as a JSON object, exactly as the host hands it to the
// plugin in-process and out of process: integers stay integers ("50", never "50.0"), durations
// are strings ("30s"). Nil or empty means no block.
type RawConfig []byte

// Validator is implemented by a config struct (or a nested block's struct) that checks more than
// its types: ranges, keys that go together. DecodeConfig calls it after decoding, on every
// struct it filled; a Diagnostic's Path is relative to that struct.
type Validator interface {
	Validate() []Diagnostic
}

// Config types of ConfigKey.Type. Lists and maps name their element type: "list(string)",
// "map(int)", "list(object)".
const (
	TypeString   = "string"
	TypeBool     = "bool"
	TypeInt      = "int"
	TypeNumber   = "number"
	TypeDuration = "duration"
	TypeObject   = "object"
)

var durationType = reflect.TypeOf(time.Duration(0))

// SchemaOf derives the schema of a config struct: one ConfigKey per field, nested blocks' fields
// as "block.key" (also for the objects inside a list(object) or map(object)). v is the struct, a
// pointer to it, or nil for no config.
//
// Struct tags:
//
//	config:"name"            the key (default: the field name in snake_case); "-" skips the field
//	config:"name,required"   the key must be set
//	default:"30s"            the value when the key is not set, written as in HCL: 250, true,
//	                         "1ms" (without quotes for string and duration fields), ["a", "b"]
//	description:"..."        what the key does, for documentation and `herald config validate`
//
// Field types: string, bool, signed and unsigned integers, float32/64, time.Duration (a string
// such as "30s" in HCL; a bare number is refused), slices, maps with string keys, and structs or
// pointers to structs (nested blocks). An error names the field of an unsupported type or a bad
// default.
func SchemaOf(v any) ([]ConfigKey, error) {
	if v == nil {
		return nil, nil
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: %s is not a struct", t)
	}
	var out []ConfigKey
	if err := schemaOf(t, "", &out); err != nil {
		return nil, err
	}
	return out, nil
}

type fieldSpec struct {
	index       int
	name        string
	required    bool
	def         string
	hasDef      bool
	description string
}

func fieldsOf(t reflect.Type) []fieldSpec {
	var out []fieldSpec
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("config")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = snake(f.Name)
		}
		def, hasDef := f.Tag.Lookup("default")
		out = append(out, fieldSpec{index: i, name: name, required: opts == "required", def: def, hasDef: hasDef,
			description: f.Tag.Get("description")})
	}
	return out
}

// snake turns MaxBatchSize into max_batch_size and TLSCert into tls_cert.
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

func schemaOf(t reflect.Type, prefix string, out *[]ConfigKey) error {
	for _, f := range fieldsOf(t) {
		ft := t.Field(f.index).Type
		path := prefix + f.name
		typ, elem, err := typeName(ft)
		if err != nil {
			return fmt.Errorf("config: field %s (%s): %v", t.Field(f.index).Name, path, err)
		}
		k := ConfigKey{Path: path, Type: typ, Required: f.required, Description: f.description}
		if f.hasDef {
			d, err := parseDefault(typ, f.def)
			if err == nil {
				diags := checkValue(k.Type, nil, d, path)
				if len(diags) > 0 {
					err = fmt.Errorf("%s", diags[0].Message)
				}
			}
			if err != nil {
				return fmt.Errorf("config: field %s (%s): default %q: %v", t.Field(f.index).Name, path, f.def, err)
			}
			k.Default = d
		}
		*out = append(*out, k)
		if elem != nil {
			if err := schemaOf(elem, path+".", out); err != nil {
				return err
			}
		}
	}
	return nil
}

// typeName names a Go type as a config type, and returns the struct whose fields are its nested
// keys (for object, list(object), map(object)).
func typeName(t reflect.Type) (string, reflect.Type, error) {
	if t == durationType {
		return TypeDuration, nil, nil
	}
	switch t.Kind() {
	case reflect.String:
		return TypeString, nil, nil
	case reflect.Bool:
		return TypeBool, nil, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return TypeInt, nil, nil
	case reflect.Float32, reflect.Float64:
		return TypeNumber, nil, nil
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Struct {
			return TypeObject, t.Elem(), nil
		}
	case reflect.Struct:
		return TypeObject, t, nil
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Array {
			break
		}
		e, st, err := typeName(t.Elem())
		if err != nil {
			return "", nil, err
		}
		return "list(" + e + ")", st, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return "", nil, fmt.Errorf("map keys must be strings")
		}
		e, st, err := typeName(t.Elem())
		if err != nil {
			return "", nil, err
		}
		return "map(" + e + ")", st, nil
	}
	return "", nil, fmt.Errorf("type %s is not supported in a config block", t)
}

func parseDefault(typ, s string) (any, error) {
	if typ == TypeString || typ == TypeDuration {
		return s, nil
	}
	return decodeJSON([]byte(s))
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one value")
	}
	return v, nil
}

// schemaNode is a level of a schema: its keys by name.
type schemaNode struct {
	key      ConfigKey
	children map[string]*schemaNode
	names    []string
}

func schemaTree(schema []ConfigKey) *schemaNode {
	root := &schemaNode{children: map[string]*schemaNode{}}
	for _, k := range schema {
		n := root
		parts := strings.Split(k.Path, ".")
		for i, p := range parts {
			c, ok := n.children[p]
			if !ok {
				c = &schemaNode{children: map[string]*schemaNode{}}
				n.children[p] = c
				n.names = append(n.names, p)
			}
			if i == len(parts)-1 {
				c.key = k
			}
			n = c
		}
	}
	return root
}

// CheckConfig checks a config block against a schema: unknown keys (with the closest known key
// when one is near), values of the wrong type, missing required keys. Each Diagnostic's Path
// names the key ("tls.cert", "routes[1].name"). The host runs it at load, before the plugin's
// Configure; DecodeConfig runs it too.
func CheckConfig(schema []ConfigKey, raw RawConfig) []Diagnostic {
	v := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		x, err := decodeJSON(raw)
		if err != nil {
			return []Diagnostic{{Message: fmt.Sprintf("config is not a JSON object: %v", err)}}
		}
		m, ok := x.(map[string]any)
		if !ok && x != nil {
			return []Diagnostic{{Message: fmt.Sprintf("config is not an object but %s", describeValue(x))}}
		}
		if m != nil {
			v = m
		}
	}
	diags := checkObject(schemaTree(schema), v, "")
	sort.SliceStable(diags, func(i, j int) bool { return diags[i].Path < diags[j].Path })
	return diags
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func checkObject(n *schemaNode, v map[string]any, prefix string) []Diagnostic {
	var diags []Diagnostic
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, ok := n.children[k]
		if !ok {
			diags = append(diags, Diagnostic{Path: join(prefix, k), Message: unknownKey(k, n.names)})
			continue
		}
		diags = append(diags, checkValue(c.key.Type, c, v[k], join(prefix, k))...)
	}
	for _, name := range n.names {
		c := n.children[name]
		if _, set := v[name]; !set && c.key.Required {
			diags = append(diags, Diagnostic{Path: join(prefix, name), Message: "required key is not set"})
		}
	}
	return diags
}

func unknownKey(k string, known []string) string {
	if len(known) == 0 {
		return "unknown key: this plugin takes no settings"
	}
	sorted := append([]string{}, known...)
	sort.Strings(sorted)
	best, bestD := "", math.MaxInt
	for _, c := range sorted {
		if d := editDistance(strings.ToLower(k), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	msg := "unknown key"
	if bestD <= max(2, len(k)/3) {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	return msg + " (known: " + strings.Join(sorted, ", ") + ")"
}

// editDistance counts the edits (insert, delete, replace, swap of neighbours) from a to b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return fmt.Sprintf("the bool %v", x)
	case json.Number:
		return "the number " + x.String()
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%v", v)
}

// checkValue checks one value against a config type; n holds the nested keys of an object type.
func checkValue(typ string, n *schemaNode, v any, path string) []Diagnostic {
	bad := func(want string) []Diagnostic {
		return []Diagnostic{{Path: path, Message: fmt.Sprintf("want %s, got %s", want, describeValue(v))}}
	}
	if inner, ok := strings.CutPrefix(typ, "list("); ok {
		inner = strings.TrimSuffix(inner, ")")
		l, ok := v.([]any)
		if !ok {
			return bad("a list")
		}
		var diags []Diagnostic
		for i, e := range l {
			diags = append(diags, checkValue(inner, n, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return diags
	}
	if inner, ok := strings.CutPrefix(typ, "map("); ok {
		inner = strings.TrimSuffix(inner, ")")
		m, ok := v.(map[string]any)
		if !ok {
			return bad("a map")
		}
		var diags []Diagnostic
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			diags = append(diags, checkValue(inner, n, m[k], path+"."+k)...)
		}
		return diags
	}
	switch typ {
	case TypeString:
		if _, ok := v.(string); !ok {
			return bad("a string")
		}
	case TypeBool:
		if _, ok := v.(bool); !ok {
			return bad("true or false")
		}
	case TypeInt:
		num, ok := v.(json.Number)
		if !ok {
			return bad("a whole number")
		}
		if _, err := strconv.ParseInt(num.String(), 10, 64); err != nil {
			if _, uerr := strconv.ParseUint(num.String(), 10, 64); uerr != nil {
				return bad("a whole number")
			}
		}
	case TypeNumber:
		if _, ok := v.(json.Number); !ok {
			return bad("a number")
		}
	case TypeDuration:
		s, ok := v.(string)
		if !ok {
			if _, isNum := v.(json.Number); isNum {
				return bad(`a duration with a unit, such as "30s" or "500ms"`)
			}
			return bad(`a duration such as "30s"`)
		}
		if _, err := time.ParseDuration(s); err != nil {
			return bad(`a duration such as "30s" or "500ms"`)
		}
	case TypeObject:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("a block")
		}
		if n == nil {
			return nil
		}
		return checkObject(n, m, path)
	default:
		// A type this SDK does not know (a newer plugin): the plugin checks it itself.
	}
	return nil
}

// DecodeConfig checks raw against the schema of the struct v points to, then fills it: keys not
// set take their default tag, then Validate runs on every struct that implements Validator.
// Diagnostics name the key; none with Warning false means v is ready to use.
func DecodeConfig(raw RawConfig, v any) []Diagnostic {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return []Diagnostic{{Message: fmt.Sprintf("config: decode needs a pointer to a struct, not %T", v)}}
	}
	schema, err := SchemaOf(v)
	if err != nil {
		return []Diagnostic{{Message: err.Error()}}
	}
	if diags := CheckConfig(schema, raw); HasErrors(diags) {
		return diags
	}
	m := map[string]any{}
	if len(bytes.TrimSpace(raw)) > 0 {
		x, _ := decodeJSON(raw) // checked above
		m, _ = x.(map[string]any)
	}
	var diags []Diagnostic
	decodeStruct(rv.Elem(), m, "", &diags)
	return diags
}

// Decode fills the config struct v points to from the request's config block (see DecodeConfig).
func (r ConfigureRequest) Decode(v any) []Diagnostic { return DecodeConfig(r.Config, v) }

// HasErrors reports whether any diagnostic is an error, not a warning.
func HasErrors(diags []Diagnostic) bool {
	for _, d := range diags {
		if !d.Warning {
			return true
		}
	}
	return false
}

func decodeStruct(v reflect.Value, m map[string]any, prefix string, diags *[]Diagnostic) {
	t := v.Type()
	for _, f := range fieldsOf(t) {
		fv := v.Field(f.index)
		path := join(prefix, f.name)
		raw, set := m[f.name]
		if !set && f.hasDef {
			typ, _, _ := typeName(fv.Type())
			raw, _ = parseDefault(typ, f.def) // checked by SchemaOf
			set = true
		}
		if !set {
			if fv.Kind() == reflect.Struct && fv.Type() != durationType {
				decodeStruct(fv, map[string]any{}, path, diags) // a block not written: its defaults
			}
			continue
		}
		decodeValue(fv, raw, path, diags)
	}
	validate(v, prefix, diags)
}

func validate(v reflect.Value, prefix string, diags *[]Diagnostic) {
	var val Validator
	if v.CanAddr() {
		val, _ = v.Addr().Interface().(Validator)
	}
	if val == nil {
		val, _ = v.Interface().(Validator)
	}
	if val == nil {
		return
	}
	for _, d := range val.Validate() {
		d.Path = join(prefix, d.Path)
		*diags = append(*diags, d)
	}
}

func decodeValue(fv reflect.Value, raw any, path string, diags *[]Diagnostic) {
	bad := func(format string, a ...any) {
		*diags = append(*diags, Diagnostic{Path: path, Message: fmt.Sprintf(format, a...)})
	}
	if fv.Type() == durationType {
		d, _ := time.ParseDuration(raw.(string))
		fv.SetInt(int64(d))
		return
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw.(string))
	case reflect.Bool:
		fv.SetBool(raw.(bool))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw.(json.Number).String(), 10, 64)
		if err != nil || fv.OverflowInt(n) {
			bad("%s is out of range for this key", raw)
			return
		}
		fv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw.(json.Number).String(), 10, 64)
		if err != nil || fv.OverflowUint(n) {
			bad("want a whole number of at least 0 in range, got %s", raw)
			return
		}
		fv.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := raw.(json.Number).Float64()
		if err != nil || fv.OverflowFloat(f) {
			bad("%s is out of range for this key", raw)
			return
		}
		fv.SetFloat(f)
	case reflect.Pointer:
		p := reflect.New(fv.Type().Elem())
		decodeValue(p.Elem(), raw, path, diags)
		fv.Set(p)
	case reflect.Struct:
		decodeStruct(fv, raw.(map[string]any), path, diags)
	case reflect.Slice:
		l := raw.([]any)
		s := reflect.MakeSlice(fv.Type(), len(l), len(l))
		for i, e := range l {
			decodeValue(s.Index(i), e, fmt.Sprintf("%s[%d]", path, i), diags)
		}
		fv.Set(s)
	case reflect.Map:
		src := raw.(map[string]any)
		out := reflect.MakeMapWithSize(fv.Type(), len(src))
		for k, e := range src {
			ev := reflect.New(fv.Type().Elem()).Elem()
			decodeValue(ev, e, path+"."+k, diags)
			out.SetMapIndex(reflect.ValueOf(k).Convert(fv.Type().Key()), ev)
		}
		fv.Set(out)
	}
}

// InfoOf describes a plugin as the host sees it: its Info (or the kind alone when it does not
// implement Describer), with Schema derived from Info.Config when the plugin declares its config
// as a struct. An error means the plugin cannot describe its config (a field of an unsupported
// type, a bad default tag).
func InfoOf(plugin any, kind string) (Info, error) {
	if r, ok := plugin.(interface{ remoteInfo() (Info, error) }); ok {
		return r.remoteInfo()
	}
	info := Info{Kind: kind, ProtocolVersion: ProtocolVersion}
	if d, ok := plugin.(Describer); ok {
		info = d.Info()
		if info.Kind == "" {
			info.Kind = kind
		}
		if info.ProtocolVersion == 0 {
			info.ProtocolVersion = ProtocolVersion
		}
	}
	if info.Config != nil && info.Schema == nil {
		s, err := SchemaOf(info.Config)
		if err != nil {
			return info, err
		}
		info.Schema = s
	}
	return info, nil
}

// Configure is the configure call every plugin gets, from the host in-process and from the SDK
// in a plugin process: with req.ValidateOnly and a config struct declared in Info.Config, it
// decodes and validates the block without calling the plugin's Configure (so nothing starts);
// otherwise it calls the plugin's Configure, if it has one.
func Configure(ctx context.Context, plugin any, req ConfigureRequest) []Diagnostic {
	if req.Host == nil {
		req.Host = noHost{}
	}
	if req.ValidateOnly {
		if d, ok := plugin.(Describer); ok {
			if cfg := d.Info().Config; cfg != nil {
				t := reflect.TypeOf(cfg)
				for t.Kind() == reflect.Pointer {
					t = t.Elem()
				}
				return DecodeConfig(req.Config, reflect.New(t).Interface())
			}
		}
	}
	c, ok := plugin.(Configurable)
	if !ok {
		return nil
	}
	return c.Configure(ctx, req)
}
