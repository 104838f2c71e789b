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

// Config is the handler's config {} block.
type Config struct {
	RequiredMetadata []string `config:"required_metadata" description:"metadata keys every instance must carry"`
	AppPattern       string   `config:"app_pattern" description:"regular expression application names must match"`
}

// Validate implements sdk.Validator: the keys are not empty and the pattern compiles.
func (c Config) Validate() []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	for i, k := range c.RequiredMetadata {
		if k == "" {
			diags = append(diags, sdk.Diagnostic{Path: fmt.Sprintf("required_metadata[%d]", i), Message: "want a metadata key, got \"\""})
		}
	}
	if _, err := regexp.Compile(c.AppPattern); err != nil {
		diags = append(diags, sdk.Diagnostic{Path: "app_pattern", Message: fmt.Sprintf("want a regular expression: %v", err)})
	}
	return diags
}

// Info implements sdk.Describer.
func (a *Admission) Info() sdk.Info {
	return sdk.Info{Name: "admission", Kind: sdk.KindActionHandler, ProtocolVersion: sdk.ProtocolVersion, Config: Config{}}
}

// Actions implements sdk.ActionHandler.
func (a *Admission) Actions() []sdk.ActionSpec {
	return []sdk.ActionSpec{{Action: sdk.ActionRegister, Accept: true, Receive: sdk.ReceiveValidate}}
}

// Configure implements sdk.Configurable.
func (a *Admission) Configure(_ context.Context, req sdk.ConfigureRequest) []sdk.Diagnostic {
	var c Config
	if diags := req.Decode(&c); sdk.HasErrors(diags) {
		return diags
	}
	r := Rules{RequiredMetadata: c.RequiredMetadata}
	if c.AppPattern != "" {
		r.AppPattern = regexp.MustCompile(c.AppPattern) // compiled by Validate
	}
	sort.Strings(r.RequiredMetadata)
	a.mu.Lock()
	a.rules = r
	a.mu.Unlock()
	return nil
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
