package dm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lunferry/lunferry/integration/vmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestKernelVersionAndTargets(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	v, err := c.Version(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(4), v[0])
	t.Logf("dm ioctl interface %s", v)

	for _, typ := range []string{"linear", "error", "clone", "snapshot", "snapshot-origin", "era"} {
		tv, err := c.TargetVersion(ctx, typ)
		require.NoError(t, err, "target %s must be in the lab kernel", typ)
		assert.Equal(t, typ, tv.Name)
	}
	all, err := c.TargetVersions(ctx)
	require.NoError(t, err)
	var got []string
	for _, tv := range all {
		got = append(got, tv.Name)
	}
	assert.Subset(t, got, []string{"linear", "error", "clone", "snapshot", "era"})
	// dmsetup targets lists the same.
	out := dmsetup(t, "targets")
	for _, tv := range all {
		assert.Contains(t, out, tv.Name)
	}
}

// TestKernelListNoDevices: with no dm device at all, 6.1 returns zero bytes
// of list data; List must read that as an empty list, not an error.
func TestKernelListNoDevices(t *testing.T) {
	c := kernelClient(t)
	ctx := context.Background()
	if m, _ := filepath.Glob("/sys/block/dm-*"); len(m) > 0 {
		t.Fatalf("dm devices exist before the test (%v): a leak from an earlier test", m)
	}
	list, err := c.List(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestKernelLinearMultiLine(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	const half = 4 << 20
	a, aDev, aData := loop(t, half, 1)
	b, bDev, bData := loop(t, half, 2)
	_ = a
	_ = b
	name, uuid := names("lin")
	tbl := Table{
		{Start: 0, Length: 4096, Target: Linear{Device: aDev, Offset: 4096}},
		{Start: 4096, Length: 8192, Target: Linear{Device: bDev}},
		{Start: 12288, Length: 8, Target: Error{}},
	}
	info := mustCreate(t, c, name, uuid, tbl)
	assert.Equal(t, name, info.Name)
	assert.Equal(t, uuid, info.UUID)
	assert.Equal(t, uint32(3), info.TargetCount)
	assert.True(t, info.ActivePresent)
	assert.False(t, info.Suspended)

	// What lunferry loaded is what dmsetup shows.
	assert.Equal(t, strings.TrimSpace(tbl.String()), dmsetup(t, "table", name))
	raw, err := c.Table(ctx, name)
	require.NoError(t, err)
	var lines []string
	for _, l := range raw {
		lines = append(lines, l.String())
	}
	assert.Equal(t, strings.TrimSpace(tbl.String()), strings.Join(lines, "\n"))
	st, err := c.Status(ctx, name)
	require.NoError(t, err)
	lines = lines[:0]
	for _, l := range st {
		lines = append(lines, l.String())
	}
	assert.Equal(t, trimLines(dmsetup(t, "status", name)), strings.Join(lines, "\n"), "dmsetup prints a space after the type even with no status")
	assert.Contains(t, dmsetup(t, "info", "-c", "--noheadings", "-o", "name,uuid", name), uuid)

	deps, err := c.Deps(ctx, name)
	require.NoError(t, err)
	var ds []string
	for _, d := range deps {
		ds = append(ds, d.String())
	}
	assert.ElementsMatch(t, []string{aDev, bDev}, ds)

	list, err := c.List(ctx)
	require.NoError(t, err)
	found := false
	for _, e := range list {
		if e.Name == name {
			found = true
			assert.Equal(t, uuid, e.UUID)
			assert.Equal(t, info.Dev, e.Dev)
		}
	}
	assert.True(t, found, "List shows the device")

	// No udev: DevicePath makes /dev/mapper/NAME from sysfs.
	p, err := c.DevicePath(name)
	require.NoError(t, err)
	assert.Equal(t, "/dev/mapper/"+name, p)
	kind, d, err := statNode(p)
	require.NoError(t, err)
	assert.Equal(t, nodeBlock, kind)
	assert.Equal(t, info.Dev, d)
	sysDev, err := readDevFile(filepath.Join("/sys/block", "dm-"+itoa(info.Dev.Minor), "dev"))
	require.NoError(t, err)
	assert.Equal(t, info.Dev, sysDev)

	// The mapping is right: sectors 0..4095 come from A at 4096, the rest from B.
	got := readDirect(t, p, 12288*512)
	sameBytes(t, aData[4096*512:8192*512], got[:4096*512], "first line (A at offset 4096)")
	sameBytes(t, bData, got[4096*512:], "second line (B)")
	// The error line fails I/O.
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECT, 0)
	require.NoError(t, err)
	_, err = unix.Pread(fd, alignedBuf(t, 4096), 12288*512)
	unix.Close(fd)
	assert.ErrorIs(t, err, unix.EIO, "error target")

	require.NoError(t, c.Remove(ctx, name, RemoveOptions{}))
	_, err = os.Lstat(p)
	assert.True(t, os.IsNotExist(err), "Remove deletes the node it made")
	_, err = c.Info(ctx, name)
	assert.ErrorIs(t, err, ErrNotFound)
}

// trimLines trims trailing blanks of each line.
func trimLines(s string) string {
	ls := strings.Split(s, "\n")
	for i := range ls {
		ls[i] = strings.TrimRight(ls[i], " ")
	}
	return strings.Join(ls, "\n")
}

func itoa(u uint32) string { return Sectors(u).String() }

func TestKernelDevicePathStaleNodeAndControl(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	_, aDev, _ := loop(t, 1<<20, 0)
	name, uuid := names("node")
	info := mustCreate(t, c, name, uuid, Table{{Length: 2048, Target: Linear{Device: aDev}}})
	p := "/dev/mapper/" + name
	// A stale node with the wrong number (left by an old device) is replaced.
	_ = os.Remove(p)
	require.NoError(t, mknod(p, true, DevNum{1, 3}))
	got, err := c.DevicePath(name)
	require.NoError(t, err)
	assert.Equal(t, p, got)
	_, d, err := statNode(p)
	require.NoError(t, err)
	assert.Equal(t, info.Dev, d)
	// Idempotent.
	got, err = c.DevicePath(name)
	require.NoError(t, err)
	assert.Equal(t, p, got)

	// A control node that is missing is made from sysfs.
	dev := t.TempDir()
	c2, err := Open(Options{DevRoot: dev})
	require.NoError(t, err)
	defer c2.Close()
	kind, cd, err := statNode(filepath.Join(dev, "mapper", "control"))
	require.NoError(t, err)
	assert.Equal(t, nodeChar, kind)
	assert.Equal(t, uint32(10), cd.Major)
	i2, err := c2.Info(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, info.Dev, i2.Dev)
}

func TestKernelClone(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	const size = 16 << 20
	src, srcDev, srcData := loop(t, size, 3)
	dst, dstDev, _ := loop(t, size, 0)
	meta, metaDev, _ := loop(t, 4<<20, 0)
	name, uuid := names("clone")
	length := Sectors(size / 512)
	ct := Clone{Metadata: metaDev, Destination: dstDev, Source: srcDev, RegionSize: 128, NoHydration: true}
	tbl := Table{{Length: length, Target: ct}}
	_, err := ParseCloneSuperblock(readDirect(t, meta, CloneSuperblockSize))
	require.ErrorIs(t, err, ErrNoCloneSuperblock, "fresh metadata")
	mustCreate(t, c, name, uuid, tbl)
	_, err = c.Status(ctx, name) // commits the metadata
	require.NoError(t, err)
	sb, err := ParseCloneSuperblock(readDirect(t, meta, CloneSuperblockSize))
	require.NoError(t, err, "the superblock dm-clone formatted")
	assert.Equal(t, CloneSuperblock{Version: 1, RegionSize: 128, TargetSize: length}, sb)

	assert.Equal(t, strings.TrimSpace(tbl.String()), dmsetup(t, "table", name), "dmsetup shows what lunferry loaded")
	s, err := c.CloneStatus(ctx, name)
	require.NoError(t, err)
	t.Logf("fresh clone status: %+v", s)
	assert.Equal(t, Sectors(128), s.RegionSize)
	assert.Equal(t, uint64(size/(128*512)), s.TotalRegions)
	assert.Zero(t, s.HydratedRegions)
	assert.False(t, s.HydrationEnabled())
	assert.Equal(t, "rw", s.MetadataMode)
	assert.Equal(t, uint(1), s.HydrationThreshold, "kernel default")
	raw, err := c.Status(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, dmsetup(t, "status", name), raw[0].String())
	parsed, err := ParseCloneStatus(dmsetup(t, "status", name))
	require.NoError(t, err)
	assert.Equal(t, s.TotalRegions, parsed.TotalRegions)

	// Each message shows in the status.
	require.NoError(t, c.SetHydrationThreshold(ctx, name, 2))
	require.NoError(t, c.SetHydrationBatchSize(ctx, name, 1))
	s, err = c.CloneStatus(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, uint(2), s.HydrationThreshold)
	assert.Equal(t, uint(1), s.HydrationBatchSize)

	// Slow hydration first, so a status read catches it running.
	ev, err := c.Info(ctx, name)
	require.NoError(t, err)
	require.NoError(t, c.EnableHydration(ctx, name))
	s, err = c.CloneStatus(ctx, name)
	require.NoError(t, err)
	assert.True(t, s.HydrationEnabled(), "enable_hydration drops no_hydration")
	var mid CloneStatus
	vmtest.WaitFor(t, 60*time.Second, "hydration to start", func() bool {
		mid, err = c.CloneStatus(ctx, name)
		require.NoError(t, err)
		return mid.HydratedRegions > 0
	})
	t.Logf("status while hydrating: %d/%d regions, %d in flight", mid.HydratedRegions, mid.TotalRegions, mid.HydratingRegions)
	assert.Less(t, mid.HydratedRegions, mid.TotalRegions, "read status while hydration runs")

	require.NoError(t, c.DisableHydration(ctx, name))
	s, err = c.CloneStatus(ctx, name)
	require.NoError(t, err)
	assert.False(t, s.HydrationEnabled(), "disable_hydration shows no_hydration")
	time.Sleep(300 * time.Millisecond)
	s1, err := c.CloneStatus(ctx, name)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	s2, err := c.CloneStatus(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, s1.HydratedRegions, s2.HydratedRegions, "no progress while disabled")
	assert.False(t, s2.Hydrated())

	// Fast settings, then wait for the completion event.
	require.NoError(t, c.SetHydrationThreshold(ctx, name, 64))
	require.NoError(t, c.SetHydrationBatchSize(ctx, name, 16))
	start := time.Now()
	require.NoError(t, c.EnableHydration(ctx, name))
	events := 0
	nr := ev.EventNr
	for {
		s, err = c.CloneStatus(ctx, name)
		require.NoError(t, err)
		if s.Hydrated() {
			break
		}
		info, err := c.WaitEvent(ctx, name, nr)
		require.NoError(t, err, "waiting for the hydration event")
		nr = info.EventNr
		events++
	}
	t.Logf("hydrated %d MiB in %s after %d event(s); status %+v", size>>20, time.Since(start), events, s)
	assert.Positive(t, events, "dm-clone sends an event when hydration finishes")
	assert.Equal(t, uint(64), s.HydrationThreshold)
	assert.Equal(t, uint(16), s.HydrationBatchSize)

	sameBytes(t, srcData, readDirect(t, dst, size), "destination after hydration")
	sameBytes(t, srcData, readDirect(t, src, size), "source untouched")
}

func TestKernelErrors(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	_, aDev, _ := loop(t, 1<<20, 0)
	name, uuid := names("err")
	lin := Table{{Length: 2048, Target: Linear{Device: aDev}}}
	mustCreate(t, c, name, uuid, lin)

	t.Run("exists", func(t *testing.T) {
		_, err := c.Create(ctx, name, uuid+"-2", lin)
		assert.ErrorIs(t, err, ErrExists)
		assert.ErrorIs(t, err, unix.EBUSY)
		other, _ := names("err2")
		_, err = c.Create(ctx, other, uuid, lin)
		assert.ErrorIs(t, err, ErrExists, "same uuid")
	})
	t.Run("not found", func(t *testing.T) {
		missing, _ := names("missing")
		_, err := c.Info(ctx, missing)
		assert.ErrorIs(t, err, ErrNotFound)
		assert.ErrorIs(t, err, unix.ENXIO)
		assert.ErrorIs(t, c.Remove(ctx, missing, RemoveOptions{}), ErrNotFound)
		assert.ErrorIs(t, c.Message(ctx, missing, 0, "x"), ErrNotFound)
		_, err = c.Status(ctx, missing)
		assert.ErrorIs(t, err, ErrNotFound)
	})
	t.Run("target missing", func(t *testing.T) {
		n, u := names("nosuch")
		_, err := c.Create(ctx, n, u, Table{{Length: 8, Target: rawTarget{typ: "lunferrynone"}}})
		var miss *TargetMissingError
		require.ErrorAs(t, err, &miss)
		assert.Equal(t, "lunferrynone", miss.Type)
		assert.Contains(t, err.Error(), "modprobe dm_lunferrynone")
		_, err = c.Info(ctx, n)
		assert.ErrorIs(t, err, ErrNotFound, "Create removed what it made")
	})
	t.Run("table rejected", func(t *testing.T) {
		n, u := names("rej")
		bad := Table{{Length: 2048, Target: rawTarget{typ: "linear", args: aDev + " 0 surplus"}}}
		_, err := c.Create(ctx, n, u, bad)
		var rej *TableRejectedError
		require.ErrorAs(t, err, &rej)
		assert.ErrorIs(t, err, unix.EINVAL)
		assert.Contains(t, err.Error(), "0 2048 linear "+aDev+" 0 surplus")
		_, err = c.Info(ctx, n)
		assert.ErrorIs(t, err, ErrNotFound)
		// A clone source smaller than the target is caught before the kernel.
		_, err = c.Create(ctx, n, u, Table{{Length: 4096, Target: Clone{Metadata: aDev, Destination: aDev, Source: aDev, RegionSize: 8}}})
		assert.ErrorIs(t, err, ErrInvalidTable)
	})
	t.Run("busy and deferred", func(t *testing.T) {
		n, u := names("busy")
		mustCreate(t, c, n, u, lin)
		p, err := c.DevicePath(n)
		require.NoError(t, err)
		f, err := os.Open(p)
		require.NoError(t, err)
		info, err := c.Info(ctx, n)
		require.NoError(t, err)
		assert.Equal(t, int32(1), info.OpenCount)
		err = c.Remove(ctx, n, RemoveOptions{Retries: 2, RetryDelay: 10 * time.Millisecond})
		assert.ErrorIs(t, err, ErrBusy)
		assert.ErrorIs(t, err, unix.EBUSY)
		require.NoError(t, c.Remove(ctx, n, RemoveOptions{Deferred: true}))
		info, err = c.Info(ctx, n)
		require.NoError(t, err)
		assert.True(t, info.DeferredRemove)
		require.NoError(t, f.Close())
		vmtest.WaitFor(t, 5*time.Second, "deferred removal", func() bool {
			_, err := c.Info(ctx, n)
			return errors.Is(err, ErrNotFound)
		})
		_ = os.Remove(p) // the node of a deferred removal stays
	})
	t.Run("not owned", func(t *testing.T) {
		foreign := "dmt-foreign-" + strings.TrimPrefix(name, "lunferry-dmt-err-")
		vmtest.Exec(t, "dmsetup", "create", foreign, "--table", "0 2048 linear "+aDev+" 0")
		t.Cleanup(func() { _, _ = c.Info(ctx, foreign); vmtest.Exec(t, "dmsetup", "remove", foreign) })
		assert.ErrorIs(t, c.Remove(ctx, foreign, RemoveOptions{}), ErrNotOwned)
		_, err := c.Replace(ctx, foreign, lin, ReplaceOptions{})
		assert.ErrorIs(t, err, ErrNotOwned)
		_, err = c.Create(ctx, foreign, "LUNFERRY-x", lin)
		assert.ErrorIs(t, err, ErrNotOwned)
		assert.Contains(t, dmsetup(t, "table", foreign), "linear", "untouched")
	})
	t.Run("suspend resume clear", func(t *testing.T) {
		require.NoError(t, c.Suspend(ctx, name, true))
		info, err := c.Info(ctx, name)
		require.NoError(t, err)
		assert.True(t, info.Suspended)
		assert.Contains(t, dmsetup(t, "info", name), "SUSPENDED")
		require.NoError(t, c.Resume(ctx, name))
		require.NoError(t, c.Load(ctx, name, Table{{Length: 2048, Target: Error{}}}))
		in, err := c.InactiveTable(ctx, name)
		require.NoError(t, err)
		require.Len(t, in, 1)
		assert.Equal(t, "error", in[0].Type)
		require.NoError(t, c.ClearInactive(ctx, name))
		in, err = c.InactiveTable(ctx, name)
		require.NoError(t, err)
		assert.Empty(t, in)
		assert.Equal(t, strings.TrimSpace(lin.String()), dmsetup(t, "table", name))
	})
	t.Run("replace load fails", func(t *testing.T) {
		bad := Table{{Length: 2048, Target: rawTarget{typ: "linear", args: aDev + " 0 surplus"}}}
		_, err := c.Replace(ctx, name, bad, ReplaceOptions{})
		var se *StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "load", se.Step)
		assert.Equal(t, strings.TrimSpace(lin.String()), dmsetup(t, "table", name), "old table still live")
		info, err := c.Info(ctx, name)
		require.NoError(t, err)
		assert.False(t, info.Suspended)
	})
}

