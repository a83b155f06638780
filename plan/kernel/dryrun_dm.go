package kernel

import (
	"context"
	"fmt"
	"time"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
	"github.com/lunferry/lunferry/plan"
)

// dryMapper prints changes; reads (lookup, status, list) go to real, when
// set and readable, so that a dry run of a later step sees the live device.
type dryMapper struct {
	d    *dry
	real plan.Mapper
}

func (m dryMapper) Lookup(ctx context.Context, name string) (string, bool, error) {
	if m.real != nil {
		if dev, ok, err := m.real.Lookup(ctx, name); err == nil {
			return dev, ok, nil
		}
	}
	return "", false, nil
}

func (m dryMapper) CreateClone(ctx context.Context, name string, sectors uint64, c dm.Clone) (string, error) {
	m.d.printf("dm create %s uuid %s%s table: %s", name, "LUNFERRY-", name, plan.CloneLine(sectors, c))
	return "/dev/<dm device " + name + ">", nil
}

func (m dryMapper) CreateLinear(ctx context.Context, name string, sectors uint64, dev string) (string, error) {
	m.d.printf("dm create %s table: %s", name, plan.LinearLine(sectors, dev))
	return "/dev/<dm device " + name + ">", nil
}

func (m dryMapper) Swap(ctx context.Context, name string, line dm.TableLine) (time.Duration, error) {
	if lin, ok := line.Target.(dm.Linear); ok {
		m.d.printf("if %s is write-through: write \"temporary write back\" to its scsi_disk cache_type (the host keeps its FUA writes)", lin.Device)
	}
	m.d.printf("dm load %s (inactive) table: %s", name, line)
	m.d.printf("dm suspend %s; dm resume %s", name, name)
	return 0, nil
}

func (m dryMapper) Remove(ctx context.Context, name string) error {
	m.d.printf("dm remove %s", name)
	return nil
}

func (m dryMapper) CloneStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	if m.real != nil {
		if st, err := m.real.CloneStatus(ctx, name); err == nil {
			return st, nil
		}
	}
	m.d.printf("dm status %s", name)
	return dm.CloneStatus{}, fmt.Errorf("plan: dry run: no live status of %s", name)
}

func (m dryMapper) TargetAvailable(ctx context.Context, name string) (bool, error) {
	if m.real != nil {
		if ok, err := m.real.TargetAvailable(ctx, name); err == nil {
			return ok, nil
		}
	}
	return true, nil
}

func (m dryMapper) IOCounters(ctx context.Context, name string) (dm.IOCounters, error) {
	if m.real != nil {
		return m.real.IOCounters(ctx, name)
	}
	return dm.IOCounters{}, fmt.Errorf("plan: dry run: no I/O counters of %s", name)
}

func (m dryMapper) CommitStatus(ctx context.Context, name string) (dm.CloneStatus, error) {
	return m.CloneStatus(ctx, name)
}

func (m dryMapper) Inspect(ctx context.Context, name string) (plan.DeviceState, bool, error) {
	if m.real != nil {
		if d, ok, err := m.real.Inspect(ctx, name); err == nil {
			return d, ok, nil
		}
	}
	return plan.DeviceState{}, false, nil
}

func (m dryMapper) Resume(ctx context.Context, name string) error {
	m.d.printf("dm resume %s", name)
	return nil
}

func (m dryMapper) Message(ctx context.Context, name, msg string) error {
	m.d.printf("dm message %s 0 %s", name, msg)
	return nil
}

func (m dryMapper) List(ctx context.Context) ([]string, error) {
	if m.real != nil {
		if l, err := m.real.List(ctx); err == nil {
			return l, nil
		}
	}
	return nil, nil
}

// dryEras prints the era layer's changes.
type dryEras struct{ d *dry }

func (e dryEras) Create(ctx context.Context, name string, sectors uint64, t dm.Era) (string, error) {
	e.d.printf("dm create %s uuid %s%s table: %s", name, "LUNFERRY-", name, dm.TableLine{Length: dm.Sectors(sectors), Target: t})
	return "/dev/<dm device " + name + ">", nil
}

// Superblock is not read in a dry run (plan skips the check).
func (dryEras) Superblock(ctx context.Context, dev string) error { return nil }

func (e dryEras) Checkpoint(ctx context.Context, name string) (uint32, error) {
	e.d.printf("dm message %s 0 %s (and read its era from the status)", name, dm.MsgEraCheckpoint)
	return 0, nil
}

func (dryEras) WrittenSince(ctx context.Context, name, meta string, since uint32) ([]clone.Extent, error) {
	return nil, fmt.Errorf("plan: dry run: no era snapshot of %s", name)
}

func (m dryMapper) Suspend(ctx context.Context, name string) error {
	m.d.printf("dm suspend %s (the host's I/O waits)", name)
	return nil
}

func (m dryMapper) Load(ctx context.Context, name string, line dm.TableLine) error {
	m.d.printf("dm load %s (inactive) table: %s", name, line)
	return nil
}

// dryOldWriter prints rollback's copy to the old LUN.
type dryOldWriter struct{ d *dry }

func (w dryOldWriter) CopyBack(ctx context.Context, src, old string, extents []clone.Extent, rate clone.Rate) (uint64, error) {
	var n uint64
	for _, e := range extents {
		n += e.Length
	}
	w.d.printf("copy %d bytes in %d ranges from %s to the old LUN %s (O_DIRECT, at most %s; read-write for the copy only), then flush it", n, len(extents), src, old, rate)
	return n, nil
}

func (m dryMapper) ClearInactive(ctx context.Context, name string) error {
	m.d.printf("dm clear %s (drop its inactive table)", name)
	return nil
}
