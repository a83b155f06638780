package plan_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestRunRebuildsAnExportOnAnotherDevice: lunferry's export brought back
// by a LIO restore (targetctl's) from a configuration saved when its
// device had another number: its storage object holds whatever device has
// that number now. It must not count as serving the host: status reports
// it and a running `lunferry run` rebuilds it over the volume's device.
func TestRunRebuildsAnExportOnAnotherDevice(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	x, ok := e.k.Export(exportIQN)
	require.True(t, ok)
	own := x.Device
	e.k.RepointExport(exportIQN, "/dev/dm-99")
	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, []string{"export gone"}, rep.Volumes[0].Drift)
	require.ErrorIs(t, rep.Check(), plan.ErrDrift)

	stop := e.run(20 * time.Millisecond)
	defer stop()
	require.Eventually(t, func() bool { x, _ := e.k.Export(exportIQN); return x.Device == own }, 30*time.Second, 10*time.Millisecond)
	rep, err = e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, rep.Volumes[0].Drift)
}
