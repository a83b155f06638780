package plantest

import (
	"context"
	"fmt"
	"slices"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/initiator/scsi"
)

// ThinLUN is a thin provisioned LUN's identity for LUNInfo.Identity: LBPME
// with LBPRZ as given, UNMAP listed in VPD page 0xB2, an NAA 6 designator
// from id.
func ThinLUN(id string, size uint64, lbprz bool) *scsi.Identity {
	ident := LUNInfo{ID: id, Size: size}.identity()
	ident.Capacity.LBPME, ident.Capacity.LBPRZ = true, lbprz
	ident.Pages = append(ident.Pages, 0xb2)
	ident.Provisioning = &scsi.Provisioning{LBPU: true, Type: 2}
	if lbprz {
		ident.Provisioning.LBPRZ = 1
	}
	return &ident
}

// LBAMap implements plan.ThinDevices: the LUN's LBAStatus, ILLEGAL REQUEST
// when it has none.
func (k *Kernel) LBAMap(ctx context.Context, disk string) (scsi.LBAMap, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("LBAMap", disk); err != nil {
		return scsi.LBAMap{}, err
	}
	l, err := k.lunOf(disk)
	if err != nil {
		return scsi.LBAMap{}, err
	}
	if l.LBAStatus == nil {
		return scsi.LBAMap{}, &scsi.CheckConditionError{Op: 0x9e, Sense: scsi.Sense{Key: scsi.SenseIllegalRequest, ASC: 0x20}}
	}
	return scsi.LBAMap{Capacity: l.identity().Capacity, Extents: slices.Clone(l.LBAStatus)}, nil
}

// Discard implements plan.ThinDevices on a clone device: each whole
// region discarded that was not hydrated becomes hydrated. A discard
// through a device that serves the host (exported, or under an era
// device) or over a region the host wrote is a violation: it would destroy
// the host's data.
func (k *Kernel) Discard(ctx context.Context, dev string, extents []clone.Extent) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Discard", dev, fmt.Sprint(extents)); err != nil {
		return err
	}
	var name string
	var d *Device
	for n, dd := range k.dm {
		if dd.Node == dev {
			name, d = n, dd
		}
	}
	if d == nil || d.Clone == nil {
		return fmt.Errorf("%s: no clone device", dev)
	}
	for _, e := range k.exports {
		if e.Device == dev {
			k.violate(fmt.Sprintf("discard on %s while it is exported", name))
		}
	}
	if h := k.holder(dev); h != "" {
		k.violate(fmt.Sprintf("discard on %s while %s is over it", name, h))
	}
	meta := k.metaFile(d.Clone.Metadata)
	if k.hostWrites[meta] {
		k.violate(fmt.Sprintf("discard on %s after it served the host", name))
	}
	if k.discarded == nil {
		k.discarded = map[string]map[uint64]bool{}
	}
	if k.discarded[meta] == nil {
		k.discarded[meta] = map[uint64]bool{}
	}
	region := uint64(d.Clone.RegionSize) * 512
	for _, e := range extents {
		for r := (e.Offset + region - 1) / region; (r+1)*region <= e.End(); r++ {
			if !k.discarded[meta][r] && d.Hydrated < d.Total {
				d.Hydrated++
			}
			k.discarded[meta][r] = true
		}
	}
	k.Discards = append(k.Discards, DiscardCall{Device: dev, Extents: slices.Clone(extents)})
	return nil
}

// DiscardCall records a Discard.
type DiscardCall struct {
	Device  string
	Extents []clone.Extent
}

// ReadsZeroes implements plan.ThinDevices: the LUN behind disk reads zeroes where
// it was discarded unless its LUNInfo says NotZeroed.
func (k *Kernel) ReadsZeroes(ctx context.Context, disk string, extents []clone.Extent) (uint64, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("ReadsZeroes", disk); err != nil {
		return 0, false, err
	}
	l, err := k.lunOf(disk)
	if err != nil {
		return 0, false, err
	}
	if l.NotZeroed && len(extents) > 0 {
		return extents[0].Offset, false, nil
	}
	return 0, true, nil
}
