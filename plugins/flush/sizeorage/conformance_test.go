package sizeorage_test

import (
	"testing"

	"github.com/heraldhq/herald/plugins/flush/sizeorage"
	"github.com/heraldhq/herald/sdk"
	"github.com/heraldhq/herald/sdk/plugintest"
)

func TestConformance(t *testing.T) {
	plugintest.FlushPolicy(t, plugintest.FlushPolicyCase{
		New: func(*testing.T) sdk.FlushPolicy { return sizeorage.New() },
		// size-or-age takes its batch size from its own config, not from the host's limit in the
		// PendingState; it conforms when the two agree (the smallest limit among the States).
		Config: map[string]any{"max_batch_size": float64(50), "batching_delay": "1ms"},
	})
}

// TestMain keeps go-plugin's unix sockets in a temporary directory removed at the end.
func TestMain(m *testing.M) { plugintest.Main(m) }
