package kernel_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/lio/configfstest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// TestLIOExportThinProvisioning: the export of a thin old LUN writes
// attrib/emulate_tpu (and emulate_tpws only when asked) besides the
// logical block size; a fully provisioned one leaves LIO's defaults.
func TestLIOExportThinProvisioning(t *testing.T) {
	for _, c := range []struct {
		name      string
		tpu, tpws bool
		want      map[string]string
	}{
		{"unmap", true, false, map[string]string{"block_size": "4096", "emulate_tpu": "1", "emulate_tpws": "0"}},
		{"unmap and write same", true, true, map[string]string{"block_size": "4096", "emulate_tpu": "1", "emulate_tpws": "1"}},
		{"fully provisioned", false, false, map[string]string{"block_size": "4096", "emulate_tpu": "0", "emulate_tpws": "0"}},
	} {
		f := configfstest.New(t)
		r := lio.NewRoot(lio.Options{ConfigFSRoot: f.Root, FS: f, Addrs: lio.StaticAddrs{netip.MustParsePrefix("192.0.2.1/24")}})
		e, err := kernel.LIOExport(plan.ExportSpec{IQN: "iqn.2026-11.io.lunferry.proxy:v1", Portals: []string{"192.0.2.1:3260"},
			StorageName: "lunferry-v1", Device: "/dev/dm-3", HostIQN: "iqn.1994-05.com.redhat:h", BlockSize: 4096,
			EmulateTPU: c.tpu, EmulateTPWS: c.tpws}, nil)
		require.NoError(t, err)
		require.NoError(t, r.Apply(context.Background(), e), c.name)
		dirs, err := filepath.Glob(filepath.Join(f.Root, "core", "iblock_*", "lunferry-v1", "attrib"))
		require.NoError(t, err)
		require.Len(t, dirs, 1)
		for attr, want := range c.want {
			b, err := os.ReadFile(filepath.Join(dirs[0], attr))
			require.NoError(t, err)
			require.Equal(t, want, strings.TrimSpace(string(b)), "%s: attrib/%s", c.name, attr)
		}
	}
}
