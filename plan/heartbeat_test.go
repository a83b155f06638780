package plan_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

// TestRunHeartbeatAfterRestore: Run's first heartbeat (systemd's READY=1)
// comes once its initial restore has rebuilt what serves the host after a
// reboot, then one per round (the watchdog's pings).
func TestRunHeartbeatAfterRestore(t *testing.T) {
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	e.k.Reboot()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var served []bool
	beat := func() {
		_, ok := e.k.Export(exportIQN)
		served = append(served, ok)
		if len(served) == 3 {
			cancel()
		}
	}
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: e.k.Ports(), Log: e.log, PollInterval: time.Millisecond, Heartbeat: beat})
	require.NoError(t, err)
	require.NoError(t, p.Run(ctx, time.Millisecond, false, nil))
	require.Equal(t, []bool{true, true, true}, served, "export served at every heartbeat, the first included")
}
