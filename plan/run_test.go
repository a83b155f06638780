package plan_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// runEnv is a hydrating volume under Run with a Regulator that asks for a
// sample every wake.
func runEnv(t *testing.T, wake time.Duration) (*env, *plantest.Regulator) {
	t.Helper()
	e := newEnv(t)
	e.k.HydrationStep = 1
	reg := &plantest.Regulator{WakeAfter: wake}
	ports := e.k.Ports()
	ports.Regulator = reg
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond, LockWait: 5 * time.Second})
	require.NoError(t, err)
	e.p = p
	e.add(spec("vol1"))
	e.cutOver()
	_, err = e.p.Start(context.Background(), "vol1")
	require.NoError(t, err)
	return e, reg
}

// run runs e.p.Run with interval until the returned stop is called. These
// tests time a loop over the fake kernel: they run in the unit pass, not
// in the emulated lab VM, where a loaded CPU made them miss their waits and
// where they would prove nothing more.
func (e *env) run(interval time.Duration) (stop func()) {
	if vmtest.InVM() {
		e.t.Skip("a timing test over the fake kernel: run in the unit pass")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		assert.NoError(e.t, e.p.Run(ctx, interval, false, nil))
	}()
	return func() { cancel(); wg.Wait() }
}

func TestRunServesWakeUpsBetweenRounds(t *testing.T) {
	e, reg := runEnv(t, 20*time.Millisecond)
	before := reg.Calls("vol1")
	// One round (the next is an hour away): every further Regulate call
	// is a light step served between rounds. Waiting for the count rather
	// than a fixed time keeps the test true on a loaded, emulated CPU.
	stop := e.run(time.Hour)
	require.Eventually(t, func() bool { return reg.Calls("vol1")-before > 20 }, 30*time.Second, 10*time.Millisecond,
		"Regulate calls with one round and 20 ms wake-ups")
	stop()
	calls := reg.Calls("vol1") - before
	v, err := e.p.Show(context.Background(), "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepHydrating, v.Step)
	// Light steps save nothing: the progress is the last round's.
	require.Less(t, v.Progress.HydratedRegions, uint64(calls))
}

func TestRunWithoutWakeUpsOnlyTicks(t *testing.T) {
	e, reg := runEnv(t, 0)
	before := reg.Calls("vol1")
	stop := e.run(200 * time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	stop()
	calls := reg.Calls("vol1") - before
	require.GreaterOrEqual(t, calls, 2)
	require.LessOrEqual(t, calls, 4, "one Regulate per round")
}

func TestRunLightStepsRespectPause(t *testing.T) {
	e, reg := runEnv(t, 10*time.Millisecond)
	stop := e.run(time.Hour) // one round, then only light steps
	defer stop()
	require.Eventually(t, func() bool { return reg.Calls("vol1") > 5 }, 30*time.Second, 10*time.Millisecond)

	// Another lunferry pauses the volume: the light steps find it paused
	// under the lock, forget it and never re-enable hydration.
	other, err := plan.New(plan.Options{StateDir: e.dir, Ports: e.k.Ports(), Log: e.log, LockWait: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, other.Pause(context.Background(), "vol1"))
	require.Eventually(t, func() bool { return reg.Forgets("vol1") > 0 }, 30*time.Second, 10*time.Millisecond)
	calls := reg.Calls("vol1")
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, calls, reg.Calls("vol1"), "no light step after the pause")
	require.False(t, e.k.Device(plan.DMName("vol1")).Enabled, "hydration stays off while paused")
}

func TestRunHoldsBurstsWhileLocked(t *testing.T) {
	e, reg := runEnv(t, 10*time.Millisecond)
	stop := e.run(time.Hour)
	defer stop()
	require.Eventually(t, func() bool { return reg.Calls("vol1") > 5 }, 30*time.Second, 10*time.Millisecond)
	require.True(t, e.k.Device(plan.DMName("vol1")).Enabled)

	// Another command holds the lock (a cutover's hooks can take
	// minutes): the due light step cannot check the state, so it ends
	// the burst.
	l, err := plan.AcquireLock(context.Background(), e.dir, 5*time.Second)
	require.NoError(t, err)
	calls := reg.Calls("vol1")
	require.Eventually(t, func() bool { return !e.k.Device(plan.DMName("vol1")).Enabled }, 30*time.Second, 5*time.Millisecond)
	require.Equal(t, calls, reg.Calls("vol1"), "no Regulate without the lock")
	require.Contains(t, e.k.SentMessages(), plan.DMName("vol1")+" disable_hydration")
	require.NoError(t, l.Release())

	// With the lock back, the light steps regulate again.
	require.Eventually(t, func() bool { return e.k.Device(plan.DMName("vol1")).Enabled }, 30*time.Second, 5*time.Millisecond)
	require.Greater(t, reg.Calls("vol1"), calls)
	msgs := e.k.SentMessages()
	i := slices.Index(msgs, plan.DMName("vol1")+" disable_hydration")
	require.Contains(t, msgs[i:], plan.DMName("vol1")+" enable_hydration")
}

func TestRunPicksUpOtherCommandsAtOnce(t *testing.T) {
	e, reg := runEnv(t, 0)
	stop := e.run(time.Hour) // one round at start, then none
	defer stop()
	require.Eventually(t, func() bool { return reg.Calls("vol1") >= 1 }, 30*time.Second, 10*time.Millisecond)
	other, err := plan.New(plan.Options{StateDir: e.dir, Ports: e.k.Ports(), Log: e.log, LockWait: 5 * time.Second})
	require.NoError(t, err)

	// Paused by another lunferry: forgotten at once, not at the next round.
	require.NoError(t, other.Pause(context.Background(), "vol1"))
	require.Eventually(t, func() bool { return reg.Forgets("vol1") > 0 }, 30*time.Second, 10*time.Millisecond)
	calls := reg.Calls("vol1")
	// Resumed: the loop regulates it again within a few polls, long
	// before the next round (an hour away).
	require.NoError(t, other.Resume(context.Background(), "vol1"))
	require.Eventually(t, func() bool { return reg.Calls("vol1") > calls }, 30*time.Second, 10*time.Millisecond)
	// And then waits quietly: no round without a change.
	time.Sleep(300 * time.Millisecond)
	calls = reg.Calls("vol1")
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, calls, reg.Calls("vol1"))
}

func TestRunHoldsHydrationUntilRestore(t *testing.T) {
	// Hydration is on (migrate start, or a burst a stopped `lunferry run`
	// left on): Run holds it off before its Restore, which re-enables it
	// under Run's own Regulator.
	e, reg := runEnv(t, 0)
	require.True(t, e.k.Device(plan.DMName("vol1")).Enabled)
	sent := len(e.k.SentMessages())
	before := reg.Calls("vol1")
	stop := e.run(time.Hour)
	defer stop()
	require.Eventually(t, func() bool { return reg.Calls("vol1") > before }, 30*time.Second, 10*time.Millisecond)
	msgs := e.k.SentMessages()[sent:]
	require.NotEmpty(t, msgs)
	require.Equal(t, plan.DMName("vol1")+" disable_hydration", msgs[0], "held before Restore: %q", msgs)
	require.Contains(t, msgs[1:], plan.DMName("vol1")+" enable_hydration")
}

func TestRunHoldsThrottledHydrationAtExit(t *testing.T) {
	// Without `lunferry run` nobody keeps the throttle: a throttled volume
	// must not be left hydrating at the last step's setting.
	e, _ := runEnv(t, 0)
	ctx := context.Background()
	require.NoError(t, e.p.SetThrottle(ctx, "vol1", clone.Fixed(1<<20)))
	stop := e.run(time.Hour)
	require.Eventually(t, func() bool { return e.k.Device(plan.DMName("vol1")).Enabled }, 30*time.Second, 10*time.Millisecond)
	stop()
	require.False(t, e.k.Device(plan.DMName("vol1")).Enabled, "hydration held when run stops")
	require.Contains(t, e.log.String(), "until `lunferry run` starts again")
}

func TestRunLeavesUnlimitedHydrationAtExit(t *testing.T) {
	e, _ := runEnv(t, 0)
	stop := e.run(time.Hour)
	require.Eventually(t, func() bool { return e.k.Device(plan.DMName("vol1")).Enabled }, 30*time.Second, 10*time.Millisecond)
	stop()
	require.True(t, e.k.Device(plan.DMName("vol1")).Enabled, "no throttle: hydration goes on at full speed")
}

// TestThrottledHydrationWaitsForRun: start, resume and restore outside
// Run leave a throttled volume's hydration off: nothing there would end the
// burst a first decision starts. Unthrottled volumes hydrate at once.
func TestThrottledHydrationWaitsForRun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := spec("vol1")
	s.Throttle = clone.Fixed(1 << 20)
	e.add(s)
	e.cutOver()
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	require.False(t, e.k.Device(plan.DMName("vol1")).Enabled, "start")
	require.Contains(t, e.log.String(), "hydration runs under `lunferry run`")
	require.NoError(t, e.p.Pause(ctx, "vol1"))
	require.NoError(t, e.p.Resume(ctx, "vol1"))
	require.False(t, e.k.Device(plan.DMName("vol1")).Enabled, "resume")
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	require.False(t, e.k.Device(plan.DMName("vol1")).Enabled, "restore")

	stop := e.run(time.Hour)
	require.Eventually(t, func() bool { return e.k.Device(plan.DMName("vol1")).Enabled }, 30*time.Second, 10*time.Millisecond, "run keeps the throttle")
	stop()

	require.NoError(t, e.p.SetThrottle(ctx, "vol1", clone.Fixed(clone.Unlimited)))
	require.NoError(t, e.p.Pause(ctx, "vol1"))
	require.NoError(t, e.p.Resume(ctx, "vol1"))
	require.True(t, e.k.Device(plan.DMName("vol1")).Enabled, "unlimited hydrates at once")
}

