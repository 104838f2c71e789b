package adaptive_test

import (
	"testing"

	"github.com/heraldhq/herald/plugins/flush/adaptive"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{
		New: func(*testing.T) sdk.FlushPolicy { return adaptive.New(adaptive.DefaultConfig()) },
	})
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
