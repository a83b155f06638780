package plantest

import (
	"context"
	"fmt"

	"github.com/lunferry/lunferry/clone"
	"github.com/lunferry/lunferry/dm"
)

// CopyBackCall records one copy of rollback to an old LUN.
type CopyBackCall struct {
	// Src and Old are the devices read and written; Extents what was
	// copied; Held whether src's writer was suspended then (the final
	// round's copy from the new LUN).
	Src, Old string
	Extents  []clone.Extent
	Held     bool
	// OldKey is the LUN key of Old when it was written; Rate the pace
	// asked for.
	OldKey string
	Rate   clone.Rate
}

// Suspend implements plan.Mapper.
func (k *Kernel) Suspend(ctx context.Context, name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Suspend", name); err != nil {
		return err
	}
	d, ok := k.dm[name]
	if !ok {
		return fmt.Errorf("no device %s", name)
	}
	k.suspended(d)
	d.Suspended = true
	return nil
}

// Load implements plan.Mapper: line waits inactive for Resume.
func (k *Kernel) Load(ctx context.Context, name string, line dm.TableLine) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("Load", name, line.String()); err != nil {
		return err
	}
	d, ok := k.dm[name]
	if !ok {
		return fmt.Errorf("no device %s", name)
	}
	if d.Sectors != 0 && d.Sectors != uint64(line.Length) {
		return fmt.Errorf("size change %d -> %d", d.Sectors, line.Length)
	}
	d.Inactive, d.loaded = []dm.RawLine{rawOf(line)}, &line
	return nil
}

// ClearInactive implements plan.Mapper.
func (k *Kernel) ClearInactive(ctx context.Context, name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("ClearInactive", name); err != nil {
		return err
	}
	d, ok := k.dm[name]
	if !ok {
		return fmt.Errorf("no device %s", name)
	}
	d.Inactive, d.loaded = nil, nil
	return nil
}

// CopyBack implements plan.OldWriter. A copy from a disk (the new LUN)
// while a live clone over it is not suspended is a violation: the host's
// writes would race it.
// DuringCopyBack runs after each copy, outside the fake's lock.
func (k *Kernel) CopyBack(ctx context.Context, src, old string, extents []clone.Extent, rate clone.Rate) (uint64, error) {
	n, err := k.copyBack(src, old, extents, rate)
	if err == nil && k.DuringCopyBack != nil {
		k.DuringCopyBack(len(k.CopyBacks))
	}
	return n, err
}

func (k *Kernel) copyBack(src, old string, extents []clone.Extent, rate clone.Rate) (uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.op("CopyBack", src, old, fmt.Sprint(extents)); err != nil {
		return 0, err
	}
	if _, ok := k.disks[old]; !ok {
		return 0, fmt.Errorf("old disk %s does not exist", old)
	}
	call := CopyBackCall{Src: src, Old: old, Extents: extents, OldKey: k.disks[old], Rate: rate}
	if _, isDisk := k.disks[src]; isDisk {
		call.Held = true
		for name, d := range k.dm {
			if d.Clone != nil && d.Clone.Destination == src && !d.Suspended {
				k.violate(fmt.Sprintf("copy back from %s while %s over it serves the host", src, name))
				call.Held = false
			}
		}
	}
	k.CopyBacks = append(k.CopyBacks, call)
	var n uint64
	for _, e := range extents {
		n += e.Length
	}
	k.wrote(old, "rollback copy from "+src)
	return n, nil
}