// TestRunRetriesRestoreUntilServed: after a site power loss the new array
// comes back after the proxy: run serves the volumes it can at once and
// keeps restoring the others with backoff until they are served too.
func TestRunRetriesRestoreUntilServed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	e.k.Reboot()
	e.k.Unreachable[newPortal] = true
	stop := e.run(20 * time.Millisecond)
	defer stop()
	logins := func() int {
		n := 0
		for _, c := range e.k.Calls() {
			if strings.HasPrefix(c, "Login "+newPortal) {
				n++
			}
		}
		return n
	}
	before := logins()
	require.Eventually(t, func() bool { return logins() >= before+2 }, 30*time.Second, 10*time.Millisecond, "restore retried")
	_, ok := e.k.Export(exportIQN)
	require.False(t, ok)
	delete(e.k.Unreachable, newPortal)
	require.Eventually(t, func() bool { _, ok := e.k.Export(exportIQN); return ok }, 30*time.Second, 20*time.Millisecond,
		"served once the array is back")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepCutOver, v.Step)
}

// TestRunStoppedMidRestore: lunferry stopped (SIGTERM) while run's restore
// rebuilds a volume is not a failed restore: it says it was interrupted
// and schedules no retry; the next start restores what is left.
func TestRunStoppedMidRestore(t *testing.T) {
	if vmtest.InVM() {
		t.Skip("a loop over the fake kernel: run in the unit pass")
	}
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	e.k.Reboot()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.k.ResetCalls()
	e.k.CrashAt, e.k.OnCrash = 2, func(plantest.Inventory) { cancel() }
	require.NoError(t, e.p.Run(ctx, time.Hour, false, nil))
	assert.Contains(t, e.log.String(), "restore interrupted: lunferry is stopping")
	assert.NotContains(t, e.log.String(), "restore failed")
	assert.NotContains(t, e.log.String(), "trying again")

	e.k.CrashAt, e.k.OnCrash = 0, nil
	_, err := e.p.Restore(context.Background())
	require.NoError(t, err, "the next start restores")
	_, ok := e.k.Export(exportIQN)
	require.True(t, ok)
}

