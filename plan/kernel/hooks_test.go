package kernel_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

func TestExecHooks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "logs", "h.log")
	ctx := context.Background()
	var h kernel.ExecHooks

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

func TestExecHooksCheck(t *testing.T) {
	dir := t.TempDir()
	var h kernel.ExecHooks
	require.NoError(t, h.Check(writeScript(t, dir, "ok", "true")))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o644))
	require.ErrorContains(t, h.Check(plain), "chmod +x")
	require.ErrorContains(t, h.Check(dir), "not an executable file")
	require.ErrorIs(t, h.Check(filepath.Join(dir, "missing")), os.ErrNotExist)
}

// TestExecHooksCheckOwnerAndMode: a hook another user could replace would
// run as root in the window.
func TestExecHooksCheckOwnerAndMode(t *testing.T) {
	dir := t.TempDir()
	h := kernel.ExecHooks{Owner: os.Getuid()}
	ok := writeScript(t, dir, "ok", "true")
	require.NoError(t, h.Check(ok))
	for _, mode := range []os.FileMode{0o775, 0o757, 0o777} {
		p := writeScript(t, dir, "w"+mode.String(), "true")
		require.NoError(t, os.Chmod(p, mode))
		err := h.Check(p)
		require.ErrorContains(t, err, "writable", "mode %o", mode)
		require.ErrorContains(t, err, "chmod go-w "+p)
	}
	other := kernel.ExecHooks{Owner: os.Getuid() + 1}
	err := other.Check(ok)
	require.ErrorContains(t, err, "owned by uid")
	require.ErrorContains(t, err, "chown")
	require.ErrorContains(t, err, ok)
}

// TestExecHooksMinimalEnvironment: hooks get PATH, LANG and the LUNFERRY_*
// variables, not the proxy's whole environment.
func TestExecHooksMinimalEnvironment(t *testing.T) {
	t.Setenv("LUNFERRY_TEST_PASSED_ON", "yes")
	t.Setenv("SOME_PROXY_SECRET", "leaked")
	t.Setenv("PATH", "/nonexistent:"+os.Getenv("PATH"))
	dir := t.TempDir()
	out := filepath.Join(dir, "env.txt")
	hook := writeScript(t, dir, "env", "/usr/bin/env > "+out)
	h := kernel.ExecHooks{Owner: os.Getuid()}
	require.NoError(t, h.Run(context.Background(), hook, []string{"LUNFERRY_VOLUME=v1"}, 5*time.Second, filepath.Join(dir, "log")))
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		names = append(names, strings.SplitN(l, "=", 2)[0])
	}
	env := string(b)
	require.Contains(t, env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
	require.Contains(t, env, "LANG=C.UTF-8\n")
	require.Contains(t, env, "LUNFERRY_VOLUME=v1\n")
	require.Contains(t, env, "LUNFERRY_TEST_PASSED_ON=yes\n")
	require.NotContains(t, env, "SOME_PROXY_SECRET")
	for _, n := range names {
		if n != "PATH" && n != "LANG" && n != "PWD" && !strings.HasPrefix(n, "LUNFERRY_") {
			t.Errorf("hook environment has %s", n)
		}
	}
}
