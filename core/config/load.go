package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment variable herald reads. Levels are separated by a double
// underscore, so names with single underscores stay unambiguous:
// HERALD_REPLICATION__MAX_BATCH_SIZE=500 sets replication.max_batch_size.
const EnvPrefix = "HERALD_"

func toInternal(key string) string { return strings.ReplaceAll(key, ".", delim) }
func splitKey(key string) []string { return strings.Split(key, ".") }
func joinInternal(p []string) string {
	return strings.Join(p, delim)
}

// Error is a configuration error at a position.
type Error struct {
	Pos Position
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Pos.String() + ": " + e.Msg
	}
	return e.Pos.String() + ": " + e.Key + ": " + e.Msg
}

// Errors is every problem found, in file order.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	return es
}

type mapProvider map[string]any

func (m mapProvider) ReadBytes() ([]byte, error) { return nil, errors.New("not supported") }
func (m mapProvider) Read() (map[string]any, error) {
	return m, nil
}

type bytesProvider []byte

func (b bytesProvider) ReadBytes() ([]byte, error)    { return b, nil }
func (b bytesProvider) Read() (map[string]any, error) { return nil, errors.New("not supported") }

// Load reads path (may be "" for defaults only), then environment variables HERALD_... from env
// (usually os.Environ()), then overrides of the form "key.path=value" (the -set flag), and returns
// the validated configuration. Every error names its source.
func Load(path string, env []string, overrides []string) (*Config, error) {
	var src []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		src = b
	}
	return Parse(path, src, env, overrides)
}

// Parse is Load for a file already read.
func Parse(filename string, src []byte, env []string, overrides []string) (*Config, error) {
	k := koanf.New(delim)
	pos := map[string]Position{}
	if len(src) > 0 {
		p := &hclParser{filename: filename, pos: pos}
		if err := k.Load(bytesProvider(src), p); err != nil {
			return nil, err
		}
	}
	var errs Errors
	envMap, envErrs := fromEnv(env, pos)
	errs = append(errs, envErrs...)
	if err := k.Load(mapProvider(envMap), nil); err != nil {
		return nil, err
	}
	setMap, setErrs := fromOverrides(overrides, pos)
	errs = append(errs, setErrs...)
	if err := k.Load(mapProvider(setMap), nil); err != nil {
		return nil, err
	}

	cfg := Default()
	cfg.file = filename
	cfg.pos = pos
	errs = append(errs, checkKeys(k.Raw(), nil, reflect.TypeOf(*cfg), cfg)...)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:    "koanf",
		Result:     cfg,
		DecodeHook: durationHook,
		ZeroFields: false,
	})
	if err != nil {
		return nil, err
	}
	if err := dec.Decode(k.Raw()); err != nil {
		return nil, &Error{Pos: Position{File: filename}, Msg: err.Error()}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// durationHook turns "500ms" into a time.Duration. Bare numbers were rejected by checkKeys: a "30"
// that means nanoseconds to Go and seconds to a reader is a trap.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to == durationType || (to.Kind() == reflect.Pointer && to.Elem() == durationType) {
		if s, ok := data.(string); ok {
			return time.ParseDuration(s)
		}
	}
	return data, nil
}

// checkKeys walks the merged data against the Config type: unknown keys and values of the wrong
// type are reported with the position where they were set.
func checkKeys(data map[string]any, path []string, t reflect.Type, cfg *Config) Errors {
	var errs Errors
	fields := map[string]reflect.StructField{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag := f.Tag.Get("koanf"); tag != "" {
			fields[tag] = f
			names = append(names, tag)
		}
	}
	for key, v := range data {
		kp := append(append([]string{}, path...), key)
		f, ok := fields[key]
		if !ok {
			errs = append(errs, &Error{Pos: cfg.posOf(kp), Key: strings.Join(kp, "."),
				Msg: fmt.Sprintf("unknown key (known here: %s)", strings.Join(sorted(names), ", "))})
			continue
		}
		errs = append(errs, checkValue(v, kp, f.Type, cfg)...)
	}
	return errs
}

func sorted(s []string) []string { sort.Strings(s); return s }

func (c *Config) posOf(kp []string) Position {
	for i := len(kp); i > 0; i-- {
		if p, ok := c.pos[joinInternal(kp[:i])]; ok {
			return p
		}
	}
	return Position{File: c.file}
}

