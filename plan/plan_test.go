package plan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

const (
	oldPortal = "192.0.2.10:3260"
	oldIQN    = "iqn.2001-05.com.oldarray:tgt1"
	newPortal = "192.0.2.20:3260"
	newIQN    = "iqn.2010-01.com.newarray:tgt9"
	hostIQN   = "iqn.1994-05.com.redhat:apphost"
	exportIQN = "iqn.2026-11.io.lunferry.proxy:vol1"
	gib       = 1 << 30
)

func spec(name string) plan.Spec {
	return plan.Spec{
		Name:    name,
		Old:     plan.LUN{Portal: oldPortal, IQN: oldIQN, LUN: 1},
		New:     plan.LUN{Portal: newPortal, IQN: newIQN, LUN: 3},
		HostIQN: hostIQN,
		Export:  plan.Export{IQN: exportIQN, Portals: []string{"192.0.2.1:3260"}},
		Hooks: plan.Hooks{
			PreCutover:  []string{"/hooks/quiesce"},
			PostCutover: []string{"/hooks/login"},
			PostAbort:   []string{"/hooks/back"},
		},
	}
}

type env struct {
	t   *testing.T
	dir string
	k   *plantest.Kernel
	p   *plan.Planner
	log *bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	k := plantest.New()
	k.LUNs[plantest.Key(oldPortal, oldIQN, 1)] = plantest.LUNInfo{Size: 1 * gib, ID: "wwid-old"}
	k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new"}
	k.HydrationStep = 4096
	e := &env{t: t, dir: t.TempDir(), k: k, log: &bytes.Buffer{}}
	e.p = e.planner(false)
	return e
}

// clocked makes e's planner read the time from *now, over ports.
func (e *env) clocked(now *time.Time, ports plan.Ports) {
	e.t.Helper()
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond,
		Now: func() time.Time { return *now }})
	require.NoError(e.t, err)
	e.p = p
}

func (e *env) planner(dry bool) *plan.Planner {
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: e.k.Ports(), Log: e.log, DryRun: dry, PollInterval: time.Millisecond})
	require.NoError(e.t, err)
	return p
}

func (e *env) add(s plan.Spec) {
	e.t.Helper()
	_, err := e.p.Add(context.Background(), s)
	require.NoError(e.t, err)
}

// hydrate runs control rounds until the volume is hydrated.
func (e *env) hydrate(name string) {
	e.t.Helper()
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		_, err := e.p.Tick(ctx, false)
		require.NoError(e.t, err)
		v, err := e.p.Show(ctx, name)
		require.NoError(e.t, err)
		if v.Step == plan.StepHydrated {
			return
		}
	}
	e.t.Fatalf("volume %s never hydrated", name)
}

// clean asserts the kernel holds nothing of the volume and the old LUN was
// never a clone destination.
func (e *env) clean(name string) {
	e.t.Helper()
	require.Nil(e.t, e.k.Device(plan.DMName(name)))
	_, ok := e.k.Export(exportIQN)
	require.False(e.t, ok, "export left behind")
	require.False(e.t, e.k.Session(oldPortal+","+oldIQN), "old session left")
	require.False(e.t, e.k.Session(newPortal+","+newIQN), "new session left")
	_, ok = e.k.Loop(filepath.Join(e.dir, "metadata", name+".meta"))
	require.False(e.t, ok, "metadata loop left")
	_, err := os.Stat(filepath.Join(e.dir, "metadata", name+".meta"))
	require.True(e.t, errors.Is(err, os.ErrNotExist), "metadata file left")
}

