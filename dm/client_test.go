package dm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var testSizes = map[string]Sectors{"7:0": 2048, "7:1": 2048, "7:2": 64, "7:3": 1024}

func cloneTable() Table {
	return Table{{Length: 2048, Target: Clone{Metadata: "7:2", Destination: "7:1", Source: "7:0", RegionSize: 128, HydrationThreshold: 64}}}
}

func linearTable() Table { return Table{{Length: 2048, Target: Linear{Device: "7:1"}}} }

func TestCreateInfoTableStatusRemove(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()

	v, err := c.Version(ctx)
	require.NoError(t, err)
	assert.Equal(t, "4.47.0", v.String())

	info, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", cloneTable())
	require.NoError(t, err)
	assert.Equal(t, "lunferry-a", info.Name)
	assert.Equal(t, "LUNFERRY-a", info.UUID)
	assert.True(t, info.ActivePresent)
	assert.False(t, info.Suspended, "Create resumes")
	assert.True(t, info.Owned())

	tbl, err := c.Table(ctx, "lunferry-a")
	require.NoError(t, err)
	require.Len(t, tbl, 1)
	assert.Equal(t, cloneTable()[0].String(), tbl[0].String())

	st, err := c.Status(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Equal(t, "clone-status", st[0].Params)

	inactive, err := c.InactiveTable(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Empty(t, inactive)

	deps, err := c.Deps(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Equal(t, []DevNum{{7, 0}}, deps)

	list, err := c.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "LUNFERRY-a", list[0].UUID)

	require.NoError(t, c.Remove(ctx, "lunferry-a", RemoveOptions{}))
	_, err = c.Info(ctx, "lunferry-a")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, err, unix.ENXIO, "the errno stays in the chain")
}

func TestCreateRequiresPrefixes(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	for _, nu := range [][2]string{{"a", "LUNFERRY-a"}, {"lunferry-a", "a"}, {"lunferry-a", ""}} {
		_, err := c.Create(context.Background(), nu[0], nu[1], cloneTable())
		assert.ErrorIs(t, err, ErrNotOwned)
	}
	assert.Zero(t, k.count(cmdDevCreate), "nothing reached the kernel")
}

func TestCreateExists(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	_, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", linearTable())
	require.NoError(t, err)
	_, err = c.Create(ctx, "lunferry-a", "LUNFERRY-b", linearTable())
	assert.ErrorIs(t, err, ErrExists)
	assert.ErrorIs(t, err, unix.EBUSY)
	assert.Contains(t, err.Error(), "lunferry-a")
	_, err = c.Info(ctx, "lunferry-a")
	assert.NoError(t, err, "the existing device is untouched")
}

func TestCreateUndoesOnRejectedTable(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	tbl := Table{{Length: 8, Target: rawTarget{typ: "linear", args: "reject"}}}
	_, err := c.Create(context.Background(), "lunferry-a", "LUNFERRY-a", tbl)
	var rej *TableRejectedError
	require.ErrorAs(t, err, &rej)
	assert.Equal(t, "0 8 linear reject\n", rej.Table)
	assert.ErrorIs(t, err, unix.EINVAL)
	assert.Contains(t, err.Error(), `"0 8 linear reject"`)
	_, err = c.Info(context.Background(), "lunferry-a")
	assert.ErrorIs(t, err, ErrNotFound, "the half-made device was removed")
}

func TestCreateUndoesOnResumeFailure(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	k.inject[cmdDevSuspend] = []error{unix.EIO}
	_, err := c.Create(context.Background(), "lunferry-a", "LUNFERRY-a", linearTable())
	assert.ErrorIs(t, err, unix.EIO)
	assert.Empty(t, k.devs)
}

func TestLoadTargetMissing(t *testing.T) {
	k := newFakeKernel()
	delete(k.targets, "clone")
	c := newFakeClient(t, k, testSizes)
	_, err := c.Create(context.Background(), "lunferry-a", "LUNFERRY-a", cloneTable())
	var miss *TargetMissingError
	require.ErrorAs(t, err, &miss)
	assert.Equal(t, "clone", miss.Type)
	assert.Equal(t, "dm_clone", miss.Module)
	assert.Contains(t, err.Error(), "modprobe dm_clone")
	assert.ErrorIs(t, err, unix.EINVAL)

	_, err = c.TargetVersion(context.Background(), "clone")
	require.ErrorAs(t, err, &miss)
	v, err := c.TargetVersion(context.Background(), "linear")
	require.NoError(t, err)
	assert.Equal(t, "linear", v.Name)
}

func TestLoadChecksDeviceSizes(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	// 7:3 has 1024 sectors: too small as a clone source of 2048.
	small := Table{{Length: 2048, Target: Clone{Metadata: "7:2", Destination: "7:1", Source: "7:3", RegionSize: 8}}}
	_, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", small)
	assert.ErrorIs(t, err, ErrInvalidTable)
	assert.Contains(t, err.Error(), "clone source 7:3 has 1024 sectors, needs at least 2048")
	small[0].Target = Clone{Metadata: "7:2", Destination: "7:3", Source: "7:0", RegionSize: 8}
	_, err = c.Create(ctx, "lunferry-a", "LUNFERRY-a", small)
	assert.ErrorContains(t, err, "clone destination 7:3")
	lin := Table{{Length: 1024, Target: Linear{Device: "7:3", Offset: 8}}}
	_, err = c.Create(ctx, "lunferry-a", "LUNFERRY-a", lin)
	assert.ErrorIs(t, err, ErrInvalidTable, "offset + length past the end")
	_, err = c.Create(ctx, "lunferry-a", "LUNFERRY-a", Table{{Length: 8, Target: Linear{Device: "9:9"}}})
	assert.ErrorContains(t, err, "9:9")
	assert.Zero(t, k.count(cmdDevCreate))
}

func TestRemoveOwnershipAndRetry(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	// A device someone else made.
	k.devs["vg0-root"] = &fakeDev{name: "vg0-root", uuid: "LVM-xyz", active: []RawLine{{Length: 8, Type: "linear"}}}
	err := c.Remove(ctx, "vg0-root", RemoveOptions{})
	assert.ErrorIs(t, err, ErrNotOwned)
	assert.Zero(t, k.count(cmdDevRemove))
	// Name with the prefix but a foreign uuid is refused too.
	k.devs["lunferry-fake"] = &fakeDev{name: "lunferry-fake", uuid: "LVM-abc"}
	assert.ErrorIs(t, c.Remove(ctx, "lunferry-fake", RemoveOptions{}), ErrNotOwned)
	require.NoError(t, c.Remove(ctx, "vg0-root", RemoveOptions{Force: true}))

	_, err = c.Create(ctx, "lunferry-a", "LUNFERRY-a", linearTable())
	require.NoError(t, err)
	k.devs["lunferry-a"].busy = 2
	before := k.count(cmdDevRemove)
	require.NoError(t, c.Remove(ctx, "lunferry-a", RemoveOptions{RetryDelay: time.Millisecond}))
	assert.Equal(t, 3, k.count(cmdDevRemove)-before, "two EBUSY then success")

	_, err = c.Create(ctx, "lunferry-b", "LUNFERRY-b", linearTable())
	require.NoError(t, err)
	k.devs["lunferry-b"].busy = 100
	err = c.Remove(ctx, "lunferry-b", RemoveOptions{Retries: 2, RetryDelay: time.Millisecond})
	assert.ErrorIs(t, err, ErrBusy)
	assert.ErrorIs(t, err, unix.EBUSY)
	assert.Contains(t, err.Error(), "holders")
	err = c.Remove(ctx, "lunferry-b", RemoveOptions{Retries: -1})
	assert.ErrorIs(t, err, ErrBusy)
	require.NoError(t, c.Remove(ctx, "lunferry-b", RemoveOptions{Deferred: true}), "deferred remove of a busy device succeeds")

	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	err = c.Remove(ctx2, "lunferry-b", RemoveOptions{})
	assert.ErrorIs(t, err, context.Canceled)

	err = c.Remove(ctx, "lunferry-gone", RemoveOptions{})
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestStatusBufferFullRetry(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	_, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", linearTable())
	require.NoError(t, err)
	long := strings.Repeat("x", 40<<10)
	k.statusOf = func(RawLine) string { return long }
	before := k.count(cmdTableStatus)
	st, err := c.Status(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Equal(t, long, st[0].Params)
	assert.Equal(t, 3, k.count(cmdTableStatus)-before, "16 KiB, 32 KiB, then 64 KiB")
}

func TestCloneStatusAndMessages(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	_, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", cloneTable())
	require.NoError(t, err)
	k.statusOf = func(RawLine) string {
		return "8 52/4096 128 7/16 2 0 4 hydration_threshold 64 hydration_batch_size 16 rw"
	}
	s, err := c.CloneStatus(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Equal(t, uint64(7), s.HydratedRegions)
	assert.NotZero(t, k.statusFlags&flagNoFlush, "polling status must not commit dm-clone metadata")
	_, err = c.Status(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Zero(t, k.statusFlags&flagNoFlush, "plain Status commits like dmsetup status")
	_, err = c.SnapshotStatus(ctx, "lunferry-a")
	assert.ErrorContains(t, err, "no snapshot target")

	require.NoError(t, c.EnableHydration(ctx, "lunferry-a"))
	require.NoError(t, c.DisableHydration(ctx, "lunferry-a"))
	require.NoError(t, c.SetHydrationThreshold(ctx, "lunferry-a", 64))
	require.NoError(t, c.SetHydrationBatchSize(ctx, "lunferry-a", 16))
	require.NoError(t, c.Message(ctx, "lunferry-a", 8, "checkpoint"))
	assert.Equal(t, []string{
		"lunferry-a@0: enable_hydration",
		"lunferry-a@0: disable_hydration",
		"lunferry-a@0: hydration_threshold 64",
		"lunferry-a@0: hydration_batch_size 16",
		"lunferry-a@8: checkpoint",
	}, k.messages)
	assert.Error(t, c.Message(ctx, "lunferry-a", 0, " "))
	k.inject[cmdTargetMsg] = []error{unix.EINVAL}
	err = c.Message(ctx, "lunferry-a", 0, "bogus")
	assert.ErrorIs(t, err, unix.EINVAL)
	assert.Contains(t, err.Error(), `"bogus"`)
}

func TestReplace(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*fakeKernel, *Client) {
		k := newFakeKernel()
		c := newFakeClient(t, k, testSizes)
		_, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", cloneTable())
		require.NoError(t, err)
		return k, c
	}
	live := func(t *testing.T, c *Client) string {
		tbl, err := c.Table(ctx, "lunferry-a")
		require.NoError(t, err)
		require.Len(t, tbl, 1)
		info, err := c.Info(ctx, "lunferry-a")
		require.NoError(t, err)
		assert.False(t, info.Suspended, "never left suspended")
		assert.False(t, info.InactivePresent, "no inactive table left behind")
		return tbl[0].Type
	}

	t.Run("ok", func(t *testing.T) {
		k, c := setup(t)
		res, err := c.Replace(ctx, "lunferry-a", linearTable(), ReplaceOptions{})
		require.NoError(t, err)
		assert.Equal(t, "linear", live(t, c))
		assert.Positive(t, res.Suspended)
		assert.GreaterOrEqual(t, res.Suspended, res.SuspendCall+res.ResumeCall)
		assert.Equal(t, "lunferry-a", res.Info.Name)
		assert.False(t, res.Info.Suspended)
		// Suspend was issued with flush (no DM_NOFLUSH_FLAG): checked by the
		// fake accepting it; NoFlush is covered by the kernel test.
		_ = k
	})
	t.Run("load fails", func(t *testing.T) {
		_, c := setup(t)
		bad := Table{{Length: 2048, Target: rawTarget{typ: "linear", args: "reject"}}}
		_, err := c.Replace(ctx, "lunferry-a", bad, ReplaceOptions{})
		var se *StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "load", se.Step)
		var rej *TableRejectedError
		assert.ErrorAs(t, err, &rej)
		assert.Contains(t, err.Error(), "still serves its old table")
		assert.Equal(t, "clone", live(t, c))
	})
	t.Run("suspend fails", func(t *testing.T) {
		k, c := setup(t)
		k.inject[cmdDevSuspend] = []error{unix.EINTR}
		_, err := c.Replace(ctx, "lunferry-a", linearTable(), ReplaceOptions{})
		var se *StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "suspend", se.Step)
		assert.ErrorIs(t, err, unix.EINTR)
		assert.Equal(t, "clone", live(t, c))
	})
	t.Run("resume fails", func(t *testing.T) {
		k, c := setup(t)
		// First DM_DEV_SUSPEND is the suspend, second the failing resume.
		k.inject[cmdDevSuspend] = []error{nil, unix.ENOMEM}
		_, err := c.Replace(ctx, "lunferry-a", linearTable(), ReplaceOptions{})
		var se *StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "resume", se.Step)
		assert.ErrorIs(t, err, unix.ENOMEM)
		assert.Contains(t, se.State, "old table")
		assert.Equal(t, "clone", live(t, c))
	})
	t.Run("resume fails twice", func(t *testing.T) {
		k, c := setup(t)
		k.inject[cmdDevSuspend] = []error{nil, unix.ENOMEM, unix.ENOMEM}
		_, err := c.Replace(ctx, "lunferry-a", linearTable(), ReplaceOptions{})
		assert.ErrorContains(t, err, "SUSPENDED")
		assert.ErrorContains(t, err, "dmsetup resume lunferry-a")
	})
	t.Run("not owned", func(t *testing.T) {
		k, c := setup(t)
		k.devs["other"] = &fakeDev{name: "other", uuid: "CRYPT-1", active: []RawLine{{Length: 2048, Type: "linear", Params: "7:0 0"}}}
		_, err := c.Replace(ctx, "other", linearTable(), ReplaceOptions{})
		assert.ErrorIs(t, err, ErrNotOwned)
		assert.Zero(t, k.count(cmdTableLoad)-1, "only Create's load ran")
		_, err = c.Replace(ctx, "other", linearTable(), ReplaceOptions{Force: true})
		assert.NoError(t, err)
	})
	t.Run("already suspended", func(t *testing.T) {
		_, c := setup(t)
		require.NoError(t, c.Suspend(ctx, "lunferry-a", true))
		_, err := c.Replace(ctx, "lunferry-a", linearTable(), ReplaceOptions{})
		assert.ErrorContains(t, err, "already suspended")
		require.NoError(t, c.Resume(ctx, "lunferry-a"))
	})
}

func TestWaitEvent(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	info, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", cloneTable())
	require.NoError(t, err)

	go func() {
		time.Sleep(20 * time.Millisecond)
		k.event("lunferry-a")
	}()
	got, err := c.WaitEvent(ctx, "lunferry-a", info.EventNr)
	require.NoError(t, err)
	assert.Equal(t, info.EventNr+1, got.EventNr)

	// An event that already happened returns at once.
	got2, err := c.WaitEvent(ctx, "lunferry-a", info.EventNr)
	require.NoError(t, err)
	assert.Equal(t, got.EventNr, got2.EventNr)

	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = c.WaitEvent(tctx, "lunferry-a", got.EventNr)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	_, err = c.WaitEvent(ctx, "lunferry-missing", 0)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestKernelErrHints(t *testing.T) {
	err := kernelErr("suspend", "lunferry-a", unix.EPERM)
	assert.ErrorIs(t, err, unix.EPERM)
	assert.Contains(t, err.Error(), "root")
	err = kernelErr("remove", "lunferry-a", errors.New("plain"))
	assert.EqualError(t, err, "dm: remove lunferry-a: plain")
}

// TestTableInfo: one DM_TABLE_STATUS gives the state Info gives and the
// active table, for a running device and for one suspended with a table
// waiting in the inactive slot.
func TestTableInfo(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	_, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", cloneTable())
	require.NoError(t, err)

	before := len(k.calls)
	info, tbl, err := c.TableInfo(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Equal(t, []int{cmdTableStatus}, k.calls[before:], "one ioctl")
	want, err := c.Info(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.Equal(t, want, info)
	require.Len(t, tbl, 1)
	assert.Equal(t, cloneTable()[0].String(), tbl[0].String())

	require.NoError(t, c.Suspend(ctx, "lunferry-a", true))
	require.NoError(t, c.Load(ctx, "lunferry-a", linearTable()))
	info, tbl, err = c.TableInfo(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.True(t, info.Suspended)
	assert.True(t, info.ActivePresent)
	assert.True(t, info.InactivePresent)
	require.Len(t, tbl, 1)
	assert.Equal(t, cloneTable()[0].String(), tbl[0].String(), "the active table, not the inactive one")

	k.devs["lunferry-a"].active = nil
	info, tbl, err = c.TableInfo(ctx, "lunferry-a")
	require.NoError(t, err)
	assert.False(t, info.ActivePresent)
	assert.Nil(t, tbl)

	_, _, err = c.TableInfo(ctx, "lunferry-gone")
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestView: a view lists the devices once, at its first lookup, and
// answers every lookup and List from that; a new view lists again.
func TestView(t *testing.T) {
	k := newFakeKernel()
	c := newFakeClient(t, k, testSizes)
	ctx := context.Background()
	a, err := c.Create(ctx, "lunferry-a", "LUNFERRY-a", cloneTable())
	require.NoError(t, err)
	_, err = c.Create(ctx, "lunferry-b", "LUNFERRY-b", linearTable())
	require.NoError(t, err)

	v := c.View()
	assert.Zero(t, k.count(cmdListDevices), "nothing read before the first lookup")
	e, ok, err := v.Lookup(ctx, "lunferry-a")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, a.Dev, e.Dev)
	assert.Equal(t, "LUNFERRY-a", e.UUID)
	_, ok, err = v.Lookup(ctx, "lunferry-none")
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, c.Remove(ctx, "lunferry-b", RemoveOptions{}))
	status := k.count(cmdDevStatus)
	_, ok, err = v.Lookup(ctx, "lunferry-b")
	require.NoError(t, err)
	assert.True(t, ok, "the view is the list as it was read")
	all, err := v.List(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 2)
	assert.Equal(t, 1, k.count(cmdListDevices), "one DM_LIST_DEVICES for the whole pass")
	assert.Equal(t, status, k.count(cmdDevStatus), "no DM_DEV_STATUS for a lookup")

	_, ok, err = c.View().Lookup(ctx, "lunferry-b")
	require.NoError(t, err)
	assert.False(t, ok, "a new view reads the kernel again")
	assert.Equal(t, 2, k.count(cmdListDevices))

	k.inject[cmdListDevices] = []error{unix.EPERM}
	v = c.View()
	_, _, err = v.Lookup(ctx, "lunferry-a")
	require.ErrorIs(t, err, unix.EPERM)
	_, err = v.List(ctx)
	require.ErrorIs(t, err, unix.EPERM, "a failed list stays failed for the pass")
}
