package plan_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// The online cutover's hooks.
const (
	addPaths     = "/hooks/add-paths"
	checkPaths   = "/hooks/check-paths"
	removeDirect = "/hooks/remove-direct"
	restoreDir   = "/hooks/restore-direct"
)

func onlineSpec() plan.Spec {
	s := spec("vol1")
	s.Cutover = "online"
	s.Hooks.AddPaths = []string{addPaths}
	s.Hooks.CheckPaths = []string{checkPaths}
	s.Hooks.RemoveDirectPaths = []string{removeDirect}
	s.Hooks.RestoreDirectPaths = []string{restoreDir}
	s.SessionTimeout = plan.Duration(50 * time.Millisecond)
	return s
}

// onlineEnv is a prepared online volume.
func onlineEnv(t *testing.T) *env {
	e := newEnv(t)
	e.add(onlineSpec())
	_, err := e.p.Prepare(context.Background(), "vol1")
	require.NoError(t, err)
	return e
}

func (e *env) show() *plan.Volume {
	e.t.Helper()
	v, err := e.p.Show(context.Background(), "vol1")
	require.NoError(e.t, err)
	return v
}

// passesThrough checks the device runs linear over the old LUN, writable,
// exported to the host.
func (e *env) passesThrough() {
	e.t.Helper()
	d := e.k.Device(plan.DMName("vol1"))
	require.NotNil(e.t, d)
	require.Nil(e.t, d.Clone, "the device runs %s", d.Table)
	require.Equal(e.t, oldKey, e.k.DiskKey(d.Linear), "linear over the old LUN")
	require.False(e.t, e.k.ReadOnly(oldKey), "the host's writes go through to the old LUN")
	ex, ok := e.k.Export(exportIQN)
	require.True(e.t, ok)
	require.NoError(e.t, servedThroughEra(e.k.Inventory(), "vol1", *d, ex))
	require.Equal(e.t, hostIQN, ex.HostIQN)
}

// takenOver checks the clone serves the host over a read-only, fenced old
// LUN.
func (e *env) takenOver(fenced bool) {
	e.t.Helper()
	v := e.show()
	require.Equal(e.t, plan.StepCutOver, v.Step)
	require.Equal(e.t, plan.PhaseTakenOver, v.Cutover.Phase)
	require.True(e.t, v.Exported)
	d := e.k.Device(plan.DMName("vol1"))
	require.NotNil(e.t, d.Clone)
	require.True(e.t, d.Clone.NoHydration)
	require.Equal(e.t, oldKey, e.k.DiskKey(d.Clone.Source))
	require.True(e.t, e.k.ReadOnly(oldKey))
	_, held := e.k.Fences()[oldKey]
	require.Equal(e.t, fenced, held)
	require.Empty(e.t, e.k.Violations())
	for _, w := range e.k.Writes(oldKey) {
		require.True(e.t, strings.HasPrefix(w, "linear "), "lunferry wrote the old LUN: %s", w)
	}
}

func phasesOf(k *plantest.Kernel) []string {
	var out []string
	for _, h := range k.Hooks {
		for _, kv := range h.Env {
			if ph, ok := strings.CutPrefix(kv, "LUNFERRY_PHASE="); ok {
				out = append(out, ph)
			}
		}
	}
	return out
}

func TestOnlineCutover(t *testing.T) {
	ctx := context.Background()
	e := onlineEnv(t)
	v, err := e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepCutOver, v.Step)
	e.takenOver(true)
	require.Equal(t, []string{"add-paths", "check-paths", "remove-direct-paths"}, phasesOf(e.k), "pre- and post-cutover hooks do not run")
	require.Greater(t, v.Cutover.TakeoverHeld.D(), time.Duration(0))
	calls := strings.Join(e.k.Calls(), "\n")
	require.Less(t, strings.Index(calls, "Fence "), strings.Index(calls, "Swap "), "fenced before the takeover")
	require.Less(t, strings.Index(calls, "SetReadOnly "), strings.Index(calls, "Swap "))

	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.PhaseTakenOver, rep.Volumes[0].OnlinePhase)
	require.True(t, rep.Volumes[0].Fenced)

	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, e.k.Fences(), "finalize releases the fence with the old LUN")
}

