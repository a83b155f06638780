package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
)

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

func TestExecHooks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "logs", "h.log")
	ctx := context.Background()
	var h plan.ExecHooks

	ok := writeScript(t, dir, "ok", `echo "phase=$LUNFERRY_PHASE vol=$LUNFERRY_VOLUME"`)
	require.NoError(t, h.Run(ctx, ok, []string{"LUNFERRY_PHASE=pre-cutover", "LUNFERRY_VOLUME=v1"}, 5*time.Second, log))
	out, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Contains(t, string(out), "phase=pre-cutover vol=v1")

	fail := writeScript(t, dir, "fail", `echo boom >&2; exit 3`)
	err = h.Run(ctx, fail, nil, 5*time.Second, log)
	require.ErrorIs(t, err, plan.ErrHook)
	require.Contains(t, err.Error(), "exit status 3")

	// A hanging hook and the child it forked are both killed.
	pidFile := filepath.Join(dir, "child.pid")
	hang := writeScript(t, dir, "hang", `sleep 30 & echo $! > `+pidFile+`; wait`)
	start := time.Now()
	// 3s, not less: under emulation in the lab VM the shell may need
	// most of a second before it has written the child's pid.
	err = h.Run(ctx, hang, nil, 3*time.Second, log)
	require.ErrorIs(t, err, plan.ErrHook)
	require.Contains(t, err.Error(), "still running after 3s, killed")
	require.Less(t, time.Since(start), 15*time.Second)
	pid, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := os.Stat("/proc/" + strings.TrimSpace(string(pid)))
		return err != nil
	}, 5*time.Second, 50*time.Millisecond, "the hook's child was killed with its process group")

	err = h.Run(ctx, filepath.Join(dir, "missing"), nil, time.Second, log)
	require.ErrorIs(t, err, plan.ErrHook)
	require.Contains(t, err.Error(), "cannot start")
}

// TestHookEnvironment runs a real hook through a cutover and checks the
// documented variables.
func TestHookEnvironment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	envOut := filepath.Join(e.dir, "env.txt")
	hook := writeScript(t, e.dir, "post", "env | grep ^LUNFERRY_ | sort > "+envOut)
	ports := e.k.Ports()
	ports.Hooks = plan.ExecHooks{}
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports})
	require.NoError(t, err)
	s := spec("vol1")
	s.Hooks = plan.Hooks{PostCutover: []string{hook}}
	_, err = p.Add(ctx, s)
	require.NoError(t, err)
	_, err = p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	_, err = p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	got, err := os.ReadFile(envOut)
	require.NoError(t, err)
	for _, want := range []string{
		"LUNFERRY_VOLUME=vol1", "LUNFERRY_PHASE=post-cutover", "LUNFERRY_HOST_IQN=" + hostIQN,
		"LUNFERRY_EXPORT_IQN=" + exportIQN, "LUNFERRY_EXPORT_PORTAL=192.0.2.1:3260", "LUNFERRY_OLD_IQN=" + oldIQN,
		"LUNFERRY_OLD_LUN=1", "LUNFERRY_NEW_PORTAL=" + newPortal, "LUNFERRY_DEVICE=/dev/dm-", "LUNFERRY_SIZE_BYTES=1073741824",
		"LUNFERRY_STATE_DIR=" + e.dir,
	} {
		require.Contains(t, string(got), want)
	}
	_, err = os.Stat(filepath.Join(e.dir, "logs", "vol1.post-cutover.log"))
	require.NoError(t, err)
}

func TestStoreRoundTripAndAtomicity(t *testing.T) {
	dir := t.TempDir()
	st := plan.Store{Dir: dir}
	v := &plan.Volume{Spec: spec("vol1"), Step: plan.StepHydrating, Objects: []plan.Object{{Kind: plan.ObjDevice, Name: "lunferry-vol1", Device: "/dev/dm-3"}}}
	require.NoError(t, st.Save(v))
	got, err := st.Load("vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StateVersion, got.Version)
	require.Equal(t, v.Objects, got.Objects)
	require.Equal(t, plan.StepHydrating, got.Step)
	entries, err := os.ReadDir(filepath.Join(dir, "volumes"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temp files left")
	_, err = st.Load("nope")
	require.ErrorIs(t, err, plan.ErrNotFound)
}
