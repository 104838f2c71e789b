package config

import (
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// delim separates levels of a key path inside koanf. It cannot be "." because peer blocks are
// labelled with URLs ("http://10.0.0.2:8761/eureka/"), which contain dots.
const delim = "\x1f"

// Position is where a key was set: a file and line, or an environment variable or flag.
type Position struct {
	File   string
	Line   int
	Column int
	// Source names a non-file origin ("environment variable HERALD_X", "flag -set x=1").
	Source string
}

func (p Position) String() string {
	switch {
	case p.Source != "":
		return p.Source
	case p.File == "":
		return "default"
	case p.Line == 0:
		return p.File
	}
	return fmt.Sprintf("%s:%d,%d", p.File, p.Line, p.Column)
}

// hclParser is a koanf parser over HCL2 native syntax. koanf's own parsers/hcl reads HCL1 and turns
// labelled blocks into lists; this one maps `a "x" "y" { k = v }` to a.x.y.k and records the source
// position of every key, so any later error can name file, line and key.
type hclParser struct {
	filename string
	pos      map[string]Position
}

// Unmarshal implements koanf.Parser.
func (p *hclParser) Unmarshal(src []byte) (map[string]any, error) {
	file, diags := hclsyntax.ParseConfig(src, p.filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		return nil, fmt.Errorf("%s: not HCL native syntax", p.filename)
	}
	if p.pos == nil {
		p.pos = map[string]Position{}
	}
	out := map[string]any{}
	if err := p.body(body, nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Marshal implements koanf.Parser; herald never writes configuration back.
func (p *hclParser) Marshal(map[string]any) ([]byte, error) {
	return nil, fmt.Errorf("config: writing HCL is not supported")
}

// diagError reports the first error of a parse: one mistake (an unterminated string above all)
// makes the parser report every line after it, and only the first error is the real one. Among
// errors at the same position, an unterminated string or block is named in preference.
func diagError(diags hcl.Diagnostics) error {
	var first *hcl.Diagnostic
	n := 0
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		n++
		if first == nil || before(d, first) {
			first = d
		}
	}
	if first == nil {
		return fmt.Errorf("%s", diags.Error())
	}
	loc := ""
	if first.Subject != nil {
		loc = fmt.Sprintf("%s:%d,%d: ", first.Subject.Filename, first.Subject.Start.Line, first.Subject.Start.Column)
	}
	msg := first.Summary
	if first.Detail != "" {
		msg += "; " + first.Detail
	}
	if n > 1 {
		msg += fmt.Sprintf(" (%d more errors after it not shown: fix this one first)", n-1)
	}
	return fmt.Errorf("%s", loc+msg)
}

// before orders diagnostics by position; at the same position an "Unterminated ..." or
// "Unclosed ..." one comes first.
func before(a, b *hcl.Diagnostic) bool {
	switch {
	case a.Subject == nil:
		return false
	case b.Subject == nil:
		return true
	case a.Subject.Start.Byte != b.Subject.Start.Byte:
		return a.Subject.Start.Byte < b.Subject.Start.Byte
	}
	return unclosed(a) && !unclosed(b)
}

func unclosed(d *hcl.Diagnostic) bool {
	return strings.HasPrefix(d.Summary, "Unterminated") || strings.HasPrefix(d.Summary, "Unclosed")
}

func (p *hclParser) mark(path []string, r hcl.Range) {
	p.pos[strings.Join(path, delim)] = Position{File: r.Filename, Line: r.Start.Line, Column: r.Start.Column}
}

var evalCtx = &hcl.EvalContext{Functions: map[string]function.Function{
	// env("NAME") reads an environment variable, env("NAME", "default") with a default. An unset
	// variable without a default is an error, not "": a forgotten secret or port must not start a
	// node on a blank value. There are no variables, so a file means the same thing wherever it is
	// loaded.
	"env": function.New(&function.Spec{
		Params:   []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam: &function.Parameter{Name: "default", Type: cty.String},
		Type:     function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			name := args[0].AsString()
			if v, ok := os.LookupEnv(name); ok {
				return cty.StringVal(v), nil
			}
			switch len(args) {
			case 1:
				return cty.NilVal, fmt.Errorf("environment variable %s is not set (give a default: env(%q, \"...\"))", name, name)
			case 2:
				return args[1], nil
			}
			return cty.NilVal, fmt.Errorf("env takes a name and at most one default")
		},
	}),
	// tonumber(env("PORT")) and tobool(env("DEBUG", "false")) give env() values their type.
	"tonumber": stdlib.MakeToFunc(cty.Number),
	"tobool":   stdlib.MakeToFunc(cty.Bool),
}}

func (p *hclParser) body(b *hclsyntax.Body, path []string, out map[string]any) error {
	for name, attr := range b.Attributes {
		kp := append(append([]string{}, path...), name)
		v, diags := attr.Expr.Value(evalCtx)
		if diags.HasErrors() {
			return diagError(diags)
		}
		gv, err := toGo(v)
		if err != nil {
			return fmt.Errorf("%s:%d,%d: %s: %w", attr.SrcRange.Filename, attr.SrcRange.Start.Line,
				attr.SrcRange.Start.Column, strings.Join(kp, "."), err)
		}
		out[name] = gv
		p.mark(kp, attr.NameRange)
		// Keys inside object values get the attribute's position.
		if m, ok := gv.(map[string]any); ok {
			p.markNested(kp, m, attr.NameRange)
		}
	}
	for _, blk := range b.Blocks {
		kp := append(append([]string{}, path...), blk.Type)
		target := out
		for _, seg := range append([]string{blk.Type}, blk.Labels...) {
			next, _ := target[seg].(map[string]any)
			if next == nil {
				if _, exists := target[seg]; exists {
					return fmt.Errorf("%s:%d,%d: %s: set both as a value and as a block",
						blk.TypeRange.Filename, blk.TypeRange.Start.Line, blk.TypeRange.Start.Column, strings.Join(kp, "."))
				}
				next = map[string]any{}
				target[seg] = next
			}
			target = next
		}
		p.mark(kp, blk.TypeRange)
		for _, l := range blk.Labels {
			kp = append(kp, l)
			p.mark(kp, blk.TypeRange)
		}
		if err := p.body(blk.Body, kp, target); err != nil {
			return err
		}
	}
	return nil
}

func (p *hclParser) markNested(path []string, m map[string]any, r hcl.Range) {
	for k, v := range m {
		kp := append(append([]string{}, path...), k)
		p.mark(kp, r)
		if mm, ok := v.(map[string]any); ok {
			p.markNested(kp, mm, r)
		}
	}
}

// toGo converts an HCL value to plain Go data: string, bool, int64 or float64, []any, map[string]any.
func toGo(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, fmt.Errorf("null is not allowed")
	}
	if !v.IsKnown() {
		return nil, fmt.Errorf("value is not known")
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		bf := v.AsBigFloat()
		if bf.IsInt() {
			i, acc := bf.Int64()
			if acc != big.Exact {
				return nil, fmt.Errorf("number %s is out of range", bf.String())
			}
			return i, nil
		}
		f, _ := bf.Float64()
		return f, nil
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			g, err := toGo(ev)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			g, err := toGo(ev)
			if err != nil {
				return nil, err
			}
			out[k.AsString()] = g
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", t.FriendlyName())
}
