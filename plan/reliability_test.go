package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// cutOver prepares and cuts vol1 over.
func (e *env) cutOver() {
	e.t.Helper()
	ctx := context.Background()
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(e.t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(e.t, err)
}

// TestAttachRefusesAnotherDisk: a LUN attached again (after a reboot, at
// cutover after a probe at prepare) must be the disk recorded at its first
// attach; /dev/sdX names move, LUN numbers get remapped.
func TestAttachRefusesAnotherDisk(t *testing.T) {
	ctx := context.Background()
	t.Run("restore", func(t *testing.T) {
		e := newEnv(t)
		e.add(spec("vol1"))
		e.cutOver()
		e.k.Reboot()
		e.k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-someone-else"}
		_, err := e.p.Restore(ctx)
		require.ErrorIs(t, err, plan.ErrDiskChanged)
		require.ErrorContains(t, err, `"wwid-someone-else"`)
		require.Nil(t, e.k.Device(plan.DMName("vol1")), "nothing built over the wrong disk")
		v, err := e.p.Show(ctx, "vol1")
		require.NoError(t, err)
		require.Equal(t, "wwid-new", v.NewDisk.ID, "the recorded identity is kept")
	})
	t.Run("resized", func(t *testing.T) {
		e := newEnv(t)
		e.add(spec("vol1"))
		e.cutOver()
		e.k.Reboot()
		e.k.LUNs[plantest.Key(oldPortal, oldIQN, 1)] = plantest.LUNInfo{Size: 3 * gib, ID: "wwid-old"}
		_, err := e.p.Restore(ctx)
		require.ErrorIs(t, err, plan.ErrDiskChanged)
	})
	t.Run("cutover after probe", func(t *testing.T) {
		e := newEnv(t)
		e.add(spec("vol1")) // no old.sizeBytes: prepare probes the old LUN
		_, err := e.p.Prepare(ctx, "vol1")
		require.NoError(t, err)
		// The array maps another LUN under the same number.
		e.k.LUNs[plantest.Key(oldPortal, oldIQN, 1)] = plantest.LUNInfo{Size: 1 * gib, ID: "wwid-other-old"}
		_, err = e.p.Cutover(ctx, "vol1")
		require.ErrorIs(t, err, plan.ErrDiskChanged)
		require.Nil(t, e.k.Device(plan.DMName("vol1")))
	})
	t.Run("same disk under another name", func(t *testing.T) {
		e := newEnv(t)
		e.add(spec("vol1"))
		e.cutOver()
		v, err := e.p.Show(ctx, "vol1")
		require.NoError(t, err)
		before := v.NewDisk.Path
		e.k.Reboot()
		_, err = e.p.Restore(ctx)
		require.NoError(t, err)
		v, err = e.p.Show(ctx, "vol1")
		require.NoError(t, err)
		require.NotEqual(t, before, v.NewDisk.Path, "the fake hands out new names after a reboot")
		require.Equal(t, "wwid-new", v.NewDisk.ID)
	})
}

// TestOldAndNewBehindOneTarget: a session carries every LUN of its target,
// so finalize must not log out the old LUN's session while it carries the
// new LUN too; handover, the last user, does.
func TestOldAndNewBehindOneTarget(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.k.LUNs[plantest.Key(oldPortal, oldIQN, 7)] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new-same-target"}
	s := spec("vol1")
	s.New = plan.LUN{Portal: oldPortal, IQN: oldIQN, LUN: 7}
	e.add(s)
	e.cutOver()
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.True(t, e.k.Session(oldPortal+","+oldIQN), "the session carries the new LUN")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.NotEmpty(t, e.k.DiskKey(v.NewDisk.Path), "the new LUN's disk is still there")
	require.Contains(t, e.log.String(), "keep session")
}

// TestRestoreLinearWithoutOldArray: once finalize swapped to linear, a
// restore needs nothing from the old array, even when finalize was
// interrupted before it logged out of it.
func TestRestoreLinearWithoutOldArray(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	_, err := e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	e.k.Fail["Logout"] = errors.New("iscsiadm: interrupted")
	_, err = e.p.Finalize(ctx, "vol1")
	require.Error(t, err)
	delete(e.k.Fail, "Logout")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.True(t, v.Linear)
	require.Equal(t, plan.StepFinalizing, v.Step)

	e.k.Reboot()
	e.k.Unreachable[oldPortal] = true
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.NotContains(t, res[0].Rebuilt, plan.ObjOldLogin)
	d := e.k.Device(plan.DMName("vol1"))
	require.NotNil(t, d)
	require.Contains(t, d.Table, "linear")
	_, ok := e.k.Export(exportIQN)
	require.True(t, ok, "the host is served again")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	v, err = e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepFinalized, v.Step)
	for _, o := range v.Objects {
		require.NotContains(t, []plan.ObjectKind{plan.ObjOldLogin, plan.ObjMetadata}, o.Kind, "finalize's rerun released them")
	}
}

