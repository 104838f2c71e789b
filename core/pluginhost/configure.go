package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/heraldhq/herald/sdk"
)

// configure is the one configure path of every plugin, built-in or external, in-process or a
// process: describe (kind and schema), check the config block against the schema with the
// block's positions, then the plugin's Configure (validate-only for herald config validate).
func configure(ctx context.Context, spec Spec, impl any, logger hclog.Logger) error {
	info, err := sdk.InfoOf(impl, spec.Kind)
	if err != nil {
		return fmt.Errorf("%s: the plugin cannot describe its config block: %v", spec, err)
	}
	if info.Kind != "" && info.Kind != spec.Kind {
		return fmt.Errorf("%s: the plugin is a %s, not a %s", spec, info.Kind, spec.Kind)
	}
	block := map[string]any{}
	for k, v := range spec.Defaults {
		block[k] = v
	}
	for k, v := range spec.Config {
		block[k] = v
	}
	if len(info.Schema) > 0 && spec.FromText != nil {
		fromText(info.Schema, block, spec.FromText)
	}
	raw, err := json.Marshal(block)
	if err != nil {
		return fmt.Errorf("%s: the config block cannot be sent to the plugin: %v", spec, err)
	}
	if len(info.Schema) > 0 {
		if diags := sdk.CheckConfig(info.Schema, raw); sdk.HasErrors(diags) {
			return refused(spec, diags, logger)
		}
	}
	host := spec.Host
	if host == nil {
		host = sdk.NoHost()
	}
	diags := sdk.Configure(ctx, impl, sdk.ConfigureRequest{Config: raw, NodeName: spec.NodeName, NodeURL: spec.NodeURL,
		LogLevel: spec.LogLevel, Telemetry: spec.Telemetry, Host: host, PeerAuth: spec.PeerAuth, ValidateOnly: spec.ValidateOnly,
		// In-process, the plugin logs through the node's logger; a plugin process gets its own
		// (the SDK sets it there, and go-plugin carries its lines here).
		Logger: sdk.PluginLogger(logger, spec.Kind, spec.Name, spec.NodeName)})
	return refused(spec, diags, logger)
}

var index = regexp.MustCompile(`\[\d+\]`)

// refused reports a plugin's diagnostics: warnings are logged, errors refuse the plugin, each on a
// line of its own with the file:line of the key and the key's full path.
func refused(spec Spec, diags []sdk.Diagnostic, logger hclog.Logger) error {
	var errs []string
	for _, d := range diags {
		key := "plugin." + spec.Kind + "." + spec.Name + ".config"
		var path []string
		if d.Path != "" {
			key += "." + d.Path
			path = strings.Split(index.ReplaceAllString(d.Path, ""), ".")
		}
		if d.Warning {
			logger.Warn("plugin configuration", "key", key, "warning", d.Message)
			continue
		}
		pos := spec.Source
		if spec.KeyPos != nil {
			pos = spec.KeyPos(path)
		}
		errs = append(errs, fmt.Sprintf("%s: %s: %s", pos, key, d.Message))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: configuration refused:\n  %s", spec, strings.Join(errs, "\n  "))
}

// fromText reads the values set as text (environment variables, -set flags) as the type the
// schema wants at their key; HCL's own values are left as written.
func fromText(schema []sdk.ConfigKey, block map[string]any, isText func([]string) bool) {
	types := map[string]string{}
	for _, k := range schema {
		types[k.Path] = k.Type
	}
	var walk func(m map[string]any, path []string)
	walk = func(m map[string]any, path []string) {
		for k, v := range m {
			kp := append(append([]string{}, path...), k)
			switch x := v.(type) {
			case map[string]any:
				walk(x, kp)
			case string:
				if !isText(kp) {
					continue
				}
				switch types[strings.Join(kp, ".")] {
				case sdk.TypeInt:
					if n, err := strconv.ParseInt(x, 10, 64); err == nil {
						m[k] = n
					}
				case sdk.TypeNumber:
					if f, err := strconv.ParseFloat(x, 64); err == nil {
						m[k] = f
					}
				case sdk.TypeBool:
					if b, err := strconv.ParseBool(x); err == nil {
						m[k] = b
					}
				}
			}
		}
	}
	walk(block, nil)
}

// Plugin is a loaded plugin: a built-in in-process or a supervised plugin process, loaded,
// checked and configured the same way.
type Plugin struct {
	spec Spec
	proc *Process
	impl any
}

// Load loads a plugin by its spec: in-process when spec.New is set, otherwise as a supervised
// process running spec.Command. Either way the plugin is described, its config block checked
// against its schema and configured by the same calls; every error names the block's file, line
// and key.
func Load(ctx context.Context, spec Spec, logger hclog.Logger) (*Plugin, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if spec.New == nil {
		if spec.ValidateOnly {
			return nil, Check(ctx, spec, logger)
		}
		p, err := Start(ctx, spec, logger)
		if err != nil {
			return nil, err
		}
		return &Plugin{spec: spec, proc: p}, nil
	}
	impl := spec.New()
	if err := configure(ctx, spec, impl, logger.Named(spec.Kind+"."+spec.Name)); err != nil {
		closeImpl(impl)
		return nil, err
	}
	if spec.ValidateOnly {
		closeImpl(impl)
		return nil, nil
	}
	return &Plugin{spec: spec, impl: impl}, nil
}

// Check runs the checks Load runs and starts nothing: the binary is found and its checksum
// verified, the process launched and its handshake checked, its config block checked against its
// schema and by the plugin's own validation (a validate-only Configure); then it is closed.
func Check(ctx context.Context, spec Spec, logger hclog.Logger) error {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	spec.ValidateOnly = true
	if spec.New != nil {
		_, err := Load(ctx, spec, logger)
		return err
	}
	p := &Process{spec: spec, logger: logger.Named(spec.Kind + "." + spec.Name), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	return p.launch(ctx, true)
}

func closeImpl(impl any) {
	if c, ok := impl.(io.Closer); ok {
		_ = c.Close()
	}
}

// Process is the supervised process behind the plugin; nil for an in-process plugin.
func (p *Plugin) Process() *Process { return p.proc }

// Impl is the in-process plugin; nil for a plugin process.
func (p *Plugin) Impl() any { return p.impl }

// Transport returns the plugin as a transport (nil if it is not one).
func (p *Plugin) Transport() sdk.Transport {
	if p.proc != nil {
		return p.proc.Transport()
	}
	t, _ := p.impl.(sdk.Transport)
	return t
}

// FlushPolicy returns the plugin as a flush policy (nil if it is not one).
func (p *Plugin) FlushPolicy() sdk.FlushPolicy {
	if p.proc != nil {
		return p.proc.FlushPolicy()
	}
	f, _ := p.impl.(sdk.FlushPolicy)
	return f
}

// ActionHandler returns the plugin as an action handler (nil if it is not one).
func (p *Plugin) ActionHandler() sdk.ActionHandler {
	if p.proc != nil {
		return p.proc.ActionHandler()
	}
	h, _ := p.impl.(sdk.ActionHandler)
	return h
}

// Close stops the plugin: the process is killed, an in-process plugin with something to stop (a
// transport's listener) is closed.
func (p *Plugin) Close() {
	if p.proc != nil {
		p.proc.Stop()
		return
	}
	closeImpl(p.impl)
}
