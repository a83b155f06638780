package scsi

import "fmt"

// OverNewLUN completes e, computed by ForLIO from the old LUN's identity
// old, for an export whose device stacks the new LUN new: dm-clone over
// both until finalize, linear over the new LUN alone after it. It turns on
// LIO's thin provisioning where the host had it and the new LUN keeps it,
// and adds to v.Notes what a host sees differently of the block geometry.
//
// Only a larger logical block size breaks a host (its partition tables and
// filesystems address the old blocks; dm-multipath and md refuse a path
// whose logical blocks grew): the caller refuses that. The physical block
// size is a hint (SBC's LBPPBE): no command's addressing or length depends
// on it, Linux reads it at a scan and mounted filesystems, LVM and
// dm-multipath never act on a change, so a different one is noted, not
// refused, even where it is not one of the sector formats (512n, 512e,
// 4Kn) hosts such as ESXi list: what a host then does is create new
// partitions and filesystems aligned for it.
func (e *Export) OverNewLUN(old, new Identity, v *Verdict) {
	v.Notes = append(v.Notes, e.physicalNotes(old.Capacity, new.Capacity)...)
	v.Notes = append(v.Notes, e.thinProvisioning(old, new)...)
	if n := blockLimitsNote(old.BlockLimits); n != "" {
		v.Notes = append(v.Notes, n)
	}
}

// physicalNotes notes the physical block sizes a host sees while the clone
// serves it and after finalize when they are not the old LUN's. LIO has no
// setting for it: iblock reports the ratio of its device's physical to
// logical block size (target_core_iblock.c, iblock_get_lbppbe) against the
// export's own logical block size; device-mapper stacks the larger sizes
// of clone's destination and source, and linear's are the new LUN's.
func (e *Export) physicalNotes(old, new Capacity) []string {
	shown := e.BlockSize
	if shown == 0 {
		shown = old.LogicalBlockSize
	}
	oldP, newP := old.PhysicalBlockSize(), new.PhysicalBlockSize()
	if new.LogicalBlockSize == 0 || shown == 0 || oldP == 0 {
		return nil
	}
	cloneL, cloneP := max(old.LogicalBlockSize, new.LogicalBlockSize), max(oldP, newP)
	phases := []struct {
		when, why string
		p         uint32
	}{
		{"while the clone serves the host", fmt.Sprintf("the larger of the old LUN's %d and the new LUN's %d, as device-mapper stacks them", oldP, newP), hostPhysical(shown, cloneL, cloneP)},
		{"after finalize", fmt.Sprintf("the new LUN's %d/%d ratio of physical to logical block size over the export's %d-byte logical blocks", newP, new.LogicalBlockSize, shown), hostPhysical(shown, new.LogicalBlockSize, newP)},
	}
	var notes []string
	for _, ph := range phases {
		if ph.p == oldP {
			continue
		}
		n := fmt.Sprintf("physical block size %d %s (%s), not the old LUN's %d: hosts align new partitions and filesystems to it, existing ones keep working", ph.p, ph.when, ph.why, oldP)
		if !hostFormat(shown, ph.p) {
			n += fmt.Sprintf("; %d/%d is none of the sector formats 512n, 512e and 4Kn", shown, ph.p)
		}
		notes = append(notes, n)
	}
	return notes
}

// hostPhysical returns the physical block size a host sees through LIO
// showing blocks of shown bytes over a device of logical block size l and
// physical block size p.
func hostPhysical(shown, l, p uint32) uint32 {
	if l == 0 || p < l {
		return shown
	}
	return shown * (p / l)
}

// hostFormat reports whether logical/physical is 512n, 512e or 4Kn.
func hostFormat(logical, physical uint32) bool {
	return logical == 512 && (physical == 512 || physical == 4096) || logical == 4096 && physical == 4096
}