func TestKernelSnapshot(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	const size = 8 << 20
	_, oDev, oData := loop(t, size, 4)
	_, cowDev, _ := loop(t, 4<<20, 0)
	length := Sectors(size / 512)
	on, ou := names("origin")
	sn, su := names("snap")
	snapT := Table{{Length: length, Target: Snapshot{Origin: oDev, COW: cowDev, Store: Persistent, ChunkSize: 16}}}
	origT := Table{{Length: length, Target: SnapshotOrigin{Device: oDev}}}
	// Cleanups run last-in first-out: the snapshot goes before the origin.
	mustCreate(t, c, on, ou, origT)
	mustCreate(t, c, sn, su, snapT)
	assert.Equal(t, strings.TrimSpace(snapT.String()), dmsetup(t, "table", sn))
	assert.Equal(t, strings.TrimSpace(origT.String()), dmsetup(t, "table", on))

	s, err := c.SnapshotStatus(ctx, sn)
	require.NoError(t, err)
	assert.False(t, s.Invalid)
	assert.Equal(t, Sectors(8192), s.Total)
	before := s.Allocated

	op, err := c.DevicePath(on)
	require.NoError(t, err)
	sp, err := c.DevicePath(sn)
	require.NoError(t, err)
	newData := make([]byte, 1<<20)
	for i := range newData {
		newData[i] = 0xa5
	}
	require.NoError(t, writeDevice(op, 0, newData))
	s, err = c.SnapshotStatus(ctx, sn)
	require.NoError(t, err)
	assert.Greater(t, s.Allocated, before, "writes to the origin copy chunks to the COW")
	st := dmsetup(t, "status", sn)
	parsed, err := ParseSnapshotStatus(st)
	require.NoError(t, err)
	assert.Equal(t, s, parsed, "dmsetup agrees")
	sameBytes(t, oData, readDirect(t, sp, size), "snapshot keeps the old data")
	got := readDirect(t, op, size)
	sameBytes(t, newData, got[:1<<20], "origin has the new data")

	// Overflow the COW: 4 MiB COW, 6 MiB more of origin writes invalidates it.
	big := make([]byte, 6<<20)
	for i := range big {
		big[i] = 0x5a
	}
	_ = writeDevice(op, 1<<20, big)
	vmtest.WaitFor(t, 10*time.Second, "snapshot to become Invalid", func() bool {
		s, err = c.SnapshotStatus(ctx, sn)
		require.NoError(t, err)
		return s.Invalid
	})
	assert.Equal(t, "0 "+length.String()+" snapshot Invalid", dmsetup(t, "status", sn))
}

