package plan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// The crash matrix's starting points (fixtures), copied for each case,
// and its hooks.

// fixture is a volume brought to a step's starting point once; every case
// runs on a copy of it (its state files written back into the same
// directory, a clone of the fake kernel), as the fake holds absolute paths.
type fixture struct {
	e *env
	// volumes are the state files; metas the metadata files' first
	// block and size (the fake reads no further).
	volumes map[string][]byte
	metas   map[string]metaCopy
}

type metaCopy struct {
	head []byte
	size int64
}

// fixtureSteps says how vol1 reaches each starting point of the matrix.
func fixtureSteps() map[string][]func(e *env) error {
	ctx := context.Background()
	prepare := func(e *env) error { _, err := e.p.Prepare(ctx, "vol1"); return err }
	cutover := func(e *env) error { _, err := e.p.Cutover(ctx, "vol1"); return err }
	start := func(e *env) error { _, err := e.p.Start(ctx, "vol1"); return err }
	pause := func(e *env) error { return e.p.Pause(ctx, "vol1") }
	finalize := func(e *env) error { _, err := e.p.Finalize(ctx, "vol1"); return err }
	reboot := func(e *env) error { e.k.Reboot(); return nil }
	rollback := func(e *env) error {
		e.k.HostWrite(plan.EraName("vol1"), 4<<20, 4<<10)
		_, err := e.p.Rollback(ctx, "vol1", plan.RollbackOptions{})
		return err
	}
	restore := func(e *env) error { _, err := e.p.Restore(ctx); return err }
	failedAbort := func(e *env) error {
		e.k.HookFail[preAbort] = fmt.Errorf("%w: exit status 1", plan.ErrHook)
		_, err := e.p.Abort(ctx, "vol1")
		delete(e.k.HookFail, preAbort)
		if !errors.Is(err, plan.ErrHook) {
			return fmt.Errorf("abort: %w, want a failed pre-abort hook", err)
		}
		return nil
	}
	// failedOnline cuts over online with op failing (a hook path or a
	// kernel call): the volume stays in the phase before.
	failedOnline := func(op string) func(e *env) error {
		return func(e *env) error {
			e.k.HookFail[op], e.k.Fail[op] = fmt.Errorf("%w: exit status 1", plan.ErrHook), errors.New("injected")
			_, err := e.p.CutoverWith(ctx, "vol1", plan.CutoverOptions{Online: true})
			delete(e.k.HookFail, op)
			delete(e.k.Fail, op)
			if err == nil {
				return errors.New("online cutover did not fail")
			}
			return nil
		}
	}
	return map[string][]func(e *env) error{
		"online-paths-added":             {prepare, failedOnline(removeDirect)},
		"online-direct-removed":          {prepare, failedOnline("Fence")},
		"rebooted-online-direct-removed": {prepare, failedOnline("Fence"), reboot},
		"new":                            nil,
		"prepared":                       {prepare},
		"cut-over":                       {prepare, cutover},
		"hydrating":                      {prepare, cutover, start},
		"paused":                         {prepare, cutover, start, pause},
		"abort-pending":                  {prepare, cutover, start, failedAbort},
		"hydrated":                       {prepare, cutover, start, ticks},
		"rolled-back":                    {prepare, cutover, start, rollback},
		"finalized":                      {prepare, cutover, start, ticks, finalize},
		"rebooted-hydrating":             {prepare, cutover, start, reboot},
		"rebooted-finalized":             {prepare, cutover, start, ticks, finalize, reboot},
		"rebooted-abort-pending":         {prepare, cutover, start, failedAbort, reboot},
		"restored-abort-pending":         {prepare, cutover, start, failedAbort, reboot, restore},
	}
}

