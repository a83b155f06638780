package plan_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
	"github.com/lunferry/lunferry/plan/plantest"
)

// naa5 is an old LUN that identifies itself by an NAA-5 designator only
// (as XtremIO does): LIO cannot show it.
func naa5(size uint64) *scsi.Identity {
	return &scsi.Identity{
		Inquiry: scsi.Inquiry{Vendor: "XtremIO", Product: "XtremApp", Revision: "6000"},
		Pages:   scsi.HexBytes{0x00, 0x80, 0x83},
		Designators: []scsi.Designator{{CodeSet: scsi.CodeSetBinary, Association: scsi.AssocLogicalUnit, Type: scsi.TypeNAA,
			Value: []byte{0x51, 0x4f, 0x0c, 0x50, 0x00, 0x00, 0x12, 0x34}}},
		Capacity: scsi.Capacity{LastLBA: size/512 - 1, LogicalBlockSize: 512},
	}
}

func (e *env) setOld(info plantest.LUNInfo) {
	e.k.LUNs[plantest.Key(oldPortal, oldIQN, 1)] = info
}

// TestExportShowsTheOldIdentity: the export is given the old LUN's
// identity, read over SG_IO at its first attach, and keeps it across a
// restore.
func TestExportShowsTheOldIdentity(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	e.cutOver()
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	require.NotNil(t, v.OldIdentity)
	require.True(t, v.HostIdentity.Verdict.Exact)
	want, verdict := scsi.ForLIO(*v.OldIdentity, "vol1")
	require.Equal(t, v.OldIdentity.WWID(), verdict.NewWWID, "the host sees the old WWID")
	ex, ok := e.k.Export(exportIQN)
	require.True(t, ok)
	require.Equal(t, want.WWN, ex.WWN)
	require.Equal(t, uint32(512), ex.BlockSize)

	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	again, _ := e.k.Export(exportIQN)
	require.Equal(t, ex.WWN, again.WWN, "the same disk after every restore")
}

// TestIdentityLIOCannotShow: an old LUN known by an NAA-5 designator is
// refused at prepare, saying what the host would see, unless the runbook
// accepts a new identity, which is then derived once and kept.
func TestIdentityLIOCannotShow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: naa5(gib)})
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrIdentity)
	require.ErrorContains(t, err, `"identity": "new"`)
	require.ErrorContains(t, err, "naa.514f0c5000001234")

	e = newEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: naa5(gib)})
	s := spec("vol1")
	s.Identity = "new"
	e.add(s)
	e.cutOver()
	ex, _ := e.k.Export(exportIQN)
	require.NotZero(t, ex.WWN.UnitSerial)
	e.k.Reboot()
	_, err = e.p.Restore(ctx)
	require.NoError(t, err)
	again, _ := e.k.Export(exportIQN)
	require.Equal(t, ex.WWN, again.WWN, "derived once, not per rebuild")
}

// TestBlockSizes: a new LUN with larger logical blocks than the old one is
// refused (the host's filesystems are laid out for the old size); a
// smaller one works and the export keeps the old size.
func TestBlockSizes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new", BlockSize: 4096}
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrSizeMismatch)
	require.ErrorContains(t, err, "4096-byte logical blocks, the old LUN 512-byte")

	e = newEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", BlockSize: 4096})
	e.add(spec("vol1"))
	e.cutOver()
	ex, _ := e.k.Export(exportIQN)
	require.Equal(t, uint32(4096), ex.BlockSize)
}

// TestReservationsRefused: a cluster's persistent reservations do not
// follow the host to the proxy: refused unless the runbook says ignore.
func TestReservationsRefused(t *testing.T) {
	ctx := context.Background()
	held := plantest.LUNInfo{Size: gib, ID: "wwid-old", Reservations: scsi.Reservations{Generation: 3, Keys: []uint64{0xabc1}}}
	e := newEnv(t)
	e.setOld(held)
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrReservations)
	require.ErrorContains(t, err, "0xabc1")
	require.NotContains(t, err.Error(), "old.sizeBytes", "no hint about the LUN's size")

	e = newEnv(t)
	e.setOld(held)
	s := spec("vol1")
	s.Reservations = "ignore"
	e.add(s)
	e.cutOver()
	require.Contains(t, e.log.String(), "warning: the old LUN holds persistent reservation keys 0xabc1")
}

