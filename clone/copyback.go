package clone

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// CopyOptions tune CopyExtents and CopyBack.
type CopyOptions struct {
	// ChunkSize is the size of each read and write (default 1 MiB,
	// rounded up to 4 KiB).
	ChunkSize uint64
	// Rate caps the bytes copied per second (Paused or Unlimited: no
	// cap).
	Rate Rate
	// Now and Sleep are the clock (default time.Now and a sleep that ends
	// with ctx).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration)
}

// CopyExtents copies the extents (sorted, not overlapping) of src to dst
// at the same offsets, chunk by chunk through one aligned buffer, paced to
// o.Rate. It returns the bytes copied; on an error, those copied before
// it.
func CopyExtents(ctx context.Context, src io.ReaderAt, dst io.WriterAt, extents []Extent, o CopyOptions) (uint64, error) {
	v := VerifyOptions{ChunkSize: o.ChunkSize, Now: o.Now, Sleep: o.Sleep}.withDefaults()
	buf := alignedBuffer(int(v.ChunkSize))
	start := v.Now()
	var done uint64
	for _, e := range extents {
		for off := e.Offset; off < e.End(); off += v.ChunkSize {
			if err := ctx.Err(); err != nil {
				return done, fmt.Errorf("stopped at byte %d: %w", off, err)
			}
			if o.Rate != Paused && o.Rate != Unlimited {
				due := start.Add(time.Duration(float64(done) / float64(o.Rate) * float64(time.Second)))
				if d := due.Sub(v.Now()); d > 0 {
					v.Sleep(ctx, d)
				}
			}
			p := buf[:min(v.ChunkSize, e.End()-off)]
			if err := readFull(src, p, off); err != nil {
				return done, fmt.Errorf("read at byte %d: %w", off, err)
			}
			if _, err := dst.WriteAt(p, int64(off)); err != nil {
				return done, fmt.Errorf("write at byte %d: %w", off, err)
			}
			done += uint64(len(p))
		}
	}
	return done, nil
}

// CopyBack copies the extents of the block device src to the block device
// dst with O_DIRECT both ways (see CopyExtents), then flushes dst's write
// cache. It is the only function of lunferry that writes an old LUN: plan's
// rollback gives the host's writes since cutover back to it. Reads wait
// at most VerifyReadTimeout each.
func CopyBack(ctx context.Context, src, dst string, extents []Extent, o CopyOptions) (uint64, error) {
	r, err := OpenDirect(src, VerifyReadTimeout)
	if err != nil {
		return 0, fmt.Errorf("clone: copy back: %w", err)
	}
	defer r.Close()
	w, err := openDirectWrite(dst)
	if err != nil {
		return 0, fmt.Errorf("clone: copy back: %w", err)
	}
	if err := checkExtentsOf(r.f, w, extents); err != nil {
		w.Close()
		return 0, fmt.Errorf("clone: copy back %s to %s: %w", src, dst, err)
	}
	n, err := CopyExtents(ctx, r, w, extents, o)
	if err == nil {
		err = w.Sync() // O_DIRECT leaves the data in the disk's volatile cache
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("clone: copy back %s to %s: %w", src, dst, err)
	}
	return n, nil
}

// checkExtentsOf refuses extents checkExtents refuses for the smaller of
// two devices.
func checkExtentsOf(a, b *os.File, extents []Extent) error {
	sa, err := a.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of %s: %w", a.Name(), err)
	}
	sb, err := b.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of %s: %w", b.Name(), err)
	}
	return checkExtents(extents, uint64(min(sa, sb)))
}