// failAt makes the online cutover fail in phase ph, and returns what
// clears the failure.
func failAt(e *env, ph plan.OnlinePhase) (clear func()) {
	hook := map[plan.OnlinePhase]string{plan.PhasePathsAdded: checkPaths, plan.PhaseDirectRemoved: removeDirect}[ph]
	op := map[plan.OnlinePhase]string{plan.PhasePassthrough: "Apply", plan.PhaseFenced: "Fence", plan.PhaseTakenOver: "Swap"}[ph]
	if hook != "" {
		e.k.HookFail[hook] = fmt.Errorf("%w: exit status 1", plan.ErrHook)
		return func() { delete(e.k.HookFail, hook) }
	}
	e.k.Fail[op] = errors.New("injected")
	return func() { delete(e.k.Fail, op) }
}

var phases = []plan.OnlinePhase{plan.PhasePassthrough, plan.PhasePathsAdded, plan.PhaseDirectRemoved, plan.PhaseFenced, plan.PhaseTakenOver}

// phaseBefore returns the phase before ph ("" for the first).
func phaseBefore(ph plan.OnlinePhase) plan.OnlinePhase {
	if i := slices.Index(phases, ph); i > 0 {
		return phases[i-1]
	}
	return ""
}

// TestOnlineRerunAfterFailure: a cutover failed in each phase stays
// cutting-over at the phase before, and its rerun finishes it, each hook
// run once (check-paths retried until it passes).
func TestOnlineRerunAfterFailure(t *testing.T) {
	ctx := context.Background()
	for _, ph := range phases {
		t.Run(string(ph), func(t *testing.T) {
			e := onlineEnv(t)
			clear := failAt(e, ph)
			_, err := e.p.Cutover(ctx, "vol1")
			require.Error(t, err)
			v := e.show()
			require.Equal(t, plan.StepCuttingOver, v.Step)
			require.Equal(t, phaseBefore(ph), v.Cutover.Phase)
			if ph != plan.PhasePassthrough && ph != plan.PhaseTakenOver {
				e.passesThrough()
			}
			clear()
			_, err = e.p.Cutover(ctx, "vol1")
			require.NoError(t, err)
			e.takenOver(true)
			for _, h := range []string{addPaths, removeDirect} {
				want := 1
				if h == removeDirect && ph == plan.PhaseDirectRemoved {
					want = 2 // the failed run, then the rerun's
				}
				require.Equal(t, want, e.hooksRun(h), h)
			}
		})
	}
}

// TestOnlineBackOut: an abort before the takeover gives the host its
// direct paths back (restoreDirectPaths), removes everything and releases
// the fence; the old LUN holds every write.
func TestOnlineBackOut(t *testing.T) {
	ctx := context.Background()
	for _, ph := range phases {
		t.Run(string(ph), func(t *testing.T) {
			e := onlineEnv(t)
			failAt(e, ph)
			_, err := e.p.Cutover(ctx, "vol1")
			require.Error(t, err)
			e.k.Fail, e.k.HookFail = map[string]error{}, map[string]error{}
			rep, err := e.p.Abort(ctx, "vol1")
			require.NoError(t, err)
			require.Equal(t, plan.StepAborted, e.show().Step)
			e.clean("vol1")
			require.Empty(t, e.k.Fences())
			require.False(t, rep.HostWritesLost)
			require.Equal(t, 0, e.hooksRun("/hooks/back"), "restoreDirectPaths stands for post-abort")
			if ph != plan.PhasePassthrough {
				require.Contains(t, rep.Message, "holds every write")
			}
			require.Equal(t, 1, e.hooksRun(restoreDir), "the export was begun: the host may have seen it")
		})
	}
}

// TestOnlineRestore: after a reboot in each phase, restore rebuilds the
// pass-through (linear over the old LUN, read-write) and the fence where
// it was taken; the rerun finishes the cutover.
func TestOnlineRestore(t *testing.T) {
	ctx := context.Background()
	for _, ph := range phases[1:] {
		t.Run(string(ph), func(t *testing.T) {
			e := onlineEnv(t)
			clear := failAt(e, ph)
			_, err := e.p.Cutover(ctx, "vol1")
			require.Error(t, err)
			clear()
			// A fence begun (recorded pending) is taken by restore: the
			// host's direct paths are gone by then.
			fenced := ph == plan.PhaseFenced || ph == plan.PhaseTakenOver
			e.k.Reboot()
			_, err = e.p.Restore(ctx)
			require.NoError(t, err)
			e.passesThrough()
			_, held := e.k.Fences()[oldKey]
			require.Equal(t, fenced, held)
			rep, err := e.p.Status(ctx, "vol1")
			require.NoError(t, err)
			require.Empty(t, rep.Volumes[0].Drift)
			require.Equal(t, phaseBefore(ph), rep.Volumes[0].OnlinePhase)
			_, err = e.p.Cutover(ctx, "vol1")
			require.NoError(t, err)
			e.takenOver(true)
		})
	}
}