// TestRestoreServesAFaultyVolume: a clone whose metadata failed may still
// carry the host's I/O; restore rebuilds it rather than leave the host
// without its disk.
func TestRestoreServesAFaultyVolume(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.k.SetFailed(plan.DMName("vol1"))
	_, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepFaulty, v.Step)
	e.k.Reboot()
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Contains(t, res[0].Hint, "faulty")
	_, ok := e.k.Export(exportIQN)
	require.True(t, ok)
}

// TestRunRebuildsADamagedExport: an export damaged behind lunferry's back
// shows as drift in status, and a running `lunferry run` rebuilds it over
// the volume's own device: torn down (targetcli, a script); a target left
// without its LUN (a LIO restore such as targetctl's at boot leaves out a
// LUN whose device it did not find); a storage object on another device (a
// LIO restore from a configuration saved when the device had another
// number: it must not count as serving the host).
func TestRunRebuildsADamagedExport(t *testing.T) {
	for name, damage := range map[string]func(e *env){
		"torn down":         func(e *env) { require.NoError(e.t, e.k.Exporter().Teardown(context.Background(), exportIQN, "")) },
		"without its LUN":   func(e *env) { e.k.StripExport(exportIQN) },
		"on another device": func(e *env) { e.k.RepointExport(exportIQN, "/dev/dm-99") },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			e.add(spec("vol1"))
			e.cutOver()
			x, ok := e.k.Export(exportIQN)
			require.True(t, ok)
			own := x.Device
			damage(e)
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
			require.NoError(t, rep.Check())
		})
	}
}