func TestKernelSnapshotOverflow(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	const size = 8 << 20
	_, oDev, _ := loop(t, size, 5)
	_, cowDev, _ := loop(t, 1<<20, 0)
	length := Sectors(size / 512)
	on, ou := names("origin")
	sn, su := names("snapo")
	mustCreate(t, c, on, ou, Table{{Length: length, Target: SnapshotOrigin{Device: oDev}}})
	mustCreate(t, c, sn, su, Table{{Length: length, Target: Snapshot{Origin: oDev, COW: cowDev, Store: PersistentOverflow, ChunkSize: 16}}})
	sp, err := c.DevicePath(sn)
	require.NoError(t, err)
	// Writes to a PO snapshot beyond its COW fail and report Overflow
	// instead of invalidating the snapshot.
	_ = writeDevice(sp, 0, make([]byte, 2<<20))
	vmtest.WaitFor(t, 10*time.Second, "snapshot Overflow", func() bool {
		s, err := c.SnapshotStatus(ctx, sn)
		require.NoError(t, err)
		return s.Overflow
	})
	assert.Equal(t, "0 "+length.String()+" snapshot Overflow", dmsetup(t, "status", sn))
}

func TestKernelEra(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	_, oDev, _ := loop(t, 8<<20, 6)
	_, mDev, _ := loop(t, 4<<20, 0)
	n, u := names("era")
	tbl := Table{{Length: 8 << 20 / 512, Target: Era{Metadata: mDev, Origin: oDev, BlockSize: 128}}}
	mustCreate(t, c, n, u, tbl)
	assert.Equal(t, strings.TrimSpace(tbl.String()), dmsetup(t, "table", n))
	s, err := c.EraStatus(ctx, n)
	require.NoError(t, err)
	assert.False(t, s.HasHeldRoot)
	era := s.Era

	require.NoError(t, c.Message(ctx, n, 0, MsgEraCheckpoint))
	s, err = c.EraStatus(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, era+1, s.Era, "checkpoint rolls over to a new era")

	require.NoError(t, c.Message(ctx, n, 0, MsgEraTakeMetadataSnap))
	s, err = c.EraStatus(ctx, n)
	require.NoError(t, err)
	assert.True(t, s.HasHeldRoot)
	parsed, err := ParseEraStatus(dmsetup(t, "status", n))
	require.NoError(t, err)
	assert.Equal(t, s.Era, parsed.Era, "dmsetup agrees (metadata use may move between reads)")
	assert.Equal(t, s.HeldRoot, parsed.HeldRoot)
	assert.Equal(t, s.MetadataTotal, parsed.MetadataTotal)
	// A second snapshot while one is held is refused by the kernel.
	assert.ErrorIs(t, c.Message(ctx, n, 0, MsgEraTakeMetadataSnap), unix.EINVAL)
	require.NoError(t, c.Message(ctx, n, 0, MsgEraDropMetadataSnap))
	s, err = c.EraStatus(ctx, n)
	require.NoError(t, err)
	assert.False(t, s.HasHeldRoot)
	assert.ErrorIs(t, c.Message(ctx, n, 0, "bogus"), unix.EINVAL)
}

