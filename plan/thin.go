package plan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/internal/crashpoint"
)

// What was never written is not copied. An old LUN that reports logical
// block provisioning (LBPME) tells through GET LBA STATUS which ranges
// hold no data; dm-clone takes a discard over a region it has not
// hydrated as "hydrated, nothing to copy" and passes the discard down to
// the new LUN (dm-clone.rst, "Discards"). So the offline cutover, once the
// clone is built (hydration off) and before the era layer and the export
// exist, discards on the clone every whole region lying inside a range the
// old LUN reports deallocated or anchored.
//
// Why that is safe, and only then:
//
//   - dm-clone 6.1 passes a discard over a region already hydrated down to
//     the new LUN: it would destroy a host's write there. Nobody writes
//     through the clone before the export exists (hydration is off, the
//     host is stopped and has no path to it), so every discard happens
//     before the export is created, never after (the export's record is
//     pushed only once ThinState.Done is saved). A rerun after a crash
//     between the discards and that save discards the same regions again:
//     they hold nothing but the zeroes of the first discard.
//   - The online cutover is not thinned: from the takeover's resume on the
//     host writes through the clone, and a region it hydrates between the
//     look-up and the discard would lose its write. It copies in full (a
//     note says so).
//   - A region marked hydrated is read from the new LUN alone from then
//     on: it must read as zeroes there, as it does on the old LUN. Both
//     LUNs must report unmapped blocks to read as zeroes (LBPRZ), the
//     discard must reach the new LUN (the clone's discard passdown on: the
//     kernel turns it off when the new LUN takes no discard of a region),
//     and the new LUN's unmap granularity must fit the region. Otherwise
//     every region is copied, and ThinState.Note says why.
//   - Only whole regions inside unmapped ranges are discarded: a region
//     with one mapped block is copied.
//   - The discards are flushed (dm-clone commits its metadata on a flush)
//     before Done is saved; without the commit a power loss forgets the
//     regions, which are then copied (zeroes).
//   - A sample of the discarded regions is read back from the new LUN: an
//     array whose LBPRZ is not true refuses the cutover before the export
//     (abort, then "thin": "copy").

// ThinDevices reads an old LUN's provisioning and discards on the clone.
type ThinDevices interface {
	// LBAMap reads the provisioning map of the LUN behind disk (READ
	// CAPACITY(16), GET LBA STATUS over the whole LU; scsi.ReadLBAMap).
	// A LUN that refuses GET LBA STATUS is an error wrapping
	// scsi.ErrIllegalRequest.
	LBAMap(ctx context.Context, disk string) (scsi.LBAMap, error)
	// Discard discards the sorted byte extents of the block device dev
	// (BLKDISCARD), then flushes it.
	Discard(ctx context.Context, dev string, extents []clone.Extent) error
	// ReadsZeroes reads a sample of the sorted extents of disk (O_DIRECT: the
	// first, middle and last 4 KiB of up to 64 of them) and returns the
	// offset of the first 4 KiB that is not zeroes (ok false), if any.
	ReadsZeroes(ctx context.Context, disk string, extents []clone.Extent) (at uint64, ok bool, err error)
}

// ThinState is what the cutover skipped of an old LUN's unmapped ranges.
type ThinState struct {
	// UnmappedBytes is what the old LUN reported deallocated or anchored.
	UnmappedBytes uint64 `json:"unmappedBytes"`
	// Regions and Bytes are the whole regions inside those ranges,
	// discarded on the clone (marked hydrated without a copy); Extents is
	// the number of discards.
	Regions uint64 `json:"regions"`
	Bytes   uint64 `json:"bytes"`
	Extents int    `json:"extents"`
	// Took is how long the discards and their flush took: tool time in
	// the cutover's window (the new LUN unmaps what it is passed).
	Took Duration `json:"took,omitempty"`
	// Note says why nothing was skipped, when nothing was.
	Note string `json:"note,omitempty"`
	// Done is saved once the discards were flushed (or the note decided
	// against them): from then on they are never issued again.
	Done bool `json:"done,omitempty"`
}

