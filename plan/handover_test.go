package plan_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

const (
	preHandover  = "/hooks/move-host"
	postHandover = "/hooks/unmap-proxy"
)

// movingHooks plays the admin's pre-handover hook: when it succeeds, the
// host leaves the proxy's export (the fake then shows no session on it).
type movingHooks struct {
	k *plantest.Kernel
	// stay keeps the host on the proxy: the hook "forgets" to move it.
	stay bool
}

func (h *movingHooks) Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error {
	err := h.k.Run(ctx, path, env, timeout, logPath)
	if err == nil && path == preHandover && !h.stay {
		h.k.HostLogsIn = false
	}
	return err
}

func (h *movingHooks) Check(path string) error { return h.k.Check(path) }

func handoverSpec() plan.Spec {
	s := spec("vol1")
	s.Hooks.PreHandover = []string{preHandover}
	s.Hooks.PostHandover = []string{postHandover}
	return s
}

// finalizedEnv returns an env whose planner drives movingHooks, with vol1
// finalized and the host on the proxy.
func finalizedEnv(t *testing.T) (*env, *movingHooks) {
	t.Helper()
	e := newEnv(t)
	h := &movingHooks{k: e.k}
	e.p = handoverPlanner(e, h)
	e.add(handoverSpec())
	ctx := context.Background()
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.True(t, e.k.HostLogsIn)
	e.k.ResetCalls()
	return e, h
}

func handoverPlanner(e *env, h *movingHooks) *plan.Planner {
	ports := e.k.Ports()
	ports.Hooks = h
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond})
	require.NoError(e.t, err)
	return p
}

// hookRuns counts the runs of a hook path.
func hookRuns(k *plantest.Kernel, path string) int {
	n := 0
	for _, h := range k.Hooks {
		if h.Path == path {
			n++
		}
	}
	return n
}

// retired asserts the proxy holds nothing of vol1 and the volume is handed
// over.
func (e *env) retired() {
	e.t.Helper()
	require.Nil(e.t, e.k.Device(plan.DMName("vol1")), "dm device left")
	_, ok := e.k.Export(exportIQN)
	require.False(e.t, ok, "export left")
	require.False(e.t, e.k.Session(newPortal+","+newIQN), "proxy still logged in to the new LUN")
	require.False(e.t, e.k.Session(oldPortal+","+oldIQN), "proxy still logged in to the old LUN")
	v, err := e.p.Show(context.Background(), "vol1")
	require.NoError(e.t, err)
	require.Equal(e.t, plan.StepHandedOver, v.Step)
	require.Empty(e.t, v.Objects)
	require.Empty(e.t, v.LastError)
	require.False(e.t, v.HandedOverAt.IsZero())
	require.False(e.t, v.HostMovedAt.IsZero())
	require.Equal(e.t, 1, hookRuns(e.k, postHandover), "post-handover hook runs once")
}

func kernelCalls(k *plantest.Kernel, prefixes ...string) []string {
	var out []string
	for _, c := range k.Calls() {
		for _, p := range prefixes {
			if strings.HasPrefix(c, p+" ") {
				out = append(out, c)
			}
		}
	}
	return out
}

