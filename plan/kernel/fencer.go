package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/lunferry/lunferry/initiator"
	"github.com/lunferry/lunferry/initiator/scsi"
	"github.com/lunferry/lunferry/plan"
)

// fencer adapts initiator.Client (the disk's read-only flag) and the scsi
// package's PERSISTENT RESERVE OUT to plan.Fencer.
type fencer struct{ c *initiator.Client }

func (f fencer) SetReadWrite(ctx context.Context, disk string) error {
	if f.c == nil {
		return fmt.Errorf("initiator unavailable: cannot set %s read-write", disk)
	}
	return f.c.SetReadWrite(disk)
}

// Fence maps an array's ILLEGAL REQUEST (no persistent reservations, or
// not this type) to plan.ErrFenceRefused.
func (fencer) Fence(ctx context.Context, disk string, key uint64) error {
	return refused(scsi.Fence(disk, key))
}

func (fencer) Unfence(ctx context.Context, disk string, key uint64) error {
	return refused(scsi.Unfence(disk, key))
}

func refused(err error) error {
	if errors.Is(err, scsi.ErrIllegalRequest) {
		return fmt.Errorf("%w: %w", plan.ErrFenceRefused, err)
	}
	return err
}

// dryFencer prints the commands a fence sends.
type dryFencer struct{ d *dry }

func (f dryFencer) SetReadWrite(ctx context.Context, disk string) error {
	f.d.printf("ioctl BLKROSET 0 on %s (blockdev --setrw: the host's writes pass through to the old LUN)", disk)
	return nil
}

func (f dryFencer) Fence(ctx context.Context, disk string, key uint64) error {
	f.d.printf("PERSISTENT RESERVE OUT on %s over SG_IO: REGISTER AND IGNORE EXISTING KEY %#x; RESERVE type 5 (Write Exclusive - Registrants Only)", disk, key)
	return nil
}

func (f dryFencer) Unfence(ctx context.Context, disk string, key uint64) error {
	f.d.printf("PERSISTENT RESERVE OUT on %s over SG_IO: PREEMPT key %#x, RELEASE, unregister", disk, key)
	return nil
}
