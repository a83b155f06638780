package plantest

import (
	"context"
	"fmt"
	"maps"

	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
)

// SetReadWrite implements plan.Fencer.
func (k *Kernel) SetReadWrite(ctx context.Context, disk string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("SetReadWrite", disk); err != nil {
		return err
	}
	delete(k.ro, disk)
	return nil
}

// Fence implements plan.Fencer: the LUN behind disk is reserved under
// key; another key's fence, or a LUN in NoPR, refuses.
func (k *Kernel) Fence(ctx context.Context, disk string, key uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Fence", disk, fmt.Sprintf("%#x", key)); err != nil {
		return err
	}
	lun, err := k.reservable(disk)
	if err != nil {
		return err
	}
	if k.fences[lun] != 0 && k.fences[lun] != key {
		return fmt.Errorf("%s: %w: key %#x holds it", disk, scsi.ErrReservationConflict, k.fences[lun])
	}
	if k.fences == nil {
		k.fences = map[string]uint64{}
	}
	k.fences[lun] = key
	return nil
}

// reservable returns the LUN key behind disk, or the error PERSISTENT
// RESERVE OUT gets from an array without reservations.
func (k *Kernel) reservable(disk string) (string, error) {
	lun, ok := k.disks[disk]
	switch {
	case !ok:
		return "", fmt.Errorf("%s: no such disk", disk)
	case k.NoPR[lun] || k.NoPRIn[lun]:
		return "", fmt.Errorf("PERSISTENT RESERVE OUT: check condition: ILLEGAL REQUEST: %w", plan.ErrFenceRefused)
	}
	return lun, nil
}

// Unfence implements plan.Fencer.
func (k *Kernel) Unfence(ctx context.Context, disk string, key uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Unfence", disk, fmt.Sprintf("%#x", key)); err != nil {
		return err
	}
	lun, err := k.reservable(disk)
	if err != nil {
		return err
	}
	if k.fences[lun] == key {
		delete(k.fences, lun)
	}
	return nil
}

// Fences returns the reservation keys holding LUNs, by LUN key.
func (k *Kernel) Fences() map[string]uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.fences)
}

// fenceOf adds the fence on lun to r, as PERSISTENT RESERVE IN shows it.
func (k *Kernel) fenceOf(lun string, r scsi.Reservations) scsi.Reservations {
	if key := k.fences[lun]; key != 0 {
		r.Keys = append(append([]uint64(nil), r.Keys...), key)
		r.Reservation = &scsi.Reservation{Key: key, Type: scsi.WriteExclusiveRegistrantsOnly}
	}
	return r
}

// swapToClone makes d the clone t, as CreateClone would build it.
func (k *Kernel) swapToClone(name string, d *Device, t dm.Clone, sectors uint64) error {
	for _, dev := range []string{t.Destination, t.Source} {
		if _, ok := k.disks[dev]; !ok {
			return fmt.Errorf("device %s does not exist", dev)
		}
	}
	if !k.ro[t.Source] {
		k.violate(fmt.Sprintf("clone %s swapped in over %s, which is writable", name, t.Source))
	}
	region := uint64(t.RegionSize)
	if err := k.format(t, sectors); err != nil {
		return err
	}
	c := t
	d.Table, d.Clone, d.Linear, d.Sectors = plan.CloneLine(sectors, t).String(), &c, "", sectors
	d.Total, d.Enabled = (sectors+region-1)/region, !t.NoHydration
	d.Hydrated = k.progress()[k.metaFile(t.Metadata)]
	k.wrote(t.Destination, "clone destination of "+name)
	k.servedFrom(d.Node)
	return nil
}

// rawOf renders line as the kernel reports a table (devices as numbers).
func rawOf(line dm.TableLine) dm.RawLine {
	d := Device{Sectors: uint64(line.Length), Table: line.String()}
	switch t := line.Target.(type) {
	case dm.Linear:
		d.Linear = t.Device
	case dm.Clone:
		d.Clone = &t
	}
	return d.active()[0]
}
