package plan_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// thinStatus is the 1 GiB old LUN's map (512-byte blocks, regions of 64
// KiB): 1 MiB mapped; 150 KiB deallocated, of which the 2 whole regions
// from 1 MiB; 500,000 bytes mapped; anchored to the end, of which the
// whole regions from region 27.
var thinStatus = []scsi.LBAExtent{
	{LBA: 0, Blocks: 2048, Status: scsi.Mapped},
	{LBA: 2048, Blocks: 300, Status: scsi.Deallocated},
	{LBA: 2348, Blocks: 1000, Status: scsi.MappedOrUnknown},
	{LBA: 3348, Blocks: 2097152 - 3348, Status: scsi.Anchored},
}

// thinWant are the discards thinStatus yields.
var thinWant = []clone.Extent{{Offset: 1 << 20, Length: 2 << 16}, {Offset: 27 << 16, Length: gib - 27<<16}}

const thinRegions = 2 + 16384 - 27

// thinEnv is a prepared volume over a thin old LUN reporting thinStatus
// and a thin new LUN, both reading zeroes from unmapped blocks.
func thinEnv(t *testing.T, s plan.Spec) *env {
	e := newEnv(t)
	e.k.LUNs[oldKey] = plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: plantest.ThinLUN("wwid-old", gib, true), LBAStatus: thinStatus}
	e.k.LUNs[newKey] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new", Identity: plantest.ThinLUN("wwid-new", 2*gib, true)}
	e.add(s)
	_, err := e.p.Prepare(context.Background(), s.Name)
	require.NoError(t, err)
	return e
}

// TestThinCutoverSkipsUnmapped: the offline cutover discards on the clone
// the whole regions the old LUN reports unmapped, after the device is
// built and before the era layer and the export, flushes them, and
// records what it skipped; hydration then copies the rest.
func TestThinCutoverSkipsUnmapped(t *testing.T) {
	ctx := context.Background()
	e := thinEnv(t, spec("vol1"))
	e.k.ResetCalls()
	v, err := e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, e.k.Violations())

	require.Len(t, e.k.Discards, 1)
	dev := e.k.Device(plan.DMName("vol1"))
	require.Equal(t, dev.Node, e.k.Discards[0].Device)
	require.Equal(t, thinWant, e.k.Discards[0].Extents)
	require.Equal(t, uint64(thinRegions), dev.Hydrated, "discarded regions count as hydrated")

	require.NotNil(t, v.Thin)
	require.True(t, v.Thin.Done)
	th := *v.Thin
	th.Took = 0
	require.Equal(t, plan.ThinState{UnmappedBytes: (300 + 2097152 - 3348) * 512, Regions: thinRegions, Bytes: thinRegions << 16, Extents: 2, Done: true}, th)
	require.Contains(t, v.Thin.Summary(), "16359 regions")

	// Order: device, its status (passdown), the map, discard, commit (the
	// fake's CommitStatus is a CloneStatus), then era and export.
	calls := kernelCalls(e.k, "CreateClone", "CloneStatus", "LBAMap", "Discard", "CreateEra", "Apply")
	var order []string
	for _, c := range calls {
		order = append(order, strings.Fields(c)[0])
	}
	require.Equal(t, []string{"CreateClone", "CloneStatus", "LBAMap", "Discard", "CloneStatus", "CreateEra", "Apply"}, order)
	require.Contains(t, e.log.String(), "discarding 16359 whole regions")

	rep, err := e.p.Status(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, v.Thin, rep.Volumes[0].Thin)

	// A rerun changes nothing; hydration and finalize go on as ever.
	e.k.ResetCalls()
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	require.Empty(t, kernelCalls(e.k, "Discard", "LBAMap"))
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	require.Len(t, e.k.Discards, 1)
	require.Empty(t, e.k.Violations())
}

