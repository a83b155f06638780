package scsi

import (
	"fmt"
	"strings"
)

// thinProvisioning sets e's EmulateTPU and EmulateTPWS for an old LUN a
// host knows as thin provisioned, and notes what is not carried.
//
// LIO 6.1 reads its device's discard limits when it enables a storage
// object (target_configure_unmap_from_queue) but leaves emulate_tpu and
// emulate_tpws off ("disabled by default"): without them a host sees a
// fully provisioned LUN (no LBPME) and stops sending UNMAP (fstrim and
// discard mounts fail). With them a host's UNMAP reaches the device: a
// dm-clone device always takes discards (its own limits when the new LUN
// has none): a region not yet hydrated is marked hydrated without being
// copied, and the discard goes on to the new LUN when that supports it,
// never to the old LUN (dm-clone.rst, "Discards"). After finalize the
// device is linear over the new LUN, which must then take discards
// itself: LIO fails an UNMAP the device refuses, and refuses emulate_tpu
// when a restore rebuilds the export over a device without discard. So
// thin provisioning is carried only when the new LUN is thin too.
//
// LBPRZ (unmapped blocks read as zeroes) is never claimed: a region
// dm-clone skips on UNMAP keeps whatever the new LUN held. Hosts then zero
// blocks by writing zeroes rather than by UNMAP.
func (e *Export) thinProvisioning(old, new Identity) []string {
	if !old.Capacity.LBPME {
		return nil // LIO's default, as the old LUN: fully provisioned
	}
	tpu, tpws := unmapCommands(old)
	if !tpu && !tpws {
		return []string{"the old LUN reports logical block provisioning (LBPME) without UNMAP or WRITE SAME with UNMAP: the export reports a fully provisioned LUN"}
	}
	if !TakesDiscards(new) {
		return []string{"the old LUN is thin provisioned (UNMAP) but the new LUN reports no logical block provisioning: the export shows a fully provisioned LUN, and a host's UNMAP (fstrim, discard mounts) stops working; after finalize the new LUN could not take it"}
	}
	e.EmulateTPU, e.EmulateTPWS = tpu, tpws
	var notes []string
	if old.Capacity.LBPRZ || old.Provisioning != nil && old.Provisioning.LBPRZ != 0 {
		notes = append(notes, "unmapped blocks are not reported to read as zeroes (LBPRZ): a region dm-clone skips on UNMAP keeps what the new LUN held, so hosts zero blocks by writing zeroes")
	}
	if tpws != tpu {
		notes = append(notes, fmt.Sprintf("LIO shows UNMAP %s and WRITE SAME with UNMAP %s, as the old LUN", onOff(tpu), onOff(tpws)))
	}
	return notes
}

// unmapCommands returns which of UNMAP and WRITE SAME with UNMAP a host
// uses on a thin provisioned LU: those VPD page 0xB2 lists; UNMAP when
// there is no page 0xB2.
func unmapCommands(id Identity) (unmap, writeSame bool) {
	if id.Provisioning == nil {
		return true, false
	}
	p := id.Provisioning
	return p.LBPU, p.LBPWS || p.LBPWS10
}

// TakesDiscards reports whether the proxy's kernel gives the LU's disk a
// discard operation: Linux's sd does when the LU reports LBPME and, when
// it has VPD page 0xB2, lists a command to unmap with.
func TakesDiscards(id Identity) bool {
	if !id.Capacity.LBPME {
		return false
	}
	u, ws := unmapCommands(id)
	return u || ws
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// blockLimitsNote notes the old LUN's VPD page 0xB0 limits, which the
// export does not show: LIO fills the page from its device (maximum and
// optimal transfer length from the device's queue, optimal granularity
// from its minimum I/O, a clone's region size; unmap limits from its
// discard limits, with one block descriptor per UNMAP). Hosts size their
// requests by them; none changes what a command means.
func blockLimitsNote(b *BlockLimits) string {
	if b == nil {
		return ""
	}
	var f []string
	for _, l := range []struct {
		name string
		v    uint64
		unit string
	}{
		{"maximum transfer length", uint64(b.MaxTransferLength), " blocks"}, {"optimal transfer length", uint64(b.OptimalTransferLength), " blocks"},
		{"optimal transfer length granularity", uint64(b.OptimalGranularity), " blocks"}, {"maximum unmap LBA count", uint64(b.MaxUnmapLBACount), ""},
		{"maximum unmap block descriptors", uint64(b.MaxUnmapDescriptors), ""}, {"optimal unmap granularity", uint64(b.OptimalUnmapGranularity), " blocks"},
		{"maximum write same length", b.MaxWriteSameLength, " blocks"},
	} {
		if l.v != 0 {
			f = append(f, fmt.Sprintf("%s %d%s", l.name, l.v, l.unit))
		}
	}
	if len(f) == 0 {
		return ""
	}
	return "VPD page 0xB0 (block limits) is LIO's, from the proxy's device, not the old LUN's (" + strings.Join(f, ", ") + "): hosts size their requests by it"
}
