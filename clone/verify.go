package clone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/lunferry/lunferry/dm"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Offset is where the comparison starts, in both devices (bytes).
	Offset int64
	// Length is how many bytes to compare; 0 means from Offset to the end
	// of a (b must be at least as long).
	Length int64
	// ChunkSize is the read size per device (default 1 MiB, rounded up to
	// 4 KiB). Memory use is two chunks.
	ChunkSize int
	// MaxMismatches is how many differing ranges to report (default 16);
	// the comparison still runs to the end to count MismatchedBytes.
	MaxMismatches int
	// Buffered reads through the page cache even where O_DIRECT works.
	Buffered bool
	// OnProgress, when set, is called after each chunk with the bytes
	// compared so far and the total.
	OnProgress func(done, total int64)
}

// Mismatch is a range where the two devices differ, at 512-byte sector
// granularity: Offset is the first differing sector's offset, Length
// covers the contiguous differing sectors (within one chunk).
type Mismatch struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// VerifyResult reports a comparison.
type VerifyResult struct {
	// Compared is the number of bytes compared.
	Compared int64 `json:"compared"`
	// MismatchedBytes counts the bytes of all differing sectors.
	MismatchedBytes int64 `json:"mismatched_bytes"`
	// Mismatches are the first differing ranges, in order.
	Mismatches []Mismatch `json:"mismatches,omitempty"`
	// DirectA and DirectB say whether each side was read with O_DIRECT
	// (bypassing the page cache); false after a fallback (e.g. tmpfs).
	DirectA bool `json:"direct_a"`
	// DirectB is DirectA for the second device.
	DirectB bool `json:"direct_b"`
	// Duration is the wall time of the comparison.
	Duration time.Duration `json:"duration_ns"`
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

// ErrMismatch is wrapped by the error Verify returns when the devices
// differ.
var ErrMismatch = errors.New("data differs")

// MismatchError is returned by Verify when the devices differ.
type MismatchError struct {
	A, B   string
	Result VerifyResult
}

// Error names both devices, the first difference and the extent.
func (e *MismatchError) Error() string {
	first := e.Result.Mismatches[0]
	return fmt.Sprintf("clone: verify %s against %s: %v: %d bytes in differing sectors, the first at offset %d (+%d); do not finalize or detach either device before finding out why",
		e.A, e.B, ErrMismatch, e.Result.MismatchedBytes, first.Offset, first.Length)
}

// Unwrap returns ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// verifyAlign is the buffer and offset alignment O_DIRECT needs (the
// largest logical block size in common use).
const verifyAlign = 4096

// Verify compares the bytes of a and b (block devices or files) over a
// range, chunk by chunk with bounded memory, reading both in parallel, and
// reports where they differ. It is how lunferry checks that the new LUN
// holds what the host sees. It reads with O_DIRECT where the file system
// allows it, so the page cache cannot hide a difference, and falls back to
// buffered reads where it does not (tmpfs, unaligned Offset). When the data
// differs it returns the full result along with a *MismatchError (wrapping
// ErrMismatch); any other error means the comparison did not finish.
func Verify(ctx context.Context, a, b string, opts VerifyOptions) (VerifyResult, error) {
	start := time.Now()
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = 1 << 20
	}
	opts.ChunkSize = (opts.ChunkSize + verifyAlign - 1) / verifyAlign * verifyAlign
	if opts.MaxMismatches <= 0 {
		opts.MaxMismatches = 16
	}
	if opts.Offset < 0 || opts.Length < 0 {
		return VerifyResult{}, fmt.Errorf("clone: verify %s against %s: negative offset or length", a, b)
	}
	direct := !opts.Buffered && opts.Offset%verifyAlign == 0
	ra, err := openVerify(a, direct)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("clone: verify: %w", err)
	}
	defer ra.close()
	rb, err := openVerify(b, direct)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("clone: verify: %w", err)
	}
	defer rb.close()

	length := opts.Length
	if length == 0 {
		if length = ra.size - opts.Offset; length < 0 {
			return VerifyResult{}, fmt.Errorf("clone: verify: offset %d is beyond the end of %s (%d bytes)", opts.Offset, a, ra.size)
		}
	}
	for _, r := range []*verifyReader{ra, rb} {
		if opts.Offset+length > r.size {
			return VerifyResult{}, fmt.Errorf("clone: verify %s against %s: %s has %d bytes, fewer than the %d compared from offset %d; pass a shorter Length",
				a, b, r.path, r.size, length, opts.Offset)
		}
	}
	res, err := compareRange(ctx, ra, rb, length, opts)
	if err != nil {
		return res, fmt.Errorf("clone: verify %s against %s: %w", a, b, err)
	}
	res.DirectA, res.DirectB = ra.direct, rb.direct
	res.Duration = time.Since(start)
	if !res.Equal() {
		return res, &MismatchError{A: a, B: b, Result: res}
	}
	return res, nil
}

