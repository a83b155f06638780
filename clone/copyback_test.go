package clone

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memDisk is an in-memory device.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error) { return copy(p, m[off:]), nil }
func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > int64(len(m)) {
		return 0, errors.New("past the end")
	}
	return copy(m[off:], p), nil
}

// TestCopyExtents copies exactly the extents, chunk by chunk, paced.
func TestCopyExtents(t *testing.T) {
	src := make(memDisk, 1<<20)
	for i := range src {
		src[i] = byte(i/4096 + 1)
	}
	dst := make(memDisk, len(src))
	ext := []Extent{{Offset: 0, Length: 8192}, {Offset: 64 << 10, Length: 300 << 10}}
	now := time.Unix(0, 0)
	var slept time.Duration
	o := CopyOptions{ChunkSize: 64 << 10, Rate: 1 << 20,
		Now: func() time.Time { return now }, Sleep: func(_ context.Context, d time.Duration) { slept += d; now = now.Add(d) }}
	n, err := CopyExtents(context.Background(), src, dst, ext, o)
	require.NoError(t, err)
	require.Equal(t, uint64(8192+300<<10), n)
	for i := range dst {
		in := (i < 8192) || (i >= 64<<10 && i < 364<<10)
		if in {
			require.Equal(t, src[i], dst[i], "byte %d", i)
		} else {
			require.Zero(t, dst[i], "byte %d outside the extents", i)
		}
	}
	// 1 MiB/s: the last chunk starts once the bytes before it took their time.
	require.InDelta(t, float64(time.Duration(8192+256<<10)*time.Second/(1<<20)), float64(slept), float64(time.Millisecond))

	_, err = CopyExtents(context.Background(), src, dst[:4096], ext, CopyOptions{ChunkSize: 4096})
	require.ErrorContains(t, err, "write at byte 4096")
	require.True(t, bytes.Equal(src[:4096], dst[:4096]))
}
