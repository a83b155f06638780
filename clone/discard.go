package clone

import (
	"fmt"
)

// Discard discards the sorted byte extents of the block device dev
// (BLKDISCARD, opened O_EXCL so that nothing else holds it) and then
// flushes it. On a clone device a discard over a region not yet hydrated
// marks it hydrated without copying it and is passed down to the
// destination; over a hydrated region it is passed down alone, destroying
// what the destination holds there: callers make sure nothing has written
// through the device (see plan's thin.go). The flush makes dm-clone commit
// its metadata.
func Discard(dev string, extents []Extent) error {
	f, err := openExclusive(dev)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, e := range extents {
		if e.Length == 0 {
			continue
		}
		if err := blkDiscard(f, e.Offset, e.Length); err != nil {
			return fmt.Errorf("clone: discard %s bytes %d-%d: %w", dev, e.Offset, e.End(), err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("clone: flush %s after discarding: %w", dev, err)
	}
	return nil
}