// hydratingWithPreAbort is vol1 hydrating, with a pre-abort hook.
func hydratingWithPreAbort(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	s := spec("vol1")
	s.Hooks.PreAbort = []string{"/hooks/host-back-to-old"}
	e.add(s)
	e.cutOver()
	_, err := e.p.Start(context.Background(), "vol1")
	require.NoError(t, err)
	return e
}

func (e *env) hooksRun(path string) int {
	n := 0
	for _, h := range e.k.Hooks {
		if h.Path == path {
			n++
		}
	}
	return n
}

// TestAbortInterruptedInItsHooksIsPending: an abort stopped in its
// pre-abort hooks never moved the host off the proxy. Restore must not
// finish it (forced teardown, post-abort hooks) but rebuild what serves the
// host; only `migrate abort` finishes it, and it can be cancelled.
func TestAbortInterruptedInItsHooksIsPending(t *testing.T) {
	ctx := context.Background()
	for _, then := range []string{"cancel", "finish"} {
		t.Run(then, func(t *testing.T) {
			e := hydratingWithPreAbort(t)
			e.k.HookFail["/hooks/host-back-to-old"] = fmt.Errorf("%w: exit status 1", plan.ErrHook)
			_, err := e.p.Abort(ctx, "vol1")
			require.ErrorIs(t, err, plan.ErrHook)
			delete(e.k.HookFail, "/hooks/host-back-to-old")

			e.k.Reboot()
			res, err := e.p.Restore(ctx)
			require.NoError(t, err)
			require.Equal(t, plan.StepAborting, res[0].Step)
			require.Contains(t, res[0].Hint, "abort is pending")
			_, ok := e.k.Export(exportIQN)
			require.True(t, ok, "the proxy serves the host again")
			require.NotNil(t, e.k.Device(plan.DMName("vol1")))
			require.Zero(t, e.hooksRun("/hooks/back"), "no post-abort hook: the host was never moved")
			rep, err := e.p.Status(ctx, "vol1")
			require.NoError(t, err)
			require.True(t, rep.Volumes[0].AbortPending)
			require.Equal(t, "proxy (clone)", rep.Volumes[0].Serving)

			if then == "cancel" {
				v, err := e.p.CancelAbort(ctx, "vol1")
				require.NoError(t, err)
				require.Equal(t, plan.StepHydrating, v.Step)
				require.Empty(t, v.AbortFrom)
				require.True(t, e.k.Device(plan.DMName("vol1")).Enabled, "hydration goes on")
				_, err = e.p.CancelAbort(ctx, "vol1")
				require.ErrorIs(t, err, plan.ErrWrongStep, "nothing left to cancel")
				return
			}
			_, err = e.p.Abort(ctx, "vol1")
			require.NoError(t, err)
			e.clean("vol1")
			require.Equal(t, 1, e.hooksRun("/hooks/back"))
		})
	}
}

