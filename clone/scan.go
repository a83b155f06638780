package clone

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// dm-clone retries a region it cannot read from its source forever: the
// kcopyd job fails, the kernel logs "hydration failed" without the region,
// leaves the region (and every region batched with it) unhydrated and
// tries it again on its next pass (drivers/md/dm-clone-target.c,
// hydration_kcopyd_callback). The clone never turns faulty and its status
// only stops progressing. Scan finds which blocks are to blame.

// Extent is a byte range of a disk.
type Extent struct {
	// Offset is the first byte, Length the number of bytes.
	Offset uint64 `json:"offset"`
	Length uint64 `json:"length"`
}

// End is the offset just past the extent.
func (e Extent) End() uint64 { return e.Offset + e.Length }

// String renders "bytes 1060864-1085439 (24KiB)", both ends included.
func (e Extent) String() string {
	return fmt.Sprintf("bytes %d-%d (%s)", e.Offset, e.End()-1, sizeString(e.Length))
}

// sizeString renders n bytes in the largest binary unit that divides it.
func sizeString(n uint64) string {
	for _, u := range []struct {
		size uint64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// ScanOptions bound a Scan.
type ScanOptions struct {
	// BlockSize is the disk's logical block size, the unit a failed read
	// is narrowed down to (default 512).
	BlockSize uint64
	// ChunkSize is the largest single read (default 1 MiB, rounded up to
	// BlockSize).
	ChunkSize uint64
	// Rate caps the bytes read per second (Paused or Unlimited: no cap).
	Rate Rate
	// Deadline ends the scan early (zero: none), once it looked at one
	// block at least; the result then says where to resume (Next).
	Deadline time.Time
	// MaxExtents is how many unreadable extents to list (default 64); the
	// scan still counts the bytes of the others.
	MaxExtents int
	// Now and Sleep are the clock (default time.Now and a sleep that ends
	// with ctx).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration)
}

// ScanResult is what a Scan found.
type ScanResult struct {
	// Unreadable lists the extents whose reads failed, narrowed to
	// BlockSize, adjacent ones merged, in order (the first MaxExtents).
	Unreadable []Extent `json:"unreadable,omitempty"`
	// UnreadableBytes counts the bytes of all unreadable extents.
	UnreadableBytes uint64 `json:"unreadableBytes"`
	// Scanned is the number of bytes of the extents asked for that were
	// looked at, Total the number asked for.
	Scanned uint64 `json:"scanned"`
	Total   uint64 `json:"total"`
	// Stopped says why the scan ended before Total ("" when complete);
	// Next is where a scan of the same extents resumes then (Trim): a
	// chunk being split when the scan stopped resumes at the first byte
	// not looked at.
	Stopped string `json:"stopped,omitempty"`
	Next    uint64 `json:"next,omitempty"`
}

// Complete reports a scan that looked at every byte asked for.
func (r ScanResult) Complete() bool { return r.Stopped == "" }

// StoppedDeadline is ScanResult.Stopped for a scan that reached its
// Deadline.
const StoppedDeadline = "its time ran out"

// ErrReadTimeout is returned by a reader whose read did not return in
// time (an array that stopped answering, not a bad block): Scan stops
// there instead of calling the range unreadable.
var ErrReadTimeout = errors.New("read did not return in time")

// Scan reads the extents of r (in order, never writing) and returns the
// ranges that could not be read: a failed read is split in halves down to
// one block, so a bad range costs a few reads per block and good data
// around it is not blamed. Reads are paced to o.Rate. It stops early, with
// what it found so far, at o.Deadline, when ctx ends, or when r returns
// ErrReadTimeout.
func Scan(ctx context.Context, r io.ReaderAt, extents []Extent, o ScanOptions) ScanResult {
	s := newScanner(r, o)
	for _, e := range extents {
		s.res.Total += e.Length
	}
	for _, e := range extents {
		for off := e.Offset; off < e.End() && s.res.Stopped == ""; off += s.o.ChunkSize {
			n := min(s.o.ChunkSize, e.End()-off)
			s.probe(ctx, off, n)
		}
	}
	return s.res
}

// Trim returns the parts of extents at or after byte from: what a scan
// stopped at from has left.
func Trim(extents []Extent, from uint64) []Extent {
	var out []Extent
	for _, e := range extents {
		switch {
		case e.End() <= from:
		case e.Offset < from:
			out = append(out, Extent{Offset: from, Length: e.End() - from})
		default:
			out = append(out, e)
		}
	}
	return out
}

// Union merges two sorted lists of extents into one, sorted, overlapping
// and adjacent extents joined.
func Union(a, b []Extent) []Extent {
	all := append(append([]Extent(nil), a...), b...)
	slices.SortFunc(all, func(x, y Extent) int { return cmp.Compare(x.Offset, y.Offset) })
	var out []Extent
	for _, e := range all {
		if k := len(out); k > 0 && e.Offset <= out[k-1].End() {
			out[k-1].Length = max(out[k-1].End(), e.End()) - out[k-1].Offset
			continue
		}
		out = append(out, e)
	}
	return out
}

type scanner struct {
	r     io.ReaderAt
	o     ScanOptions
	buf   []byte
	start time.Time
	read  uint64
	res   ScanResult
}

func newScanner(r io.ReaderAt, o ScanOptions) *scanner {
	if o.BlockSize == 0 {
		o.BlockSize = 512
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = 1 << 20
	}
	o.ChunkSize = (o.ChunkSize + o.BlockSize - 1) / o.BlockSize * o.BlockSize
	if o.MaxExtents == 0 {
		o.MaxExtents = 64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	return &scanner{r: r, o: o, buf: make([]byte, o.ChunkSize), start: o.Now()}
}

// probe reads n bytes at off; a failure is split in halves (on block
// boundaries) until single blocks are blamed.
func (s *scanner) probe(ctx context.Context, off, n uint64) {
	if s.res.Stopped != "" {
		return
	}
	if why := s.stop(ctx); why != "" {
		s.res.Stopped = why
		return
	}
	s.pace(ctx, n)
	_, err := s.r.ReadAt(s.buf[:n], int64(off))
	if errors.Is(err, ErrReadTimeout) {
		s.res.Stopped = fmt.Sprintf("the read at byte %d: %v", off, err)
		return
	}
	if err == nil || errors.Is(err, io.EOF) || n <= s.o.BlockSize {
		// EOF: past the disk's end, nothing there to blame.
		if err != nil && !errors.Is(err, io.EOF) {
			s.bad(Extent{Offset: off, Length: n})
		}
		// Looked at in full: a scan stopped later resumes after it.
		s.res.Scanned += n
		s.res.Next = off + n
		return
	}
	half := (n/2 + s.o.BlockSize - 1) / s.o.BlockSize * s.o.BlockSize
	s.probe(ctx, off, half)
	s.probe(ctx, off+half, n-half)
}

// stop says why the scan must end now ("" to go on).
func (s *scanner) stop(ctx context.Context) string {
	if err := ctx.Err(); err != nil {
		return err.Error()
	}
	// Past the deadline, a scan still looks at one block in full (a split
	// takes a few reads more), so that a scan resumed slice after slice
	// always moves on.
	if !s.o.Deadline.IsZero() && !s.o.Now().Before(s.o.Deadline) && s.res.Scanned > 0 {
		return StoppedDeadline
	}
	return ""
}

// pace sleeps until reading n more bytes keeps the scan under o.Rate.
func (s *scanner) pace(ctx context.Context, n uint64) {
	s.read += n
	if s.o.Rate == Paused || s.o.Rate == Unlimited {
		return
	}
	due := s.start.Add(time.Duration(float64(s.read-n) / float64(s.o.Rate) * float64(time.Second)))
	if d := due.Sub(s.o.Now()); d > 0 {
		s.o.Sleep(ctx, d)
	}
}

// bad records an unreadable extent, merged with the last one it touches.
func (s *scanner) bad(e Extent) {
	s.res.UnreadableBytes += e.Length
	if k := len(s.res.Unreadable); k > 0 && s.res.Unreadable[k-1].End() == e.Offset {
		s.res.Unreadable[k-1].Length += e.Length
		return
	}
	if len(s.res.Unreadable) < s.o.MaxExtents {
		s.res.Unreadable = append(s.res.Unreadable, e)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
