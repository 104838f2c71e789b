package plugintest

import (
	"sort"
	"strings"
	"testing"

	"github.com/heraldhq/herald/sdk"
)

// unknownKey is the config key the suites expect a plugin to refuse.
const unknownKey = "plugintest_no_such_key"

// checkDescribeConfigure checks Info and Configure. impl is the plugin, p what the suite talks to
// (impl, or herald's side of it through gRPC), neither configured yet.
func checkDescribeConfigure(t *testing.T, kind string, impl, p any, cfg map[string]any, o Options) {
	t.Helper()
	impl = unguard(impl)
	if _, ok := impl.(sdk.Describer); ok {
		info := p.(sdk.Describer).Info()
		if strings.TrimSpace(info.Name) == "" {
			t.Error("Info().Name is empty: give the plugin a name; herald shows it in logs, errors and traces")
		}
		if info.Kind != "" && info.Kind != kind {
			t.Errorf("Info().Kind is %q but the plugin is served as a %s: herald refuses to start a plugin of the wrong kind; "+
				"set Kind to sdk.Kind… of what it is, or leave it empty", info.Kind, kind)
		}
		paths := map[string]bool{}
		for i, k := range info.Schema {
			switch {
			case k.Path == "":
				t.Errorf("Info().Schema[%d] has no Path: name the config key it documents", i)
			case paths[k.Path]:
				t.Errorf("Info().Schema documents %q twice", k.Path)
			}
			paths[k.Path] = true
		}
		if len(info.Schema) > 0 {
			for _, key := range sortedKeys(cfg) {
				documented := false
				for p := range paths {
					if p == key || strings.HasPrefix(p, key+".") {
						documented = true
					}
				}
				if !documented {
					t.Errorf("the config key %q is accepted but not in Info().Schema: document every key of the config {} block", key)
				}
			}
		}
	}
	if _, ok := impl.(sdk.Configurable); !ok {
		if len(cfg) > 0 {
			t.Errorf("the case gives a Config, but the plugin does not implement sdk.Configurable: herald would ignore its config {} block. " +
				"Implement Configure(ctx, sdk.ConfigureRequest) []sdk.Diagnostic")
		}
		return
	}
	if o.SkipUnknownKey {
		return
	}
	withUnknown := map[string]any{unknownKey: 1}
	for k, v := range cfg {
		withUnknown[k] = v
	}
	diags := Configure(t, p, withUnknown, nil)
	for _, d := range diags {
		if !d.Warning && d.Path == unknownKey {
			if strings.TrimSpace(d.Message) == "" {
				t.Errorf("the diagnostic for the unknown key %q has no Message: say what is wrong (\"unknown key (known: …)\")", unknownKey)
			}
			return
		}
	}
	t.Errorf("Configure did not refuse the unknown key %q (diagnostics: %s): answer sdk.Diagnostic{Path: %q, Message: \"unknown key\"} "+
		"so that a typo in an operator's config {} block stops herald with the block's file and line "+
		"(or set Options.SkipUnknownKey if the block is free-form)", unknownKey, describeDiags(diags), unknownKey)
}

func describeDiags(ds []sdk.Diagnostic) string {
	if len(ds) == 0 {
		return "none"
	}
	var parts []string
	for _, d := range ds {
		kind := "error"
		if d.Warning {
			kind = "warning"
		}
		parts = append(parts, kind+" "+pathOr(d.Path)+": "+d.Message)
	}
	return strings.Join(parts, "; ")
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