func TestHandover(t *testing.T) {
	e, _ := finalizedEnv(t)
	ctx := context.Background()
	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, "proxy (linear over the new LUN)", rep.Volumes[0].Serving)
	require.Equal(t, "lunferry migrate handover vol1", rep.Volumes[0].Next)
	before := len(e.k.Hooks)
	e.k.ResetCalls()

	v, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
	require.Equal(t, plan.StepHandedOver, v.Step)
	e.retired()

	// Order: the host moves, its session is checked gone, then the export,
	// the era layer, the device, the proxy's session to the new LUN, then post hooks.
	require.Equal(t, []string{
		"Hook " + preHandover,
		"ExportLookup " + exportIQN,
		"Sessions " + exportIQN,
		"Teardown " + exportIQN,
		"Remove " + plan.EraName("vol1"),
		"DetachFile " + filepath.Join(e.dir, "metadata", "vol1.era") + "true",
		"Remove " + plan.DMName("vol1"),
		"Logout " + newPortal + "," + newIQN,
		"Hook " + postHandover,
	}, kernelCalls(e.k, "Hook", "ExportLookup", "Sessions", "Teardown", "Remove", "DetachFile", "Logout"))
	hooks := e.k.Hooks[before:]
	require.Len(t, hooks, 2)
	for i, phase := range []string{"pre-handover", "post-handover"} {
		require.Contains(t, hooks[i].Env, "LUNFERRY_PHASE="+phase)
		require.Contains(t, hooks[i].Env, "LUNFERRY_HOST_IQN="+hostIQN)
		require.Contains(t, hooks[i].Env, "LUNFERRY_NEW_IQN="+newIQN)
		require.Contains(t, hooks[i].Env, "LUNFERRY_NEW_PORTAL="+newPortal)
		require.Contains(t, hooks[i].Env, "LUNFERRY_NEW_LUN=3")
		require.Contains(t, hooks[i].Env, "LUNFERRY_EXPORT_IQN="+exportIQN)
	}
	require.Contains(t, strings.Join(hooks[0].Env, " "), "LUNFERRY_DEVICE=/dev/dm-")
	require.NotContains(t, strings.Join(hooks[1].Env, " "), "LUNFERRY_DEVICE=", "no device at post-handover")

	// Idempotent: a rerun changes nothing; earlier steps say it is done.
	e.k.ResetCalls()
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, e.k.Calls())
	e.retired()

	rep, err = e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	s := rep.Volumes[0]
	require.Equal(t, plan.StepHandedOver, s.Step)
	require.Equal(t, "new array", s.Serving)
	require.Equal(t, "lunferry volume remove vol1", s.Next)
	require.Empty(t, s.Sessions)
	require.Equal(t, 100.0, s.Percent)
	require.Empty(t, rep.Strays)

	_, err = e.p.Abort(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	require.ErrorContains(t, err, "nothing to roll back")
	require.ErrorIs(t, e.p.SetThrottle(ctx, "vol1", mustSchedule(t, "10MiB/s")), plan.ErrWrongStep)
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Empty(t, res[0].Rebuilt, "restore rebuilds nothing of a handed-over volume")
	require.Nil(t, e.k.Device(plan.DMName("vol1")))

	// The LUNs are free for another migration; the record can be dropped
	// without --forget.
	s2 := handoverSpec()
	s2.Name = "vol2"
	e.add(s2)
	require.NoError(t, e.p.Remove(ctx, "vol1", false))
}

func TestHandoverOnlyAfterFinalize(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	h := &movingHooks{k: e.k}
	e.p = handoverPlanner(e, h)
	e.add(handoverSpec())
	try := func(want plan.Step, hint string) {
		t.Helper()
		_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{Force: true})
		require.ErrorIs(t, err, plan.ErrWrongStep)
		var se *plan.StepError
		require.ErrorAs(t, err, &se)
		require.Equal(t, want, se.Step)
		require.ErrorContains(t, err, hint)
		v, err := e.p.Show(ctx, "vol1")
		require.NoError(t, err)
		require.Equal(t, want, v.Step, "refusal changes nothing")
		require.Empty(t, kernelCalls(e.k, "Teardown", "Remove", "Logout", "Hook"))
		require.Zero(t, hookRuns(e.k, preHandover))
	}
	try(plan.StepNew, "handover follows finalize")
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	try(plan.StepPrepared, "handover follows finalize")
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	e.k.ResetCalls()
	try(plan.StepCutOver, "migrate finalize vol1")
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.k.ResetCalls()
	try(plan.StepHydrating, "migrate finalize vol1")
	e.hydrate("vol1")
	e.k.ResetCalls()
	try(plan.StepHydrated, "migrate finalize vol1")
	_, ok := e.k.Export(exportIQN)
	require.True(t, ok, "the host is still served")

	_, err = e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	e.k.ResetCalls()
	try(plan.StepAborted, "handover follows finalize")
}

