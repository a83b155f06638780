package clone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lunferry/lunferry/dm"
)

// DefaultMaxMismatches is how many differing ranges a comparison lists
// unless told otherwise.
const DefaultMaxMismatches = 16

// VerifyOptions tune Compare and Verify.
type VerifyOptions struct {
	// ChunkSize is the read size per device (default 1 MiB, rounded up to
	// 4 KiB). Memory use is four chunks (the next is read while one is
	// compared).
	ChunkSize uint64
	// Rate caps the bytes read per second from each device (Paused or
	// Unlimited: no cap).
	Rate Rate
	// MaxMismatches is how many differing ranges to list (default 16);
	// the comparison still runs to the end to count MismatchedBytes.
	MaxMismatches int
	// OnProgress, when set, is called after each chunk with the bytes
	// compared so far and the total asked for.
	OnProgress func(done, total uint64)
	// From resumes a comparison that stopped there (its VerifyResult.Next):
	// the extents' bytes before it are neither read nor counted.
	From uint64
	// OnChunk, when set, gets the result so far after each chunk, for a
	// checkpoint that From can resume.
	OnChunk func(VerifyResult)
	// Now and Sleep are the clock (default time.Now and a sleep that ends
	// with ctx).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration)
}

// VerifyResult reports a comparison.
type VerifyResult struct {
	// Compared is the number of bytes compared (of each device), Total
	// the number asked for.
	Compared uint64 `json:"compared"`
	Total    uint64 `json:"total"`
	// MismatchedBytes counts the bytes of all differing sectors.
	MismatchedBytes uint64 `json:"mismatchedBytes"`
	// Mismatches are the first differing ranges, in order, at 512-byte
	// sector granularity, adjacent sectors merged.
	Mismatches []Extent `json:"mismatches,omitempty"`
	// Next is the byte a comparison of the same extents that stopped early
	// resumes at (Trim).
	Next uint64 `json:"next,omitempty"`
	// Duration is the wall time of the comparison.
	Duration time.Duration `json:"durationNs"`
}

// Equal reports whether no difference was found.
func (r VerifyResult) Equal() bool { return r.MismatchedBytes == 0 }

// Throughput is the compared bytes per second (of each device).
func (r VerifyResult) Throughput() Rate {
	if r.Duration <= 0 {
		return 0
	}
	return Rate(float64(r.Compared) / r.Duration.Seconds())
}

// ErrMismatch is wrapped by the error Compare returns when the devices
// differ.
var ErrMismatch = errors.New("data differs")

// MismatchError is returned by Compare and Verify when the devices differ.
type MismatchError struct {
	A, B   string
	Result VerifyResult
}

// Error names both devices, the first difference and the extent.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("clone: verify %s against %s: %v: %d bytes in differing sectors, the first %s; do not finalize or detach either device before finding out why",
		e.A, e.B, ErrMismatch, e.Result.MismatchedBytes, e.Result.Mismatches[0])
}

// Unwrap returns ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Compare reads the extents (sorted, not overlapping) of a and b, named
// an and bn in errors, chunk by chunk with bounded memory, both in
// parallel and paced to o.Rate, and reports where they differ. When they
// differ it returns the full result with a *MismatchError (wrapping
// ErrMismatch); any other error means the comparison stopped early, and
// the result says what it compared and where to resume (Next).
func Compare(ctx context.Context, an string, a io.ReaderAt, bn string, b io.ReaderAt, extents []Extent, o VerifyOptions) (VerifyResult, error) {
	o = o.withDefaults()
	c := comparer{o: o, start: o.Now()}
	c.res.Next = o.From
	for i := range c.bufs {
		c.bufs[i] = [2][]byte{make([]byte, o.ChunkSize), make([]byte, o.ChunkSize)}
	}
	var chunks []Extent
	for _, e := range Trim(extents, o.From) {
		c.res.Total += e.Length
		for off := e.Offset; off < e.End(); off += o.ChunkSize {
			chunks = append(chunks, Extent{Offset: off, Length: min(o.ChunkSize, e.End()-off)})
		}
	}
	fail := func(err error) (VerifyResult, error) {
		c.res.Duration = o.Now().Sub(c.start)
		return c.res, fmt.Errorf("clone: verify %s against %s: %w", an, bn, err)
	}
	// The next chunk is read while this one is compared, so neither
	// device waits for the comparison.
	var cur *chunkRead
	for i, ch := range chunks {
		if err := ctx.Err(); err != nil {
			if cur != nil {
				<-cur.done
			}
			return fail(fmt.Errorf("stopped at byte %d: %w", ch.Offset, err))
		}
		if cur == nil {
			cur = c.read(ctx, a, b, ch, 0)
		}
		if err := <-cur.done; err != nil {
			return fail(fmt.Errorf("at byte %d: %w", ch.Offset, err))
		}
		var next *chunkRead
		if i+1 < len(chunks) {
			next = c.read(ctx, a, b, chunks[i+1], (i+1)%len(c.bufs))
		}
		c.compare(cur)
		cur = next
	}
	c.res.Duration = o.Now().Sub(c.start)
	if !c.res.Equal() {
		return c.res, &MismatchError{A: an, B: bn, Result: c.res}
	}
	return c.res, nil
}

