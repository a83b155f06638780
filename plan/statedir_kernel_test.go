package plan_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// kernelObjects lists what the kernel holds that a lunferry step could
// make: dm devices with lunferry's prefix and their tables, LIO targets,
// iSCSI sessions.
func kernelObjects(t *testing.T, l *lab) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	devs, err := c.List(ctx)
	require.NoError(t, err)
	for _, d := range devs {
		if strings.HasPrefix(d.Name, plan.Prefix) {
			tbl, err := c.Table(ctx, d.Name)
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("dm %s %v", d.Name, tbl))
		}
	}
	targets, err := l.root.Targets()
	require.NoError(t, err)
	for _, tg := range targets {
		out = append(out, "lio "+tg.IQN)
	}
	ini, err := initiator.New(initiator.Options{})
	require.NoError(t, err)
	ss, err := ini.Sessions(ctx)
	require.NoError(t, err)
	for _, s := range ss {
		out = append(out, fmt.Sprintf("session %s %s %s %s", s.Iface, s.TargetIQN, s.Portal, s.State))
	}
	slices.Sort(out)
	return out
}

// stateFS is a small tmpfs holding a state directory, to be filled up or
// remounted read-only.
type stateFS struct {
	t   *testing.T
	dir string
}

func mountStateFS(t *testing.T) *stateFS {
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"))
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return &stateFS{t: t, dir: dir}
}

// fill writes a file until the filesystem has no block left.
func (s *stateFS) fill() {
	f, err := os.Create(filepath.Join(s.dir, "filler"))
	require.NoError(s.t, err)
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			require.ErrorIs(s.t, err, syscall.ENOSPC)
			return
		}
	}
}

func (s *stateFS) free() {
	require.NoError(s.t, unix.Mount("", s.dir, "", unix.MS_REMOUNT, "size=256k,mode=0700"))
	if err := os.Remove(filepath.Join(s.dir, "filler")); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.t.Fatal(err)
	}
}

func (s *stateFS) readOnly() {
	require.NoError(s.t, unix.Mount("", s.dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
}

// refused runs a command that must be refused on the full or read-only
// state directory, naming it and the fix, with the kernel and the state
// file as they were.
func (s *stateFS) refused(l *lab, what, fix string, cmd func() error) {
	s.t.Helper()
	statePath := filepath.Join(s.dir, "volumes", l.spec.Name+".json")
	state, err := os.ReadFile(statePath)
	require.NoError(s.t, err)
	before := kernelObjects(s.t, l)
	err = cmd()
	require.Error(s.t, err, what)
	s.t.Logf("%s: %v", what, err)
	require.Contains(s.t, err.Error(), "the state directory "+s.dir+" is "+fix, what)
	require.Equal(s.t, before, kernelObjects(s.t, l), "%s changed the kernel", what)
	after, err := os.ReadFile(statePath)
	require.NoError(s.t, err)
	require.Equal(s.t, string(state), string(after), "%s changed the state file", what)
}

// TestKernelStateDirFullOrReadOnly: on a full state directory prepare,
// cutover, start, finalize and abort are each refused with nothing changed
// in the kernel (each saves its step before it acts), and on a read-only
// one too; status still reads. The error names the directory and the fix.
func TestKernelStateDirFullOrReadOnly(t *testing.T) {
	l := newLab(t, 4*mib, 4*mib)
	ctx := context.Background()
	fs := mountStateFS(t)
	// The admin's metadata devices: file-backed ones would live in the
	// full filesystem too (its writes then fail the clone's metadata) and
	// keep it from being remounted read-only.
	spec := l.spec
	spec.Metadata.Device = vmtest.LoopDevice(t, 2*mib)
	spec.Metadata.EraDevice = vmtest.LoopDevice(t, 8*mib)
	p, err := plan.New(plan.Options{StateDir: fs.dir, LockWait: 10 * time.Second, Log: testLog{t}, PollInterval: 100 * time.Millisecond,
		Ports: kernel.Ports(kernel.Options{TickInterval: 200 * time.Millisecond})})
	require.NoError(t, err)
	_, err = p.Add(ctx, spec)
	require.NoError(t, err)
	t.Cleanup(func() {
		fs.free()
		if _, err := p.Abort(context.Background(), spec.Name); err != nil {
			t.Errorf("cleanup abort: %v", err)
		}
	})
	name := spec.Name
	full := "full: free space on its filesystem"

	fs.fill()
	fs.refused(l, "prepare", full, func() error { _, err := p.Prepare(ctx, name); return err })
	fs.free()
	_, err = p.Prepare(ctx, name)
	require.NoError(t, err)

	fs.fill()
	fs.refused(l, "cutover", full, func() error { _, err := p.Cutover(ctx, name); return err })
	fs.free()
	_, err = p.Cutover(ctx, name)
	require.NoError(t, err)

	fs.fill()
	fs.refused(l, "start", full, func() error { _, err := p.Start(ctx, name); return err })
	fs.free()
	_, err = p.Start(ctx, name)
	require.NoError(t, err)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		_, err := p.Tick(ctx, false)
		require.NoError(t, err)
		v, err := p.Show(ctx, name)
		require.NoError(t, err)
		if v.Step == plan.StepHydrated {
			break
		}
		require.True(t, time.Now().Before(deadline), "not hydrated: %+v", v.Progress)
	}

	fs.fill()
	fs.refused(l, "finalize", full, func() error { _, err := p.Finalize(ctx, name); return err })
	fs.refused(l, "abort", full, func() error { _, err := p.Abort(ctx, name); return err })

	fs.readOnly()
	ro := "on a read-only filesystem: remount it read-write"
	fs.refused(l, "finalize (read-only)", ro, func() error { _, err := p.Finalize(ctx, name); return err })
	fs.refused(l, "abort (read-only)", ro, func() error { _, err := p.Abort(ctx, name); return err })
	rep, err := p.Status(ctx, name)
	require.NoError(t, err, "status reads a read-only state directory")
	require.Equal(t, plan.StepHydrated, rep.Volumes[0].Step)
}