func TestHandoverRefusedWhileHostOnProxy(t *testing.T) {
	ctx := context.Background()
	e, h := finalizedEnv(t)
	h.stay = true
	dev := e.k.Device(plan.DMName("vol1"))

	_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.ErrorIs(t, err, plan.ErrNotReady)
	var hs *plan.HostSessionError
	require.ErrorAs(t, err, &hs)
	require.Equal(t, hostIQN, hs.HostIQN)
	require.Equal(t, []string{hostIQN}, hs.Sessions)
	for _, want := range []string{hostIQN, exportIQN, "log out of", "rerun `lunferry migrate handover vol1`", "--force"} {
		require.ErrorContains(t, err, want)
	}
	// Nothing of the proxy was touched: the host is still served.
	require.Equal(t, dev, e.k.Device(plan.DMName("vol1")))
	_, ok := e.k.Export(exportIQN)
	require.True(t, ok)
	require.True(t, e.k.Session(newPortal+","+newIQN))
	require.Empty(t, kernelCalls(e.k, "Teardown", "Remove", "Logout"))
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepHandingOver, v.Step)
	require.Contains(t, v.LastError, "still has a session")
	require.True(t, v.HostMovedAt.IsZero())
	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, []string{hostIQN}, rep.Volumes[0].Sessions)
	require.Contains(t, rep.Volumes[0].LastError, "still has a session")

	_, err = e.p.Abort(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrWrongStep)
	require.ErrorContains(t, err, "rerun `lunferry migrate handover vol1`")
	require.ErrorContains(t, e.p.Remove(ctx, "vol1", true), "rerun `lunferry migrate handover vol1`")

	// A reboot now brings the proxy back for the host: it was never moved.
	e.k.Reboot()
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Contains(t, res[0].Hint, "rerun `lunferry migrate handover vol1`")
	_, ok = e.k.Export(exportIQN)
	require.True(t, ok, "export rebuilt: the host had not left the proxy")
	require.NotNil(t, e.k.Device(plan.DMName("vol1")))

	// The rerun runs the pre-handover hook again (it did not do its job).
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.ErrorIs(t, err, plan.ErrNotReady)
	require.Equal(t, 2, hookRuns(e.k, preHandover))

	// The hook fixed, the host moves and handover completes.
	h.stay = false
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
	require.Equal(t, 3, hookRuns(e.k, preHandover))
	e.retired()
}

func TestHandoverForce(t *testing.T) {
	ctx := context.Background()
	e, h := finalizedEnv(t)
	h.stay = true
	_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{Force: true})
	require.NoError(t, err)
	e.retired()
	require.Contains(t, e.log.String(), "--force: tearing export "+exportIQN+" down under "+hostIQN)
}