func (o VerifyOptions) withDefaults() VerifyOptions {
	if o.ChunkSize == 0 {
		o.ChunkSize = 1 << 20
	}
	o.ChunkSize = (o.ChunkSize + verifyAlign - 1) / verifyAlign * verifyAlign
	if o.MaxMismatches <= 0 {
		o.MaxMismatches = DefaultMaxMismatches
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	return o
}

// comparer holds one comparison's buffers, pace and result.
type comparer struct {
	o     VerifyOptions
	bufs  [2][2][]byte // a chunk of each device, twice: one compared, one read
	start time.Time
	// launched is the bytes whose reads have started: the pace.
	launched uint64
	res      VerifyResult
}

// chunkRead is one chunk's reads of both devices, in flight until done.
type chunkRead struct {
	off  uint64
	x, y []byte
	done chan error
}

// read starts reading ch from both devices into buffer pair k, once the
// pace allows it.
func (c *comparer) read(ctx context.Context, a, b io.ReaderAt, ch Extent, k int) *chunkRead {
	if c.o.Rate != Paused && c.o.Rate != Unlimited {
		due := c.start.Add(time.Duration(float64(c.launched) / float64(c.o.Rate) * float64(time.Second)))
		if d := due.Sub(c.o.Now()); d > 0 {
			c.o.Sleep(ctx, d)
		}
	}
	c.launched += ch.Length
	r := &chunkRead{off: ch.Offset, x: c.bufs[k][0][:ch.Length], y: c.bufs[k][1][:ch.Length], done: make(chan error, 1)}
	go func() {
		errB := make(chan error, 1)
		go func() { errB <- readFull(b, r.y, r.off) }()
		r.done <- errors.Join(readFull(a, r.x, r.off), <-errB)
	}()
	return r
}

// compare compares a chunk whose reads are done.
func (c *comparer) compare(r *chunkRead) {
	if !bytes.Equal(r.x, r.y) {
		c.compareSectors(r.x, r.y, r.off)
	}
	n := uint64(len(r.x))
	c.res.Compared += n
	c.res.Next = r.off + n
	if c.o.OnProgress != nil {
		c.o.OnProgress(c.res.Compared, c.res.Total)
	}
	if c.o.OnChunk != nil {
		r := c.res
		r.Mismatches = append([]Extent(nil), r.Mismatches...)
		r.Duration = c.o.Now().Sub(c.start)
		c.o.OnChunk(r)
	}
}

// readFull reads len(p) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, p []byte, off uint64) error {
	n, err := r.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("short read: %d of %d bytes at byte %d (past the end of the device?)", n, len(p), off)
	}
	return err
}

// compareSectors records the differing sectors of one chunk.
func (c *comparer) compareSectors(x, y []byte, off uint64) {
	for i := 0; i < len(x); i += dm.SectorSize {
		j := min(i+dm.SectorSize, len(x))
		if bytes.Equal(x[i:j], y[i:j]) {
			continue
		}
		e := Extent{Offset: off + uint64(i), Length: uint64(j - i)}
		c.res.MismatchedBytes += e.Length
		if k := len(c.res.Mismatches); k > 0 && c.res.Mismatches[k-1].End() == e.Offset {
			c.res.Mismatches[k-1].Length += e.Length
		} else if k < c.o.MaxMismatches {
			c.res.Mismatches = append(c.res.Mismatches, e)
		}
	}
}