// Summary is one line for status and verify.
func (t *ThinState) Summary() string {
	switch {
	case t == nil:
		return ""
	case t.Note != "":
		return "copied in full: " + t.Note
	case !t.Done:
		return fmt.Sprintf("skipping %d unmapped regions (%s) was interrupted: rerun cutover", t.Regions, Bytes(t.Bytes))
	}
	return fmt.Sprintf("%d regions (%s) unmapped on the old LUN marked hydrated without a copy, discarded in %s (old LUN unmapped: %s)",
		t.Regions, Bytes(t.Bytes), t.Took.D().Round(time.Millisecond), Bytes(t.UnmappedBytes))
}

// skipUnmapped discards on the just-built clone the regions the old LUN
// reports unmapped (see above). It runs in the offline cutover between the
// device and the era layer; it changes nothing once an era layer or an
// export was created or pushed, or once it is done.
func (p *Planner) skipUnmapped(ctx context.Context, v *Volume) error {
	// Once anything stands over the clone (the era layer, the export) it
	// is too late; an era layer without a thin record was built by a
	// lunferry that did not skip.
	if (v.Thin != nil && v.Thin.Done) || v.Exported || v.object(ObjExport) != nil || v.object(ObjEra) != nil {
		return nil
	}
	if p.o.DryRun && !v.mode().Online {
		p.logf("volume %s: would read the old LUN's LBA status and, if it is thin, discard on %s the whole regions it reports unmapped (not copied)", v.Spec.Name, DMName(v.Spec.Name))
		return nil
	}
	th := p.o.Ports.Thin
	if th == nil || v.OldIdentity == nil || !v.OldIdentity.Capacity.LBPME {
		return nil // a fully provisioned old LUN: nothing to ask, nothing to say
	}
	if v.Spec.Thin == "copy" {
		return p.thinNote(v, `the runbook says "thin": "copy"`)
	}
	if v.mode().Online {
		return p.thinNote(v, "the online cutover copies every region (the host writes through the clone from its takeover on, and a discard there could destroy a write)")
	}
	newID, err := p.o.Ports.Initiator.Identity(ctx, v.NewDisk.Path)
	if err != nil {
		return fmt.Errorf("plan: volume %s: read the new LUN's SCSI identity on %s: %w", v.Spec.Name, v.NewDisk.Path, err)
	}
	regionBytes := v.Spec.RegionSectors * 512
	if why := newLUNZeroes(newID, regionBytes); why != "" {
		return p.thinNote(v, why)
	}
	name := DMName(v.Spec.Name)
	st, err := p.o.Ports.Mapper.CloneStatus(ctx, name)
	if err != nil {
		return fmt.Errorf("plan: volume %s: read the clone's status: %w", v.Spec.Name, err)
	}
	if st.HasFeature(dm.CloneFeatureNoDiscardPassdown) {
		return p.thinNote(v, "the clone does not pass discards down to the new LUN (the kernel turned it off: the new LUN takes no discard of a whole region), so a skipped region would keep what the new LUN held")
	}
	m, err := th.LBAMap(ctx, v.OldDisk.Path)
	if errors.Is(err, scsi.ErrIllegalRequest) {
		return p.thinNote(v, fmt.Sprintf("the old LUN does not report LBA status (%v)", err))
	}
	if err != nil {
		return fmt.Errorf("plan: volume %s: read the old LUN's LBA status on %s: %w (rerun cutover; or abort)", v.Spec.Name, v.OldDisk.Path, err)
	}
	if !m.Capacity.LBPME || !m.Capacity.LBPRZ {
		return p.thinNote(v, fmt.Sprintf("the old LUN does not report that unmapped blocks read as zeroes (LBPME %v, LBPRZ %v)", m.Capacity.LBPME, m.Capacity.LBPRZ))
	}
	unmapped, exts := unmappedRegions(m, regionBytes, v.SizeSectors*512)
	t := &ThinState{UnmappedBytes: unmapped, Extents: len(exts)}
	for _, e := range exts {
		t.Bytes += e.Length
	}
	t.Regions = t.Bytes / regionBytes
	v.Thin = t
	if err := p.save(v); err != nil {
		return err
	}
	if len(exts) > 0 {
		node := v.object(ObjDevice).Device
		p.logf("volume %s: the old LUN reports %s unmapped: discarding %d whole regions (%s) in %d ranges on %s (marked hydrated, not copied)",
			v.Spec.Name, Bytes(unmapped), t.Regions, Bytes(t.Bytes), len(exts), node)
		t0 := p.o.Now()
		if err := th.Discard(ctx, node, exts); err != nil {
			return fmt.Errorf("plan: volume %s: discard the old LUN's unmapped regions on %s: %w: rerun `lunferry migrate cutover %s` (discarding again is safe before the export exists), or abort",
				v.Spec.Name, node, err, v.Spec.Name)
		}
		if _, err := p.o.Ports.Mapper.CommitStatus(ctx, name); err != nil {
			return fmt.Errorf("plan: volume %s: commit the clone's metadata after the discards: %w", v.Spec.Name, err)
		}
		t.Took = Duration(p.o.Now().Sub(t0))
		p.logf("volume %s: discarded in %s", v.Spec.Name, t.Took.D().Round(time.Millisecond))
		crashpoint.Hit("thin:discarded")
		// A new LUN whose LBPRZ is not true (an UNMAP it ignores in
		// part) would serve old data of its own from these regions.
		at, ok, err := th.ReadsZeroes(ctx, v.NewDisk.Path, exts)
		if err != nil {
			return fmt.Errorf("plan: volume %s: read back the discarded regions on the new LUN %s: %w (rerun cutover; or abort)", v.Spec.Name, v.NewDisk.Path, err)
		}
		if !ok {
			return fmt.Errorf("plan: volume %s: %w: byte %d of the new LUN %s holds data after the discard, though the LUN reports that unmapped blocks read as zeroes; the skipped regions would serve it to the host. "+
				"Nothing reached the host and the old LUN is untouched: abort the volume, give \"thin\": \"copy\" in the runbook, add it again and prepare",
				v.Spec.Name, ErrNotZeroed, at, v.NewDisk.Path)
		}
	}
	t.Done = true
	return p.save(v)
}

