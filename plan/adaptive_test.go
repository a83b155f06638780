package plan_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// adaptiveEnv is vol1 cut over with throttle sched and a Regulator that
// yields to yield; hydration started.
func adaptiveEnv(t *testing.T, sched string, yield clone.Rate) (*env, *plantest.Regulator) {
	t.Helper()
	e := newEnv(t)
	reg := &plantest.Regulator{YieldRate: yield}
	ports := e.k.Ports()
	ports.Regulator = reg
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond})
	require.NoError(t, err)
	e.p = p
	sp := spec("vol1")
	sp.Throttle, err = clone.ParseSchedule(sched)
	require.NoError(t, err)
	e.add(sp)
	e.cutOver()
	_, err = e.p.Start(context.Background(), "vol1")
	require.NoError(t, err)
	return e, reg
}

func TestAdaptiveThrottleYieldsToTheHost(t *testing.T) {
	e, reg := adaptiveEnv(t, "*=50MiB/s; adaptive=2", 3*clone.MiB)
	host := dm.IOCounters{Requests: 1200, Busy: 7 * time.Second}
	e.k.IO = map[string]dm.IOCounters{plan.DMName("vol1"): host}
	_, err := e.p.Tick(context.Background(), false)
	require.NoError(t, err)
	assert.Equal(t, []dm.IOCounters{host}, reg.Yields["vol1"], "the host's counters of the device it is served from")
	rates := reg.Rates["vol1"]
	require.NotEmpty(t, rates)
	assert.Equal(t, 3*clone.MiB, rates[len(rates)-1], "Regulate aims at the yield's rate")
}

func TestFixedThrottleReadsNoCounters(t *testing.T) {
	e, reg := adaptiveEnv(t, "*=50MiB/s", 3*clone.MiB)
	_, err := e.p.Tick(context.Background(), false)
	require.NoError(t, err)
	assert.Empty(t, reg.Yields["vol1"])
	rates := reg.Rates["vol1"]
	require.NotEmpty(t, rates)
	assert.Equal(t, 50*clone.MiB, rates[len(rates)-1])
}

func TestAdaptiveThrottleWithoutCountersKeepsTheSchedule(t *testing.T) {
	e, reg := adaptiveEnv(t, "*=50MiB/s; adaptive", 3*clone.MiB)
	e.k.Fail = map[string]error{"IOCounters": errors.New("no stat")}
	for range 2 {
		_, err := e.p.Tick(context.Background(), false)
		require.NoError(t, err)
	}
	rates := reg.Rates["vol1"]
	require.NotEmpty(t, rates)
	assert.Equal(t, 50*clone.MiB, rates[len(rates)-1])
	assert.Equal(t, 1, strings.Count(e.log.String(), "adaptive throttle: read the host's I/O counters"), "said once: %s", e.log)
}

func TestAdaptiveHydrationWaitsForRun(t *testing.T) {
	// "adaptive" alone has no ceiling, but only Run's loop yields: start
	// outside it must not turn hydration on unthrottled.
	e, reg := adaptiveEnv(t, "adaptive", 0)
	assert.Contains(t, e.log.String(), "hydration runs under `lunferry run`")
	assert.Zero(t, reg.Calls("vol1"))
}
