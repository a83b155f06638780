package plan_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// eraless makes e's planner build no era layer, as lunferry did before
// it had one.
func (e *env) eraless() {
	e.t.Helper()
	ports := e.k.Ports()
	ports.Era = nil
	p, err := plan.New(plan.Options{StateDir: e.dir, Ports: ports, Log: e.log, PollInterval: time.Millisecond})
	require.NoError(e.t, err)
	e.p = p
}

func (e *env) eraFile() string { return filepath.Join(e.dir, "metadata", "vol1.era") }

// servesEra checks that the export serves the era device over vol1's
// device.
func (e *env) servesEra() {
	e.t.Helper()
	inv := e.k.Inventory()
	ex, ok := inv.Exports[exportIQN]
	require.True(e.t, ok)
	require.NoError(e.t, servedThroughEra(inv, "vol1", inv.Devices[plan.DMName("vol1")], ex))
}

const kib = 1 << 10

// TestEraLayerThroughTheMigration: the era device sits over the device and
// under the export from cutover on, keeps its history through a reboot,
// stays through finalize's swap below it and goes with handover.
func TestEraLayerThroughTheMigration(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	e.servesEra()
	v := e.show()
	require.NotNil(t, v.Era)
	require.NotZero(t, v.Era.Since, "the era the host's writes are tracked from")
	require.Equal(t, uint64(plan.DefaultEraBlockSectors), v.Era.BlockSectors)
	e.k.HostWrite(plan.EraName("vol1"), 1<<20, 4*kib)

	e.k.Reboot()
	res, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Equal(t, []plan.ObjectKind{plan.ObjNewLogin, plan.ObjOldLogin, plan.ObjMetadata, plan.ObjFence, plan.ObjDevice, plan.ObjEra, plan.ObjExport}, res[0].Rebuilt)
	e.servesEra()

	f := &fakeVerifier{}
	rep, err := e.verifyPlanner(f).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	want := []clone.Extent{{Offset: 1 << 20, Length: 64 * kib}}
	assert.Equal(t, want, f.skip, "the block the host wrote before the reboot is not compared")
	assert.Equal(t, want, rep.HostWritten)
	assert.Equal(t, uint64(64*kib), rep.HostWrittenBytes)

	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	e.servesEra()
	require.Equal(t, newKey, e.k.DiskKey(e.k.Device(plan.DMName("vol1")).Linear), "the swap replaced the device below the era")
	_, err = os.Stat(e.eraFile())
	require.NoError(t, err, "finalize keeps the era's history")

	e.k.HostLogsIn = false // the pre-handover hook moved it
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
	assert.Nil(t, e.k.Device(plan.EraName("vol1")))
	_, err = os.Stat(e.eraFile())
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestEraBlockSectorsFromTheSpec: the runbook's era block size is checked
// and used.
func TestEraBlockSectorsFromTheSpec(t *testing.T) {
	for _, bad := range []uint64{4, 100, 4194304} {
		s := spec("vol1")
		s.EraBlockSectors = bad
		s.Normalize()
		require.ErrorIs(t, s.Validate(), plan.ErrInvalidSpec, "%d", bad)
	}
	e := newEnv(t)
	s := spec("vol1")
	s.RegionSectors, s.EraBlockSectors = 2048, 1024
	e.add(s)
	e.cutOver()
	require.Equal(t, uint64(1024), e.show().Era.BlockSectors)
	require.EqualValues(t, 1024, e.k.Device(plan.EraName("vol1")).Era.BlockSize)
}

// TestEraBlockWithinARegion: an era block larger than the clone's region
// is refused at volume add (rollback would refuse it only after cutover),
// and a spec with small regions and no era block gets era blocks of its
// region size, so its rollback is not refused (it was: 128-sector era
// blocks over 8-sector regions).
func TestEraBlockWithinARegion(t *testing.T) {
	s := spec("vol1")
	s.EraBlockSectors = 1024
	s.Normalize()
	err := s.Validate()
	require.ErrorIs(t, err, plan.ErrInvalidSpec)
	require.ErrorContains(t, err, "eraBlockSectors 1024 is larger than regionSectors 128")
	require.ErrorContains(t, err, "use at most 128")

	e := newEnv(t)
	s = spec("vol1")
	s.RegionSectors = 8
	e.add(s)
	e.cutOver()
	require.Equal(t, uint64(8), e.show().Era.BlockSectors)
	_, err = e.p.Rollback(context.Background(), "vol1", plan.RollbackOptions{DryRun: true})
	require.NoError(t, err)
}

// TestVerifyDropsDifferencesTheHostWroteDuring: a difference in a block
// the host wrote while verify read it is the host's data.
func TestVerifyDropsDifferencesTheHostWroteDuring(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	during := clone.Extent{Offset: 2<<20 + 512, Length: 512}
	bad := clone.Extent{Offset: 8 << 20, Length: 512}
	res := clone.VerifyResult{Compared: 1 << 20, MismatchedBytes: 1024, Mismatches: []clone.Extent{during, bad}}
	f := &fakeVerifier{res: res, err: &clone.MismatchError{Result: res},
		during: func() { e.k.HostWrite(plan.EraName("vol1"), 2<<20, 4*kib) }}
	rep, err := e.verifyPlanner(f).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.ErrorIs(t, err, clone.ErrMismatch)
	assert.Equal(t, []clone.Extent{during}, rep.WrittenDuring)
	assert.Equal(t, []clone.Extent{bad}, rep.Result.Mismatches)
	assert.Equal(t, uint64(512), rep.Result.MismatchedBytes)

	res.MismatchedBytes, res.Mismatches = 512, []clone.Extent{during}
	f.res, f.err = res, &clone.MismatchError{Result: res}
	rep, err = e.verifyPlanner(f).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err, "the only difference is the host's")
	assert.True(t, rep.Result.Equal())
}