func TestFullMigration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))

	v, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepPrepared, v.Step)
	require.Equal(t, uint64(gib/512), v.SizeSectors)
	require.Contains(t, e.k.Zeroed, filepath.Join(e.dir, "metadata", "vol1.meta"))
	require.True(t, e.k.ReadOnly(plantest.Key(oldPortal, oldIQN, 1)), "old LUN probed read-only")

	v, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepCutOver, v.Step)
	require.NotNil(t, v.Window)
	d := e.k.Device("vol1" + "")
	require.Nil(t, d)
	d = e.k.Device(plan.DMName("vol1"))
	require.NotNil(t, d)
	require.True(t, d.Clone.NoHydration)
	require.Equal(t, plantest.Key(newPortal, newIQN, 3), e.k.DiskKey(d.Clone.Destination))
	require.Equal(t, plantest.Key(oldPortal, oldIQN, 1), e.k.DiskKey(d.Clone.Source))
	require.Equal(t, dm.Sectors(128), d.Clone.RegionSize)
	ex, ok := e.k.Export(exportIQN)
	require.True(t, ok)
	require.Equal(t, hostIQN, ex.HostIQN)
	require.NoError(t, servedThroughEra(e.k.Inventory(), "vol1", *d, ex))
	require.Len(t, e.k.Hooks, 2)
	require.Contains(t, e.k.Hooks[0].Env, "LUNFERRY_PHASE=pre-cutover")
	require.Contains(t, e.k.Hooks[1].Env, "LUNFERRY_EXPORT_IQN="+exportIQN)
	require.Contains(t, e.k.Hooks[1].Env, "LUNFERRY_HOST_IQN="+hostIQN)

	_, err = e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrNotReady)
	require.Contains(t, err.Error(), "migrate start")

	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	require.True(t, e.k.Device(plan.DMName("vol1")).Enabled)
	_, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	_, err = e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrNotReady)
	require.Contains(t, err.Error(), "regions")

	rep, err := e.p.Status(ctx)
	require.NoError(t, err)
	require.Len(t, rep.Volumes, 1)
	require.Equal(t, []string{hostIQN}, rep.Volumes[0].Sessions)
	require.Greater(t, rep.Volumes[0].Percent, 0.0)
	require.Less(t, rep.Volumes[0].Percent, 100.0)

	e.hydrate("vol1")
	v, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepFinalized, v.Step)
	d = e.k.Device(plan.DMName("vol1"))
	require.Nil(t, d.Clone)
	require.Equal(t, fmt.Sprintf("0 %d linear %s 0", gib/512, v.NewDisk.Path), d.Table)
	require.False(t, e.k.Session(oldPortal+","+oldIQN), "old LUN detached")
	require.True(t, e.k.Session(newPortal+","+newIQN))
	_, ok = e.k.Export(exportIQN)
	require.True(t, ok, "host keeps its export")
	_, err = os.Stat(filepath.Join(e.dir, "metadata", "vol1.meta"))
	require.True(t, errors.Is(err, os.ErrNotExist), "metadata freed")

	_, err = e.p.Abort(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	require.ErrorContains(t, e.p.Remove(ctx, "vol1", false), "--forget")
	require.NoError(t, e.p.Remove(ctx, "vol1", true))
}

func TestStepsAreIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	for i := 0; i < 2; i++ {
		_, err := e.p.Prepare(ctx, "vol1")
		require.NoError(t, err)
	}
	for i := 0; i < 2; i++ {
		_, err := e.p.Cutover(ctx, "vol1")
		require.NoError(t, err)
	}
	creates := 0
	for _, c := range e.k.Calls() {
		if strings.HasPrefix(c, "CreateClone") {
			creates++
		}
	}
	require.Equal(t, 1, creates)
	require.Len(t, e.k.Hooks, 2, "hooks not rerun")
	for i := 0; i < 2; i++ {
		_, err := e.p.Start(ctx, "vol1")
		require.NoError(t, err)
	}
}

func TestAbortFromEveryStep(t *testing.T) {
	steps := []string{"new", "prepared", "cut-over", "hydrating", "hydrated", "paused"}
	for _, upTo := range steps {
		t.Run(upTo, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.add(spec("vol1"))
			do := func(f func() error) { require.NoError(t, f()) }
			if upTo != "new" {
				do(func() error { _, err := e.p.Prepare(ctx, "vol1"); return err })
			}
			if upTo != "new" && upTo != "prepared" {
				do(func() error { _, err := e.p.Cutover(ctx, "vol1"); return err })
			}
			if upTo == "hydrating" || upTo == "hydrated" || upTo == "paused" {
				do(func() error { _, err := e.p.Start(ctx, "vol1"); return err })
			}
			if upTo == "hydrated" {
				e.hydrate("vol1")
			}
			if upTo == "paused" {
				do(func() error { return e.p.Pause(ctx, "vol1") })
				require.False(t, e.k.Device(plan.DMName("vol1")).Enabled)
			}
			rep, err := e.p.Abort(ctx, "vol1")
			require.NoError(t, err)
			e.clean("vol1")
			exported := upTo != "new" && upTo != "prepared"
			require.Equal(t, exported, rep.HostWritesLost)
			if exported {
				require.Contains(t, rep.Message, "writes the host made after cutover exist ONLY on the new LUN")
			} else {
				require.Contains(t, rep.Message, "is as it was")
			}
			v, err := e.p.Show(ctx, "vol1")
			require.NoError(t, err)
			require.Equal(t, plan.StepAborted, v.Step)
			require.Empty(t, v.Objects)
			require.Equal(t, "/hooks/back", e.k.Hooks[len(e.k.Hooks)-1].Path)
			// Abort again is a no-op with the same message.
			rep2, err := e.p.Abort(ctx, "vol1")
			require.NoError(t, err)
			require.Equal(t, rep.Message, rep2.Message)
			require.NoError(t, e.p.Remove(ctx, "vol1", false))
		})
	}
}

