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

// VerifyOptions tune Compare and Verify.
type VerifyOptions struct {
	// ChunkSize is the read size per device (default 1 MiB, rounded up to
	// 4 KiB). Memory use is two chunks.
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
	c := comparer{o: o, bufA: make([]byte, o.ChunkSize), bufB: make([]byte, o.ChunkSize), start: o.Now()}
	for _, e := range extents {
		c.res.Total += e.Length
	}
	for _, e := range extents {
		for off := e.Offset; off < e.End(); off += o.ChunkSize {
			if err := c.chunk(ctx, a, b, off, min(o.ChunkSize, e.End()-off)); err != nil {
				c.res.Duration = o.Now().Sub(c.start)
				return c.res, fmt.Errorf("clone: verify %s against %s: %w", an, bn, err)
			}
		}
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
		o.MaxMismatches = 16
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
	o          VerifyOptions
	bufA, bufB []byte
	start      time.Time
	res        VerifyResult
}

// chunk compares n bytes at off.
func (c *comparer) chunk(ctx context.Context, a, b io.ReaderAt, off, n uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped at byte %d: %w", off, err)
	}
	if c.o.Rate != Paused && c.o.Rate != Unlimited {
		due := c.start.Add(time.Duration(float64(c.res.Compared) / float64(c.o.Rate) * float64(time.Second)))
		if d := due.Sub(c.o.Now()); d > 0 {
			c.o.Sleep(ctx, d)
		}
	}
	x, y := c.bufA[:n], c.bufB[:n]
	errB := make(chan error, 1)
	go func() { errB <- readFull(b, y, off) }()
	if err := errors.Join(readFull(a, x, off), <-errB); err != nil {
		return fmt.Errorf("at byte %d: %w", off, err)
	}
	if !bytes.Equal(x, y) {
		c.compareSectors(x, y, off)
	}
	c.res.Compared += n
	c.res.Next = off + n
	if c.o.OnProgress != nil {
		c.o.OnProgress(c.res.Compared, c.res.Total)
	}
	return nil
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
