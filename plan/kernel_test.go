package plan_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/lunferry/lunferry/internal/loop"
	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/kernel"
)

// The lab guest's initiator name: the proxy's and, in these tests, the
// host's too (the host logs in through open-iscsi's default iface).
const labInitiator = "iqn.2026-11.io.lunferry.lab:proxy"

const mib = 1 << 20

// lab is one kernel test's world: an old and a new "array" (LIO fileio
// targets on loopback portals), a planner over the real kernel and hooks
// that play the host.
type lab struct {
	t        *testing.T
	dir      string
	sfx      string
	oldFile  string
	newFile  string
	oldSize  int
	old, new lio.Export
	spec     plan.Spec
	p        *plan.Planner
	root     *lio.Root
	hostDisk string
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func fileSum(t *testing.T, path string, n int) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sum(b[:n])
}

func portalOf(e lio.Export) string { return e.Portals[0].AddrPort().String() }

// labOptions make the old array more like a real one than the lab's
// defaults (512-byte blocks, no CHAP).
type labOptions struct {
	// oldBlockSize is the old LUN's logical block size (LIO's
	// attrib/block_size; 0: 512).
	oldBlockSize int
	// oldCHAP makes the old array want one-way CHAP on the proxy's
	// session, whose credentials the spec names (the secret in a file).
	oldCHAP bool
}

func newLab(t *testing.T, oldSize, newSize int) *lab {
	return newLabWith(t, oldSize, newSize, labOptions{})
}

func newLabWith(t *testing.T, oldSize, newSize int, o labOptions) *lab {
	vmtest.Require(t)
	ctx := context.Background()
	sfx := hex.EncodeToString(randomBytes(4))
	l := &lab{t: t, dir: t.TempDir(), sfx: sfx, oldSize: oldSize, root: lio.NewRoot(lio.Options{})}
	l.oldFile = filepath.Join(l.dir, "old.img")
	l.newFile = filepath.Join(l.dir, "new.img")
	require.NoError(t, os.WriteFile(l.oldFile, randomBytes(oldSize), 0o600))
	f, err := os.Create(l.newFile)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(int64(newSize)))
	f.Close()
	octet := byte(20 + mrand.IntN(200))
	array := func(kind, file string, size int, ip byte, blockSize int, chap *lio.CHAP) lio.Export {
		e := lio.Export{
			Name: lio.NamePrefix + "kt-" + kind + "-" + sfx, Backstore: lio.BackstoreFileIO, Device: file, Size: uint64(size),
			TargetIQN: "iqn.2026-11.io.lunferry.test:" + kind + "-" + sfx,
			Portals:   []lio.Portal{{Addr: netip.AddrFrom4([4]byte{127, 0, 0, ip})}},
			ACLs:      []lio.ACL{{InitiatorIQN: labInitiator, CHAP: chap}},
		}
		if blockSize != 0 {
			e.Attributes = map[string]string{"block_size": fmt.Sprint(blockSize)}
		}
		require.NoError(t, l.root.Apply(ctx, e))
		t.Cleanup(func() {
			if err := l.root.Teardown(context.Background(), e.TargetIQN, lio.TeardownOptions{Force: true}); err != nil {
				t.Errorf("teardown array %s: %v", e.TargetIQN, err)
			}
		})
		return e
	}
	var oldCHAP *lio.CHAP
	var specCHAP *plan.CHAP
	if o.oldCHAP {
		oldCHAP = &lio.CHAP{UserID: "proxy-" + sfx, Password: "chap-secret-" + sfx}
		secret := filepath.Join(l.dir, "old-chap.secret")
		require.NoError(t, os.WriteFile(secret, []byte(oldCHAP.Password+"\n"), 0o600))
		specCHAP = &plan.CHAP{Username: oldCHAP.UserID, SecretFile: secret}
	}
	l.old = array("old", l.oldFile, oldSize, octet, o.oldBlockSize, oldCHAP)
	l.new = array("new", l.newFile, newSize, octet+1, 0, nil)
	if o.oldCHAP {
		// LIO refuses a login without the ACL's credentials only with
		// authentication on in the TPG.
		b, err := os.ReadFile(filepath.Join("/sys/kernel/config/target/iscsi", l.old.TargetIQN, "tpgt_1/attrib/authentication"))
		require.NoError(t, err)
		require.Equal(t, "1", strings.TrimSpace(string(b)), "the old array wants CHAP")
	}
	exportPortal := fmt.Sprintf("127.0.0.%d:3260", octet+2)
	login := l.hook("host-login", `set -e
iscsiadm -m node -o new -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I default >/dev/null
iscsiadm -m node -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I default --login`)
	logout := l.hook("host-logout", `iscsiadm -m node -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I default --logout || true
iscsiadm -m node -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I default -o delete || true`)
	name := "kt-" + sfx
	l.spec = plan.Spec{
		Name:    name,
		Old:     plan.LUN{Portal: portalOf(l.old), IQN: l.old.TargetIQN, LUN: 0, CHAP: specCHAP},
		New:     plan.LUN{Portal: portalOf(l.new), IQN: l.new.TargetIQN, LUN: 0},
		HostIQN: labInitiator,
		Export:  plan.Export{IQN: "iqn.2026-11.io.lunferry.test:export-" + sfx, Portals: []string{exportPortal}},
		Hooks:   plan.Hooks{PostCutover: []string{login}, PreAbort: []string{logout}, Timeout: plan.Duration(time.Minute)},
	}
	var err2 error
	l.p, err2 = plan.New(plan.Options{StateDir: filepath.Join(l.dir, "state"), LockWait: 10 * time.Second,
		Ports: kernel.Ports(kernel.Options{TickInterval: 200 * time.Millisecond}), Log: testLog{t}, PollInterval: 100 * time.Millisecond})
	require.NoError(t, err2)
	_, err = l.p.Add(ctx, l.spec)
	require.NoError(t, err)
	// Cleanup runs before the arrays' teardown (LIFO): undo whatever the
	// test left of the migration.
	t.Cleanup(func() { l.cleanup(logout) })
	return l
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *lab) hook(name, body string) string {
	p := filepath.Join(l.dir, name)
	require.NoError(l.t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

// runHook runs one of the test's host hooks with the export's variables,
// as lunferry would.
func (l *lab) runHook(path string) ([]byte, error) {
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), "LUNFERRY_EXPORT_IQN="+l.spec.Export.IQN, "LUNFERRY_EXPORT_PORTAL="+l.spec.Export.Portals[0])
	return cmd.CombinedOutput()
}

