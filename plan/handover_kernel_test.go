package plan_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/plan"
)

// TestKernelHandover: a migration to finalize with the host writing through
// the proxy, then handover. While the host is still logged in to the
// export, handover refuses (the LIO session is read from configfs); once the
// pre-handover hook moves the host (log out of the export, log in to the new
// array directly, iface "default"), no lunferry dm device, export target,
// storage object or proxy session to the new LUN remains, and the host's own
// disk of the new LUN reads the old data plus every write it made through
// the proxy.
func TestKernelHandover(t *testing.T) {
	l := newLab(t, 16*mib, 24*mib)
	ctx := context.Background()
	name := l.spec.Name
	want, err := os.ReadFile(l.oldFile)
	require.NoError(t, err)

	stay := l.hook("host-stays", `echo "the host forgot to move"`)
	move := l.hook("host-moves", `set -e
iscsiadm -m node -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I default --logout
iscsiadm -m node -T "$LUNFERRY_EXPORT_IQN" -p "$LUNFERRY_EXPORT_PORTAL" -I default -o delete
iscsiadm -m node -o new -T "$LUNFERRY_NEW_IQN" -p "$LUNFERRY_NEW_PORTAL" -I default >/dev/null
iscsiadm -m node -T "$LUNFERRY_NEW_IQN" -p "$LUNFERRY_NEW_PORTAL" -I default --login`)
	posted := filepath.Join(l.dir, "post-handover.done")
	post := l.hook("post-handover", `echo "$LUNFERRY_PHASE $LUNFERRY_VOLUME" >> "`+posted+`"`)
	// Runs before the lab's cleanup: the host's direct session to the new
	// array is the test's own.
	t.Cleanup(func() {
		cmd := exec.Command("sh", "-c", `iscsiadm -m node -T "$1" -p "$2" -I default --logout; iscsiadm -m node -T "$1" -p "$2" -I default -o delete; true`,
			"sh", l.spec.New.IQN, l.spec.New.Portal)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("cleanup host session: %v: %s", err, out)
		}
	})
	setHooks := func(pre ...string) {
		v, err := l.p.Show(ctx, name)
		require.NoError(t, err)
		v.Spec.Hooks.PreHandover, v.Spec.Hooks.PostHandover = pre, []string{post}
		require.NoError(t, l.p.Store().Save(v))
	}
	setHooks(stay)

	l.cutover()
	patch := randomBytes(mib)
	l.hostWrite(2*mib, patch)
	copy(want[2*mib:], patch)
	_, err = l.p.Start(ctx, name)
	require.NoError(t, err)
	l.hydrate(3 * time.Minute)
	_, err = l.p.Finalize(ctx, name)
	require.NoError(t, err)
	patch = randomBytes(mib)
	l.hostWriteFUA(8*mib, patch)
	copy(want[8*mib:], patch)
	require.True(t, bytes.Equal(want, l.hostRead(l.oldSize)), "host data through the proxy after finalize")

	// The hook leaves the host on the proxy: refused, nothing removed.
	_, err = l.p.Handover(ctx, name, plan.HandoverOptions{})
	var hs *plan.HostSessionError
	require.ErrorAs(t, err, &hs, "%v", err)
	require.ErrorIs(t, err, plan.ErrNotReady)
	require.Equal(t, []string{labInitiator}, hs.Sessions)
	require.True(t, bytes.Equal(want, l.hostRead(l.oldSize)), "the host is still served by the proxy")

	setHooks(move)
	start := time.Now()
	v, err := l.p.Handover(ctx, name, plan.HandoverOptions{})
	require.NoError(t, err)
	t.Logf("handover took %s", time.Since(start).Round(time.Millisecond))
	require.Equal(t, plan.StepHandedOver, v.Step)
	require.Empty(t, v.Objects)
	b, err := os.ReadFile(posted)
	require.NoError(t, err)
	require.Equal(t, "post-handover "+name+"\n", string(b))

	// Nothing of lunferry's is left on the proxy.
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Info(ctx, plan.DMName(name))
	require.True(t, errors.Is(err, dm.ErrNotFound), "dm device left: %v", err)
	// From sysfs: dm.Client.List fails on a kernel with no dm device at
	// all ("device list record at 0 runs past 0 bytes").
	names, err := filepath.Glob("/sys/block/dm-*/dm/name")
	require.NoError(t, err)
	for _, n := range names {
		b, err := os.ReadFile(n)
		require.NoError(t, err)
		require.False(t, strings.HasPrefix(string(b), plan.Prefix), "dm device %s left", strings.TrimSpace(string(b)))
	}
	ok, err := l.root.Target(l.spec.Export.IQN).Exists()
	require.NoError(t, err)
	require.False(t, ok, "export target left")
	sos, err := l.root.StorageObjects()
	require.NoError(t, err)
	for _, so := range sos {
		require.NotEqual(t, plan.DMName(name), so.Name, "storage object left: %+v", so)
	}
	ini, err := initiator.New(initiator.Options{})
	require.NoError(t, err)
	sess, err := ini.Sessions(ctx)
	require.NoError(t, err)
	direct := 0
	for _, s := range sess {
		require.NotEqual(t, l.spec.Export.IQN, s.TargetIQN, "host session to the export left: %+v", s)
		if s.TargetIQN == l.spec.New.IQN {
			require.NotEqual(t, initiator.DefaultIface, s.Iface, "proxy session to the new LUN left: %+v", s)
			direct++
		}
	}
	require.Equal(t, 1, direct, "the host's direct session to the new array: %+v", sess)

	// The host's own disk of the new LUN holds its data.
	host, err := initiator.New(initiator.Options{Iface: "default"})
	require.NoError(t, err)
	p, err := initiator.ParsePortal(l.spec.New.Portal)
	require.NoError(t, err)
	d, err := host.FindDisk(ctx, initiator.Node{TargetIQN: l.spec.New.IQN, Portal: p}, 0, 20*time.Second)
	require.NoError(t, err)
	l.hostDisk = d.Path
	require.True(t, bytes.Equal(want, l.hostRead(l.oldSize)), "new LUN logged in directly reads the old data plus the host's writes")
	require.Equal(t, sum(want), fileSum(t, l.newFile, l.oldSize))

	// Idempotent; the record can go.
	_, err = l.p.Handover(ctx, name, plan.HandoverOptions{})
	require.NoError(t, err)
	require.NoError(t, l.p.Remove(ctx, name, false))
}
