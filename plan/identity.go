package plan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lunferry/lunferry/initiator/scsi"
)

// recordOldIdentity reads the old LUN's SCSI identity at an attach: the
// first time it is recorded and the identity the export will show the
// host is derived from it (once: every restore shows the same disk); later
// attaches must find the same WWID. An identity LIO cannot reproduce is
// refused unless the runbook accepts a new one.
func (p *Planner) recordOldIdentity(ctx context.Context, v *Volume, d Disk) error {
	if p.o.DryRun {
		return nil
	}
	id, err := p.o.Ports.Initiator.Identity(ctx, d.Path)
	if err != nil {
		return fmt.Errorf("plan: volume %s: read the old LUN's SCSI identity on %s: %w", v.Spec.Name, d.Path, err)
	}
	if was := v.OldIdentity; was != nil {
		if was.WWID() != id.WWID() {
			return fmt.Errorf("plan: volume %s: %w: the old LUN on %s is now %s but was %s when first attached: a different LUN is mapped to this proxy; fix the mapping on the array, then rerun, or abort",
				v.Spec.Name, ErrDiskChanged, d.Path, id.WWID(), was.WWID())
		}
		return nil
	}
	exp, verdict := scsi.ForLIO(id, v.Spec.Name)
	if err := p.overNewLUN(ctx, v, id, &exp, &verdict); err != nil {
		return err
	}
	// Linux reads page 0x83 only when page 0x00 lists it: without it the
	// host keys on no WWID, and a new one takes nothing from it.
	hostKeys := slices.Contains(id.Pages, 0x83)
	if !hostKeys {
		p.logf("volume %s: identity: the old LUN lists no VPD page 0x83, so hosts see no WWID for it; the export shows %s", v.Spec.Name, verdict.NewWWID)
	}
	if !verdict.Exact && hostKeys && v.Spec.Identity != "new" {
		return fmt.Errorf("plan: volume %s: %w: the old LUN's identity %s (%s) cannot be shown through LIO: %s; the host would see %s, a new disk to dm-multipath, udev's by-id links, LVM filters and cluster software: "+
			"give \"identity\": \"new\" in the runbook to accept that (and re-add the volume), or abort",
			v.Spec.Name, ErrIdentity, verdict.OldWWID, verdict.Family, verdict.Reason, verdict.NewWWID)
	}
	v.OldIdentity, v.HostIdentity = &id, &HostIdentity{Export: exp, Verdict: verdict}
	for _, n := range verdict.Notes {
		p.logf("volume %s: identity: %s", v.Spec.Name, n)
	}
	return p.save(v)
}

// overNewLUN completes the export for what the new LUN stacks under it:
// thin provisioning and notes on the block geometry (checkSizes refuses
// larger logical blocks, at prepare or at cutover).
func (p *Planner) overNewLUN(ctx context.Context, v *Volume, old scsi.Identity, e *scsi.Export, verdict *scsi.Verdict) error {
	if v.NewDisk == nil {
		return nil
	}
	id, err := p.o.Ports.Initiator.Identity(ctx, v.NewDisk.Path)
	if err != nil {
		return fmt.Errorf("plan: volume %s: read the new LUN's SCSI identity on %s: %w", v.Spec.Name, v.NewDisk.Path, err)
	}
	e.OverNewLUN(old, id, verdict)
	return nil
}

// checkReservations refuses an old LUN that holds SCSI-3 persistent
// reservations: a cluster's keys and reservation do not follow the host to
// the proxy's export.
func (p *Planner) checkReservations(ctx context.Context, v *Volume, d Disk) error {
	if p.o.DryRun {
		return nil
	}
	r, err := p.o.Ports.Initiator.Reservations(ctx, d.Path)
	if errors.Is(err, scsi.ErrIllegalRequest) {
		return p.noReservations(v, d, err)
	}
	if err != nil {
		return fmt.Errorf("plan: volume %s: read the old LUN's persistent reservations on %s: %w", v.Spec.Name, d.Path, err)
	}
	r = othersReservations(r, v)
	if len(r.Keys) == 0 && r.Reservation == nil {
		return nil
	}
	keys := make([]string, len(r.Keys))
	for i, k := range r.Keys {
		keys[i] = fmt.Sprintf("%#x", k)
	}
	if v.Cutover != nil && v.Cutover.Online {
		return fmt.Errorf("plan: volume %s: %w: the old LUN holds SCSI-3 persistent reservation keys %s: the online cutover keeps the host writing through both paths, which a cluster's reservations would not follow; release them, or use the offline cutover",
			v.Spec.Name, ErrReservations, strings.Join(keys, ", "))
	}
	if v.Spec.Reservations == "ignore" {
		p.logf("volume %s: warning: the old LUN holds persistent reservation keys %s; they do not follow the host to the proxy (runbook says ignore)", v.Spec.Name, strings.Join(keys, ", "))
		return nil
	}
	return fmt.Errorf("plan: volume %s: %w: the old LUN holds SCSI-3 persistent reservation keys %s: a cluster's reservations do not follow the host to the proxy; release them (or stop the cluster's use of the LUN), or give \"reservations\": \"ignore\" in the runbook",
		v.Spec.Name, ErrReservations, strings.Join(keys, ", "))
}

// noReservations handles an old LUN that refused PERSISTENT RESERVE IN:
// it has no persistent reservations at all, so no cluster keys to carry,
// and it cannot be fenced. The online cutover, which relies on the fence
// to stop a direct path its hooks missed, is refused before its first
// hook; the offline one goes on (its host was stopped for the window).
func (p *Planner) noReservations(v *Volume, d Disk, err error) error {
	if m := v.mode(); m.Online && !m.NoFence {
		return fmt.Errorf("plan: volume %s: %w: the old LUN %s does not support persistent reservations (%v), so it cannot be fenced against a direct path the hooks miss: make sure removeDirectPaths removes every direct path (host and array side), then rerun with --no-fence (runbook \"fence\": \"none\"), or use the offline cutover",
			v.Spec.Name, ErrFenceRefused, d.Path, err)
	}
	p.logf("volume %s: the old LUN %s does not support persistent reservations (%v): no cluster keys to carry, no fence", v.Spec.Name, d.Path, err)
	return nil
}

// othersReservations is r without lunferry's own fence on v (a rerun or
// restore of a cutover that took it).
func othersReservations(r scsi.Reservations, v *Volume) scsi.Reservations {
	if v.Cutover == nil || v.Cutover.FenceKey == 0 {
		return r
	}
	key := v.Cutover.FenceKey
	r.Keys = slices.DeleteFunc(slices.Clone(r.Keys), func(k uint64) bool { return k == key })
	if r.Reservation != nil && r.Reservation.Key == key {
		r.Reservation = nil
	}
	return r
}

// checkBlockSizes refuses a new LUN whose logical blocks are larger than
// the old LUN's: the host's filesystems and partition tables were made
// for the old size, and a clone device takes the larger of the two.
func checkBlockSizes(v *Volume) error {
	if v.OldDisk == nil || v.NewDisk == nil || v.OldDisk.LogicalBlockSize == 0 || v.NewDisk.LogicalBlockSize == 0 {
		return nil
	}
	if o, n := v.OldDisk.LogicalBlockSize, v.NewDisk.LogicalBlockSize; n > o {
		return fmt.Errorf("plan: volume %s: %w: the new LUN has %d-byte logical blocks, the old LUN %d-byte ones: the host's filesystems and partition tables are laid out for %d; give a new LUN with %d-byte (or smaller) logical blocks",
			v.Spec.Name, ErrSizeMismatch, n, o, o, o)
	}
	return nil
}
