package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/internal/loop"
	"github.com/lunferry/lunferry/lio"
	"github.com/lunferry/lunferry/plan"
)

// TestKernelEraVerify: the export serves a dm-era device over the clone;
// the host writes through it at known offsets; verify, with the host
// online, compares everything else and reports those blocks as the
// host's; a byte changed behind the proxy's back is found; after a
// simulated reboot restore rebuilds device, era and export in order and
// the era's history is kept; finalize swaps the device below the era.
func TestKernelEraVerify(t *testing.T) {
	l := newLab(t, 16*mib, 16*mib)
	ctx := context.Background()
	l.cutover()
	c, err := dm.Open(dm.Options{})
	require.NoError(t, err)
	defer c.Close()
	tbl, err := c.Table(ctx, plan.EraName(l.spec.Name))
	require.NoError(t, err)
	require.Len(t, tbl, 1)
	require.Equal(t, "era", tbl[0].Type, "the export serves the era device: %s", tbl[0])

	l.hostWrite(1*mib, randomBytes(4096))
	l.hostWrite(5*mib+4096, randomBytes(8192))
	written := []clone.Extent{{Offset: 1 * mib, Length: 64 << 10}, {Offset: 5 * mib, Length: 64 << 10}}
	_, err = l.p.Start(ctx, l.spec.Name)
	require.NoError(t, err)
	l.hydrate(3 * time.Minute)

	rep, err := l.p.Verify(ctx, l.spec.Name, plan.VerifyOptions{})
	require.NoError(t, err, "verify with the host online")
	assert.Equal(t, written, rep.HostWritten)
	assert.Equal(t, uint64(16*mib-128<<10), rep.Result.Compared, "every block but the host's")
	assert.Equal(t, uint64(128<<10), rep.HostView.Compared, "the host's blocks: new LUN vs the host's view")
	assert.True(t, rep.HostView.Equal())
	t.Logf("verify: %d bytes compared in %s, %d skipped as the host's", rep.Result.Compared, rep.Result.Duration, rep.HostWrittenBytes)

	// A verify SIGKILLed mid-way (paced, so that it is) is resumed from
	// the checkpoint it saved on the way.
	ckpt := filepath.Join(l.dir, "state", "verify", l.spec.Name+".json")
	killWhen(t, l.crashLunferry("none", "migrate", "verify", "--rate", "2MiB/s", l.spec.Name), "verify at 2MiB/s", 2*time.Minute, fileExists(ckpt))
	rep, err = l.p.Verify(ctx, l.spec.Name, plan.VerifyOptions{})
	require.NoError(t, err, "the resumed verify")
	assert.Greater(t, rep.ResumedFrom, uint64(0), "resumed, not started over")
	assert.Equal(t, uint64(16*mib-128<<10), rep.Result.Compared, "both runs together compared every block but the host's")
	assert.NoFileExists(t, ckpt)
	t.Logf("verify killed, then resumed at byte %d: %d bytes compared in all", rep.ResumedFrom, rep.Result.Compared)

	// A byte of the new LUN changed behind the proxy's back, where the
	// host never wrote.
	const bad = 10*mib + 1000
	flipByte(t, l.newFile, bad)
	rep, err = l.p.Verify(ctx, l.spec.Name, plan.VerifyOptions{})
	require.ErrorIs(t, err, clone.ErrMismatch)
	require.NotEmpty(t, rep.Result.Mismatches)
	assert.Equal(t, uint64(bad/512*512), rep.Result.Mismatches[0].Offset)
	flipByte(t, l.newFile, bad)

	l.reboot(c)
	res, err := l.p.Restore(ctx)
	require.NoError(t, err)
	rebuilt := res[0].Rebuilt
	require.GreaterOrEqual(t, len(rebuilt), 3)
	require.Equal(t, []plan.ObjectKind{plan.ObjDevice, plan.ObjEra, plan.ObjExport}, rebuilt[len(rebuilt)-3:], "in order, the export last")
	rep, err = l.p.Verify(ctx, l.spec.Name, plan.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, written, rep.HostWritten, "the era's history survives the reboot")

	_, err = l.p.Finalize(ctx, l.spec.Name)
	require.NoError(t, err)
	lower, err := c.Table(ctx, plan.DMName(l.spec.Name))
	require.NoError(t, err)
	require.Equal(t, "linear", lower[0].Type)
	tbl, err = c.Table(ctx, plan.EraName(l.spec.Name))
	require.NoError(t, err)
	require.Equal(t, "era", tbl[0].Type, "finalize keeps the era device over the swapped one")
}

// flipByte inverts the byte at off of file.
func flipByte(t *testing.T, file string, off int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
}

// reboot removes every kernel object of the volume, as a power loss of
// the proxy does; files stay.
func (l *lab) reboot(c *dm.Client) {
	t, ctx := l.t, context.Background()
	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	out, err := l.runHook(l.spec.Hooks.PreAbort[0])
	require.NoError(t, err, "%s", out)
	require.NoError(t, l.root.Teardown(ctx, l.spec.Export.IQN, lio.TeardownOptions{Force: true}))
	require.NoError(t, c.Remove(ctx, plan.EraName(l.spec.Name), dm.RemoveOptions{}))
	require.NoError(t, c.Remove(ctx, plan.DMName(l.spec.Name), dm.RemoveOptions{}))
	require.NoError(t, loop.Devices{}.DetachFile(v.MetadataFile, false))
	require.NoError(t, loop.Devices{}.DetachFile(v.Era.MetadataFile, false))
	ini, err := initiator.New(initiator.Options{})
	require.NoError(t, err)
	for _, e := range []lio.Export{l.old, l.new} {
		p, _ := initiator.ParsePortal(portalOf(e))
		require.NoError(t, ini.Logout(ctx, initiator.Node{TargetIQN: e.TargetIQN, Portal: p}))
	}
}

// powerCut is reboot in the middle of a step: a device of the volume the
// step left suspended (the host's I/O held) first fails the I/O it holds,
// which a power loss loses: the export and the host's session cannot go
// while LIO waits for those commands. An error table does it, so that no
// table of lunferry's goes live.
func (l *lab) powerCut(c *dm.Client) {
	t, ctx := l.t, context.Background()
	v, err := l.p.Show(ctx, l.spec.Name)
	require.NoError(t, err)
	for _, n := range []string{plan.EraName(l.spec.Name), plan.DMName(l.spec.Name)} {
		info, err := c.Info(ctx, n)
		require.NoError(t, err)
		if !info.Suspended {
			continue
		}
		t.Logf("power cut: %s was suspended (the host's I/O held): its held I/O fails", n)
		require.NoError(t, c.Load(ctx, n, dm.Table{{Length: dm.Sectors(v.SizeSectors), Target: dm.Error{}}}))
		require.NoError(t, c.Resume(ctx, n))
	}
	l.reboot(c)
}