// TestOldLUNWithoutWWID: an old LUN that lists no page 0x83 (a LIO
// storage object without a unit serial) gives hosts no WWID: the export's
// own identity takes nothing from them, so it is not refused.
func TestOldLUNWithoutWWID(t *testing.T) {
	id := naa5(gib)
	id.Pages = scsi.HexBytes{0x00}
	e := newEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: id})
	e.add(spec("vol1"))
	e.cutOver()
	require.Contains(t, e.log.String(), "lists no VPD page 0x83")
}

// TestOldIdentityChanged: the old LUN found at cutover is not the one
// probed at prepare (same size, another WWID): refused.
func TestOldIdentityChanged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.add(spec("vol1"))
	_, err := e.p.Prepare(ctx, "vol1")
	require.NoError(t, err)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: naa5(gib)})
	_, err = e.p.Cutover(ctx, "vol1")
	require.ErrorIs(t, err, plan.ErrDiskChanged)
}

// TestHandoverSaysTheIdentityChanges: the host moves to the new array's
// own identity; handover (and its dry run) says so plainly.
func TestHandoverSaysTheIdentityChanges(t *testing.T) {
	ctx := context.Background()
	e, _ := finalizedEnv(t)
	_, err := e.p.Handover(ctx, "vol1", plan.HandoverOptions{})
	require.NoError(t, err)
	require.Contains(t, e.log.String(), "after handover the host sees the new array's LUN with the new array's SCSI identity")
}

// thinLUN is a thin provisioned LUN (LBPME, UNMAP) of size bytes with
// 512-byte logical and 4096-byte physical blocks and a NetApp-like NAA 6
// designator ending in last.
func thinLUN(size uint64, last byte) *scsi.Identity {
	naa := []byte{0x60, 0x0a, 0x09, 0x80, 0x38, 0x30, 0x44, 0x37, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, last}
	return &scsi.Identity{
		Inquiry:      scsi.Inquiry{Vendor: "NETAPP", Product: "LUN C-Mode", Revision: "9110"},
		Pages:        scsi.HexBytes{0x00, 0x80, 0x83, 0xb0, 0xb2},
		Designators:  []scsi.Designator{{CodeSet: scsi.CodeSetBinary, Association: scsi.AssocLogicalUnit, Type: scsi.TypeNAA, Value: naa}},
		Capacity:     scsi.Capacity{LastLBA: size/512 - 1, LogicalBlockSize: 512, PhysicalBlockExponent: 3, LBPME: true, LBPRZ: true},
		Provisioning: &scsi.Provisioning{LBPU: true, LBPRZ: 1, Type: 2},
	}
}

// TestThinProvisioningCarried: a thin old LUN on a thin new LUN is
// exported thin (UNMAP, not WRITE SAME with UNMAP, as the old LUN), also
// after a restore; on a fully provisioned new LUN it is not, and the
// volume's notes say so, as they say what the host sees of the physical
// block size.
func TestThinProvisioningCarried(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: thinLUN(gib, 1)})
	e.k.LUNs[plantest.Key(newPortal, newIQN, 3)] = plantest.LUNInfo{Size: 2 * gib, ID: "wwid-new", Identity: thinLUN(2*gib, 2)}
	e.add(spec("vol1"))
	e.cutOver()
	ex, _ := e.k.Export(exportIQN)
	require.True(t, ex.EmulateTPU)
	require.False(t, ex.EmulateTPWS)
	e.k.Reboot()
	_, err := e.p.Restore(ctx)
	require.NoError(t, err)
	again, _ := e.k.Export(exportIQN)
	require.True(t, again.EmulateTPU, "thin after every restore")

	e = newEnv(t)
	e.setOld(plantest.LUNInfo{Size: gib, ID: "wwid-old", Identity: thinLUN(gib, 1)})
	e.add(spec("vol1"))
	e.cutOver()
	ex, _ = e.k.Export(exportIQN)
	require.False(t, ex.EmulateTPU || ex.EmulateTPWS)
	v, err := e.p.Show(ctx, "vol1")
	require.NoError(t, err)
	notes := strings.Join(v.HostIdentity.Verdict.Notes, "\n")
	require.Contains(t, notes, "the new LUN reports no logical block provisioning")
	require.Contains(t, notes, "physical block size 512 after finalize")
}
