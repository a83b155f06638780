package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

// TestHookEnvironment runs a real hook through a cutover and checks the
// documented variables.
func TestHookEnvironment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	envOut := filepath.Join(e.dir, "env.txt")
	hook := writeScript(t, e.dir, "post", "env | grep ^LUNFERRY_ | sort > "+envOut)
	ports := e.k.Ports()
	ports.Hooks = kernel.ExecHooks{Owner: os.Getuid()}
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

// TestHookWritableByOthersRefusedBeforeTheWindow: prepare and cutover
// refuse a hook another user could replace before anything runs.
func TestHookWritableByOthersRefusedBeforeTheWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ports := e.k.Ports()
	ports.Hooks = kernel.ExecHooks{Owner: os.Getuid()}
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports})
	require.NoError(t, err)
	hook := writeScript(t, e.dir, "quiesce", "exit 0")
	s := spec("vol1")
	s.Hooks = plan.Hooks{PreCutover: []string{hook}}
	_, err = p.Add(ctx, s)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(hook, 0o777))
	_, err = p.Prepare(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	require.ErrorContains(t, err, "chmod go-w "+hook)
	require.Empty(t, e.k.Calls(), "nothing done in the kernel")

	require.NoError(t, os.Chmod(hook, 0o755))
	_, err = p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(hook, 0o775))
	_, err = p.Cutover(ctx, "vol1")
	require.ErrorContains(t, err, "chmod go-w "+hook)
	v, err := p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepPrepared, v.Step, "cutover refused before the window")
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