// TestKernelTableInfo: the kernel fills DM_TABLE_STATUS's header as it
// fills DM_DEV_STATUS's (the state Inspect reads from it), running and
// suspended with an inactive table.
func TestKernelTableInfo(t *testing.T) {
	c := kernelClient(t)
	ctx := kctx(t)
	_, aDev, _ := loop(t, 1<<20, 0)
	name, uuid := names("tinfo")
	tbl := Table{{Length: 1024, Target: Linear{Device: aDev}}, {Start: 1024, Length: 8, Target: Error{}}}
	mustCreate(t, c, name, uuid, tbl)
	check := func(what string) Info {
		want, err := c.Info(ctx, name)
		require.NoError(t, err, what)
		info, lines, err := c.TableInfo(ctx, name)
		require.NoError(t, err, what)
		assert.Equal(t, want, info, what)
		var got []string
		for _, l := range lines {
			got = append(got, l.String())
		}
		assert.Equal(t, strings.TrimSpace(tbl.String()), strings.Join(got, "\n"), what)
		return info
	}
	info := check("running")
	assert.True(t, info.ActivePresent)
	assert.False(t, info.Suspended || info.InactivePresent)

	require.NoError(t, c.Suspend(ctx, name, true))
	require.NoError(t, c.Load(ctx, name, Table{{Length: 1032, Target: Error{}}}))
	info = check("suspended, inactive table loaded")
	assert.True(t, info.Suspended && info.InactivePresent && info.ActivePresent)
	require.NoError(t, c.Resume(ctx, name))
	tbl = Table{{Length: 1032, Target: Error{}}}
	check("resumed into the new table")

	_, _, err := c.TableInfo(ctx, name+"-none")
	assert.ErrorIs(t, err, ErrNotFound)
}