// compareRange compares length bytes of ra and rb from opts.Offset, one
// chunk of each at a time, read in parallel.
func compareRange(ctx context.Context, ra, rb *verifyReader, length int64, opts VerifyOptions) (VerifyResult, error) {
	bufA, bufB := alignedBuffer(opts.ChunkSize), alignedBuffer(opts.ChunkSize)
	res := VerifyResult{}
	var errA, errB error
	for done := int64(0); done < length; {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("stopped after %d bytes: %w", done, err)
		}
		n := min(int64(opts.ChunkSize), length-done)
		off := opts.Offset + done
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); errA = ra.readAt(bufA[:n], off) }()
		go func() { defer wg.Done(); errB = rb.readAt(bufB[:n], off) }()
		wg.Wait()
		if err := errors.Join(errA, errB); err != nil {
			return res, fmt.Errorf("at offset %d: %w", off, err)
		}
		if !bytes.Equal(bufA[:n], bufB[:n]) {
			compareSectors(bufA[:n], bufB[:n], off, &res, opts.MaxMismatches)
		}
		done += n
		res.Compared = done
		if opts.OnProgress != nil {
			opts.OnProgress(done, length)
		}
	}
	return res, nil
}

// compareSectors records the differing sectors of one chunk.
func compareSectors(x, y []byte, off int64, res *VerifyResult, max int) {
	var cur *Mismatch
	for i := 0; i < len(x); i += dm.SectorSize {
		j := i + dm.SectorSize
		if j > len(x) {
			j = len(x)
		}
		if bytes.Equal(x[i:j], y[i:j]) {
			cur = nil
			continue
		}
		res.MismatchedBytes += int64(j - i)
		switch {
		case cur != nil:
			cur.Length += int64(j - i)
		case len(res.Mismatches) < max:
			res.Mismatches = append(res.Mismatches, Mismatch{Offset: off + int64(i), Length: int64(j - i)})
			cur = &res.Mismatches[len(res.Mismatches)-1]
		}
	}
}

// verifyReader reads one side of a comparison.
type verifyReader struct {
	path   string
	f      *os.File
	size   int64
	direct bool
}

// openVerify opens path for reading, with O_DIRECT if direct and the file
// system accepts it.
func openVerify(path string, direct bool) (*verifyReader, error) {
	r := &verifyReader{path: path}
	var err error
	if direct {
		if r.f, err = openDirect(path); err == nil {
			r.direct = true
		}
	}
	if r.f == nil {
		if r.f, err = os.Open(path); err != nil {
			return nil, err
		}
	}
	if r.size, err = r.f.Seek(0, io.SeekEnd); err != nil {
		r.close()
		return nil, fmt.Errorf("size of %s: %w", path, err)
	}
	return r, nil
}

// readAt fills p from off. A direct read the kernel refuses (EINVAL: an
// unaligned tail or a file system without O_DIRECT reads) switches this
// side to buffered reads and retries.
func (r *verifyReader) readAt(p []byte, off int64) error {
	var err error
	if r.direct {
		// O_DIRECT needs an aligned length: read whole blocks (the size is
		// checked, so a short read at the end of the file is expected).
		want := (len(p) + verifyAlign - 1) / verifyAlign * verifyAlign
		full := p[:cap(p)]
		if want <= len(full) {
			var n int
			n, err = r.f.ReadAt(full[:want], off)
			if n >= len(p) {
				return nil
			}
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("read %s: short read, %d of %d bytes at offset %d", r.path, n, len(p), off)
			}
		}
		if err := r.reopenBuffered(); err != nil {
			return err
		}
	}
	dropCache(r.f, off, int64(len(p)))
	n, err := r.f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	return fmt.Errorf("read %s at offset %d: %w", r.path, off, err)
}

// reopenBuffered replaces the O_DIRECT descriptor with a buffered one.
func (r *verifyReader) reopenBuffered() error {
	f, err := os.Open(r.path)
	if err != nil {
		return err
	}
	r.f.Close()
	r.f, r.direct = f, false
	return nil
}

func (r *verifyReader) close() {
	if r.f != nil {
		r.f.Close()
	}
}

// alignedBuffer returns n bytes aligned to verifyAlign, with a capacity
// rounded up to whole blocks.
func alignedBuffer(n int) []byte {
	n = (n + verifyAlign - 1) / verifyAlign * verifyAlign
	raw := make([]byte, n+verifyAlign)
	shift := 0
	if rem := int(uintptr(unsafe.Pointer(&raw[0])) % verifyAlign); rem != 0 {
		shift = verifyAlign - rem
	}
	return raw[shift : shift+n : shift+n]
}
