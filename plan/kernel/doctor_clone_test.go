package kernel

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDoctorNamesDKMSPackage: without the clone target, doctor's fix names
// the package that builds it on Debian.
func TestDoctorNamesDKMSPackage(t *testing.T) {
	sys := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(sys, "class", "misc", "device-mapper"), 0o755))
	targets := func(context.Context) ([]string, error) { return []string{"linear", "striped", "error"}, nil }
	for _, c := range Doctor(context.Background(), DoctorOptions{SysRoot: sys, DevRoot: t.TempDir(), ConfigFSRoot: t.TempDir(),
		StateDir: t.TempDir(), Runner: &recordedRunner{}, DMTargets: targets}) {
		if c.Name == "dm-clone" {
			require.False(t, c.OK)
			require.Contains(t, c.Detail, "no clone target among linear,striped,error")
			require.Contains(t, c.Fix, "lunferry-dm-clone-dkms")
			return
		}
	}
	t.Fatal("no dm-clone check")
}
