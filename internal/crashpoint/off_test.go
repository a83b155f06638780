//go:build !crashpoints

package crashpoint

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProductBuildHasNoCrashPoints: without the crashpoints tag, Hit of
// the very point the environment names neither kills nor traces.
func TestProductBuildHasNoCrashPoints(t *testing.T) {
	if Enabled {
		t.Fatal("Enabled in a build without the crashpoints tag")
	}
	trace := filepath.Join(t.TempDir(), "trace")
	t.Setenv(EnvAt, "push:device")
	t.Setenv(EnvTrace, trace)
	Hit("push:device")
	Hit("push:device")
	if _, err := os.Stat(trace); !os.IsNotExist(err) {
		t.Fatalf("the product build's Hit wrote a trace: %v", err)
	}
}