// TestAbortInterruptedInItsTeardown: once the abort began removing
// objects, the host had left: restore rebuilds nothing, cancel is refused,
// the abort's rerun finishes.
func TestAbortInterruptedInItsTeardown(t *testing.T) {
	ctx := context.Background()
	e := hydratingWithPreAbort(t)
	e.k.Fail["Remove"] = errors.New("dm: device busy")
	_, err := e.p.Abort(ctx, "vol1")
	require.ErrorContains(t, err, "device busy")
	delete(e.k.Fail, "Remove")
	e.k.Reboot()
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Empty(t, res[0].Rebuilt)
	require.Contains(t, res[0].Hint, "rerun `lunferry migrate abort vol1`")
	_, ok := e.k.Export(exportIQN)
	require.False(t, ok)
	_, err = e.p.CancelAbort(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	_, err = e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	e.clean("vol1")
	require.Equal(t, 1, e.hooksRun("/hooks/host-back-to-old"), "pre-abort hooks are not rerun")
}

// TestNamesLIORefusesAreRefusedAtAdd: plan and lio judge iSCSI names by
// one validator, so a name the export would refuse is refused when the
// volume is added, not in the window after the host was quiesced.
func TestNamesLIORefusesAreRefusedAtAdd(t *testing.T) {
	ctx := context.Background()
	for name, mutate := range map[string]func(s *plan.Spec){
		"upper-case host IQN": func(s *plan.Spec) { s.HostIQN = "iqn.1994-05.com.redhat:Host_1" },
		"underscore export":   func(s *plan.Spec) { s.Export.IQN = "iqn.2026-11.io.lunferry.proxy:vol_1" },
		"relative hook":       func(s *plan.Spec) { s.Hooks.PreCutover = []string{"hooks/quiesce"} },
		"ragged size":         func(s *plan.Spec) { s.Old.SizeBytes = 1000 },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			s := spec("vol1")
			mutate(&s)
			_, err := e.p.Add(ctx, s)
			require.ErrorIs(t, err, plan.ErrInvalidSpec)
		})
	}
}

// TestCutoverValidatesBeforeItsFirstHook: a volume recorded by an older
// lunferry with a name LIO refuses is stopped before the pre-cutover hooks
// quiesce the host.
func TestCutoverValidatesBeforeItsFirstHook(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	v.Spec.HostIQN = "iqn.1994-05.com.redhat:Host_1"
	require.NoError(t, e.p.Store().Save(v))
	_, err = e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	require.Empty(t, e.k.Hooks, "no hook ran")
	v, err = e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepPrepared, v.Step)
}

// metaFile is vol1's metadata file.
func (e *env) metaFile() string { return filepath.Join(e.dir, "metadata", "vol1.meta") }

// TestRestoreRefusesLostMetadata: restore never makes metadata. A clone
// rebuilt over a missing, short or zeroed hydration record would treat
// every region as unhydrated: it would serve the host's post-cutover
// writes from the old LUN and copy old data over them. An era device over
// fresh era metadata would not know what the host wrote since cutover.
func TestRestoreRefusesLostMetadata(t *testing.T) {
	ctx := context.Background()
	records := map[string]struct {
		file   func(e *env) string
		device string // not built over the lost record
	}{
		"clone": {(*env).metaFile, plan.DMName("vol1")},
		"era":   {(*env).eraFile, plan.EraName("vol1")},
	}
	damages := map[string]func(path string) error{
		"missing":   os.Remove,
		"truncated": func(p string) error { return os.Truncate(p, 4096) },
		"zeroed": func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt(make([]byte, 4096), 0)
			return err
		},
	}
	for record, r := range records {
		for name, damage := range damages {
			t.Run(record+"/"+name, func(t *testing.T) {
				e := newEnv(t)
				e.add(spec("vol1"))
				e.cutOver()
				e.k.Reboot()
				require.NoError(t, damage(r.file(e)))
				_, err := e.p.Restore(ctx)
				require.ErrorIs(t, err, plan.ErrMetadataLost)
				require.ErrorContains(t, err, r.file(e))
				require.Nil(t, e.k.Device(r.device), "nothing built over lost metadata")
				_, ok := e.k.Export(exportIQN)
				require.False(t, ok)
			})
		}
	}
	t.Run("zeroed before cutover is fine", func(t *testing.T) {
		e := newEnv(t)
		e.add(spec("vol1"))
		_, err := e.p.Prepare(ctx, "vol1")
		require.NoError(t, err)
		e.k.Reboot()
		_, err = e.p.Restore(ctx)
		require.NoError(t, err)
		_, err = e.p.Cutover(ctx, "vol1")
		require.NoError(t, err)
	})
}

