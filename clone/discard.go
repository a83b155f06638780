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

// zeroSamples bounds the extents Zeroed reads from.
const zeroSamples = 64

// Zeroed reads, with O_DIRECT, the first, middle and last 4 KiB of up to
// 64 of the sorted extents of path (spread over all of them) and returns
// the offset of the first 4 KiB that is not all zeroes (ok false), if any.
// Extents are multiples of 4 KiB.
func Zeroed(path string, extents []Extent) (at uint64, ok bool, err error) {
	r, err := OpenDirect(path, VerifyReadTimeout)
	if err != nil {
		return 0, false, err
	}
	defer r.Close()
	buf := make([]byte, 4096)
	step := max(1, (len(extents)+zeroSamples-1)/zeroSamples)
	for i := 0; i < len(extents); i += step {
		e := extents[i]
		if e.Length < 4096 {
			continue
		}
		for _, off := range []uint64{e.Offset, e.Offset + (e.Length/2)&^4095, e.End() - 4096} {
			if _, err := r.ReadAt(buf, int64(off)); err != nil {
				return 0, false, fmt.Errorf("clone: read %s at %d: %w", path, off, err)
			}
			for _, b := range buf {
				if b != 0 {
					return off, false, nil
				}
			}
		}
	}
	return 0, true, nil
}