// TestVolumeWithoutEraLayer: a volume cut over before lunferry built era
// layers goes on to its end without one, and verify still needs the
// admin's word.
func TestVolumeWithoutEraLayer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.eraless()
	e.cutOver()
	e.p = e.planner(false)
	e.k.Reboot()
	_, err := e.p.Restore(ctx)
	require.NoError(t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)
	f := &fakeVerifier{}
	_, err = e.verifyPlanner(f).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.ErrorIs(t, err, plan.ErrHostWrites)
	require.Empty(t, f.calls)
	_, err = e.p.Start(ctx, "vol1")
	require.NoError(t, err)
	e.hydrate("vol1")
	_, err = e.p.Finalize(ctx, "vol1")
	require.NoError(t, err)
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)

	v := e.show()
	for _, o := range v.Objects {
		assert.NotEqual(t, plan.ObjEra, o.Kind)
	}
	assert.Nil(t, v.Era)
	assert.Nil(t, e.k.Device(plan.EraName("vol1")))
	ex, ok := e.k.Export(exportIQN)
	require.True(t, ok)
	assert.Equal(t, e.k.Device(plan.DMName("vol1")).Node, ex.Device, "the export serves the device itself")
	e.k.HostLogsIn = false
	_, err = e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
}

// TestOnlineTakeoverStartsTheEra: the era the host's writes count from
// begins before the takeover's swap, after the pass-through's writes.
func TestOnlineTakeoverStartsTheEra(t *testing.T) {
	e := onlineEnv(t)
	_, err := e.p.Cutover(context.Background(), "vol1")
	require.NoError(t, err)
	e.takenOver(true)
	e.servesEra()
	calls := strings.Join(e.k.Calls(), "\n")
	require.Equal(t, 1, strings.Count(calls, "EraCheckpoint "), "no checkpoint in the pass-through")
	require.Less(t, strings.Index(calls, "EraCheckpoint "), strings.Index(calls, "Swap "))
	require.Less(t, strings.Index(calls, "SetReadOnly "), strings.Index(calls, "EraCheckpoint "))
	require.NotZero(t, e.show().Era.Since)
}

// TestPrepareRefusesStrayEraDevice: an era device with the volume's name
// that the state did not create is neither adopted nor removed.
func TestPrepareRefusesStrayEraDevice(t *testing.T) {
	e := newEnv(t)
	e.add(spec("vol1"))
	e.k.AddDevice(plan.EraName("vol1"))
	_, err := e.p.Prepare(context.Background(), "vol1")
	require.ErrorIs(t, err, plan.ErrUnknownObject)
	require.ErrorContains(t, err, plan.EraName("vol1"))
	require.NotNil(t, e.k.Device(plan.EraName("vol1")))
}

// TestEraTakenAgainOverFreshMetadata: a cutover killed after its era
// checkpoint but before it recorded the era device, then a power loss:
// the rerun makes the metadata fresh, and the era the host's writes count
// from must be taken in that history, not kept from the lost one.
func TestEraTakenAgainOverFreshMetadata(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	e.k.Fail["Apply"] = plantest.ErrInjected
	_, err = e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plantest.ErrInjected)
	delete(e.k.Fail, "Apply")
	v := e.show()
	require.NotZero(t, v.Era.Since)
	for i := range v.Objects {
		if v.Objects[i].Kind == plan.ObjEra {
			v.Objects[i].Pending = true // killed before created() saved
		}
	}
	require.NoError(t, e.p.Store().Save(v))
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	_, err = e.p.Cutover(ctx, "vol1")
	require.NoError(t, err)

	e.k.HostWrite(plan.EraName("vol1"), 0, 512)
	rep, err := e.verifyPlanner(&fakeVerifier{}).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, []clone.Extent{{Offset: 0, Length: 64 * kib}}, rep.HostWritten, "the host's write after the rerun")
}