// hydratedEnv is vol1 cut over and hydrated.
func hydratedEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	_, err := e.p.Start(context.Background(), "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	return e
}

// TestFinalizeKilledWhileSuspended: killed between the swap's suspend and
// its resume, the device holds the host's I/O with finalize's linear table
// loaded; the rerun completes the swap instead of refusing.
func TestFinalizeKilledWhileSuspended(t *testing.T) {
	ctx := context.Background()
	e := hydratedEnv(t)
	e.k.SwapStopsSuspended = true
	_, err := e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plantest.ErrCrash)
	e.k.SwapStopsSuspended = false
	require.True(t, e.k.Device(plan.DMName("vol1")).Suspended)
	e.p = e.planner(false)
	v, err := e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepFinalized, v.Step)
	d := e.k.Device(plan.DMName("vol1"))
	require.False(t, d.Suspended)
	require.Contains(t, d.Table, "linear")
}

// TestFinalizeKilledAfterTheSwap: the swap happened but was not recorded:
// the rerun finds the linear table, records it and finishes, instead of
// asking a linear device for its clone status forever.
func TestFinalizeKilledAfterTheSwap(t *testing.T) {
	ctx := context.Background()
	e := hydratedEnv(t)
	e.k.Fail["Logout"] = errors.New("killed")
	_, err := e.p.Finalize(ctx, "vol1")
	require.Error(t, err)
	delete(e.k.Fail, "Logout")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	v.Linear, v.SwapHeld = false, 0 // as saved before the swap
	require.NoError(t, e.p.Store().Save(v))

	v, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepFinalized, v.Step)
	require.True(t, v.Linear)
	require.Contains(t, e.log.String(), "swap was done before it was recorded")
}

// TestSuspendedByAnotherIsRefused: a device suspended with a table
// lunferry did not load is reported, not resumed.
func TestSuspendedByAnotherIsRefused(t *testing.T) {
	ctx := context.Background()
	e := hydratedEnv(t)
	e.k.SuspendWith(plan.DMName("vol1"), []dm.RawLine{{Length: 8, Type: "error"}})
	_, err := e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrDrift)
	require.ErrorContains(t, err, "is suspended")
	require.True(t, e.k.Device(plan.DMName("vol1")).Suspended, "left as found")
	require.NotContains(t, strings.Join(e.k.Calls(), "\n"), "Resume")
}

// TestHydratedIsRecordedFromCommittedMetadata: dm-clone commits its
// metadata on its own schedule; "hydrated" recorded from a read without a
// commit may be taken back by a power loss, after which start and finalize
// both refused. It is recorded only from a committed status, and a volume
// recorded hydrated whose clone is not complete is hydrated again.
func TestHydratedIsRecordedFromCommittedMetadata(t *testing.T) {
	ctx := context.Background()
	e := hydratedEnv(t)
	e.k.LoseUncommitted = true
	e.k.Reboot()
	_, err := e.p.Restore(ctx)
	require.NoError(t, err)
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err, "completion survived the power loss")

	// A volume recorded hydrated by a lunferry that did not commit.
	e = hydratedEnv(t)
	e.k.SetHydrated(plan.DMName("vol1"), 3)
	_, err = e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrNotReady)
	_, err = e.p.Tick(ctx, false)
	require.NoError(t, err)
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepHydrating, v.Step, "run hydrates the rest")
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
}

// TestStepsRefuseGoneObjects: after a reboot without restore the state
// records objects the kernel no longer has (a stale loop device name may
// even belong to another file now): steps refuse and say to restore.
func TestStepsRefuseGoneObjects(t *testing.T) {
	ctx := context.Background()
	e := hydratedEnv(t)
	e.k.Reboot()
	_, err := e.p.Finalize(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrDrift)
	require.ErrorContains(t, err, "run `lunferry restore`")
	require.Nil(t, e.k.Device(plan.DMName("vol1")))

	e = newEnv(t)
	e.add(spec("vol1"))
	_, err = e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	e.k.Reboot()
	_, err = e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrDrift)
	require.Empty(t, e.k.Hooks, "refused before the first hook")
}