func checkValue(v any, kp []string, t reflect.Type, cfg *Config) Errors {
	wrong := func(want string) Errors {
		return Errors{{Pos: cfg.posOf(kp), Key: strings.Join(kp, "."),
			Msg: fmt.Sprintf("want %s, got %s", want, describe(v))}}
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		s, ok := v.(string)
		if !ok {
			return wrong(`a duration such as "500ms" or "30s"`)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return wrong(`a duration such as "500ms" or "30s"`)
		}
		if d < 0 {
			return Errors{{Pos: cfg.posOf(kp), Key: strings.Join(kp, "."), Msg: "must not be negative"}}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			return wrong("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return wrong("true or false")
		}
	case reflect.Int, reflect.Int64:
		if _, ok := v.(int64); !ok {
			return wrong("a whole number")
		}
	case reflect.Float64:
		switch v.(type) {
		case int64, float64:
		default:
			return wrong("a number")
		}
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return wrong("a list")
		}
		var errs Errors
		for i, e := range l {
			errs = append(errs, checkValue(e, append(append([]string{}, kp...), strconv.Itoa(i)), t.Elem(), cfg)...)
		}
		return errs
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return wrong("a block or an object")
		}
		if t.Elem().Kind() == reflect.Interface {
			return nil // free-form: a plugin's own config, validated by the plugin
		}
		var errs Errors
		for key, e := range m {
			errs = append(errs, checkValue(e, append(append([]string{}, kp...), key), t.Elem(), cfg)...)
		}
		return errs
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return wrong("a block")
		}
		return checkKeys(m, kp, t, cfg)
	}
	return nil
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case int64, float64, bool:
		return fmt.Sprint(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a block"
	}
	return fmt.Sprintf("%T", v)
}

// knownKind returns the Go type at a dotted key path of Config, for converting env and flag strings.
func knownType(parts []string) (reflect.Type, bool) {
	t := reflect.TypeOf(Config{})
	for _, p := range parts {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			found := false
			for i := 0; i < t.NumField(); i++ {
				if t.Field(i).Tag.Get("koanf") == p {
					t = t.Field(i).Type
					found = true
					break
				}
			}
			if !found {
				return nil, false
			}
		case reflect.Map:
			t = t.Elem()
		default:
			return nil, false
		}
	}
	return t, true
}

// typed converts a string from the environment or a flag to the type the key wants.
func typed(parts []string, s string) (any, error) {
	t, ok := knownType(parts)
	if !ok {
		return s, nil // reported as unknown by checkKeys
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return s, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", s)
		}
		return b, nil
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want a whole number, got %q", s)
		}
		return i, nil
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("want a number, got %q", s)
		}
		return f, nil
	case reflect.Slice:
		var out []any
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	}
	return s, nil
}

func setPath(m map[string]any, parts []string, v any) {
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func fromEnv(env []string, pos map[string]Position) (map[string]any, Errors) {
	out := map[string]any{}
	var errs Errors
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		parts := strings.Split(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__")
		src := Position{Source: "environment variable " + name}
		if _, known := knownType(parts); !known {
			// HERALD_ variables that are not configuration (none today) would be listed here.
			errs = append(errs, &Error{Pos: src, Msg: "names no configuration key (levels are separated by __, e.g. HERALD_REPLICATION__MAX_BATCH_SIZE)"})
			continue
		}
		v, err := typed(parts, val)
		if err != nil {
			errs = append(errs, &Error{Pos: src, Key: strings.Join(parts, "."), Msg: err.Error()})
			continue
		}
		setPath(out, parts, v)
		pos[joinInternal(parts)] = src
	}
	return out, errs
}

func fromOverrides(overrides []string, pos map[string]Position) (map[string]any, Errors) {
	out := map[string]any{}
	var errs Errors
	for _, o := range overrides {
		key, val, ok := strings.Cut(o, "=")
		src := Position{Source: "flag -set " + o}
		if !ok || key == "" {
			errs = append(errs, &Error{Pos: src, Msg: "want key.path=value"})
			continue
		}
		parts := splitKey(key)
		v, err := typed(parts, val)
		if err != nil {
			errs = append(errs, &Error{Pos: src, Key: key, Msg: err.Error()})
			continue
		}
		setPath(out, parts, v)
		pos[joinInternal(parts)] = src
	}
	return out, errs
}
