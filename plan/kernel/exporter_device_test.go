package kernel

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServingNeedsTheDevice: an export serves the host only while its
// storage object holds the volume's device. A LIO restore of a saved
// configuration can leave it on another path (the file's /dev/dm-N), or
// on the right path opened as another device (the fake opens 254:0,
// /dev/null is 1:3): neither counts as serving, so run rebuilds it.
func TestServingNeedsTheDevice(t *testing.T) {
	e, _ := fakeExporter(t)
	ctx := context.Background()
	s := chapExportSpec(nil)
	s.Device = "/dev/lunferry-test-no-such-node" // nothing to compare: the path decides
	require.NoError(t, e.Apply(ctx, s))
	ok, err := e.Serving(ctx, s.IQN, s.StorageName, s.Device, s.HostIQN)
	require.NoError(t, err)
	require.True(t, ok, "on the volume's device")
	ok, err = e.Serving(ctx, s.IQN, s.StorageName, "/dev/dm-7", s.HostIQN)
	require.NoError(t, err)
	require.False(t, ok, "storage object on another path than the volume's device")

	require.NoError(t, e.Teardown(ctx, s.IQN, s.StorageName))
	s.Device = "/dev/null"
	require.NoError(t, e.Apply(ctx, s))
	ok, err = e.Serving(ctx, s.IQN, s.StorageName, s.Device, s.HostIQN)
	require.NoError(t, err)
	require.False(t, ok, "storage object on the volume's path, holding another device")
}
