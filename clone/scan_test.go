package clone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// badDisk is a disk of size bytes whose reads fail when they touch a bad
// extent; it records every read.
type badDisk struct {
	size  uint64
	bad   []Extent
	reads []Extent
	// hangAt makes a read touching that offset return ErrReadTimeout.
	hangAt uint64
	onRead func()
}

func (d *badDisk) ReadAt(p []byte, off int64) (int, error) {
	e := Extent{Offset: uint64(off), Length: uint64(len(p))}
	d.reads = append(d.reads, e)
	if d.onRead != nil {
		d.onRead()
	}
	if e.End() > d.size {
		return 0, fmt.Errorf("read past the end: %v", e)
	}
	if d.hangAt != 0 && e.Offset <= d.hangAt && d.hangAt < e.End() {
		return 0, ErrReadTimeout
	}
	for _, b := range d.bad {
		if e.Offset < b.End() && b.Offset < e.End() {
			return 0, errors.New("input/output error")
		}
	}
	return len(p), nil
}

func TestScanNarrowsBadRangesToBlocks(t *testing.T) {
	d := &badDisk{size: 4 << 20, bad: []Extent{{Offset: 1<<20 + 12<<10, Length: 24 << 10}, {Offset: 3<<20 + 512, Length: 512}}}
	res := Scan(context.Background(), d, []Extent{{0, 4 << 20}}, ScanOptions{})
	require.True(t, res.Complete(), res.Stopped)
	require.Equal(t, d.bad, res.Unreadable)
	require.Equal(t, uint64(24<<10+512), res.UnreadableBytes)
	require.Equal(t, uint64(4<<20), res.Scanned)
	require.Less(t, len(d.reads), 4+2*(48+1)*12, "a bad block costs a few reads, not one per block of the disk")
}

func TestScanReadsOnlyTheExtents(t *testing.T) {
	d := &badDisk{size: 8 << 20, bad: []Extent{{Offset: 5 << 20, Length: 4096}, {Offset: 7 << 20, Length: 4096}}}
	want := []Extent{{Offset: 64 << 10, Length: 64 << 10}, {Offset: 5<<20 - 64<<10, Length: 1 << 20}}
	res := Scan(context.Background(), d, want, ScanOptions{BlockSize: 4096})
	require.Equal(t, []Extent{{Offset: 5 << 20, Length: 4096}}, res.Unreadable, "the bad block outside the extents is not read")
	for _, r := range d.reads {
		inside := false
		for _, w := range want {
			inside = inside || r.Offset >= w.Offset && r.End() <= w.End()
		}
		require.True(t, inside, "read %v outside the extents", r)
	}
	require.Equal(t, res.Total, res.Scanned)
}

func TestScanStopsAtDeadlineAndTimeout(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	d := &badDisk{size: 16 << 20, onRead: func() { now = now.Add(time.Second) }}
	res := Scan(context.Background(), d, []Extent{{0, 16 << 20}}, ScanOptions{Deadline: now.Add(5 * time.Second), Now: func() time.Time { return now }})
	require.False(t, res.Complete())
	require.Equal(t, uint64(5<<20), res.Scanned)
	require.Contains(t, res.Stopped, "time ran out")

	d = &badDisk{size: 4 << 20, hangAt: 2<<20 + 5}
	res = Scan(context.Background(), d, []Extent{{0, 4 << 20}}, ScanOptions{})
	require.False(t, res.Complete())
	require.Empty(t, res.Unreadable, "an array that stops answering is not a bad range")
	require.Equal(t, uint64(2<<20), res.Scanned)
	require.Contains(t, res.Stopped, "byte 2097152")
}

func TestScanKeepsItsRate(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	var slept time.Duration
	d := &badDisk{size: 8 << 20}
	o := ScanOptions{Rate: 2 * MiB, Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) { slept += d; now = now.Add(d) }}
	res := Scan(context.Background(), d, []Extent{{0, 8 << 20}}, o)
	require.True(t, res.Complete())
	// 8 reads of 1 MiB at 2 MiB/s: the last starts 3.5 s in.
	require.Equal(t, 3500*time.Millisecond, slept)
}

func TestScanListsAtMostMaxExtents(t *testing.T) {
	d := &badDisk{size: 1 << 20}
	for i := range uint64(10) {
		d.bad = append(d.bad, Extent{Offset: i * 64 << 10, Length: 4096})
	}
	res := Scan(context.Background(), d, []Extent{{0, 1 << 20}}, ScanOptions{BlockSize: 4096, MaxExtents: 3})
	require.Equal(t, d.bad[:3], res.Unreadable)
	require.Equal(t, uint64(10*4096), res.UnreadableBytes)
}

func TestExtentString(t *testing.T) {
	require.Equal(t, "bytes 1060864-1085439 (24KiB)", Extent{Offset: 1<<20 + 12<<10, Length: 24 << 10}.String())
	require.Equal(t, "bytes 512-1023 (512B)", Extent{Offset: 512, Length: 512}.String())
}

func TestScanResumesWhereItStopped(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	bad := []Extent{{Offset: 1<<20 + 4096, Length: 4096}, {Offset: 6 << 20, Length: 512}}
	d := &badDisk{size: 8 << 20, bad: bad, onRead: func() { now = now.Add(100 * time.Millisecond) }}
	ext := []Extent{{Offset: 0, Length: 2 << 20}, {Offset: 5 << 20, Length: 3 << 20}}
	var found []Extent
	var scanned uint64
	for pass := 0; ; pass++ {
		require.Less(t, pass, 100)
		res := Scan(context.Background(), d, ext, ScanOptions{Deadline: now.Add(time.Second), Now: func() time.Time { return now }})
		found, scanned = Union(found, res.Unreadable), scanned+res.Scanned
		if res.Complete() {
			break
		}
		ext = Trim(ext, res.Next)
	}
	require.Equal(t, bad, found)
	require.Equal(t, uint64(5<<20), scanned)
}

func TestUnionAndTrim(t *testing.T) {
	require.Equal(t, []Extent{{0, 10}, {20, 15}}, Union([]Extent{{0, 5}, {20, 5}}, []Extent{{5, 5}, {22, 13}}))
	require.Equal(t, []Extent{{7, 3}, {20, 5}}, Trim([]Extent{{0, 5}, {5, 5}, {20, 5}}, 7))
}

// TestDirectReaderReadsNoMore: a 512-byte read reads 512 bytes, not the
// 4 KiB of its aligned buffer (which, on a disk, fails a good block beside
// a bad one; here, reads past the end of a file).
func TestDirectReaderReadsNoMore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte{7}, 1024), 0o600))
	r, err := OpenDirect(path, 5*time.Second)
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("no O_DIRECT on %s: %v", path, err)
	}
	require.NoError(t, err)
	defer r.Close()
	p := make([]byte, 512)
	n, err := r.ReadAt(p, 512)
	require.NoError(t, err)
	require.Equal(t, 512, n)
	require.Equal(t, bytes.Repeat([]byte{7}, 512), p)
}
