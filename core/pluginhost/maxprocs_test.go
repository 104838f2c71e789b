package pluginhost

import (
	"slices"
	"testing"
)

func TestMaxProcsEnv(t *testing.T) {
	procs := func(n int) *int { return &n }
	for _, c := range []struct {
		name string
		spec Spec
		want []string
	}{
		{"default", Spec{}, []string{"GOMAXPROCS=1"}},
		{"set", Spec{MaxProcs: procs(4)}, []string{"GOMAXPROCS=4"}},
		{"Go's default", Spec{MaxProcs: procs(0)}, nil},
		{"env wins", Spec{MaxProcs: procs(4), Env: []string{"A=b", "GOMAXPROCS=2"}}, nil},
		{"other env", Spec{Env: []string{"GOMAXPROCSX=2"}}, []string{"GOMAXPROCS=1"}},
	} {
		if got := c.spec.maxProcsEnv(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