// TestEraMetadataOnAGivenDevice: metadata.eraDevice is zeroed at cutover,
// checked (never zeroed) at restore, and left in place by abort.
func TestEraMetadataOnAGivenDevice(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := spec("vol1")
	s.Metadata.EraDevice = "/dev/vg0/era1"
	e.add(s)
	e.cutOver()
	e.servesEra()
	require.Contains(t, e.k.Zeroed, "/dev/vg0/era1")
	require.Equal(t, "/dev/vg0/era1", e.k.Device(plan.EraName("vol1")).Era.Metadata)
	e.k.HostWrite(plan.EraName("vol1"), 0, 512)

	e.k.Reboot()
	zeroed := len(e.k.Zeroed)
	_, err := e.p.Restore(ctx)
	require.NoError(t, err)
	require.Len(t, e.k.Zeroed, zeroed, "restore zeroes nothing")
	rep, err := e.verifyPlanner(&fakeVerifier{}).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, []clone.Extent{{Offset: 0, Length: 64 * kib}}, rep.HostWritten)

	e.k.Reboot()
	require.NoError(t, e.k.ZeroDevice(ctx, "/dev/vg0/era1", 0))
	_, err = e.p.Restore(ctx)
	require.ErrorIs(t, err, plan.ErrMetadataLost)
	require.ErrorContains(t, err, "/dev/vg0/era1")

	bad := spec("vol2")
	bad.Metadata.EraDevice = "era"
	bad.Normalize()
	require.ErrorIs(t, bad.Validate(), plan.ErrInvalidSpec)
}

// TestVerifyComparesTheHostsBlocksWithItsView: the blocks the host wrote
// since cutover are compared between the new LUN and the device the
// export serves (not with the old LUN); a difference there is reported,
// unless the host wrote that block during the comparison.
func TestVerifyComparesTheHostsBlocksWithItsView(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	e.k.HostWrite(plan.EraName("vol1"), 1<<20, 4*kib)
	e.k.HostWrite(plan.EraName("vol1"), 4<<20, 4*kib)
	v := e.show()
	era := e.k.Device(plan.EraName("vol1"))
	require.NotNil(t, era)

	f := &fakeVerifier{viewRes: clone.VerifyResult{Compared: 128 * kib, Total: 128 * kib}}
	rep, err := e.verifyPlanner(f).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.NoError(t, err)
	want := []clone.Extent{{Offset: 1 << 20, Length: 64 * kib}, {Offset: 4 << 20, Length: 64 * kib}}
	require.Len(t, f.viewCalls, 1)
	assert.True(t, strings.HasPrefix(f.viewCalls[0], v.NewDisk.Path+" "+era.Node+" "), "new LUN vs the era device the export serves: %s", f.viewCalls[0])
	assert.Equal(t, want, f.viewOnly)
	assert.Equal(t, uint64(128*kib), rep.HostView.Compared)

	bad := clone.Extent{Offset: 4<<20 + 512, Length: 512}
	during := clone.Extent{Offset: 1<<20 + 512, Length: 512}
	res := clone.VerifyResult{Compared: 128 * kib, MismatchedBytes: 1024, Mismatches: []clone.Extent{during, bad}}
	f = &fakeVerifier{viewRes: res, viewErr: &clone.MismatchError{Result: res},
		viewDuring: func() { e.k.HostWrite(plan.EraName("vol1"), 1<<20, 4*kib) }}
	rep, err = e.verifyPlanner(f).Verify(ctx, "vol1", plan.VerifyOptions{})
	require.ErrorIs(t, err, clone.ErrMismatch)
	assert.ErrorContains(t, err, "the host's view")
	assert.Equal(t, []clone.Extent{bad}, rep.HostView.Mismatches)
	assert.Equal(t, []clone.Extent{during}, rep.WrittenDuring, "written during the comparison: the host's data")

	f = &fakeVerifier{}
	_, err = e.verifyPlanner(f).Verify(ctx, "vol1", plan.VerifyOptions{HostStopped: true})
	require.NoError(t, err)
	assert.Empty(t, f.viewCalls, "with the admin's word the host wrote nothing: every hydrated block is compared with the old LUN")
}