// TestOnlineTakeoverKilledInsideSwap: a takeover killed with the clone
// table loaded and the device suspended is completed by the rerun.
func TestOnlineTakeoverKilledInsideSwap(t *testing.T) {
	ctx := context.Background()
	e := onlineEnv(t)
	e.k.SwapStopsSuspended = true
	_, err := e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plantest.ErrCrash)
	e.k.SwapStopsSuspended = false
	require.True(t, e.k.Device(plan.DMName("vol1")).Suspended)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	e.takenOver(true)
	require.Contains(t, e.log.String(), "resuming it")
}

func TestOnlineRefusesReservations(t *testing.T) {
	for _, ignore := range []string{"", "ignore"} {
		e := newEnv(t)
		s := onlineSpec()
		s.Reservations = ignore
		e.add(s)
		_, err := e.p.Prepare(context.Background(), "vol1")
		require.NoError(t, err)
		e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", Reservations: scsi.Reservations{Keys: []uint64{0xabc}}})
		_, err = e.p.Cutover(context.Background(), "vol1")
		require.ErrorIs(t, err, plan.ErrReservations, "reservations %q", ignore)
		require.Contains(t, err.Error(), "0xabc")
		require.Empty(t, e.hooksOf(addPaths), "refused before the host's paths change")
	}
}

func (e *env) hooksOf(path string) []plantest.HookCall {
	var out []plantest.HookCall
	for _, h := range e.k.Hooks {
		if h.Path == path {
			out = append(out, h)
		}
	}
	return out
}

// TestFenceRefused: an array without persistent reservations refuses the
// online cutover at its fence, naming --no-fence, which the rerun then
// gives; the offline cutover warns and goes on.
func TestFenceRefused(t *testing.T) {
	ctx := context.Background()
	e := onlineEnv(t)
	e.k.NoPR = map[string]bool{oldKey: true}
	_, err := e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrFenceRefused)
	require.Contains(t, err.Error(), "--no-fence")
	require.Contains(t, err.Error(), `"fence": "none"`)
	require.Equal(t, plan.PhaseDirectRemoved, e.show().Cutover.Phase)
	e.passesThrough()
	_, err = e.p.CutoverWith(ctx, "vol1", plan.CutoverOptions{NoFence: true})
	require.NoError(t, err)
	e.takenOver(false)
	require.True(t, e.show().Cutover.NoFence, "recorded for restore and the rest")

	off := newEnv(t)
	off.k.NoPR = map[string]bool{oldKey: true}
	off.add(spec("vol1"))
	off.cutOver()
	require.Contains(t, off.log.String(), "warning: the old LUN is not fenced")
	require.Nil(t, objectOf(off.show(), plan.ObjFence))
}

// TestNoReservationSupport: an old LUN that refuses PERSISTENT RESERVE IN
// too (no persistent reservations at all) holds no cluster keys: the
// offline cutover goes on without a fence; the online cutover is refused
// before its first hook touches the host, naming --no-fence.
func TestNoReservationSupport(t *testing.T) {
	ctx := context.Background()
	e := onlineEnv(t)
	e.k.NoPRIn = map[string]bool{oldKey: true}
	_, err := e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrFenceRefused)
	require.Contains(t, err.Error(), "--no-fence")
	require.Empty(t, e.k.Hooks, "no hook ran: the host still has its direct paths only")
	_, err = e.p.CutoverWith(ctx, "vol1", plan.CutoverOptions{NoFence: true})
	require.NoError(t, err)
	e.takenOver(false)

	off := newEnv(t)
	off.k.NoPRIn = map[string]bool{oldKey: true}
	off.add(spec("vol1"))
	off.cutOver()
	require.Contains(t, off.log.String(), "does not support persistent reservations")
	require.Nil(t, objectOf(off.show(), plan.ObjFence))
}

func objectOf(v *plan.Volume, kind plan.ObjectKind) *plan.Object {
	for i := range v.Objects {
		if v.Objects[i].Kind == kind {
			return &v.Objects[i]
		}
	}
	return nil
}

// TestOfflineFence: the offline cutover fences the old LUN too, abort
// releases it, and a rerun of cutover does not take its own key for a
// cluster's.
func TestOfflineFence(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	e.k.Fail["Apply"] = errors.New("injected")
	_, err = e.p.Cutover(ctx, "vol1")
	require.Error(t, err)
	delete(e.k.Fail, "Apply")
	require.NotZero(t, e.k.Fences()[oldKey])
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err, "its own fence is no cluster's reservation")
	_, err = e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, e.k.Fences())
}