// TestThinCopiesInFull: whenever a skipped region might not read back as
// the old LUN's zeroes from the new LUN, nothing is discarded and the
// state says why.
func TestThinCopiesInFull(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(k *plantest.Kernel)
		note string
	}{
		{"old LUN without GET LBA STATUS", func(k *plantest.Kernel) { l := k.LUNs[oldKey]; l.LBAStatus = nil; k.LUNs[oldKey] = l },
			"does not report LBA status"},
		{"old LUN without LBPRZ", func(k *plantest.Kernel) {
			l := k.LUNs[oldKey]
			l.Identity = plantest.ThinLUN("wwid-old", gib, false)
			k.LUNs[oldKey] = l
		}, "LBPRZ false"},
		{"new LUN fully provisioned", func(k *plantest.Kernel) { k.LUNs[newKey] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new"} },
			"the new LUN takes no discard"},
		{"new LUN without LBPRZ", func(k *plantest.Kernel) {
			k.LUNs[newKey] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new", Identity: plantest.ThinLUN("wwid-new", 2*gib, false)}
		}, "the new LUN does not report that unmapped blocks read as zeroes"},
		{"new LUN unmaps in 1 MiB units", func(k *plantest.Kernel) {
			id := plantest.ThinLUN("wwid-new", 2*gib, true)
			id.BlockLimits = &scsi.BlockLimits{OptimalUnmapGranularity: 2048}
			k.LUNs[newKey] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new", Identity: id}
		}, "units of 1048576 bytes"},
		{"no discard passdown", func(k *plantest.Kernel) { k.NoDiscardPassdown = true }, "does not pass discards down"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			e.k.LUNs[oldKey] = plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: plantest.ThinLUN("wwid-old", gib, true), LBAStatus: thinStatus}
			e.k.LUNs[newKey] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new", Identity: plantest.ThinLUN("wwid-new", 2*gib, true)}
			c.set(e.k)
			e.add(spec("vol1"))
			_, err := e.p.Prepare(ctx, "vol1")
			require.NoError(t, err)
			v, err := e.p.Cutover(ctx, "vol1")
			require.NoError(t, err)
			require.Empty(t, e.k.Discards)
			require.Zero(t, e.k.Device(plan.DMName("vol1")).Hydrated)
			require.NotNil(t, v.Thin)
			require.True(t, v.Thin.Done)
			require.Zero(t, v.Thin.Regions)
			require.Contains(t, v.Thin.Note, c.note)
			require.Contains(t, v.Thin.Summary(), "copied in full")
			require.Contains(t, e.log.String(), "every region is copied")
		})
	}
	t.Run("fully provisioned old LUN", func(t *testing.T) {
		e := newEnv(t)
		e.add(spec("vol1"))
		_, err := e.p.Prepare(context.Background(), "vol1")
		require.NoError(t, err)
		v, err := e.p.Cutover(context.Background(), "vol1")
		require.NoError(t, err)
		require.Nil(t, v.Thin, "nothing to ask, nothing to say")
		require.Empty(t, kernelCalls(e.k, "LBAMap", "Discard"))
	})
}

// TestThinOnlineCopiesInFull: the online cutover never discards (the host
// writes through the clone from the takeover on).
func TestThinOnlineCopiesInFull(t *testing.T) {
	e := thinEnv(t, onlineSpec())
	v, err := e.p.Cutover(context.Background(), "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.PhaseTakenOver, v.Cutover.Phase)
	require.Empty(t, kernelCalls(e.k, "LBAMap", "Discard"))
	require.NotNil(t, v.Thin)
	require.Contains(t, v.Thin.Note, "online cutover copies every region")
	require.Empty(t, e.k.Violations())
}

// TestThinDiscardFailureRerun: a failed discard fails the cutover before
// the export; the rerun discards again and goes on.
func TestThinDiscardFailureRerun(t *testing.T) {
	ctx := context.Background()
	e := thinEnv(t, spec("vol1"))
	e.k.Fail["Discard"] = fmt.Errorf("ioctl BLKDISCARD: input/output error")
	_, err := e.p.Cutover(ctx, "vol1")
	require.ErrorContains(t, err, "discarding again is safe before the export exists")
	_, ok := e.k.Export(exportIQN)
	require.False(t, ok, "no export before the discards are done")
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.Equal(t, plan.StepCuttingOver, v.Step)
	require.False(t, v.Thin.Done)
	require.Contains(t, v.Thin.Summary(), "interrupted")

	delete(e.k.Fail, "Discard")
	v, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	require.True(t, v.Thin.Done)
	require.Equal(t, uint64(thinRegions), e.k.Device(plan.DMName("vol1")).Hydrated)
	require.Empty(t, e.k.Violations())
}

// TestThinCrashAtEveryPoint kills the process at every kernel operation of
// a thin cutover (before the call, and after it), with and without a
// power loss that forgets what the clone did not commit; restore and the
// rerun finish it with the same regions skipped, never discarding through
// a device that serves the host.
func TestThinCrashAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	e := thinEnv(t, spec("vol1"))
	e.k.ResetCalls()
	_, err := e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	total := len(e.k.Calls())
	for n := 1; n <= total; n++ {
		for _, c := range []struct{ after, reboot bool }{{false, false}, {true, false}, {true, true}} {
			if c.after && n == total {
				continue // nothing dies after the last call
			}
			t.Run(fmt.Sprintf("op%d-after=%v-reboot=%v", n, c.after, c.reboot), func(t *testing.T) {
				e := thinEnv(t, spec("vol1"))
				e.k.LoseUncommitted = true
				e.k.ResetCalls()
				e.k.CrashAt, e.k.CrashAfter = n, c.after
				_, err := e.p.Cutover(ctx, "vol1")
				e.k.CrashAt, e.k.CrashAfter = 0, false
				require.ErrorIs(t, err, plantest.ErrCrash)
				if c.reboot {
					e.k.Reboot()
					_, err = e.p.Restore(ctx)
					require.NoError(t, err)
				}
				v, err := e.p.Cutover(ctx, "vol1")
				require.NoError(t, err)
				require.Empty(t, e.k.Violations())
				require.True(t, v.Thin.Done)
				require.Equal(t, uint64(thinRegions), v.Thin.Regions)
				require.Equal(t, uint64(thinRegions), e.k.Device(plan.DMName("vol1")).Hydrated, "every skipped region is recorded hydrated")
				for _, d := range e.k.Discards {
					require.Equal(t, thinWant, d.Extents)
				}
			})
		}
	}
}

