package kernel

import (
	"context"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/initiator/scsi"
)

// thinDevices implements plan.ThinDevices with scsi's GET LBA STATUS and
// clone.Discard.
type thinDevices struct{}

func (thinDevices) LBAMap(ctx context.Context, disk string) (scsi.LBAMap, error) {
	return scsi.ReadLBAMap(disk)
}

func (thinDevices) Discard(ctx context.Context, dev string, extents []clone.Extent) error {
	return clone.Discard(dev, extents)
}

func (thinDevices) ReadsZeroes(ctx context.Context, disk string, extents []clone.Extent) (uint64, bool, error) {
	return clone.Zeroed(disk, extents)
}