// TestStallAfterFromTheSpec: a spec's stallAfter replaces the 2-minute
// default; one below the minimum is refused at volume add.
func TestStallAfterFromTheSpec(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	e := newEnv(t)
	e.k.HydrationStep = 1
	e.clocked(&now, e.k.Ports())
	sp := spec("vol1")
	sp.StallAfter = plan.Duration(5 * time.Second)
	_, err := e.p.Add(ctx, sp)
	require.ErrorContains(t, err, "stallAfter 5s: want at least 10s")
	sp.StallAfter = plan.Duration(20 * time.Second)
	e.add(sp)
	e.cutOver()
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	e.k.HydrationStep = 0
	now = now.Add(15 * time.Second)
	res, err := e.p.Tick(ctx, false)
	require.NoError(t, err)
	require.Empty(t, res[0].Error, "15 s is not a stall at stallAfter 20s")
	now = now.Add(10 * time.Second)
	res, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	require.Contains(t, res[0].Error, "hydration stalled since 2026-12-01T10:00:00Z")
}

// TestStalledHydration: a clone that stops progressing (read errors on the
// old LUN are retried forever) is reported by the round, status and
// finalize, and the report clears once it progresses again.
func TestStalledHydration(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	e := newEnv(t)
	e.k.HydrationStep = 1
	e.clocked(&now, e.k.Ports())
	e.add(spec("vol1"))
	e.cutOver()
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	e.k.HydrationStep = 0 // every region read fails: no progress
	now = now.Add(time.Minute)
	res, err := e.p.Tick(ctx, false)
	require.NoError(t, err)
	require.Empty(t, res[0].Error, "a minute is not a stall")
	now = now.Add(5 * time.Minute)
	res, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	require.Contains(t, res[0].Error, "hydration stalled since 2026-12-01T10:00:00Z")
	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.False(t, rep.Volumes[0].StalledSince.IsZero())
	require.ErrorIs(t, rep.Check(), plan.ErrStalled)
	_, err = e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrNotReady)
	require.ErrorContains(t, err, "no progress since")

	e.k.HydrationStep = 1
	now = now.Add(time.Minute)
	res, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	require.Empty(t, res[0].Error)
	rep, err = e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.True(t, rep.Volumes[0].StalledSince.IsZero())
}