// TestHandoverCrashAtEveryPoint crashes the process at every kernel
// operation of a handover; the handover is then rerun, directly or after a
// reboot and restore, and completes with nothing of the proxy left.
func TestHandoverCrashAtEveryPoint(t *testing.T) {
	e, _ := finalizedEnv(t)
	e.k.ResetCalls()
	_, err := e.p.Handover(context.Background(), "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
	total := len(e.k.Calls())
	require.GreaterOrEqual(t, total, 7)

	for n := 1; n <= total; n++ {
		for _, reboot := range []bool{false, true} {
			t.Run(fmt.Sprintf("op%d-reboot=%v", n, reboot), func(t *testing.T) {
				ctx := context.Background()
				e, _ := finalizedEnv(t)
				e.k.ResetCalls()
				e.k.CrashAt = n
				_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
				require.ErrorIs(t, err, plantest.ErrCrash)
				e.k.CrashAt = 0
				v, err := e.p.Show(ctx, "vol1")
				require.NoError(t, err)
				require.Equal(t, plan.StepHandingOver, v.Step, "the -ing step is saved before the kernel is touched")
				if reboot {
					e.k.Reboot()
					res, err := e.p.Restore(ctx)
					require.NoError(t, err)
					require.Contains(t, res[0].Hint, "migrate handover vol1")
					if !v.HostMovedAt.IsZero() {
						require.Empty(t, res[0].Rebuilt, "the host left the proxy: nothing rebuilt")
						require.Nil(t, e.k.Device(plan.DMName("vol1")))
					}
				}
				_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
				require.NoError(t, err)
				e.retired()
				require.Equal(t, 1, hookRuns(e.k, preHandover), "a completed pre-handover hook is not rerun")
			})
		}
	}
}

func TestHandoverHookFailure(t *testing.T) {
	ctx := context.Background()
	t.Run("pre", func(t *testing.T) {
		e, _ := finalizedEnv(t)
		e.k.HookFail[preHandover] = fmt.Errorf("%w: exit status 3", plan.ErrHook)
		_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
		require.ErrorIs(t, err, plan.ErrHook)
		require.ErrorContains(t, err, "pre-handover hook "+preHandover)
		v, err := e.p.Show(ctx, "vol1")
		require.NoError(t, err)
		require.Equal(t, plan.StepHandingOver, v.Step)
		require.Contains(t, v.LastError, "pre-handover hook")
		_, ok := e.k.Export(exportIQN)
		require.True(t, ok, "the host is still served by the proxy")
		require.NotNil(t, e.k.Device(plan.DMName("vol1")))
		require.Empty(t, kernelCalls(e.k, "Teardown", "Remove", "Logout"))

		delete(e.k.HookFail, preHandover)
		_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
		require.NoError(t, err)
		e.retired()
	})
	t.Run("post", func(t *testing.T) {
		e, _ := finalizedEnv(t)
		e.k.HookFail[postHandover] = fmt.Errorf("%w: killed after 5m", plan.ErrHook)
		_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
		require.ErrorIs(t, err, plan.ErrHook)
		require.ErrorContains(t, err, "post-handover hook "+postHandover)
		v, err := e.p.Show(ctx, "vol1")
		require.NoError(t, err)
		require.Equal(t, plan.StepHandingOver, v.Step)
		require.Empty(t, v.Objects, "the proxy's objects are gone before post-handover")

		delete(e.k.HookFail, postHandover)
		e.k.ResetCalls()
		_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{"Hook " + postHandover}, e.k.Calls(), "only the failed hook is rerun")
		e.k.Hooks = e.k.Hooks[:len(e.k.Hooks)-1] // count the failed run out
		require.Equal(t, 1, hookRuns(e.k, preHandover))
	})
	t.Run("missing", func(t *testing.T) {
		e, _ := finalizedEnv(t)
		e.k.HookMissing[preHandover] = true
		_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
		require.ErrorIs(t, err, plan.ErrInvalidSpec)
		v, err := e.p.Show(ctx, "vol1")
		require.NoError(t, err)
		require.Equal(t, plan.StepFinalized, v.Step, "nothing done")
	})
}

// TestHandoverKeepsSharedLogin: the proxy's session to the new array's
// target stays while another volume still uses it.
func TestHandoverKeepsSharedLogin(t *testing.T) {
	ctx := context.Background()
	e, _ := finalizedEnv(t)
	e.k.LUNs[plantest.Key(oldPortal, oldIQN, 2)] = plantest.LUNInfo{Size: gib, ID: "wwid-old2"}
	e.k.LUNs[plantest.Key(newPortal, newIQN, 4)] = plantest.LUNInfo{Size: gib, ID: "wwid-new2"}
	s2 := spec("vol2")
	s2.Old.LUN, s2.New.LUN = 2, 4
	s2.Export.IQN = exportIQN + "-2"
	e.add(s2)
	_, err := e.p.Prepare(ctx, "vol2")
	require.NoError(t, err)
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
	require.True(t, e.k.Session(newPortal+","+newIQN), "vol2 still needs the session")
	require.Contains(t, e.log.String(), "keep session")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepHandedOver, v.Step)
	require.Empty(t, v.Objects)
	require.NoError(t, e.p.Remove(ctx, "vol1", false))
}

// TestHandoverHostBackOnProxy: handover found the host gone and began the
// removal, was interrupted, and the host came back to the export before the
// rerun: the rerun refuses and forgets that the host had left, so that a
// reboot rebuilds the proxy for it.
func TestHandoverHostBackOnProxy(t *testing.T) {
	ctx := context.Background()
	e, _ := finalizedEnv(t)
	e.k.Fail["Teardown"] = errors.New("configfs: device busy")
	_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.ErrorContains(t, err, "device busy")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.False(t, v.HostMovedAt.IsZero())
	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, "new array", rep.Volumes[0].Serving)

	delete(e.k.Fail, "Teardown")
	e.k.HostLogsIn = true
	h := &movingHooks{k: e.k, stay: true}
	e.p = handoverPlanner(e, h)
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	var hs *plan.HostSessionError
	require.ErrorAs(t, err, &hs)
	v, err = e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.True(t, v.HostMovedAt.IsZero())
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	_, ok := e.k.Export(exportIQN)
	require.True(t, ok, "the proxy is rebuilt for the host")
}