// fixtures builds the starting points of steps, each once.
func fixtures(t *testing.T, steps []*matrixStep) map[string]*fixture {
	fx := map[string]*fixture{}
	for _, st := range steps {
		if fx[st.from] != nil {
			continue
		}
		upTo, ok := fixtureSteps()[st.from]
		require.True(t, ok, "no fixture %s", st.from)
		e := newEnv(t)
		e.k.LoseUncommitted = true
		e.add(matrixSpec())
		for _, f := range upTo {
			require.NoError(t, f(e), "fixture %s", st.from)
		}
		fx[st.from] = snapshotFixture(t, e)
	}
	return fx
}

func snapshotFixture(t *testing.T, e *env) *fixture {
	f := &fixture{e: e, volumes: readVolumes(t, e.dir), metas: map[string]metaCopy{}}
	paths, err := filepath.Glob(filepath.Join(e.dir, "metadata", "*"))
	require.NoError(t, err)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		f.metas[p] = metaCopy{head: b[:min(len(b), 4096)], size: int64(len(b))}
	}
	return f
}

func readVolumes(t *testing.T, dir string) map[string][]byte {
	out := map[string][]byte{}
	paths, err := filepath.Glob(filepath.Join(dir, "volumes", "*.json"))
	require.NoError(t, err)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		out[p] = b
	}
	return out
}

// writeVolumes puts the state files back as they were in files.
func writeVolumes(t *testing.T, dir string, files map[string][]byte) {
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "volumes")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "volumes"), 0o700))
	for p, b := range files {
		require.NoError(t, os.WriteFile(p, b, 0o600))
	}
}

// env returns a fresh copy of the fixture for one case, with a planner
// whose hooks are h's.
func (f *fixture) env(t *testing.T, h *matrixHooks) *env {
	e := &env{t: t, dir: f.e.dir, k: f.e.k.Clone(), log: &bytes.Buffer{}}
	writeVolumes(t, e.dir, f.volumes)
	meta := filepath.Join(e.dir, "metadata")
	require.NoError(t, os.RemoveAll(meta))
	require.NoError(t, os.MkdirAll(meta, 0o700))
	for p, m := range f.metas {
		require.NoError(t, os.WriteFile(p, m.head, 0o600))
		require.NoError(t, os.Truncate(p, m.size))
	}
	h.k = e.k
	e.p = matrixPlanner(e, h)
	return e
}

// matrixPlanner is a new lunferry process over e's state and kernel.
func matrixPlanner(e *env, h *matrixHooks) *plan.Planner {
	ports := e.k.Ports()
	ports.Hooks = h
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond})
	require.NoError(e.t, err)
	return p
}

// matrixHooks plays the hooks: the pre-handover hook moves the host off
// the proxy (as movingHooks), and a post-abort hook that runs while the
// kernel still holds the volume's objects is a violation.
type matrixHooks struct {
	k   *plantest.Kernel
	bad []string
}

func (h *matrixHooks) Run(ctx context.Context, path string, env []string, timeout time.Duration, logPath string) error {
	var left []string
	if path == postAbort {
		left = volumeObjects(h.k.Inventory())
	}
	err := h.k.Run(ctx, path, env, timeout, logPath)
	if err != nil {
		return err
	}
	if path == preHandover {
		h.k.HostLogsIn = false
	}
	if len(left) > 0 {
		h.bad = append(h.bad, fmt.Sprintf("post-abort hook ran before the teardown, with %v in the kernel", left))
	}
	return nil
}

func (h *matrixHooks) Check(path string) error { return h.k.Check(path) }

// volumeObjects lists what the kernel holds of vol1 (with vol1's names and
// targets).
func volumeObjects(inv plantest.Inventory) []string {
	var out []string
	for n := range inv.Devices {
		out = append(out, "device "+n)
	}
	for iqn := range inv.Exports {
		out = append(out, "export "+iqn)
	}
	for _, s := range inv.Sessions {
		out = append(out, "session "+s)
	}
	for f := range inv.Loops {
		out = append(out, "loop over "+f)
	}
	sort.Strings(out)
	return out
}
