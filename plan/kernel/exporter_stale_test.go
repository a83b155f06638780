package kernel

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExportOnAnotherDeviceRebuilt: lunferry's export whose storage object
// holds another device than the node it is applied on (what targetctl
// restore leaves when /dev/dm-N was another device at boot; the fake
// opens 254:0, /dev/null is 1:3) is torn down and built again, not
// adopted and not refused (lio names only lunferry's objects).
func TestExportOnAnotherDeviceRebuilt(t *testing.T) {
	e, f := fakeExporter(t)
	s := chapExportSpec(nil)
	s.Device = "/dev/null"
	ctx := context.Background()
	require.NoError(t, e.Apply(ctx, s))
	f.ResetOps()
	require.NoError(t, e.Apply(ctx, s))
	require.True(t, slices.ContainsFunc(f.Ops(), func(op string) bool {
		return strings.HasPrefix(op, "rmdir") && strings.HasSuffix(op, "/lunferry-v1")
	}), "storage object torn down: %v", f.Ops())
	ok, err := e.Lookup(ctx, s.IQN)
	require.NoError(t, err)
	require.True(t, ok, "export rebuilt")

}
