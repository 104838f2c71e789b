package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"sync"

	"github.com/heraldhq/herald/sdk"
)

// Rules is what a registration must satisfy.
type Rules struct {
	// RequiredMetadata are metadata keys every instance must carry (e.g. "owner").
	RequiredMetadata []string
	// AppPattern, when set, is a regular expression the application name must match.
	AppPattern *regexp.Regexp
}

// Check returns why an instance (bare Eureka InstanceInfo JSON) breaks the rules, or "".
func (r Rules) Check(app string, instance []byte) string {
	if r.AppPattern != nil && !r.AppPattern.MatchString(app) {
		return fmt.Sprintf("registration refused: application name %q does not match %s", app, r.AppPattern)
	}
	var inst struct {
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(instance, &inst); err != nil {
		return "registration refused: the instance is not valid JSON"
	}
	for _, k := range r.RequiredMetadata {
		if inst.Metadata[k] == "" {
			return fmt.Sprintf("registration refused: metadata key %q is required", k)
		}
	}
	return ""
}

// Admission refuses registrations that break its rules: a client gets 422 and the reason at the
// node it registers with, and a node also refuses replicated registrations that break them (so a
// node configured without the rule cannot spread such an instance).
type Admission struct {
	sdk.UnimplementedActionHandler
	mu    sync.RWMutex
	rules Rules
}

// New returns the handler with no rules; Configure sets them.
func New() *Admission { return &Admission{} }

// Info implements sdk.Describer.
func (a *Admission) Info() sdk.Info {
	return sdk.Info{Name: "admission", Kind: sdk.KindActionHandler, ProtocolVersion: sdk.ProtocolVersion, Schema: []sdk.ConfigKey{
		{Path: "required_metadata", Type: "list", Description: "metadata keys every instance must carry"},
		{Path: "app_pattern", Type: "string", Description: "regular expression application names must match"},
	}}
}

// Actions implements sdk.ActionHandler.
func (a *Admission) Actions() []sdk.ActionSpec {
	return []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true, Receive: sdk.ReceiveValidate}}
}

// Configure implements sdk.Configurable.
func (a *Admission) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	var r Rules
	for k, v := range req.Config {
		switch k {
		case "required_metadata":
			list, ok := v.([]any)
			if ss, isStrings := v.([]string); isStrings { // set from Go rather than HCL
				list, ok = make([]any, len(ss)), true
				for i, s := range ss {
					list[i] = s
				}
			}
			if !ok {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a list of strings, got %v", v)})
				continue
			}
			for i, e := range list {
				s, ok := e.(string)
				if !ok || s == "" {
					diags = append(diags, sdk.Diagnostic{Path: fmt.Sprintf("%s[%d]", k, i), Message: fmt.Sprintf("want a metadata key, got %v", e)})
					continue
				}
				r.RequiredMetadata = append(r.RequiredMetadata, s)
			}
		case "app_pattern":
			s, _ := v.(string)
			re, err := regexp.Compile(s)
			if err != nil || s == "" {
				diags = append(diags, sdk.Diagnostic{Path: k, Message: fmt.Sprintf("want a regular expression, got %v", v)})
				continue
			}
			r.AppPattern = re
		default:
			diags = append(diags, sdk.Diagnostic{Path: k, Message: "unknown key (known: app_pattern, required_metadata)"})
		}
	}
	sort.Strings(r.RequiredMetadata)
	a.mu.Lock()
	a.rules = r
	a.mu.Unlock()
	return diags
}

func (a *Admission) check(it sdk.Item) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.rules.Check(it.App, it.Instance)
}

// Accept implements sdk.ActionHandler: the client's registration is refused with 422 and why.
func (a *Admission) Accept(_ context.Context, it sdk.Item) (sdk.Item, error) {
	if it.Action == sdk.ActionRegister {
		if why := a.check(it); why != "" {
			return it, sdk.Refuse(http.StatusUnprocessableEntity, "%s", why)
		}
	}
	return it, nil
}

// Receive implements sdk.ActionHandler: replicated registrations that break the rules are answered
// 422 and not applied.
func (a *Admission) Receive(ctx context.Context, req sdk.ReceiveRequest) ([]sdk.ItemResult, error) {
	if req.Mode != sdk.ReceiveValidate {
		return a.UnimplementedActionHandler.Receive(ctx, req)
	}
	out := make([]sdk.ItemResult, len(req.Items))
	for i, it := range req.Items {
		if it.Action == sdk.ActionRegister && a.check(it) != "" {
			out[i].StatusCode = http.StatusUnprocessableEntity
		}
	}
	return out, nil
}
