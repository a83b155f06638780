package lab

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ProbeStats are what a Probe saw.
type ProbeStats struct {
	// Reads and Errors count the probe's reads and the failed ones;
	// LastError is the last failure.
	Reads     int64
	Errors    int64
	LastError string
	// MaxStall is the longest single read, and MaxStallAt when it ended.
	MaxStall   time.Duration
	MaxStallAt time.Time
}

// Probe reads one 4 KiB block of path every interval until ctx ends,
// walking the file backwards in steps of stride bytes (so that successive
// reads land in different dm-clone regions) and wrapping around; each
// block's cached pages are dropped first, so every read reaches the
// device. It measures how long the host's reads wait, e.g. for a region
// the proxy serves from an unreachable array.
func Probe(ctx context.Context, path string, stride int64, interval time.Duration) (ProbeStats, error) {
	var st ProbeStats
	f, err := os.Open(path)
	if err != nil {
		return st, fmt.Errorf("lab: probe: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return st, fmt.Errorf("lab: probe: %w", err)
	}
	const block = 4096
	blocks := fi.Size() / block
	if blocks == 0 || stride < block {
		return st, fmt.Errorf("lab: probe: %s has no whole 4 KiB block, or stride %d is below one", path, stride)
	}
	buf := make([]byte, block)
	for off := (blocks - 1) * block; ctx.Err() == nil; off -= stride {
		if off < 0 {
			off = (blocks - 1) * block
		}
		_ = unix.Fadvise(int(f.Fd()), off, block, unix.FADV_DONTNEED)
		t0 := time.Now()
		_, err := f.ReadAt(buf, off)
		if d := time.Since(t0); d > st.MaxStall {
			st.MaxStall, st.MaxStallAt = d, time.Now()
		}
		st.Reads++
		if err != nil {
			st.Errors++
			st.LastError = fmt.Sprintf("read %s at %d: %v", path, off, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
	return st, nil
}