// thinNote records that every region is copied, and why.
func (p *Planner) thinNote(v *Volume, why string) error {
	p.logf("volume %s: note: every region is copied: %s", v.Spec.Name, why)
	v.Thin = &ThinState{Note: why, Done: true}
	return p.save(v)
}

// newLUNZeroes says why a region discarded on the clone would not read as
// zeroes from the new LUN ("" when it would): the new LUN must take
// discards (LBPME and an unmap command), report LBPRZ, and unmap whole
// regions (its optimal unmap granularity, and alignment, fit the region).
func newLUNZeroes(id scsi.Identity, regionBytes uint64) string {
	c := id.Capacity
	if !scsi.TakesDiscards(id) {
		return "the new LUN takes no discard (no logical block provisioning, or no UNMAP / WRITE SAME with UNMAP)"
	}
	if !c.LBPRZ {
		return "the new LUN does not report that unmapped blocks read as zeroes (LBPRZ)"
	}
	if b := id.BlockLimits; b != nil && b.OptimalUnmapGranularity > 1 {
		g := uint64(b.OptimalUnmapGranularity) * uint64(c.LogicalBlockSize)
		if regionBytes%g != 0 || (b.UnmapAlignmentValid && b.UnmapAlignment != 0) {
			return fmt.Sprintf("the new LUN unmaps in units of %d bytes (alignment %d blocks), which do not tile a region of %d bytes", g, b.UnmapAlignment, regionBytes)
		}
	}
	return ""
}

// unmappedRegions returns the bytes m reports unmapped within size and the
// byte extents of whole regions of regionBytes lying inside them, merged.
func unmappedRegions(m scsi.LBAMap, regionBytes, size uint64) (unmapped uint64, out []clone.Extent) {
	bs := uint64(m.Capacity.LogicalBlockSize)
	for _, e := range m.Extents {
		if !e.Status.Unmapped() {
			continue
		}
		start, end := e.LBA*bs, min(e.End()*bs, size)
		if start >= end {
			continue
		}
		unmapped += end - start
		first := (start + regionBytes - 1) / regionBytes * regionBytes
		last := end / regionBytes * regionBytes
		if first >= last {
			continue
		}
		if k := len(out) - 1; k >= 0 && out[k].End() == first {
			out[k].Length += last - first
			continue
		}
		out = append(out, clone.Extent{Offset: first, Length: last - first})
	}
	return unmapped, out
}