// TestThinNewLUNNotZeroed: a new LUN that keeps data where it was told to
// unmap (LBPRZ it does not honour) refuses the cutover before the export;
// abort then leaves nothing behind.
func TestThinNewLUNNotZeroed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.k.LUNs[oldKey] = plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: plantest.ThinLUN("wwid-old", gib, true), LBAStatus: thinStatus}
	e.k.LUNs[newKey] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new", Identity: plantest.ThinLUN("wwid-new", 2*gib, true), NotZeroed: true}
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrNotZeroed)
	require.ErrorContains(t, err, `give "thin": "copy"`)
	_, ok := e.k.Export(exportIQN)
	require.False(t, ok, "the host is never served from such regions")
	v := e.show()
	require.False(t, v.Thin.Done)
	_, err = e.p.Abort(ctx, "vol1")
	require.NoError(t, err)
	e.clean("vol1")
	require.Empty(t, e.k.Violations())
}

// TestThinCopyInRunbook: "thin": "copy" copies every region; another value
// is refused.
func TestThinCopyInRunbook(t *testing.T) {
	s := spec("vol1")
	s.Thin = "copy"
	e := thinEnv(t, s)
	v, err := e.p.Cutover(context.Background(), "vol1")
	require.NoError(t, err)
	require.Empty(t, kernelCalls(e.k, "LBAMap", "Discard"))
	require.Contains(t, v.Thin.Note, `"thin": "copy"`)

	s.Thin = "skip"
	s.Normalize()
	require.ErrorIs(t, s.Validate(), plan.ErrInvalidSpec)
}

// TestThinNotAfterEra: a cutover an older lunferry (no thin port) left
// with the era layer built and no export is finished without discards:
// the era layer holds the clone, which is no longer the cutover's alone.
func TestThinNotAfterEra(t *testing.T) {
	ctx := context.Background()
	e := thinEnv(t, spec("vol1"))
	ports := e.k.Ports()
	ports.Thin = nil
	old, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond})
	require.NoError(t, err)
	e.k.Fail["Apply"] = fmt.Errorf("configfs: no space")
	_, err = old.Cutover(ctx, "vol1")
	require.ErrorContains(t, err, "no space")
	require.NotNil(t, e.k.Device(plan.EraName("vol1")))
	delete(e.k.Fail, "Apply")
	// As if it had died before it recorded the export it was to create.
	v := e.show()
	v.Objects = slices.DeleteFunc(v.Objects, func(o plan.Object) bool { return o.Kind == plan.ObjExport })
	require.NoError(t, e.p.Store().Save(v))

	v, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	require.Nil(t, v.Thin)
	require.Empty(t, kernelCalls(e.k, "LBAMap", "Discard"))
	require.Empty(t, e.k.Violations())
}
