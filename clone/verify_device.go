package clone

import (
	"context"
	"fmt"
	"io"
	"time"
	"unsafe"
)

// verifyAlign is the buffer and offset alignment O_DIRECT needs (the
// largest logical block size in common use).
const verifyAlign = 4096

// VerifyReadTimeout bounds each read of Verify: an array that stops
// answering ends the comparison with ErrReadTimeout instead of hanging it.
const VerifyReadTimeout = 2 * time.Minute

// Verify compares the block devices at paths a and b over extents, which
// both must hold, with O_DIRECT reads, so the page cache cannot hide a
// difference; see Compare. No extents compare nothing.
func Verify(ctx context.Context, a, b string, extents []Extent, o VerifyOptions) (VerifyResult, error) {
	ra, err := OpenDirect(a, VerifyReadTimeout)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("clone: verify: %w", err)
	}
	defer ra.Close()
	rb, err := OpenDirect(b, VerifyReadTimeout)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("clone: verify: %w", err)
	}
	defer rb.Close()
	sa, err := ra.f.Seek(0, io.SeekEnd)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("clone: verify: size of %s: %w", a, err)
	}
	sb, err := rb.f.Seek(0, io.SeekEnd)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("clone: verify: size of %s: %w", b, err)
	}
	if err := checkExtents(extents, uint64(min(sa, sb))); err != nil {
		return VerifyResult{}, fmt.Errorf("clone: verify %s (%d bytes) against %s (%d bytes): %w", a, sa, b, sb, err)
	}
	return Compare(ctx, a, ra, b, rb, extents, o)
}

// checkExtents refuses extents that are unsorted, overlapping, unaligned
// for O_DIRECT or past size.
func checkExtents(extents []Extent, size uint64) error {
	var end uint64
	for _, e := range extents {
		switch {
		case e.Offset < end:
			return fmt.Errorf("extent %s overlaps or precedes the one before: pass sorted extents (Union)", e)
		case e.Offset%verifyAlign != 0 || e.Length%512 != 0:
			return fmt.Errorf("extent %s is not aligned: offsets must be multiples of %d and lengths of 512 bytes", e, verifyAlign)
		case e.End() > size:
			return fmt.Errorf("extent %s ends past the shorter device (%d bytes): pass extents within both", e, size)
		}
		end = e.End()
	}
	return nil
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