func TestRestoreKeepsHydrationProgress(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err = e.p.Tick(ctx, false)
		require.NoError(t, err)
	}
	before := e.k.Device(plan.DMName("vol1")).Hydrated
	require.Greater(t, before, uint64(0))

	e.k.Reboot()
	require.Nil(t, e.k.Device(plan.DMName("vol1")))
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.Equal(t, []plan.ObjectKind{plan.ObjNewLogin, plan.ObjOldLogin, plan.ObjMetadata, plan.ObjFence, plan.ObjDevice, plan.ObjEra, plan.ObjExport}, res[0].Rebuilt)
	d := e.k.Device(plan.DMName("vol1"))
	require.NotNil(t, d)
	require.Equal(t, before, d.Hydrated, "hydration resumes where it stopped")
	require.True(t, d.Enabled)
	require.True(t, e.k.ReadOnly(plantest.Key(oldPortal, oldIQN, 1)))
	_, ok := e.k.Export(exportIQN)
	require.True(t, ok)
	// The metadata was not zeroed again.
	zeroed := 0
	for _, z := range e.k.Zeroed {
		if strings.HasSuffix(z, "vol1.meta") {
			zeroed++
		}
	}
	require.Equal(t, 1, zeroed)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)

	// After finalize a reboot rebuilds linear over the new LUN, no clone.
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	d = e.k.Device(plan.DMName("vol1"))
	require.NotNil(t, d)
	require.Nil(t, d.Clone)
	require.Contains(t, d.Table, "linear")
	require.False(t, e.k.Session(oldPortal+","+oldIQN))
}

func TestAutoFinalizeAndPause(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	for _, f := range []func() error{
		func() error { _, err := e.p.Prepare(ctx, "vol1"); return err },
		func() error { _, err := e.p.Cutover(ctx, "vol1"); return err },
		func() error { _, err := e.p.Start(ctx, "vol1"); return err },
		func() error { return e.p.Pause(ctx, "vol1") },
	} {
		require.NoError(t, f())
	}
	res, err := e.p.Tick(ctx, true)
	require.NoError(t, err)
	require.Empty(t, res, "paused volumes are left alone")
	require.NoError(t, e.p.Resume(ctx, "vol1"))
	require.True(t, e.k.Device(plan.DMName("vol1")).Enabled)
	var fin bool
	for i := 0; i < 100 && !fin; i++ {
		res, err := e.p.Tick(ctx, true)
		require.NoError(t, err)
		for _, r := range res {
			require.Empty(t, r.Error)
			fin = fin || r.Finalized
		}
	}
	require.True(t, fin)
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepFinalized, v.Step)
	require.Greater(t, v.Progress.Rate, 0.0)
}

func TestFaultyClone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.k.SetFailed(plan.DMName("vol1"))
	res, err := e.p.Tick(ctx, false)
	require.NoError(t, err)
	require.Equal(t, plan.StepFaulty, res[0].Step)
	require.Contains(t, res[0].Error, "abort")
	_, err = e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	e.clean("vol1")
}

func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	dry := e.planner(true)
	_, err := dry.Prepare(ctx, "vol1")
	require.NoError(t, err)
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepNew, v.Step, "dry run saved nothing")
	require.Contains(t, e.log.String(), "state: volume vol1 would be saved as preparing")
}

func TestResumedCutoverKeepsWindowStart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	e.k.HookFail["/hooks/login"] = errors.New("exit status 1")
	_, err = e.p.Cutover(ctx, "vol1")
	require.ErrorContains(t, err, "post-cutover hook /hooks/login")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepCuttingOver, v.Step)
	require.Contains(t, v.LastError, "exit status 1")
	start := v.WindowStart
	require.False(t, start.IsZero())
	delete(e.k.HookFail, "/hooks/login")
	v, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, start, v.WindowStart)
	require.Empty(t, v.LastError)
	require.GreaterOrEqual(t, v.Window.Total.D(), v.CutOverAt.Sub(start)-time.Millisecond)
	// The pre-cutover hook ran once, the failed post-cutover hook twice.
	var paths []string
	for _, h := range e.k.Hooks {
		paths = append(paths, h.Path)
	}
	require.Equal(t, []string{"/hooks/quiesce", "/hooks/login", "/hooks/login"}, paths)
}