func TestOnlineNeedsItsHooks(t *testing.T) {
	e := newEnv(t)
	e.add(spec("vol1"))
	_, err := e.p.Prepare(context.Background(), "vol1")
	require.NoError(t, err)
	_, err = e.p.CutoverWith(context.Background(), "vol1", plan.CutoverOptions{Online: true})
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	require.Contains(t, err.Error(), "addPaths, removeDirectPaths and restoreDirectPaths")
	require.Equal(t, plan.StepPrepared, e.show().Step)
}

// TestOnlineDryRun shows every phase.
func TestOnlineDryRun(t *testing.T) {
	e := onlineEnv(t)
	_, err := e.planner(true).CutoverWith(context.Background(), "vol1", plan.CutoverOptions{Online: true})
	require.NoError(t, err)
	for _, ph := range phases {
		require.Contains(t, e.log.String(), "online cutover: "+string(ph))
	}
}

// fenceWatch runs the fake's hooks and records a restoreDirectPaths hook
// run while the old LUN is still fenced.
type fenceWatch struct {
	k       *plantest.Kernel
	fenced  bool
	watched string
}

func (h *fenceWatch) Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error {
	if path == h.watched && len(h.k.Fences()) > 0 {
		h.fenced = true
	}
	return h.k.Run(ctx, path, env, timeout, logPath)
}

func (h *fenceWatch) Check(path string) error { return h.k.Check(path) }

// TestBackOutReleasesTheFenceFirst: the host's direct paths come back
// while the old LUN is no longer reserved (a write down a direct path
// under the fence gets RESERVATION CONFLICT, which dm-multipath does not
// retry on another path).
func TestBackOutReleasesTheFenceFirst(t *testing.T) {
	ctx := context.Background()
	e := onlineEnv(t)
	failAt(e, plan.PhaseTakenOver)
	_, err := e.p.Cutover(ctx, "vol1")
	require.Error(t, err)
	require.NotEmpty(t, e.k.Fences())
	e.k.Fail = map[string]error{}
	h := &fenceWatch{k: e.k, watched: restoreDir}
	ports := e.k.Ports()
	ports.Hooks = h
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond})
	require.NoError(t, err)
	_, err = p.Abort(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, 1, e.hooksRun(restoreDir))
	require.False(t, h.fenced, "restoreDirectPaths ran with the old LUN still fenced")
}

// TestOnlineRefusesWriteThrough: an old LUN without a volatile write cache
// is refused before the host's paths change (its multipath map would take
// write back and FUA from the proxy's paths, and the clone needs the
// host's flushes after the takeover).
func TestOnlineRefusesWriteThrough(t *testing.T) {
	e := onlineEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", WriteThrough: true})
	_, err := e.p.Cutover(context.Background(), "vol1")
	require.ErrorIs(t, err, plan.ErrWriteThrough)
	require.Contains(t, err.Error(), "cut over offline")
	require.Empty(t, e.hooksOf(addPaths))
	_, exported := e.k.Export(exportIQN)
	require.False(t, exported)
}

// TestOnlineExportFollowsOldFUA: the export offers FUA only when the old
// LUN does, from its first login through the takeover and a restore; an
// offline export keeps LIO's.
func TestOnlineExportFollowsOldFUA(t *testing.T) {
	ctx := context.Background()
	for _, noFUA := range []bool{true, false} {
		e := onlineEnv(t)
		e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", NoFUA: noFUA})
		e.k.HookFail[removeDirect] = fmt.Errorf("%w: exit status 1", plan.ErrHook)
		_, err := e.p.Cutover(ctx, "vol1")
		require.Error(t, err)
		ex, _ := e.k.Export(exportIQN)
		require.Equal(t, noFUA, ex.NoFUA, "pass-through")
		delete(e.k.HookFail, removeDirect)
		_, err = e.p.Cutover(ctx, "vol1")
		require.NoError(t, err)
		e.k.Reboot()
		_, err = e.p.Restore(ctx)
		require.NoError(t, err)
		ex, _ = e.k.Export(exportIQN)
		require.Equal(t, noFUA, ex.NoFUA, "after the takeover and a restore")
	}
	e := newEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", NoFUA: true})
	e.add(spec("vol1"))
	e.cutOver()
	ex, _ := e.k.Export(exportIQN)
	require.False(t, ex.NoFUA, "offline: the host sees only the proxy's paths")
}
