package kernel_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

func TestLIOExport(t *testing.T) {
	e, err := kernel.LIOExport(plan.ExportSpec{IQN: "iqn.2026-11.io.lunferry.proxy:v1", Portals: []string{"192.0.2.1:3260", "[2001:db8::1]:3261"},
		StorageName: "lunferry-v1", Device: "/dev/dm-3", HostIQN: "iqn.1994-05.com.redhat:h"}, nil)
	require.NoError(t, err)
	require.Equal(t, lio.BackstoreBlock, e.Backstore)
	require.Equal(t, "lunferry-v1", e.Name)
	require.Equal(t, "/dev/dm-3", e.Device)
	require.Equal(t, uint16(1), e.TPG)
	require.Equal(t, uint64(0), e.LUN)
	require.Equal(t, []lio.ACL{{InitiatorIQN: "iqn.1994-05.com.redhat:h"}}, e.ACLs)
	require.Equal(t, []lio.Portal{{Addr: netip.MustParseAddr("192.0.2.1"), Port: 3260}, {Addr: netip.MustParseAddr("2001:db8::1"), Port: 3261}}, e.Portals)
	require.NoError(t, e.Validate())
	_, err = kernel.LIOExport(plan.ExportSpec{Portals: []string{"proxy:3260"}}, nil)
	require.ErrorContains(t, err, "want ip:port")
}

// TestExportWithoutFUA: an online export over an old LUN without FUA
// does not offer it (the host's multipath map would send FUA writes down
// the direct path too).
func TestExportWithoutFUA(t *testing.T) {
	e, err := kernel.LIOExport(plan.ExportSpec{IQN: "iqn.2026-11.io.lunferry.proxy:v1", StorageName: "lunferry-v1", Device: "/dev/dm-3",
		Portals: []string{"192.0.2.1:3260"}, HostIQN: "iqn.1994-05.com.redhat:h", NoFUA: true}, nil)
	require.NoError(t, err)
	require.Equal(t, "0", e.Attributes["emulate_fua_write"])
}