// cleanup removes every kernel object of the migration, whatever its step.
func (l *lab) cleanup(logoutHook string) {
	ctx := context.Background()
	_, _ = l.runHook(logoutHook)
	v, err := l.p.Show(ctx, l.spec.Name)
	if err != nil || v.Step == plan.StepAborted || v.Step == plan.StepNew {
		return
	}
	if !v.Linear || v.Step == plan.StepRolledBack {
		if _, err := l.p.Abort(ctx, l.spec.Name); err != nil {
			l.t.Errorf("cleanup abort: %v", err)
		}
		return
	}
	// Finalized: the export and the linear device stay by design.
	_ = l.root.Teardown(ctx, l.spec.Export.IQN, lio.TeardownOptions{Force: true})
	if c, err := dm.Open(dm.Options{}); err == nil {
		for _, n := range []string{plan.EraName(l.spec.Name), plan.DMName(l.spec.Name)} {
			if err := c.Remove(ctx, n, dm.RemoveOptions{}); err != nil && !errors.Is(err, dm.ErrNotFound) {
				l.t.Errorf("cleanup remove device %s: %v", n, err)
			}
		}
		c.Close()
	}
	if v.Era != nil {
		_ = loop.Devices{}.DetachFile(v.Era.MetadataFile, true)
	}
	ini, _ := initiator.New(initiator.Options{})
	for _, e := range []lio.Export{l.old, l.new} {
		p, _ := initiator.ParsePortal(portalOf(e))
		_ = ini.Logout(ctx, initiator.Node{TargetIQN: e.TargetIQN, Portal: p})
	}
}

// findHostDisk returns the host's disk of the export (default iface).
func (l *lab) findHostDisk() string {
	ini, err := initiator.New(initiator.Options{Iface: "default"})
	require.NoError(l.t, err)
	p, err := initiator.ParsePortal(l.spec.Export.Portals[0])
	require.NoError(l.t, err)
	d, err := ini.FindDisk(context.Background(), initiator.Node{TargetIQN: l.spec.Export.IQN, Portal: p}, 0, 20*time.Second)
	require.NoError(l.t, err)
	return d.Path
}

func (l *lab) hostWrite(off int64, data []byte) {
	f, err := os.OpenFile(l.hostDisk, os.O_WRONLY, 0)
	require.NoError(l.t, err)
	defer f.Close()
	_, err = f.WriteAt(data, off)
	require.NoError(l.t, err)
	require.NoError(l.t, f.Sync())
}

