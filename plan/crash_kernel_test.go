package plan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// helperEnv makes the test binary a lunferry that runs one cutover and
// exits (TestHelperCutover), so that a kernel test can SIGKILL it midway.
const helperEnv = "LUNFERRY_PLAN_HELPER_STATE"

func TestHelperCutover(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestKernelKilledDuringCutover")
	}
	p, err := plan.New(plan.Options{StateDir: dir, Ports: kernel.Ports(kernel.Options{}), PollInterval: 100 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := p.Cutover(context.Background(), os.Getenv("LUNFERRY_PLAN_HELPER_VOLUME")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestKernelKilledDuringCutover: lunferry is killed (SIGKILL) while the
// post-cutover hook runs, after the clone and the export exist. Running
// cutover again resumes: the objects are found, not made twice, the hook
// runs again, the host logs in; abort then leaves nothing.
func TestKernelKilledDuringCutover(t *testing.T) {
	l := newLab(t, 16*mib, 16*mib)
	ctx := context.Background()
	marker := filepath.Join(l.dir, "first-run")
	hookPid := filepath.Join(l.dir, "hook.pid")
	// First run: record the pid and hang; later runs: log the host in.
	login := l.spec.Hooks.PostCutover[0]
	slow := l.hook("slow-login", fmt.Sprintf(`if [ ! -e %[1]s ]; then touch %[1]s; echo $$ > %[2]s; exec sleep 60; fi
exec %[3]s`, marker, hookPid, login))
	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	v.Spec.Hooks.PostCutover = []string{slow}
	require.NoError(t, l.p.Store().Save(v))
	_, err = l.p.Prepare(ctx, l.spec.Name)
	require.NoError(t, err)

	state := filepath.Join(l.dir, "state")
	killWhen(t, helperProcess("TestHelperCutover", helperEnv+"="+state, "LUNFERRY_PLAN_HELPER_VOLUME="+l.spec.Name),
		"the post-cutover hook", 2*time.Minute, func(string) bool {
			b, err := os.ReadFile(hookPid)
			return err == nil && len(strings.TrimSpace(string(b))) > 0
		})
	b, _ := os.ReadFile(hookPid)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL) // the orphaned hook
	}

	v, err = l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	require.Equal(t, plan.StepCuttingOver, v.Step, "killed midway: the -ing step is on disk")
	kinds := map[plan.ObjectKind]bool{}
	for _, o := range v.Objects {
		kinds[o.Kind] = true
		require.False(t, o.Pending, "%s", o.Kind)
	}
	require.True(t, kinds[plan.ObjDevice] && kinds[plan.ObjExport], "objects: %+v", v.Objects)
	before := v.Objects

	v, err = l.p.Cutover(ctx, l.spec.Name)
	require.NoError(t, err, "resume")
	require.Equal(t, plan.StepCutOver, v.Step)
	require.Equal(t, before, v.Objects, "every object was found, none made again")
	l.hostDisk = l.findHostDisk()
	rep, err := l.p.Abort(ctx, l.spec.Name)
	require.NoError(t, err)
	require.True(t, rep.HostWritesLost)
}
