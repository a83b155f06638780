package clone

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// DirectReader reads a block device for Scan and UnhydratedExtents: with
// O_DIRECT (what the device holds: dm-clone writes its metadata around the
// page cache, and a cached good copy would hide a bad block), never
// writing, each read bounded in time. A read of an array that stopped
// answering blocks in the kernel until the iSCSI session gives up;
// DirectReader returns ErrReadTimeout then and leaves that read behind.
type DirectReader struct {
	f       *os.File
	timeout time.Duration
	mu      sync.Mutex
	pending int // reads left behind, still in the kernel
	// spare is the aligned buffer of the last read that came back: a new
	// one per read cost verify most of its rate (each fresh buffer's pages
	// are zeroed and faulted in for the kernel).
	spare []byte
}

// OpenDirect opens path read-only with O_DIRECT; each ReadAt waits at most
// timeout (0: no bound).
func OpenDirect(path string, timeout time.Duration) (*DirectReader, error) {
	f, err := openDirect(path)
	if err != nil {
		return nil, fmt.Errorf("clone: %w", err)
	}
	return &DirectReader{f: f, timeout: timeout}, nil
}

// ReadAt reads len(p) bytes at off (both multiples of the device's logical
// block size) through an aligned buffer of its own.
func (r *DirectReader) ReadAt(p []byte, off int64) (int, error) {
	type res struct {
		buf []byte
		n   int
		err error
	}
	done := make(chan res, 1)
	r.mu.Lock()
	r.pending++
	buf := r.spare
	r.spare = nil
	r.mu.Unlock()
	if cap(buf) < len(p) {
		buf = alignedBuffer(len(p))
	}
	// Read len(p), not more, or a bad block up to 4 KiB further fails a
	// good one.
	buf = buf[:len(p)]
	go func() {
		n, err := r.f.ReadAt(buf, off)
		r.mu.Lock()
		r.pending--
		r.mu.Unlock()
		done <- res{buf, n, err}
	}()
	var expired <-chan time.Time
	if r.timeout > 0 {
		t := time.NewTimer(r.timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case x := <-done:
		n := copy(p, x.buf[:x.n])
		r.mu.Lock()
		r.spare = x.buf
		r.mu.Unlock()
		return n, x.err
	case <-expired:
		// The read cannot be stopped: it keeps its own buffer, and p
		// is the caller's again.
		return 0, fmt.Errorf("clone: read %s at byte %d: no answer in %s: %w", r.f.Name(), off, r.timeout, ErrReadTimeout)
	}
}

// Close closes the device; with reads left behind, it closes once they
// return.
func (r *DirectReader) Close() error {
	r.mu.Lock()
	busy := r.pending > 0
	r.mu.Unlock()
	if busy {
		go r.f.Close()
		return nil
	}
	return r.f.Close()
}