// hostWriteFUA writes data (a multiple of 4 KiB) with O_DIRECT|O_DSYNC:
// the block layer sends it as a FUA write, as ext4's journal does.
func (l *lab) hostWriteFUA(off int64, data []byte) {
	buf, err := unix.Mmap(-1, 0, len(data), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	require.NoError(l.t, err)
	defer unix.Munmap(buf)
	copy(buf, data)
	f, err := os.OpenFile(l.hostDisk, os.O_WRONLY|unix.O_DIRECT|unix.O_DSYNC, 0)
	require.NoError(l.t, err)
	defer f.Close()
	_, err = f.WriteAt(buf, off)
	require.NoError(l.t, err, "FUA write through the proxy")
}

func (l *lab) hostRead(n int) []byte {
	// Drop the host disk's page cache so reads go through the proxy.
	exec.Command("blockdev", "--flushbufs", l.hostDisk).Run()
	b := make([]byte, n)
	f, err := os.Open(l.hostDisk)
	require.NoError(l.t, err)
	defer f.Close()
	_, err = f.ReadAt(b, 0)
	require.NoError(l.t, err)
	return b
}

// hydrate runs control rounds until the volume is hydrated and returns the
// time it took.
func (l *lab) hydrate(timeout time.Duration) time.Duration {
	ctx := context.Background()
	start := time.Now()
	for {
		res, err := l.p.Tick(ctx, false)
		require.NoError(l.t, err)
		for _, r := range res {
			require.Empty(l.t, r.Error)
		}
		v, err := l.p.Show(ctx, l.spec.Name)
		require.NoError(l.t, err)
		if v.Step == plan.StepHydrated {
			return time.Since(start)
		}
		require.Less(l.t, time.Since(start), timeout, "hydration too slow: %+v", v.Progress)
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *lab) cutover() {
	ctx := context.Background()
	_, err := l.p.Prepare(ctx, l.spec.Name)
	require.NoError(l.t, err)
	v, err := l.p.Cutover(ctx, l.spec.Name)
	require.NoError(l.t, err)
	require.NotNil(l.t, v.Window)
	l.t.Logf("cutover window: tool %s, hooks %s, session wait %s, total %s", v.Window.Tool.D(), v.Window.Hooks.D(),
		v.Window.SessionWait.D(), v.Window.Total.D())
	l.hostDisk = l.findHostDisk()
}

// TestKernelMigration: prepare, cutover, host writes through the proxy,
// hydration, finalize; the new LUN then holds the old data plus the host's
// writes, and the old LUN was never written.
func TestKernelMigration(t *testing.T) {
	l := newLab(t, 32*mib, 48*mib)
	ctx := context.Background()
	oldSum := fileSum(t, l.oldFile, l.oldSize)
	want, err := os.ReadFile(l.oldFile)
	require.NoError(t, err)

	l.cutover()
	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	require.Equal(t, uint64(32*mib/512), v.SizeSectors)
	_, err = os.Stat(v.MetadataFile)
	require.NoError(t, err)

	// The host sees the old data at once and writes through the proxy.
	require.True(t, bytes.Equal(want, l.hostRead(l.oldSize)), "host reads the old data through the clone")
	patch := randomBytes(mib)
	l.hostWrite(4*mib, patch)
	copy(want[4*mib:], patch)
	patch1 := randomBytes(mib)
	l.hostWriteFUA(12*mib, patch1)
	copy(want[12*mib:], patch1)

	_, err = l.p.Start(ctx, l.spec.Name)
	require.NoError(t, err)
	took := l.hydrate(3 * time.Minute)
	t.Logf("hydrated %d MiB in %s (%.1f MiB/s)", l.oldSize/mib, took, float64(l.oldSize)/mib/took.Seconds())

	v, err = l.p.Finalize(ctx, l.spec.Name)
	require.NoError(t, err)
	require.True(t, v.Linear)
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	tbl, err := c.Table(ctx, plan.DMName(l.spec.Name))
	require.NoError(t, err)
	require.Len(t, tbl, 1)
	require.Contains(t, tbl[0].String(), "linear")
	_, err = os.Stat(v.MetadataFile)
	require.True(t, os.IsNotExist(err), "metadata freed")

	// The host keeps its session and data; more writes land on the new LUN,
	// FUA writes included (the host saw a write-back cache with FUA at
	// cutover, and must not see it go).
	patch2 := randomBytes(mib)
	l.hostWrite(20*mib, patch2)
	copy(want[20*mib:], patch2)
	patch3 := randomBytes(mib)
	l.hostWriteFUA(24*mib, patch3)
	copy(want[24*mib:], patch3)
	require.True(t, bytes.Equal(want, l.hostRead(l.oldSize)), "host data after finalize")

	require.Equal(t, oldSum, fileSum(t, l.oldFile, l.oldSize), "old LUN never written")
	require.Equal(t, sum(want), fileSum(t, l.newFile, l.oldSize), "new LUN holds old data plus host writes")
}

// TestKernelAbortAfterCutover: abort leaves the old LUN byte-identical to
// before cutover, and nothing of lunferry's in the kernel.
func TestKernelAbortAfterCutover(t *testing.T) {
	l := newLab(t, 16*mib, 16*mib)
	ctx := context.Background()
	oldSum := fileSum(t, l.oldFile, l.oldSize)
	// This volume's metadata is a device the admin gives.
	meta := vmtest.LoopDevice(t, 2*mib)
	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	v.Spec.Metadata.Device = meta
	require.NoError(t, l.p.Store().Save(v))
	l.cutover()
	l.hostWrite(mib, randomBytes(mib))
	_, err = l.p.Start(ctx, l.spec.Name)
	require.NoError(t, err)
	_, err = l.p.Tick(ctx, false)
	require.NoError(t, err)
	rep, err := l.p.Abort(ctx, l.spec.Name)
	require.NoError(t, err)
	require.True(t, rep.HostWritesLost)
	require.Contains(t, rep.Message, "exist ONLY on the new LUN")
	require.Equal(t, oldSum, fileSum(t, l.oldFile, l.oldSize), "old LUN byte-identical")
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Info(ctx, plan.DMName(l.spec.Name))
	require.ErrorIs(t, err, dm.ErrNotFound)
	ok, err := l.root.Target(l.spec.Export.IQN).Exists()
	require.NoError(t, err)
	require.False(t, ok)
}

// TestKernelRestoreKeepsProgress: the proxy "crashes" mid-hydration (every
// kernel object is dropped, the state and metadata file stay); restore
// rebuilds them and hydration continues from where it was, not from zero.
func TestKernelRestoreKeepsProgress(t *testing.T) {
	l := newLab(t, 32*mib, 32*mib)
	ctx := context.Background()
	want, err := os.ReadFile(l.oldFile)
	require.NoError(t, err)
	l.cutover()
	patch := randomBytes(mib)
	l.hostWrite(8*mib, patch)
	copy(want[8*mib:], patch)
	require.NoError(t, l.p.SetThrottle(ctx, l.spec.Name, mustSchedule(t, "4MiB/s")))
	_, err = l.p.Start(ctx, l.spec.Name)
	require.NoError(t, err)
	var before uint64
	deadline := time.Now().Add(2 * time.Minute)
	for before < 128 || before > 384 { // 25-75% of 512 regions (64 KiB each)
		_, err := l.p.Tick(ctx, false)
		require.NoError(t, err)
		v, err := l.p.Show(ctx, l.spec.Name)
		require.NoError(t, err)
		before = v.Progress.HydratedRegions
		require.Equal(t, plan.StepHydrating, v.Step, "hydrated before the crash: throttle not applied")
		require.True(t, time.Now().Before(deadline), "no progress: %+v", v.Progress)
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(t, l.p.Pause(ctx, l.spec.Name))

	// Crash: the host loses the proxy, every kernel object goes.
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	l.reboot(c)

	res, err := l.p.Restore(ctx)
	require.NoError(t, err)
	require.Len(t, res, 1)
	// Sessions, metadata, the old LUN's fence (LIO takes reservations),
	// device, era layer, export.
	require.Len(t, res[0].Rebuilt, 7)
	st, err := c.CloneStatus(ctx, plan.DMName(l.spec.Name))
	require.NoError(t, err)
	t.Logf("before crash %d regions, after restore %d of %d", before, st.HydratedRegions, st.TotalRegions)
	require.GreaterOrEqual(t, st.HydratedRegions, before, "hydration continues from where it stopped")

	// The host logs in again and finds its data.
	out, err := l.runHook(l.spec.Hooks.PostCutover[0])
	require.NoError(t, err, "%s", out)
	l.hostDisk = l.findHostDisk()
	require.NoError(t, l.p.Resume(ctx, l.spec.Name))
	require.NoError(t, l.p.SetThrottle(ctx, l.spec.Name, mustSchedule(t, "unlimited")))
	l.hydrate(3 * time.Minute)
	_, err = l.p.Finalize(ctx, l.spec.Name)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, l.hostRead(l.oldSize)), "host data after restore and finalize")
	require.Equal(t, sum(want), fileSum(t, l.newFile, l.oldSize))
}

func mustSchedule(t *testing.T, s string) clone.Schedule {
	t.Helper()
	sch, err := clone.ParseSchedule(s)
	require.NoError(t, err)
	return sch
}

func lioPortal(a netip.Addr) lio.Portal { return lio.Portal{Addr: a} }
